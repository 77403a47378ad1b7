#!/usr/bin/env node
// Writes the MCP Registry entry of a release: server.json with the release's
// version in every identifier and each Claude Desktop bundle's SHA-256 (the
// registry requires it for MCPB packages; only the built bundles know it).
//
//   node mcpb/stamp-server-json.mjs VERSION BUNDLE_DIR > dist/server.json
//
// Every MCPB package must have its bundle in BUNDLE_DIR
// (bpmcp_VERSION_OS_ARCH.mcpb, as mcpb/pack.sh names them), or it fails.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const [version, bundles] = process.argv.slice(2).map((a, i) => (i === 0 ? a.replace(/^v/, "") : a));
if (!version || !bundles) {
  console.error("usage: node mcpb/stamp-server-json.mjs VERSION BUNDLE_DIR");
  process.exit(2);
}
const repo = dirname(dirname(fileURLToPath(import.meta.url)));
const entry = JSON.parse(readFileSync(join(repo, "server.json"), "utf8"));
const from = entry.version;
const swap = (s) => s.split(`v${from}/`).join(`v${version}/`).split(`_${from}_`).join(`_${version}_`).replace(new RegExp(`:${from.replace(/\./g, "\\.")}$`), `:${version}`);

entry.version = version;
for (const p of entry.packages) {
  p.identifier = swap(p.identifier);
  if (p.registryType !== "mcpb") continue;
  p.version = version;
  const file = join(bundles, basename(new URL(p.identifier).pathname));
  if (!existsSync(file)) {
    console.error(`stamp-server-json: no bundle ${file} for ${p.identifier}`);
    process.exit(1);
  }
  p.fileSha256 = createHash("sha256").update(readFileSync(file)).digest("hex");
}
process.stdout.write(JSON.stringify(entry, null, 2) + "\n");

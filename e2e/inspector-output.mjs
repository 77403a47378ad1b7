#!/usr/bin/env node
// Checks what `mcp-inspector --cli --format json` printed on stdout, beyond its
// exit code. Exit 0 when the output is as expected, 1 with a reason otherwise.
//
//   node inspector-output.mjs <stdout.json> tools-list name1,name2,...   every tool listed, each with an outputSchema
//   node inspector-output.mjs <stdout.json> ok                          a tool result: not isError, content, structuredContent
//   node inspector-output.mjs <stdout.json> is-error [regexp]           a tool result with isError true and a text (matching regexp)
//   node inspector-output.mjs <stdout.json> field run_id                print structuredContent.run_id

import { readFileSync } from "node:fs";

const [file, mode, arg] = process.argv.slice(2);
function die(msg) {
  console.log(msg);
  process.exit(1);
}
let out;
try {
  out = JSON.parse(readFileSync(file, "utf8"));
} catch (err) {
  die(`stdout is not one JSON document: ${err.message}`);
}
const r = out?.result;
if (!r || typeof r !== "object") die(`no "result" in ${JSON.stringify(out).slice(0, 200)}`);

const text = (r.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join(" ");
switch (mode) {
  case "tools-list": {
    const tools = r.tools ?? [];
    const names = tools.map((t) => t.name);
    for (const want of (arg ?? "").split(",").filter(Boolean)) {
      if (!names.includes(want)) die(`tool ${want} missing from ${names.join(", ")}`);
    }
    for (const t of tools) if (!t.outputSchema) die(`tool ${t.name} has no outputSchema`);
    console.log(`${names.length} tools`);
    break;
  }
  case "ok":
    if (r.isError === true) die(`isError: ${text.slice(0, 300)}`);
    if (!Array.isArray(r.content) || r.content.length === 0) die("content is empty");
    if (r.structuredContent == null || typeof r.structuredContent !== "object") die("structuredContent is missing");
    console.log(text.slice(0, 120).replace(/\s+/g, " "));
    break;
  case "is-error":
    if (r.isError !== true) die(`isError is ${r.isError}`);
    if (!text.trim()) die("no error text");
    if (arg && !new RegExp(arg, "i").test(text)) die(`error text does not match /${arg}/i: ${text.slice(0, 200)}`);
    console.log(text.slice(0, 120).replace(/\s+/g, " "));
    break;
  case "field": {
    const v = r.structuredContent?.[arg];
    if (v == null) die(`structuredContent.${arg} is missing`);
    console.log(v);
    break;
  }
  default:
    die(`unknown mode ${mode}`);
}

#!/usr/bin/env node
// End-to-end check of the confirmation before spending with the official
// TypeScript SDK client over HTTP: a server started with --confirm-above 30
// asks the user (this client's elicitation handler) before the 40-credit cold
// email run; one client accepts and its run succeeds, another declines and
// its call is refused with nothing spent.
//
//   node confirm-client.mjs --url http://127.0.0.1:PORT/mcp
//
// Prints one line per check; exits 1 when a check failed.

import { parseArgs } from "node:util";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";

const COLD_EMAIL_VERSION = "6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11";
const { values: opt } = parseArgs({ options: { url: { type: "string" } } });
if (!opt.url) {
  console.error("usage: confirm-client.mjs --url URL");
  process.exit(2);
}

let failed = 0;
async function check(accept) {
  const name = `confirm-client[http] ${accept ? "accepts" : "declines"} the run above --confirm-above`;
  const asked = [];
  const client = new Client({ name: "bpmcp-e2e-user", version: "1.0.0" }, { capabilities: { elicitation: {} } });
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    asked.push(req.params.message);
    return accept ? { action: "accept", content: { confirm: true } } : { action: "decline" };
  });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(opt.url)));
    const res = await client.callTool({ name: "run_prompt", arguments: {
      prompt_version_id: COLD_EMAIL_VERSION,
      inputs: { textInputs: { company_name: "Acme", recipient_role: "CTO", value_proposition: "We halve your cloud bill." } },
    } }, undefined, { timeout: 60_000 });
    const text = (res.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join(" ");
    if (asked.length !== 1 || !asked[0].includes("Cold Email Opener")) throw new Error(`asked ${JSON.stringify(asked)}`);
    if (accept && (res.isError || !text.includes("succeeded"))) throw new Error(`accepted, but: ${text}`);
    if (!accept && (!res.isError || !text.includes("The user declined the run; nothing was spent"))) throw new Error(`declined, but: ${text}`);
    console.log(`  ok   ${name} — ${accept ? text.slice(0, 60) : "refused, nothing spent"}`);
  } catch (err) {
    failed++;
    console.log(`  FAIL ${name} — ${err.message}`);
  } finally {
    await client.close().catch(() => {});
  }
}

await check(true);
await check(false);
process.exit(failed ? 1 : 0);

// Loads bpmcp's tools through an agent framework's MCP adapter, LangChain's
// @langchain/mcp-adapters (as LangChain.js and LangGraph agents do), and
// calls two of them in sandbox mode: harness authors can plug the server
// in this way.
//
//   node framework-check.mjs --bin /path/to/bpmcp
import { MultiServerMCPClient } from "@langchain/mcp-adapters";

const bin = process.argv[process.argv.indexOf("--bin") + 1];
if (!bin || bin === "--bin") {
  console.error("usage: node framework-check.mjs --bin /path/to/bpmcp");
  process.exit(2);
}
const client = new MultiServerMCPClient({
  mcpServers: { betterprompt: { transport: "stdio", command: bin, args: ["--sandbox", "--sandbox-time-scale", "0.05"] } },
  useStandardContentBlocks: true,
});
let failed = 0;
const check = (ok, what, detail = "") => {
  console.log(`  ${ok ? "ok  " : "FAIL"} ${what}${detail ? " — " + detail : ""}`);
  if (!ok) failed++;
};
try {
  const tools = await client.getTools();
  const names = tools.map((t) => t.name);
  const search = tools.find((t) => t.name.endsWith("search_prompts"));
  const run = tools.find((t) => t.name.endsWith("run_prompt"));
  check(search && run, "getTools(): LangChain tools for every bpmcp tool", names.join(", "));
  const found = JSON.stringify(await search.invoke({ query: "email" }));
  check(found.includes("Cold Email Opener"), "search_prompts.invoke({query})", found.slice(0, 80));
  const ran = JSON.stringify(await run.invoke({
    prompt_id: "2d4e6f80-1a3b-4c5d-8e9f-0a1b2c3d4e01", wait_seconds: 30,
    inputs: { textInputs: { company_name: "Acme", recipient_role: "CTO", value_proposition: "We halve your cloud bill." } },
  }));
  check(ran.includes("succeeded"), "run_prompt.invoke(...) in the sandbox", ran.slice(0, 80));
} catch (err) {
  check(false, "the adapter", String(err?.stack ?? err));
} finally {
  await client.close();
}
console.log(`framework-check: ${failed ? "FAILED" : "passed"}`);
process.exit(failed ? 1 : 0);

#!/usr/bin/env node
// End-to-end checks of bpmcp with the official TypeScript SDK client
// (@modelcontextprotocol/sdk 1.32.2), the client library most hosts are built on.
//
//   node sdk-client.mjs --transport stdio --bin ./bpmcp [--results out.json] [--server-log stderr.log]
//   node sdk-client.mjs --transport http --url http://127.0.0.1:PORT/mcp \
//        [--allowed-origin http://localhost:6274] [--results out.json]
//
// The stdio mode starts `<bin> --sandbox --sandbox-time-scale 0.2 --log-format json` itself;
// the http mode expects a server already started with --sandbox (run-node-clients.sh does it).
// Every check prints one line; the process exits 1 when any check failed, 2 on a usage error.

import { parseArgs } from "node:util";
import { writeFileSync, createWriteStream } from "node:fs";
import http from "node:http";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import Ajv2020Module from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";

const Ajv2020 = Ajv2020Module.default ?? Ajv2020Module;
const addFormats = addFormatsModule.default ?? addFormatsModule;

// Sandbox fixtures (testdata/catalogue/INDEX.md).
const COLD_EMAIL_PROMPT = "2d4e6f80-1a3b-4c5d-8e9f-0a1b2c3d4e01";
const COLD_EMAIL_VERSION = "6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11";
const SLOW_VERSION = "5326247b-9496-4564-8298-35f19a183ef2"; // Deep Research Brief, 30 s nominal
const FAILING_PROMPT = "415be72d-145a-4112-9883-dffddb2efd29";
const IMAGE_VERSION = "3b4c5d6e-7f80-4192-a3b4-c5d6e7f8a999";
const EXPECTED_TOOLS = ["search_prompts", "get_prompt", "run_prompt", "get_run", "get_credits", "list_models",
  "betterwaifu_generate", "betterwaifu_get_generation", "betterwaifu_list_models", "betterwaifu_get_account"];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const { values: opt } = parseArgs({
  options: {
    transport: { type: "string" },
    bin: { type: "string" },
    url: { type: "string" },
    "allowed-origin": { type: "string" },
    "time-scale": { type: "string", default: "0.2" },
    results: { type: "string" },
    "server-log": { type: "string" },
  },
});
if (!["stdio", "http"].includes(opt.transport) || (opt.transport === "stdio" ? !opt.bin : !opt.url)) {
  console.error("usage: sdk-client.mjs --transport stdio --bin PATH | --transport http --url URL [--allowed-origin O]");
  process.exit(2);
}
const label = `sdk-client[${opt.transport}]`;

// ---- check bookkeeping -------------------------------------------------------
const checks = [];
function record(name, ok, detail, ms) {
  checks.push({ name, ok, detail, ms });
  const d = detail ? ` — ${String(detail).replace(/\s+/g, " ").slice(0, 400)}` : "";
  console.log(`  ${ok ? "ok  " : "FAIL"} ${label} ${name} (${ms} ms)${d}`);
}
async function check(name, fn) {
  const t0 = Date.now();
  try {
    const detail = await fn();
    record(name, true, detail, Date.now() - t0);
    return true;
  } catch (err) {
    record(name, false, err?.message ?? String(err), Date.now() - t0);
    return false;
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}
function finish() {
  const failed = checks.filter((c) => !c.ok);
  console.log(`${label}: ${checks.length - failed.length} passed, ${failed.length} failed`);
  if (opt.results) writeFileSync(opt.results, JSON.stringify({ transport: opt.transport, checks }, null, 2));
  return failed.length === 0 ? 0 : 1;
}

// ---- result helpers ----------------------------------------------------------
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
const outputValidators = new Map(); // tool name -> compiled outputSchema

const textOf = (res) =>
  (res.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join("\n");

function ajvErrors(validate) {
  return (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message}`).join("; ");
}

// A successful result: not isError, non-empty content, structuredContent that
// conforms to the tool's outputSchema (checked here with ajv, independently of
// the SDK's own check).
function verifyOk(tool, res) {
  assert(res.isError !== true, `${tool} returned isError: ${textOf(res).slice(0, 300)}`);
  verifyContent(tool, res);
  assert(res.structuredContent !== undefined && res.structuredContent !== null,
    `${tool}: structuredContent is missing although the tool declares an outputSchema`);
  verifyStructured(tool, res.structuredContent);
  return res.structuredContent;
}
// A tool error: isError true, a text that mentions `mention`, and any
// structuredContent still conforming to the outputSchema.
function verifyToolError(tool, res, mention) {
  assert(res.isError === true, `${tool}: expected isError true, got ${JSON.stringify(res).slice(0, 300)}`);
  verifyContent(tool, res);
  const text = textOf(res);
  assert(mention.test(text), `${tool}: error text does not mention ${mention}: ${text.slice(0, 300)}`);
  if (res.structuredContent != null) verifyStructured(tool, res.structuredContent);
  return text;
}
function verifyContent(tool, res) {
  assert(Array.isArray(res.content) && res.content.length > 0, `${tool}: content is empty`);
  for (const [i, c] of res.content.entries()) {
    assert(typeof c.type === "string", `${tool}: content[${i}] has no type`);
    if (c.type === "text") assert(typeof c.text === "string" && c.text.trim() !== "", `${tool}: content[${i}] is an empty text`);
  }
}
function verifyStructured(tool, value) {
  const validate = outputValidators.get(tool);
  assert(validate, `${tool}: no compiled outputSchema (tools/list check failed?)`);
  assert(validate(value), `${tool}: structuredContent does not match outputSchema: ${ajvErrors(validate)}`);
}

// tools/call through client.request: the raw result, without the SDK's own
// outputSchema enforcement, so the checks above report what is wrong.
function callRaw(client, name, args, options) {
  return client.request({ method: "tools/call", params: { name, arguments: args } }, CallToolResultSchema, options);
}

// ---- HTTP probes (node:http, so Host and Origin can be set freely) ------------
function probe(url, { method = "POST", headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, timeout: 10_000 }, (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (data += d));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    if (body) req.write(body);
    req.end();
  });
}
const INIT_BODY = JSON.stringify({
  jsonrpc: "2.0", id: 1, method: "initialize",
  params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "e2e-probe", version: "0" } },
});
const MCP_HEADERS = { "Content-Type": "application/json", Accept: "application/json, text/event-stream" };

// ---- the run -------------------------------------------------------------------
async function main() {
  const transportErrors = [];
  let transport;
  if (opt.transport === "stdio") {
    transport = new StdioClientTransport({
      command: opt.bin,
      args: ["--sandbox", "--sandbox-time-scale", opt["time-scale"], "--log-format", "json"],
      env: { ...process.env },
      stderr: "pipe",
    });
    const log = opt["server-log"] ? createWriteStream(opt["server-log"]) : null;
    transport.stderr?.on("data", (d) => log?.write(d));
  } else {
    transport = new StreamableHTTPClientTransport(new URL(opt.url));
  }
  const client = new Client({ name: "bpmcp-e2e-sdk", version: "1.0.0" });
  client.onerror = (err) => transportErrors.push(err?.message ?? String(err));

  const connected = await check("initialize", async () => {
    await client.connect(transport);
    const info = client.getServerVersion();
    assert(info?.name, "initialize result has no serverInfo.name");
    return `server ${info.name} ${info.version}` +
      (transport.protocolVersion ? `, protocol ${transport.protocolVersion}` : "") +
      (transport.sessionId ? `, session id issued` : "");
  });
  if (!connected) return finish();

  await check("capabilities", async () => {
    const caps = client.getServerCapabilities() ?? {};
    assert(caps.tools, `server does not declare the tools capability: ${JSON.stringify(caps)}`);
    return `declared: ${Object.keys(caps).sort().join(", ")}`;
  });

  let tools = [];
  await check("tools/list: every tool, each with an outputSchema that compiles (JSON Schema 2020-12)", async () => {
    tools = (await client.listTools()).tools;
    const names = tools.map((t) => t.name);
    for (const want of EXPECTED_TOOLS) assert(names.includes(want), `tool ${want} is missing from ${names.join(", ")}`);
    for (const t of tools) {
      assert(t.description, `${t.name}: no description`);
      assert(t.inputSchema?.type === "object", `${t.name}: inputSchema.type is not "object"`);
      ajv.compile(t.inputSchema);
      assert(t.outputSchema && typeof t.outputSchema === "object", `${t.name}: no outputSchema`);
      outputValidators.set(t.name, ajv.compile(t.outputSchema));
    }
    return names.join(", ");
  });

  // --- every tool, with valid arguments ---
  await check("search_prompts", async () => {
    const sc = verifyOk("search_prompts", await callRaw(client, "search_prompts", { query: "cold email" }));
    assert(sc.prompts.some((p) => p.prompt_id === COLD_EMAIL_PROMPT), "the cold email opener is not among the results");
    return `${sc.prompts.length} prompt(s)`;
  });

  await check("search_prompts with modality video (through the skills route; rows without a price)", async () => {
    const sc = verifyOk("search_prompts", await callRaw(client, "search_prompts", { query: "clip", modality: "video" }));
    assert(sc.prompts.length > 0, "no video prompt found for 'clip'");
    assert(sc.prompts.every((p) => p.modality === "video" && p.estimated_credits === undefined), "a row is not a video without a price");
    return `${sc.prompts.length} video prompt(s)`;
  });

  await check("get_prompt shows price, type and run options before spending (a video prompt by its link)", async () => {
    const text = verifyOk("get_prompt", await callRaw(client, "get_prompt", { prompt_id: COLD_EMAIL_PROMPT }));
    assert(text.modality === "text" && text.estimated_credits === 40, `cold email: ${text.modality}, ${text.estimated_credits}`);
    assert(text.run_options_schema?.type === "object", "no run_options_schema");
    const video = verifyOk("get_prompt", await callRaw(client, "get_prompt", { prompt_id: "https://betterprompt.me/prompts/doorbell-camera-hello" }));
    assert(video.modality === "video" && video.estimated_credits === 400, `doorbell clip: ${video.modality}, ${video.estimated_credits}`);
    assert(video.run_options_schema?.properties?.seconds, "video run options lack seconds");
    return "text ~40 credits, video ~400 credits";
  });

  await check("run_prompt refuses a run option no model of the prompt's type takes, naming it", async () => {
    const res = await callRaw(client, "run_prompt", { prompt_id: COLD_EMAIL_PROMPT,
      inputs: { textInputs: { company_name: "Acme", recipient_role: "CTO", value_proposition: "We halve your cloud bill." } },
      run_options: { aspectRatio: "3:4" } });
    verifyToolError("run_prompt", res, /run_options\.aspectRatio/);
    return "refused before spending";
  });

  await check("get_prompt by slug and by page link", async () => {
    for (const ref of ["cold-email-opener", `https://betterprompt.me/prompts/cold-email-opener-${COLD_EMAIL_PROMPT}`]) {
      const sc = verifyOk("get_prompt", await callRaw(client, "get_prompt", { prompt_id: ref }));
      assert(sc.prompt_version_id === COLD_EMAIL_VERSION, `${ref}: prompt_version_id ${sc.prompt_version_id}`);
    }
    return "both reach the cold email opener";
  });

  let coldInputSchema;
  await check("get_prompt (input_schema compiles; example_inputs and the inputs used below conform to it)", async () => {
    const sc = verifyOk("get_prompt", await callRaw(client, "get_prompt", { prompt_id: COLD_EMAIL_PROMPT }));
    assert(sc.prompt_id === COLD_EMAIL_PROMPT, `prompt_id ${sc.prompt_id}`);
    assert(sc.prompt_version_id === COLD_EMAIL_VERSION, `prompt_version_id ${sc.prompt_version_id}, want ${COLD_EMAIL_VERSION}`);
    const validate = ajv.compile(sc.input_schema);
    assert(validate(sc.example_inputs), `example_inputs do not conform to input_schema: ${ajvErrors(validate)}`);
    coldInputSchema = validate;
    return `"${sc.title}", ${Object.keys(sc.input_schema.properties ?? {}).join("+")}`;
  });

  await check("get_credits", async () => {
    const sc = verifyOk("get_credits", await callRaw(client, "get_credits", {}));
    assert(Number.isInteger(sc.credits) && sc.credits >= 0, `credits ${sc.credits}`);
    return `${sc.credits} credits`;
  });

  const coldInputs = { textInputs: { company_name: "Acme", recipient_role: "CTO", value_proposition: "Builds twice as fast." } };
  let runId;
  await check("run_prompt (text prompt, waits for the result)", async () => {
    if (coldInputSchema) assert(coldInputSchema(coldInputs), `test inputs do not conform to input_schema: ${ajvErrors(coldInputSchema)}`);
    const sc = verifyOk("run_prompt", await callRaw(client, "run_prompt",
      { prompt_version_id: COLD_EMAIL_VERSION, inputs: coldInputs, wait_seconds: 30 }, { timeout: 60_000 }));
    assert(UUID.test(sc.run_id), `run_id ${sc.run_id}`);
    assert(sc.status === "succeeded", `status ${sc.status}: ${sc.message ?? ""}`);
    assert(sc.outputs.some((o) => o.type === "text" && o.data.trim() !== ""), "no non-empty text output");
    assert(sc.inputs_sent?.textInputs?.company_name === "Acme", `inputs_sent ${JSON.stringify(sc.inputs_sent)}`);
    runId = sc.run_id;
    return `run ${sc.run_id} ${sc.status}, ${sc.credits} credits`;
  });

  await check("get_run", async () => {
    assert(runId, "no run_id from run_prompt");
    const sc = verifyOk("get_run", await callRaw(client, "get_run", { run_id: runId, wait_seconds: 0 }));
    assert(sc.run_id === runId, `run_id ${sc.run_id}, want ${runId}`);
    assert(sc.status === "succeeded", `status ${sc.status}`);
    return `status ${sc.status}`;
  });

  await check("run_prompt (image prompt: image outputs, resource_link content, URLs fetchable)", async () => {
    const res = await callRaw(client, "run_prompt", {
      prompt_version_id: IMAGE_VERSION,
      inputs: { textInputs: { app_concept: "a tea timer", style: "clay" } },
      wait_seconds: 60,
    }, { timeout: 90_000 });
    const sc = verifyOk("run_prompt", res);
    assert(sc.status === "succeeded", `status ${sc.status}: ${sc.message ?? ""}`);
    const images = sc.outputs.filter((o) => o.type === "image");
    assert(images.length > 0, `no image outputs: ${JSON.stringify(sc.outputs).slice(0, 200)}`);
    const links = res.content.filter((c) => c.type === "resource_link");
    assert(links.length > 0, "no resource_link content");
    for (const l of links) assert(/^https?:\/\//.test(l.uri) && l.name, `bad resource_link ${JSON.stringify(l)}`);
    for (const img of images) assert(links.some((l) => l.uri === img.data), `image ${img.data} has no matching resource_link`);
    const r = await fetch(images[0].data);
    assert(r.ok, `GET ${images[0].data}: HTTP ${r.status}`);
    assert((r.headers.get("content-type") ?? "").startsWith("image/"), `GET image: content-type ${r.headers.get("content-type")}`);
    return `${images.length} image(s), ${links.length} resource_link(s)`;
  });

  // --- failures an agent must be able to read ---
  await check("run_prompt (failing prompt) -> isError, text names the failure", async () => {
    const res = await callRaw(client, "run_prompt",
      { prompt_id: FAILING_PROMPT, inputs: { textInputs: { ticker: "ACME" } }, wait_seconds: 30 }, { timeout: 60_000 });
    verifyToolError("run_prompt", res, /fail|error/i);
    if (res.structuredContent) assert(res.structuredContent.status === "failed", `structuredContent.status ${res.structuredContent.status}`);
    return textOf(res).split("\n")[0];
  });

  await check("run_prompt (required input missing) -> isError naming the field", async () => {
    const res = await callRaw(client, "run_prompt",
      { prompt_version_id: COLD_EMAIL_VERSION, inputs: { textInputs: { company_name: "Acme", value_proposition: "x" } } });
    const text = verifyToolError("run_prompt", res, /recipient_role/);
    return text.split("\n").find((l) => l.includes("recipient_role"));
  });

  await check("run_prompt (value outside an enum) -> isError naming the field", async () => {
    const res = await callRaw(client, "run_prompt",
      { prompt_version_id: SLOW_VERSION, inputs: { textInputs: { question: "Why?", depth: "galaxy" } } });
    const text = verifyToolError("run_prompt", res, /depth/);
    return text.split("\n").find((l) => l.includes("depth"));
  });

  await check("search_prompts (unknown argument) -> isError naming it", async () => {
    const res = await callRaw(client, "search_prompts", { query: "x", bogus: 1 });
    return verifyToolError("search_prompts", res, /bogus/);
  });

  // --- the host path: Client.callTool with its own outputSchema enforcement ---
  let generationId;
  await check("BetterWaifu: list_models, get_account, generate (a real WebP image) and get_generation", async () => {
    const models = verifyOk("betterwaifu_list_models", await callRaw(client, "betterwaifu_list_models", {}));
    assert(models.count === models.models.length && models.count > 0, `models ${JSON.stringify(models)}`);
    assert(models.models.every((m) => m.nsfw === false), "an NSFW model is listed by default");
    const account = verifyOk("betterwaifu_get_account", await callRaw(client, "betterwaifu_get_account", {}));
    assert(account.subscription?.status === "active", `account ${JSON.stringify(account)}`);
    const gen = verifyOk("betterwaifu_generate", await callRaw(client, "betterwaifu_generate",
      { prompt: "1girl, solo, e2e", model_version_id: models.models[0].id, wait_seconds: 30 }, { timeout: 60_000 }));
    assert(gen.status === "succeeded" && gen.images.length === 1, `generation ${JSON.stringify(gen)}`);
    const img = await fetch(gen.images[0].url);
    const bytes = new Uint8Array(await img.arrayBuffer());
    const tag = (a, b) => String.fromCharCode(...bytes.slice(a, b));
    assert(img.ok && tag(0, 4) === "RIFF" && tag(8, 12) === "WEBP", `image ${gen.images[0].url}: not a WebP file`);
    generationId = gen.generation_id;
    const again = verifyOk("betterwaifu_get_generation", await callRaw(client, "betterwaifu_get_generation", { generation_id: generationId, wait_seconds: 0 }));
    assert(again.status === "succeeded", `get_generation ${again.status}`);
    return `generation ${generationId}, ${bytes.length}-byte WebP`;
  });

  await check("Client.callTool accepts every read tool's result (the SDK's own outputSchema check)", async () => {
    for (const [name, args] of [
      ["search_prompts", { query: "cold email" }],
      ["get_prompt", { prompt_id: COLD_EMAIL_PROMPT }],
      ["get_credits", {}],
      ["list_models", { modality: "image" }],
      ...(runId ? [["get_run", { run_id: runId, wait_seconds: 0 }]] : []),
      ["betterwaifu_list_models", { include_nsfw: true }],
      ["betterwaifu_get_account", {}],
      ...(generationId ? [["betterwaifu_get_generation", { generation_id: generationId, wait_seconds: 0 }]] : []),
    ]) {
      try {
        const res = await client.callTool({ name, arguments: args });
        assert(!res.isError, `${name}: isError`);
      } catch (err) {
        throw new Error(`${name}: ${err.message}`);
      }
    }
    return "ok";
  });

  // --- progress on a slow run: onprogress + resetTimeoutOnProgress, with a
  // per-request timeout shorter than the run, so only progress keeps it alive.
  await check("run_prompt (slow run) with onprogress: progress arrives, increases, resets the timeout", async () => {
    const progress = [];
    const t0 = Date.now();
    let res;
    try {
      res = await client.callTool(
        { name: "run_prompt", arguments: { prompt_version_id: SLOW_VERSION, inputs: { textInputs: { question: "Is tea better than coffee?", depth: "overview" } }, wait_seconds: 120 } },
        undefined,
        { onprogress: (p) => progress.push({ ...p, at: Date.now() - t0 }), timeout: 5_000, resetTimeoutOnProgress: true, maxTotalTimeout: 150_000 },
      );
    } catch (err) {
      throw new Error(`${err.message} (after ${Date.now() - t0} ms, ${progress.length} progress notification(s))`);
    }
    const sc = verifyOk("run_prompt", res);
    assert(sc.status === "succeeded", `status ${sc.status}: ${sc.message ?? ""}`);
    assert(progress.length >= 1, "no progress notification arrived");
    for (let i = 1; i < progress.length; i++) {
      assert(progress[i].progress > progress[i - 1].progress,
        `progress did not increase: ${progress[i - 1].progress} then ${progress[i].progress}`);
    }
    for (const p of progress) {
      assert(typeof p.progress === "number", `progress ${JSON.stringify(p)}`);
      if (p.total !== undefined) assert(p.progress <= p.total, `progress ${p.progress} above total ${p.total}`);
    }
    const last = progress[progress.length - 1];
    return `${progress.length} notification(s) over ${Date.now() - t0} ms, last ${last.progress}/${last.total ?? "?"} "${last.message ?? ""}"`;
  });

  // --- HTTP transport security ---
  if (opt.transport === "http") {
    const url = new URL(opt.url);
    await check("HTTP: Origin http://evil.example -> 403", async () => {
      const r = await probe(url, { headers: { ...MCP_HEADERS, Origin: "http://evil.example" }, body: INIT_BODY });
      assert(r.status === 403, `status ${r.status}, want 403 (body ${r.body.slice(0, 200)})`);
      return r.body.slice(0, 160);
    });
    await check("HTTP: no Origin -> 200 (the 403 above is not a blanket refusal)", async () => {
      const r = await probe(url, { headers: MCP_HEADERS, body: INIT_BODY });
      assert(r.status === 200, `status ${r.status} (body ${r.body.slice(0, 200)})`);
      return `status ${r.status}`;
    });
    if (opt["allowed-origin"]) {
      const origin = opt["allowed-origin"];
      await check(`HTTP: allowed Origin ${origin} -> 200, readable by the page (CORS)`, async () => {
        const r = await probe(url, { headers: { ...MCP_HEADERS, Origin: origin }, body: INIT_BODY });
        assert(r.status === 200, `status ${r.status} (body ${r.body.slice(0, 200)})`);
        assert(r.headers["access-control-allow-origin"] === origin, `Access-Control-Allow-Origin ${r.headers["access-control-allow-origin"]}`);
        const exposed = (r.headers["access-control-expose-headers"] ?? "").toLowerCase();
        assert(exposed.includes("mcp-session-id"), `Access-Control-Expose-Headers ${exposed}`);
        return `status ${r.status}, exposes ${exposed}`;
      });
      // What a browser sends before the Inspector's page may POST to the server.
      await check(`HTTP: CORS preflight from ${origin} -> 204 allowing the MCP headers`, async () => {
        const r = await probe(url, { method: "OPTIONS", headers: { Origin: origin, "Access-Control-Request-Method": "POST",
          "Access-Control-Request-Headers": "content-type,mcp-session-id,mcp-protocol-version,authorization" } });
        assert(r.status === 204 || r.status === 200, `status ${r.status} (body ${r.body.slice(0, 200)})`);
        assert(r.headers["access-control-allow-origin"] === origin, `Access-Control-Allow-Origin ${r.headers["access-control-allow-origin"]}`);
        const allowed = (r.headers["access-control-allow-headers"] ?? "").toLowerCase();
        for (const h of ["content-type", "mcp-session-id", "mcp-protocol-version", "authorization"]) {
          assert(allowed.includes(h), `Access-Control-Allow-Headers lacks ${h}: ${allowed}`);
        }
        assert((r.headers["access-control-allow-methods"] ?? "").includes("POST"), `methods ${r.headers["access-control-allow-methods"]}`);
        return `status ${r.status}`;
      });
    }
    await check("HTTP: Host evil.example -> 403 (DNS rebinding)", async () => {
      const r = await probe(url, { headers: { ...MCP_HEADERS, Host: "evil.example" }, body: INIT_BODY });
      assert(r.status === 403, `status ${r.status}, want 403`);
      return `status ${r.status}`;
    });
    await check("HTTP: GET /healthz -> 200", async () => {
      const r = await probe(new URL("/healthz", url), { method: "GET" });
      assert(r.status === 200, `status ${r.status}`);
      return r.body.slice(0, 80);
    });
  }

  await check("no transport or protocol errors reported by the client", async () => {
    assert(transportErrors.length === 0, transportErrors.join(" | "));
    return "none";
  });

  await client.close().catch(() => {});
  return finish();
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`${label}: crashed: ${err?.stack ?? err}`);
    finish();
    process.exit(1);
  },
);

// The run viewer (an MCP App) in a real browser: headless Debian Chromium
// driven by playwright-core. A minimal host page loads the viewer's HTML,
// read from the server with the official TypeScript SDK, into a sandboxed
// iframe under the content security policy the resource declares, speaks
// the MCP Apps messages to it, and proxies its tools/call requests to the
// server. It shows real results of the sandbox (a text run, an image run, a
// video run, a run still going, which the viewer refreshes itself) and one
// made up to carry <script> in an output; it checks what is on screen and
// saves a screenshot of each under e2e/results/. It also checks, with the
// same client, that pin_prompt's notifications/tools/list_changed arrives.
//
// Usage: node viewer-test.mjs --bin path/to/bpmcp [--chromium /usr/bin/chromium]
// Exit status: 0 when every check passed, 1 otherwise.
import { parseArgs } from "node:util";
import http from "node:http";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const { values: opts } = parseArgs({
  options: {
    bin: { type: "string" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
    results: { type: "string", default: new URL("./results/", import.meta.url).pathname },
  },
});
if (!opts.bin) {
  console.error("usage: node viewer-test.mjs --bin path/to/bpmcp");
  process.exit(2);
}
mkdirSync(opts.results, { recursive: true });

const VIEWER = "ui://bpmcp/run-viewer";
const COLD_EMAIL_VERSION = "6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11";
const IMAGE_VERSION = "3b4c5d6e-7f80-4192-a3b4-c5d6e7f8a999";
const VIDEO_PROMPT = "2d4e6f80-1a3b-4c5d-8e9f-0a1b2c3d4e11";
const RESEARCH_PROMPT = "deep-research-brief";

const failures = [];
function check(name, ok, detail) {
  console.log(`  ${ok ? "ok  " : "FAIL"} viewer: ${name}${detail ? ` — ${detail}` : ""}`);
  if (!ok) failures.push(name);
}

// The host page: it loads the viewer on demand and answers it.
const HOST = `<!doctype html><html><head><meta charset="utf-8"><title>test host</title></head>
<body style="margin:0;background:#fff"><script>
window.hostLog = [];
window.startViewer = function (html, domains, input, result) {
  var frame = document.createElement("iframe");
  frame.setAttribute("sandbox", "allow-scripts");
  frame.style.cssText = "width:760px;height:420px;border:1px solid #ddd";
  var src = domains.join(" ");
  var csp = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src " + src +
    " data:; media-src " + src;
  frame.srcdoc = html.replace("<head>", '<head><meta http-equiv="Content-Security-Policy" content="' + csp + '">');
  function post(msg) { msg.jsonrpc = "2.0"; frame.contentWindow.postMessage(msg, "*"); }
  window.addEventListener("message", function (ev) {
    if (ev.source !== frame.contentWindow) return;
    var m = ev.data;
    window.hostLog.push(m.method || "response");
    if (m.method === "ui/initialize") {
      post({ id: m.id, result: { protocolVersion: m.params.protocolVersion, hostInfo: { name: "test-host", version: "0" },
        hostCapabilities: { serverTools: {} }, hostContext: { theme: "light", displayMode: "inline" } } });
    } else if (m.method === "ui/notifications/initialized") {
      post({ method: "ui/notifications/tool-input", params: { arguments: input } });
      post({ method: "ui/notifications/tool-result", params: result });
    } else if (m.method === "tools/call") {
      window.callTool(m.params.name, m.params.arguments).then(function (r) { post({ id: m.id, result: r }); },
        function (e) { post({ id: m.id, error: { code: -32603, message: String(e) } }); });
    } else if (m.method === "ui/notifications/size-changed" && m.params.height) {
      frame.style.height = Math.min(m.params.height + 4, 1600) + "px";
    }
  });
  document.body.appendChild(frame);
};
</script></body></html>`;

async function main() {
  const client = new Client({ name: "bpmcp-viewer-test", version: "0" });
  await client.connect(new StdioClientTransport({
    command: opts.bin,
    args: ["--sandbox", "--sandbox-time-scale", "0.05", "--allow-pinning"],
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" },
    stderr: "ignore",
  }));
  const tools = (await client.listTools()).tools;
  for (const name of ["run_prompt", "get_run", "betterwaifu_generate", "betterwaifu_get_generation"]) {
    const t = tools.find((x) => x.name === name);
    check(`${name} declares _meta.ui.resourceUri`, t?._meta?.ui?.resourceUri === VIEWER, JSON.stringify(t?._meta));
  }
  const listed = (await client.listResources()).resources.find((r) => r.uri === VIEWER);
  check("the viewer is listed as a resource", listed?.mimeType === "text/html;profile=mcp-app", JSON.stringify(listed));
  const read = await client.readResource({ uri: VIEWER });
  const html = read.contents[0].text;
  const domains = read.contents[0]._meta?.ui?.csp?.resourceDomains ?? [];
  check("the viewer resource is HTML with a CSP", html.includes("ui/initialize") && domains.length > 0, domains.join(" "));

  const call = (name, args) => client.callTool({ name, arguments: args }, undefined, { timeout: 120_000 });

  // pin_prompt (with --allow-pinning): the TypeScript SDK client hears
  // notifications/tools/list_changed and finds the new tool.
  const changed = new Promise((resolve) => client.setNotificationHandler(ToolListChangedNotificationSchema, () => resolve(true)));
  const pinned = await call("pin_prompt", { prompt_id: "cold-email-opener", tool_name: "cold_email" });
  const heard = await Promise.race([changed, new Promise((r) => setTimeout(() => r(false), 10_000))]);
  const relisted = (await client.listTools()).tools.some((t) => t.name === "cold_email");
  check("pin_prompt: list_changed heard and the new tool listed", !pinned.isError && heard && relisted,
    `isError=${pinned.isError} heard=${heard} listed=${relisted}`);
  const cases = [
    { name: "text", args: { prompt_version_id: COLD_EMAIL_VERSION, wait_seconds: 60,
      inputs: { textInputs: { company_name: "Acme", recipient_role: "CTO", value_proposition: "We halve your cloud bill." } } } },
    { name: "image", args: { prompt_version_id: IMAGE_VERSION, wait_seconds: 60,
      inputs: { textInputs: { app_concept: "a tea timer", style: "clay" } } } },
    { name: "video", args: { prompt_id: VIDEO_PROMPT, wait_seconds: 60, inputs: { textInputs: {} } } },
    { name: "running", args: { prompt_id: RESEARCH_PROMPT, wait_seconds: 0,
      inputs: { textInputs: { question: "Is fusion near?", depth: "overview" } } } },
  ];
  for (const c of cases) {
    c.result = await call("run_prompt", c.args);
    if (c.result.isError) throw new Error(`run_prompt (${c.name}): ${JSON.stringify(c.result.content)}`);
  }
  cases.push({ name: "injection", args: {}, result: {
    content: [{ type: "text", text: "made up" }],
    structuredContent: { run_id: "00000000-0000-4000-8000-000000000000", prompt_version_id: COLD_EMAIL_VERSION,
      status: "succeeded", confirmed: true, credits: 1, outputs: [
        { type: "text", data: "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\"> plain text" },
        { type: "image", data: "javascript:window.__pwned = 3" },
      ] },
  } });

  const server = http.createServer((req, res) => { res.writeHead(200, { "content-type": "text/html" }); res.end(HOST); });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const hostURL = `http://127.0.0.1:${server.address().port}/`;
  const browser = await chromium.launch({ executablePath: opts.chromium, args: ["--no-sandbox"] });
  try {
    for (const c of cases) {
      const page = await browser.newPage({ viewport: { width: 800, height: 900 } });
      const errors = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.exposeFunction("callTool", (name, args) => call(name, args));
      await page.goto(hostURL);
      await page.evaluate(([h, d, i, r]) => window.startViewer(h, d, i, r), [html, domains, c.args, c.result]);
      const frame = page.frameLocator("iframe");
      const sc = c.result.structuredContent;
      if (c.name === "text") {
        const text = sc.outputs.find((o) => o.type === "text").data;
        await frame.locator("pre.text").first().waitFor();
        const shown = await frame.locator("pre.text").first().textContent();
        check("text run: the output text is shown", shown === text, shown?.slice(0, 60));
        check("text run: credits are shown", (await frame.locator("footer").textContent()).includes(`${sc.credits} credits`));
      } else if (c.name === "image") {
        const urls = sc.outputs.filter((o) => o.type === "image").map((o) => o.data);
        await frame.locator("#images img").first().waitFor();
        await page.waitForTimeout(500);
        const imgs = await frame.locator("#images img").evaluateAll((els) =>
          els.map((e) => ({ src: e.src, loaded: e.complete && e.naturalWidth > 0 })));
        check("image run: one image element per output, with its URL", imgs.length === urls.length &&
          imgs.every((im, i) => im.src === urls[i]), JSON.stringify(imgs));
        check("image run: the images loaded under the declared CSP", imgs.length > 0 && imgs.every((im) => im.loaded));
        check("image run: the expiry is shown", (await frame.locator("footer").textContent()).includes("expire"));
      } else if (c.name === "video") {
        const url = sc.outputs.find((o) => o.type === "video")?.data;
        await frame.locator("video").first().waitFor();
        const src = await frame.locator("video").first().getAttribute("src");
        check("video run: a video element with the output's URL", !!url && src === url, src);
      } else if (c.name === "running") {
        check("running run: the call answered before the run ended", ["queued", "running"].includes(sc.status), sc.status);
        await frame.locator("#status", { hasText: "running" }).or(frame.locator("#status", { hasText: "queued" })).first().waitFor();
        await page.screenshot({ path: `${opts.results}viewer-running-before.png` });
        // The viewer calls get_run through the host every 5 s until the run ends.
        await frame.locator("#status", { hasText: "succeeded" }).waitFor({ timeout: 60_000 });
        const log = await page.evaluate(() => window.hostLog);
        check("running run: the viewer refreshed it through tools/call until it succeeded",
          log.includes("tools/call") && (await frame.locator("pre.text").count()) > 0, log.join(","));
      } else if (c.name === "injection") {
        await frame.locator("pre.text").first().waitFor();
        await page.waitForTimeout(300);
        const shown = await frame.locator("pre.text").first().textContent();
        const pwned = await frame.locator("body").evaluate(() => window.__pwned);
        check("injection: <script> in an output is shown as text, never run", shown.includes("<script>") && pwned === undefined,
          `__pwned=${pwned}`);
        check("injection: a javascript: URL makes no image", (await frame.locator("#images img").count()) === 0);
      }
      check(`${c.name}: no script error in the page`, errors.length === 0, errors.join("; "));
      await page.screenshot({ path: `${opts.results}viewer-${c.name}.png` });
      await page.close();
    }
  } finally {
    await browser.close();
    server.close();
    await client.close();
  }
}

main().then(() => {
  console.log(`viewer: ${failures.length ? `${failures.length} check(s) failed` : "every check passed"}; screenshots in ${opts.results}`);
  process.exit(failures.length ? 1 : 0);
}, (err) => {
  console.error("viewer:", err);
  process.exit(1);
});

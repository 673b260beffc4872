// A minimal MCP Apps host for the tests: the official host bridge (AppBridge from
// @modelcontextprotocol/ext-apps) in a real headless Chromium, wired to a running clipia-mcp.
//
//   node host.mjs <config.json>
//
// config: { nodeDir, chromium, mcpUrl, tool, arguments, submit?: {model, input}, outDir, timeoutMs }
// Prints one JSON line on stdout: what the host saw (tool metadata, the card's states, the media
// element and a screenshot path). The Python test asserts on it.

import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const require = createRequire(join(config.nodeDir, "package.json"));
const load = async (spec) => import(pathToFileURL(require.resolve(spec)).href);

const { Client } = await load("@modelcontextprotocol/sdk/client/index.js");
const { StreamableHTTPClientTransport } = await load("@modelcontextprotocol/sdk/client/streamableHttp.js");
const cjs = async (spec) => { const m = await load(spec); return m.default ?? m; };
const esbuild = await cjs("esbuild");
const { chromium } = await cjs("playwright-core");

const deadline = Date.now() + (config.timeoutMs ?? 60000);
const left = () => Math.max(1, deadline - Date.now());
const log = (...a) => process.stderr.write(a.join(" ") + "\n");

// 1. The MCP side: a client that declares the Apps extension.
const client = new Client(
  { name: "clipia-apps-test-host", version: "1.0.0" },
  { capabilities: { extensions: { "io.modelcontextprotocol/ui": { mimeTypes: ["text/html;profile=mcp-app"] } } } },
);
await client.connect(new StreamableHTTPClientTransport(new URL(config.mcpUrl)));
const tools = (await client.listTools()).tools;
const uiOf = (name) => tools.find((t) => t.name === name)?._meta?.ui ?? null;
const toolUi = Object.fromEntries(tools.filter((t) => t._meta?.ui).map((t) => [t.name, t._meta.ui]));
const uri = uiOf(config.tool)?.resourceUri;
if (!uri) throw new Error(`${config.tool} has no _meta.ui.resourceUri`);
const read = await client.readResource({ uri });
const resource = read.contents[0];
const csp = resource._meta?.ui?.csp ?? {};

let args = config.arguments ?? {};
if (config.submit) {
  const sub = await client.callTool({ name: "submit_generation", arguments: config.submit });
  if (sub.isError) throw new Error("submit failed: " + JSON.stringify(sub.content));
  args = { ...args, request_id: sub.structuredContent.request_id };
}
const initial = await client.callTool({ name: config.tool, arguments: args }, undefined, { timeout: left() });

// 2. The page: the host bridge bundled for the browser, the card in a sandboxed iframe, with the
//    CSP a host derives from the resource's _meta.ui.csp (so undeclared media hosts would fail).
const bundle = await esbuild.build({
  stdin: {
    contents: 'import { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";' +
      "window.ExtApps = { AppBridge, PostMessageTransport };",
    resolveDir: config.nodeDir,
  },
  nodePaths: [join(config.nodeDir, "node_modules")],
  bundle: true, format: "iife", platform: "browser", write: false, logLevel: "silent",
});
const domains = (csp.resourceDomains ?? []).join(" ");
const policy = `default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; ` +
  `img-src ${domains} data: blob:; media-src ${domains} data: blob:; connect-src ${(csp.connectDomains ?? []).join(" ") || "'none'"}`;
const cardHtml = resource.text.replace("<head>", `<head><meta http-equiv="Content-Security-Policy" content="${policy}">`);

const browser = await chromium.launch({
  executablePath: config.chromium,
  args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-extensions", "--no-first-run", "--mute-audio",
         "--autoplay-policy=no-user-gesture-required"],
});
const out = { toolUi, resourceMime: resource.mimeType, csp, initial: initial.structuredContent?.status,
              refreshCalls: 0, states: [], consoleErrors: [], cspViolations: [] };
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 900 } });
  page.on("console", (m) => { if (m.type() === "error") out.consoleErrors.push(m.text()); });
  await page.exposeFunction("hostCallTool", async (params) => {
    if (params.name === "card_refresh") out.refreshCalls += 1;
    if (uiOf(params.name)?.visibility && !uiOf(params.name).visibility.includes("app")) {
      throw new Error(`${params.name} is not visible to apps`);
    }
    return client.callTool(params, undefined, { timeout: left() });
  });
  await page.setContent("<!doctype html><html><body style='margin:0'><div id='host'></div></body></html>");
  await page.addScriptTag({ content: bundle.outputFiles[0].text });
  await page.evaluate(async ({ html, toolArgs, result }) => {
    const { AppBridge, PostMessageTransport } = window.ExtApps;
    const iframe = document.createElement("iframe");
    iframe.id = "card";
    iframe.setAttribute("sandbox", "allow-scripts");
    iframe.style.cssText = "width:820px;height:820px;border:0";
    document.getElementById("host").append(iframe);
    const bridge = new AppBridge(null, { name: "clipia-apps-test-host", version: "1.0.0" },
                                 { serverTools: {}, openLinks: {}, logging: {} },
                                 { hostContext: { theme: "light", displayMode: "inline" } });
    bridge.oncalltool = (params) => window.hostCallTool(params);
    bridge.onopenlink = async () => ({});
    bridge.onsizechange = ({ height }) => { if (height) iframe.style.height = `${Math.min(height, 2000)}px`; };
    bridge.oninitialized = () => {
      window.cardInitialized = true;
      bridge.sendToolInput({ arguments: toolArgs });
      bridge.sendToolResult(result);
    };
    await bridge.connect(new PostMessageTransport(iframe.contentWindow, iframe.contentWindow));
    iframe.srcdoc = html;
    window.bridge = bridge;
  }, { html: cardHtml, toolArgs: args, result: initial });

  const card = page.frameLocator("#card").locator("#card");
  // 3. Watch the card until it shows the finished media (no fixed sleeps: poll its own state).
  let last = "";
  while (true) {
    const state = await card.evaluate((el) => ({
      state: el.dataset.state, status: el.querySelector("#status").dataset.status,
      progress: el.dataset.progress, line: el.querySelector("#line").textContent,
      cost: el.querySelector("#cost").textContent, seen: el.dataset.seen,
    }), null, { timeout: left() });
    const key = JSON.stringify(state);
    if (key !== last) { out.states.push(state); last = key; }
    if (state.state === "done" || state.state === "error") break;
    if (Date.now() > deadline) throw new Error("the card never finished: " + key);
    await page.waitForTimeout(100);
  }
  const kind = config.mediaKind ?? "image";
  const media = card.locator(`.media-${kind}`).first();
  await media.waitFor({ timeout: left() });
  out.media = await media.evaluate(async (el, k) => {
    if (k === "image") {
      if (!el.complete) await new Promise((r) => { el.onload = r; el.onerror = r; });
      return { tag: el.tagName, src: el.src, naturalWidth: el.naturalWidth, naturalHeight: el.naturalHeight };
    }
    if (k === "video") {
      if (el.readyState < 2) {
        await new Promise((r) => { el.onloadeddata = r; el.onerror = r; });
      }
      return { tag: el.tagName, src: el.src, poster: el.poster, videoWidth: el.videoWidth,
               videoHeight: el.videoHeight, duration: el.duration, readyState: el.readyState,
               error: el.error && el.error.code };
    }
    if (el.readyState < 1) await new Promise((r) => { el.onloadedmetadata = r; el.onerror = r; });
    return { tag: el.tagName, src: el.src, duration: el.duration, readyState: el.readyState,
             error: el.error && el.error.code };
  }, kind, { timeout: left() });
  if (kind !== "audio") {
    out.mediaBox = await media.boundingBox();
    out.screenshot = join(config.outDir, `card-${kind}.png`);
    await media.screenshot({ path: out.screenshot, timeout: left() });
    await page.screenshot({ path: join(config.outDir, "card-page.png") });
  }
} finally {
  await browser.close();
  await client.close();
}
process.stdout.write(JSON.stringify(out) + "\n");

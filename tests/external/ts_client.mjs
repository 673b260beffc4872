// The official TypeScript MCP SDK client (@modelcontextprotocol/sdk 1.x) driving clipia-mcp.
//
// Usage: node ts_client.mjs '<connect JSON>'; then one step per stdin line, one answer per stdout line.
// CLIPIA_TS_SDK_DIR is the folder holding node_modules/@modelcontextprotocol/sdk (default: the cwd).
//
// connect = {transport: "stdio" | "http" | "sse", command?, args?, env? (stdio), url? (http / sse),
//            elicit?: "accept" | "decline"  (declare the elicitation capability and answer every request so)}
// The first line printed is {connected: true, serverCapabilities, serverVersion}.
// step = {op: "listTools"} | {op: "call", name, args?, progress?} | {op: "setLevel", level}
//      | {op: "complete", ref, argument, context?} | {op: "listResources", cursor?} | {op: "listTemplates"}
//      | {op: "readResource", uri} | {op: "listPrompts"} | {op: "getPrompt", name, args?}
// answer = {ok: true, result, logs, progress} | {ok: false, error: {code, message, name}, logs, progress}:
// `logs` are the notifications/message params and `progress` the progress notifications received since
// the previous answer. A step that throws is recorded, never fatal: the test decides what a throw means.
import path from "node:path";
import { createRequire } from "node:module";

const sdkDir = process.env.CLIPIA_TS_SDK_DIR || process.cwd();
const require = createRequire(path.join(sdkDir, "package.json"));
const load = async (sub) => import(require.resolve(`@modelcontextprotocol/sdk/${sub}`));

const { Client } = await load("client/index.js");
const { StdioClientTransport } = await load("client/stdio.js");
const { StreamableHTTPClientTransport } = await load("client/streamableHttp.js");
const { SSEClientTransport } = await load("client/sse.js");
const { LoggingMessageNotificationSchema } = await load("types.js");

const { ElicitRequestSchema } = await load("types.js");
const readline = await import("node:readline");

const plan = JSON.parse(process.argv[2]);
const capabilities = plan.elicit ? { elicitation: { form: {} } } : {};
const client = new Client({ name: "clipia-ts-e2e", version: "1.0.0" }, { capabilities });
let logs = [];
let progress = [];
client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => { logs.push(n.params); });
if (plan.elicit) {
  client.setRequestHandler(ElicitRequestSchema, async () => (plan.elicit === "accept"
    ? { action: "accept", content: { confirm: true } } : { action: plan.elicit }));
}

let transport;
if (plan.transport === "stdio") {
  transport = new StdioClientTransport({ command: plan.command, args: plan.args || [], env: plan.env, stderr: "pipe" });
  transport.stderr?.on("data", () => {}); // drained; the server logs to stderr
} else if (plan.transport === "http") {
  transport = new StreamableHTTPClientTransport(new URL(plan.url));
} else if (plan.transport === "sse") {
  transport = new SSEClientTransport(new URL(plan.url));
} else {
  throw new Error(`unknown transport ${plan.transport}`);
}

const errorOf = (e) => ({ code: e?.code ?? null, message: String(e?.message ?? e), name: e?.name ?? null });

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
await client.connect(transport);
emit({ connected: true, serverCapabilities: client.getServerCapabilities(),
       serverVersion: client.getServerVersion() });

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  const step = JSON.parse(line);
  let answer;
  try {
    let result;
    switch (step.op) {
      case "listTools": result = await client.listTools(); break;
      case "call": {
        const opts = { timeout: 60000 };
        if (step.progress) opts.onprogress = (p) => progress.push(p);
        result = await client.callTool({ name: step.name, arguments: step.args || {} }, undefined, opts);
        break;
      }
      case "setLevel": result = await client.setLoggingLevel(step.level); break;
      case "complete": result = await client.complete({ ref: step.ref, argument: step.argument,
        ...(step.context ? { context: step.context } : {}) }); break;
      case "listResources": result = await client.listResources(step.cursor ? { cursor: step.cursor } : {}); break;
      case "listTemplates": result = await client.listResourceTemplates(); break;
      case "readResource": result = await client.readResource({ uri: step.uri }); break;
      case "listPrompts": result = await client.listPrompts(); break;
      case "getPrompt": result = await client.getPrompt({ name: step.name, arguments: step.args || {} }); break;
      default: throw new Error(`unknown op ${step.op}`);
    }
    answer = { ok: true, result };
  } catch (e) {
    answer = { ok: false, error: errorOf(e) };
  }
  emit({ ...answer, logs, progress });
  logs = [];
  progress = [];
}
await client.close();
process.exit(0);

// A minimal LSP client over the real server's stdio, speaking the protocol the way vscode-languageclient does:
// the same initializationOptions (built by src/settings.ts), VS Code-like capabilities, and answers to the
// server's requests (configuration, progress, registrations).

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

import {
  type ClientCapabilities,
  createMessageConnection,
  type InitializeResult,
  type MessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
} from "vscode-languageserver-protocol/node";

import { serverCommand } from "../../src/launch";
import { defaultServerSettings, type JsonObject, serverSettings } from "../../src/settings";

export const REPO = resolve(__dirname, "..", "..", "..", "..");

/** $GREENPATCH_PYTHON, else the repository's .venv, else python3. */
export function testPython(): string {
  if (process.env.GREENPATCH_PYTHON) return process.env.GREENPATCH_PYTHON;
  const venv = join(REPO, ".venv", "bin", "python");
  return existsSync(venv) ? venv : "python3";
}

/** Fails with a clear message instead of a protocol timeout when the server cannot be imported. */
export function requireServer(python: string): void {
  try {
    execFileSync(python, ["-c", "import greenpatch.app"], { stdio: "pipe" });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim().split("\n").at(-1) ?? String(error);
    throw new Error(`${python} cannot import greenpatch (${stderr}); install it (pip install -e .) or set GREENPATCH_PYTHON`);
  }
}

/** The extension's settings with overrides by dotted key, e.g. {"model.completion": "fake"}. */
export function settingsWith(overrides: Record<string, unknown>, trusted: boolean): JsonObject {
  // the suggestion log lives in the user cache: tests keep out of it unless they say otherwise
  const values: Record<string, unknown> = { "completions.record": false, ...overrides };
  return serverSettings((key) => values[key], trusted);
}

export const FAKE_MODELS = { "model.completion": "fake", "model.repair": "fake" };

/** A throwaway copy of tests/data/example (the server may run its tests; the original stays clean). */
export function exampleWorkspace(): { root: string; dispose(): void } {
  const parent = mkdtempSync(join(tmpdir(), "greenpatch-client-"));
  const root = join(parent, "example");
  cpSync(join(REPO, "tests", "data", "example"), root, {
    recursive: true,
    filter: (src) => !/(__pycache__|\.pytest_cache)/.test(src),
  });
  return { root, dispose: () => rmSync(parent, { recursive: true, force: true }) };
}

export const uriOf = (path: string) => pathToFileURL(path).href;

const CAPABILITIES: ClientCapabilities = {
  workspace: {
    configuration: true,
    workspaceFolders: true,
    didChangeConfiguration: { dynamicRegistration: true },
    executeCommand: { dynamicRegistration: true },
    applyEdit: true,
    workspaceEdit: { documentChanges: true },
  },
  window: { workDoneProgress: true, showMessage: {} },
  textDocument: {
    synchronization: { dynamicRegistration: true, didSave: true, willSave: true },
    publishDiagnostics: { relatedInformation: true, versionSupport: true, codeDescriptionSupport: true, dataSupport: true },
    codeAction: {
      dynamicRegistration: true,
      isPreferredSupport: true,
      dataSupport: true,
      codeActionLiteralSupport: { codeActionKind: { valueSet: ["", "quickfix", "refactor", "source"] } },
    },
    inlineCompletion: { dynamicRegistration: true },
  },
};

type Waiter = { method: string; match: (params: any) => boolean; resolve: (params: any) => void };

export class TestClient {
  readonly notifications: { method: string; params: any }[] = [];
  private readonly waiters: Waiter[] = [];
  stderr = "";
  initializeResult: InitializeResult | undefined;

  private constructor(
    readonly process: ChildProcess,
    readonly connection: MessageConnection,
    private settings: JsonObject,
  ) {}

  static async start(
    root: string,
    settings: JsonObject = defaultServerSettings(),
    env: Record<string, string> = {},
  ): Promise<TestClient> {
    const python = testPython();
    const command = serverCommand(python);
    const child = spawn(command.command, command.args, {
      cwd: root,
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, PYTHONUNBUFFERED: "1", ...env },
    });
    const connection = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
    const client = new TestClient(child, connection, settings);
    child.stderr!.on("data", (chunk: Buffer) => {
      client.stderr += chunk.toString();
    });
    connection.onNotification((method: string, params: any) => client.record(method, params));
    connection.onRequest((method: string, params: any) => client.answer(method, params));
    connection.listen();
    client.initializeResult = await connection.sendRequest("initialize", {
      processId: process.pid,
      clientInfo: { name: "greenpatch-client-test" },
      rootUri: uriOf(root),
      workspaceFolders: [{ uri: uriOf(root), name: "example" }],
      capabilities: CAPABILITIES,
      initializationOptions: settings,
    });
    await connection.sendNotification("initialized", {});
    return client;
  }

  private record(method: string, params: any): void {
    this.notifications.push({ method, params });
    for (const waiter of [...this.waiters]) {
      if (waiter.method === method && waiter.match(params)) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(params);
      }
    }
  }

  private answer(method: string, params: any): unknown {
    switch (method) {
      case "workspace/configuration":
        return (params.items as { section?: string }[]).map((item) => (item.section === "greenpatch" ? this.settings : null));
      case "window/workDoneProgress/create":
      case "client/registerCapability":
      case "client/unregisterCapability":
        return null;
      case "window/showMessageRequest":
        return null;
      default:
        return null;
    }
  }

  /** The first notification (already received or still to come) that matches. */
  waitFor<T = any>(method: string, match: (params: T) => boolean = () => true, timeoutMs = 30_000): Promise<T> {
    const seen = this.notifications.find((n) => n.method === method && match(n.params));
    if (seen) return Promise.resolve(seen.params);
    return new Promise<T>((resolvePromise, reject) => {
      const waiter: Waiter = { method, match, resolve: (p) => { clearTimeout(timer); resolvePromise(p); } };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        const log = this.notifications.filter((n) => n.method !== "textDocument/publishDiagnostics").map((n) => `${n.method} ${JSON.stringify(n.params)}`).slice(-15).join("\n  ");
        reject(new Error(`no ${method} matching within ${timeoutMs} ms; last notifications:\n  ${log}\nserver stderr (tail):\n${this.stderr.slice(-2000)}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  async changeSettings(settings: JsonObject): Promise<void> {
    this.settings = settings;
    await this.connection.sendNotification("workspace/didChangeConfiguration", { settings: { greenpatch: settings } });
  }

  async open(path: string, text: string, version = 1): Promise<string> {
    const uri = uriOf(path);
    await this.connection.sendNotification("textDocument/didOpen", { textDocument: { uri, languageId: "python", version, text } });
    return uri;
  }

  async stop(): Promise<void> {
    try {
      await Promise.race([this.connection.sendRequest("shutdown"), new Promise((r) => setTimeout(r, 5000))]);
      await this.connection.sendNotification("exit");
    } catch {
      // the process may already be gone
    }
    const exited = new Promise((r) => this.process.once("exit", r));
    const timer = setTimeout(() => this.process.kill("SIGKILL"), 5000);
    if (this.process.exitCode === null) await exited;
    clearTimeout(timer);
    this.connection.dispose();
  }
}

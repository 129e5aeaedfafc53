// The server process: which Python runs it, installing greenpatch into that Python, the language client's life
// cycle, and the settings it is sent.

import * as path from "node:path";
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  type LanguageClientOptions,
  RevealOutputChannelOn,
  type ServerOptions,
  State,
} from "vscode-languageclient/node";

import {
  checkInstalled,
  explainPipFailure,
  findBundledWheel,
  pipInstallCommand,
  REPAIR_FILE_COMMAND,
  repairFileArguments,
  run,
  serverCommand,
} from "./launch";
import { chooseInterpreter, type InterpreterChoice, type JsonObject, SECTION, serverSettings } from "./settings";
import { InlineProvider } from "./inline";
import { parseStatus, STATUS_NOTIFICATION, type StatusBar } from "./status";
import { CURSOR_NOTIFICATION, CursorReporter, parsePreparing, PREPARING_NOTIFICATION, PreparingState } from "./cursor";

export const DOCUMENT_SELECTOR = [
  { scheme: "file", language: "python" },
  { scheme: "untitled", language: "python" },
];

/** The settings object sent to the server: every `greenpatch.*` setting plus the workspace's trust. */
export function currentSettings(): JsonObject {
  const config = vscode.workspace.getConfiguration(SECTION);
  return serverSettings((key) => config.get(key), vscode.workspace.isTrusted);
}

interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath?(resource?: vscode.Uri): { path: string } | undefined;
    resolveEnvironment?(env: { path: string } | string): Promise<{ executable?: { uri?: vscode.Uri } } | undefined>;
    onDidChangeActiveEnvironmentPath?: vscode.Event<unknown>;
  };
  settings?: { getExecutionDetails?(resource?: vscode.Uri): { execCommand?: string[] } };
}

async function pythonExtensionApi(): Promise<PythonExtensionApi | undefined> {
  const extension = vscode.extensions.getExtension<PythonExtensionApi>("ms-python.python");
  if (!extension) return undefined;
  return extension.isActive ? extension.exports : await extension.activate();
}

/** The interpreter the Python extension has selected for the first workspace folder, if any. */
async function pythonExtensionInterpreter(log: vscode.LogOutputChannel): Promise<string | undefined> {
  try {
    const api = await pythonExtensionApi();
    if (!api) return undefined;
    const resource = vscode.workspace.workspaceFolders?.[0]?.uri;
    const environments = api.environments;
    if (environments?.getActiveEnvironmentPath) {
      const active = environments.getActiveEnvironmentPath(resource);
      if (active) {
        const resolved = await environments.resolveEnvironment?.(active);
        return resolved?.executable?.uri?.fsPath ?? active.path;
      }
    }
    return api.settings?.getExecutionDetails?.(resource)?.execCommand?.[0];
  } catch (error) {
    log.warn(`could not ask the Python extension for its interpreter: ${String(error)}`);
    return undefined;
  }
}

export class GreenpatchServer implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private inline: vscode.Disposable | undefined;
  private choice: InterpreterChoice | undefined;
  private stopping = false;
  private offeredModelInstall = false;
  private readonly disposables: vscode.Disposable[] = [];
  private cursorWatch: vscode.Disposable[] = []; // the cursor's place sent to the running client (watchCursor)

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly log: vscode.LogOutputChannel,
    private readonly status: StatusBar,
    private readonly onNoModel: () => void,
  ) {}

  /** The interpreter running (or about to run) the server. */
  get python(): string | undefined {
    return this.choice?.python;
  }

  get running(): boolean {
    return this.client?.state === State.Running;
  }

  async watchPythonExtension(): Promise<void> {
    const api = await pythonExtensionApi().catch(() => undefined);
    const event = api?.environments?.onDidChangeActiveEnvironmentPath;
    if (event) {
      this.disposables.push(
        event(() => {
          if (!vscode.workspace.getConfiguration(SECTION).get<string>("python")) {
            this.log.info("the Python extension's interpreter changed: restarting the server");
            void this.restart();
          }
        }),
      );
    }
  }

  async resolveInterpreter(): Promise<InterpreterChoice> {
    const configured = vscode.workspace.getConfiguration(SECTION).get<string>("python") ?? "";
    const choice = chooseInterpreter({
      configured,
      pythonExtension: configured ? undefined : await pythonExtensionInterpreter(this.log),
      trusted: vscode.workspace.isTrusted,
      workspaceFolders: (vscode.workspace.workspaceFolders ?? []).map((folder) => folder.uri.fsPath),
    });
    if (choice.note) this.log.warn(choice.note);
    return choice;
  }

  async start(): Promise<void> {
    if (this.client) return;
    this.status.update({ state: "starting", message: "finding Python" });
    const choice = await this.resolveInterpreter();
    this.choice = choice;
    this.log.info(`Python for the server: ${choice.python} (from ${choice.source})`);

    const check = await checkInstalled(choice.python);
    if (!check.installed) {
      const message =
        check.reason === "no-python"
          ? `cannot run Python "${choice.python}": set greenpatch.python to an interpreter`
          : check.reason === "no-greenpatch"
            ? `greenpatch is not installed for ${choice.python}`
            : `greenpatch does not import in ${choice.python}: ${check.detail}`;
      this.log.error(`${message} (${check.detail})`);
      this.status.update({ state: "error", message });
      void this.offerInstall(choice.python, check.reason, message);
      return;
    }
    this.log.info(`greenpatch ${check.version}`);
    await this.startClient(choice.python);
  }

  private async startClient(python: string): Promise<void> {
    const command = serverCommand(python);
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const serverOptions: ServerOptions = {
      command: command.command,
      args: command.args,
      options: { cwd: folder, env: { ...process.env, PYTHONUNBUFFERED: "1" } },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: DOCUMENT_SELECTOR,
      initializationOptions: currentSettings(),
      outputChannel: this.log,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      connectionOptions: { maxRestartCount: 3 },
      initializationFailedHandler: (error) => {
        this.status.update({ state: "error", message: `the server failed to start: ${String(error)}` });
        return false;
      },
      middleware: {
        // The extension's own provider asks for inline completions (see inline.ts): the client's stays silent.
        provideInlineCompletionItems: () => undefined,
        workspace: {
          // The server may ask for its settings instead of waiting for them: answer with the same object
          // (trust included) that initializationOptions carried.
          configuration: async (params, token, next) => {
            const answers = await next(params, token);
            if (!Array.isArray(answers)) return answers;
            return params.items.map((item, i) => (item.section === SECTION ? currentSettings() : answers[i]));
          },
        },
      },
    };
    const client = new LanguageClient("greenpatch", "greenpatch", serverOptions, clientOptions);
    this.client = client;
    this.stopping = false;
    client.onDidChangeState((event) => {
      if (event.newState === State.Stopped && !this.stopping && this.client === client) {
        this.status.update({ state: "error", message: "the server stopped; see the log" });
      }
    });
    let reported = false;
    client.onNotification(STATUS_NOTIFICATION, (raw: unknown) => {
      reported = true;
      const status = parseStatus(raw);
      this.status.update(status);
      if (status.state === "noModel" && !this.offeredModelInstall) {
        this.offeredModelInstall = true;
        this.onNoModel();
      }
    });
    this.watchCursor(client);
    try {
      await client.start();
    } catch (error) {
      this.log.error(`the server failed to start: ${String(error)}`);
      this.status.update({ state: "error", message: `the server failed to start: ${String(error)}` });
      return;
    }
    if (client.initializeResult?.capabilities.inlineCompletionProvider) {
      this.inline = vscode.languages.registerInlineCompletionItemProvider(DOCUMENT_SELECTOR, new InlineProvider(client));
    }
    // A server that reports no state of its own is ready once initialized.
    if (!reported && this.status.state === "starting") {
      this.status.update({ state: "ready", message: `Python: ${python}` });
    }
  }

  /** Tells the server where the cursor rests (it prepares a suggestion there) and shows its preparations. */
  private watchCursor(client: LanguageClient): void {
    const clock = { setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms), clearTimeout: (t: unknown) => clearTimeout(t as NodeJS.Timeout) };
    const reporter = new CursorReporter((params) => {
      if (this.client === client && client.isRunning()) void client.sendNotification(CURSOR_NOTIFICATION, params);
    }, clock);
    const report = (editor: vscode.TextEditor | undefined) => {
      if (!editor || editor.document.languageId !== "python") return;
      if (!vscode.workspace.getConfiguration(SECTION).get<boolean>("completions.prepareAhead", true)) return;
      const { line, character } = editor.selection.active;
      reporter.moved({ uri: editor.document.uri.toString(), version: editor.document.version, position: { line, character } });
    };
    const preparing = new PreparingState((shown) => this.status.setPreparing(shown), () => {
      const editor = vscode.window.activeTextEditor;
      return editor ? { uri: editor.document.uri.toString(), line: editor.selection.active.line } : undefined;
    }, clock);
    client.onNotification(PREPARING_NOTIFICATION, (raw: unknown) => {
      const place = parsePreparing(raw);
      if (place) preparing.update(place);
    });
    this.cursorWatch.forEach((d) => d.dispose());
    this.cursorWatch = [
      vscode.window.onDidChangeTextEditorSelection((event) => report(event.textEditor)),
      vscode.window.onDidChangeActiveTextEditor(report),
      { dispose: () => { reporter.dispose(); preparing.dispose(); this.status.setPreparing(false); } },
    ];
    report(vscode.window.activeTextEditor);
  }

  async stop(): Promise<void> {
    this.cursorWatch.forEach((d) => d.dispose());
    this.cursorWatch = [];
    const client = this.client;
    this.client = undefined;
    this.inline?.dispose();
    this.inline = undefined;
    if (!client) return;
    this.stopping = true;
    try {
      if (client.isRunning()) await client.stop(5000);
    } catch (error) {
      this.log.warn(`stopping the server: ${String(error)}`);
    }
  }

  async restart(): Promise<void> {
    this.log.info("restarting the server");
    await this.stop();
    await this.start();
  }

  /** Sends the current settings (after a settings change or when the workspace becomes trusted). */
  async sendSettings(): Promise<void> {
    if (!this.client?.isRunning()) return;
    await this.client.sendNotification(DidChangeConfigurationNotification.type, {
      settings: { [SECTION]: currentSettings() },
    });
  }

  /** Asks the server to repair `uri`; results come back as diagnostics and quick fixes. */
  async repairFile(uri: vscode.Uri): Promise<void> {
    if (!this.client?.isRunning()) {
      throw new Error("the greenpatch server is not running");
    }
    await this.client.sendRequest(ExecuteCommandRequest.type, {
      command: REPAIR_FILE_COMMAND,
      arguments: repairFileArguments(uri.toString()),
    });
  }

  /** Offers to pip install the wheel bundled in the .vsix into `python`. */
  private async offerInstall(python: string, reason: "no-python" | "no-greenpatch" | "broken", message: string): Promise<void> {
    const wheel = findBundledWheel(path.join(this.context.extensionPath, "bundled"));
    const actions: string[] = [];
    if (reason !== "no-python" && wheel) actions.push("Install");
    actions.push("Choose interpreter", "Show log");
    const answer = await vscode.window.showErrorMessage(
      reason === "no-python" || !wheel ? message : `${message}. Install it into this interpreter?`,
      ...actions,
    );
    if (answer === "Install" && wheel) {
      if (await this.install(python, wheel)) await this.restart();
    } else if (answer === "Choose interpreter") {
      await vscode.commands.executeCommand("workbench.action.openSettings", "greenpatch.python");
    } else if (answer === "Show log") {
      this.log.show();
    }
  }

  /** pip install the wheel, then its `llm` extra (the llama.cpp engine, which may need compiling). */
  async install(python: string, wheel: string): Promise<boolean> {
    return vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: "greenpatch", cancellable: false },
      async (progress) => {
        progress.report({ message: `installing into ${python}…` });
        const base = await this.pip(python, wheel);
        if (!base) return false;
        progress.report({ message: "installing the local model engine (llama-cpp-python; may compile for minutes)…" });
        const llm = await this.pip(python, wheel, "llm");
        if (!llm) {
          void vscode.window.showWarningMessage(
            "greenpatch is installed, but its model engine (llama-cpp-python) is not: completions and repairs need it. See the log.",
          );
        }
        return true;
      },
    );
  }

  private async pip(python: string, wheel: string, extra?: string): Promise<boolean> {
    const command = pipInstallCommand(python, wheel, extra);
    this.log.info(`running ${command.command} ${command.args.join(" ")}`);
    const result = await run(command, { timeoutMs: 30 * 60_000 });
    if (result.stdout) this.log.info(result.stdout.trimEnd());
    if (result.stderr) this.log.warn(result.stderr.trimEnd());
    if (result.code === 0) return true;
    const why = explainPipFailure(result);
    this.log.error(why);
    if (!extra) void vscode.window.showErrorMessage(`Installing greenpatch failed: ${why}`, "Show log").then((a) => a && this.log.show());
    return false;
  }

  dispose(): void {
    void this.stop();
    for (const d of this.disposables) d.dispose();
  }
}

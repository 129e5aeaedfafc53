// Entry point: wires the status bar, the commands and the settings to the server process.

import * as vscode from "vscode";

import { modelChoices, modelInstallCommand, modelListCommand, parseModelList, run } from "./launch";
import { GreenpatchServer } from "./server";
import { SECTION } from "./settings";
import { MENU_COMMANDS, menuItems, SERVER_STATS_COMMAND, StatusBar } from "./status";

let server: GreenpatchServer | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const log = vscode.window.createOutputChannel("greenpatch", { log: true });
  const status = new StatusBar(vscode);
  const completionsEnabled = () => vscode.workspace.getConfiguration(SECTION).get<boolean>("completions.enabled", true);
  status.setCompletionsEnabled(completionsEnabled());

  const gp = new GreenpatchServer(context, log, status, () => {
    void vscode.window
      .showWarningMessage("greenpatch has no model yet: completions and repairs need one.", "Install model")
      .then((answer) => answer && vscode.commands.executeCommand(MENU_COMMANDS.installModel));
  });
  server = gp;
  context.subscriptions.push(log, status, gp);

  const command = (id: string, handler: (...args: any[]) => unknown) =>
    context.subscriptions.push(vscode.commands.registerCommand(id, handler));

  command("greenpatch.showMenu", async () => {
    const editor = vscode.window.activeTextEditor;
    const items = menuItems({
      state: status.state,
      completionsEnabled: completionsEnabled(),
      pythonFileOpen: editor?.document.languageId === "python",
      trusted: vscode.workspace.isTrusted,
    });
    const picked = await vscode.window.showQuickPick(items, { title: "greenpatch", placeHolder: "greenpatch actions" });
    if (picked) await vscode.commands.executeCommand(MENU_COMMANDS[picked.action]);
  });
  command(MENU_COMMANDS.showLog, () => log.show());
  command(MENU_COMMANDS.restartServer, () => gp.restart());
  command(MENU_COMMANDS.installModel, () => installModel(gp, log));
  command(MENU_COMMANDS.repairCurrentFile, () => repairCurrentFile(gp));
  command(MENU_COMMANDS.showStats, async () => {
    // vscode-languageclient registers the server's commands: this one runs `greenpatch stats` in the server
    const result = await vscode.commands.executeCommand<{ text: string } | undefined>(SERVER_STATS_COMMAND);
    if (!result) return;
    const document = await vscode.workspace.openTextDocument({ content: result.text, language: "plaintext" });
    await vscode.window.showTextDocument(document, { preview: true });
  });
  command(MENU_COMMANDS.toggleCompletions, async () => {
    const config = vscode.workspace.getConfiguration(SECTION);
    const inspected = config.inspect<boolean>("completions.enabled");
    const target =
      inspected?.workspaceFolderValue !== undefined || inspected?.workspaceValue !== undefined
        ? vscode.ConfigurationTarget.Workspace
        : vscode.ConfigurationTarget.Global;
    await config.update("completions.enabled", !completionsEnabled(), target);
  });

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (!event.affectsConfiguration(SECTION)) return;
      status.setCompletionsEnabled(completionsEnabled());
      if (event.affectsConfiguration(`${SECTION}.python`)) {
        void gp.restart();
      } else {
        void gp.sendSettings();
      }
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(async () => {
      // Trust may change the interpreter (a workspace .venv is not run while restricted).
      const choice = await gp.resolveInterpreter();
      if (choice.python !== gp.python) {
        await gp.restart();
      } else {
        await gp.sendSettings();
      }
    }),
  );

  void gp.watchPythonExtension();
  await gp.start();
}

export async function deactivate(): Promise<void> {
  await server?.stop();
  server = undefined;
}

async function repairCurrentFile(gp: GreenpatchServer): Promise<void> {
  const document = vscode.window.activeTextEditor?.document;
  if (!document || document.languageId !== "python") {
    void vscode.window.showInformationMessage("greenpatch: open a Python file to repair.");
    return;
  }
  if (!vscode.workspace.isTrusted) {
    const answer = await vscode.window.showWarningMessage(
      "greenpatch repairs by running your tests, which a restricted workspace does not allow.",
      "Manage Workspace Trust",
    );
    if (answer) await vscode.commands.executeCommand("workbench.trust.manage");
    return;
  }
  if (document.isDirty) await document.save();
  try {
    await gp.repairFile(document.uri);
  } catch (error) {
    void vscode.window.showErrorMessage(`greenpatch: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function installModel(gp: GreenpatchServer, log: vscode.LogOutputChannel): Promise<void> {
  const python = gp.python ?? (await gp.resolveInterpreter()).python;
  const listed = await run(modelListCommand(python), { timeoutMs: 60_000 });
  const rows = parseModelList(listed.stdout);
  if (!rows.length) {
    log.error(`greenpatch model list failed: ${listed.spawnError ?? listed.stderr.trim()}`);
    void vscode.window.showErrorMessage("greenpatch: could not list the models (is greenpatch installed?). See the log.", "Show log")
      .then((answer) => answer && log.show());
    return;
  }
  const config = vscode.workspace.getConfiguration(SECTION);
  const configured = [config.get<string>("model.completion", "default"), config.get<string>("model.repair", "default")];
  const picked = await vscode.window.showQuickPick(modelChoices(rows, configured), {
    title: "greenpatch: install a model",
    placeHolder: "Model to download into the model cache",
  });
  if (!picked) return;
  // A task (not a bare terminal) so that its exit code is known: the server restarts to load the new model.
  const cmd = modelInstallCommand(python, picked.name);
  const task = new vscode.Task(
    { type: "greenpatch", task: "installModel", model: picked.name },
    vscode.TaskScope.Workspace,
    `install model ${picked.name}`,
    "greenpatch",
    new vscode.ProcessExecution(cmd.command, cmd.args),
  );
  task.presentationOptions = { reveal: vscode.TaskRevealKind.Always, panel: vscode.TaskPanelKind.Dedicated };
  const execution = await vscode.tasks.executeTask(task);
  const listener = vscode.tasks.onDidEndTaskProcess(async (event) => {
    if (event.execution !== execution) return;
    listener.dispose();
    if (event.exitCode === 0) {
      void vscode.window.showInformationMessage(`greenpatch: model ${picked.name} installed; restarting the server.`);
      await gp.restart();
    } else {
      void vscode.window.showErrorMessage(`greenpatch: installing model ${picked.name} failed (exit ${event.exitCode}); see the terminal.`);
    }
  });
}

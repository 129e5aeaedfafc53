// What the status bar item shows, and its click menu.
//
// The server reports its state with the `greenpatch/status` notification; the client adds its own states
// (starting the process, not installed, stopped). Everything here is pure but the small StatusBar class, which
// receives the `vscode` API from extension.ts so that the tests can load this module under plain Node.

import type * as vscode from "vscode";

export const STATUS_NOTIFICATION = "greenpatch/status";

export type ServerState = "starting" | "loadingModel" | "ready" | "verifying" | "error" | "noModel";

export interface StatusParams {
  state: ServerState;
  message: string;
  candidates?: number;
}

export interface StatusView {
  text: string;
  tooltip: string;
  /** ThemeColor id for the item's background, for states that need the user. */
  background?: "statusBarItem.errorBackground" | "statusBarItem.warningBackground";
}

const STATES: readonly ServerState[] = ["starting", "loadingModel", "ready", "verifying", "error", "noModel"];

/** Checks a notification's params; a malformed one becomes an error state rather than a crash. */
export function parseStatus(raw: unknown): StatusParams {
  if (typeof raw === "object" && raw !== null) {
    const { state, message, candidates } = raw as Record<string, unknown>;
    if (typeof state === "string" && (STATES as readonly string[]).includes(state)) {
      const params: StatusParams = { state: state as ServerState, message: typeof message === "string" ? message : "" };
      if (typeof candidates === "number" && Number.isFinite(candidates) && candidates >= 0) {
        params.candidates = Math.floor(candidates);
      }
      return params;
    }
  }
  return { state: "error", message: `unexpected status from the server: ${JSON.stringify(raw)}` };
}

/** Text, tooltip and colour of the status bar item; `preparing`: a suggestion is being prepared at the cursor. */
export function presentStatus(status: StatusParams, completionsEnabled: boolean, preparing = false): StatusView {
  const off = completionsEnabled ? "" : " (completions off)";
  const detail = status.message ? `\n${status.message}` : "";
  const click = "\nClick for greenpatch actions.";
  if (preparing && completionsEnabled && status.state === "ready") {
    return {
      text: "$(loading~spin) greenpatch: preparing suggestion",
      tooltip: `greenpatch: the model is reading the code at the cursor; a suggestion follows (wait, or type on)${click}`,
    };
  }
  switch (status.state) {
    case "starting":
      return { text: "$(sync~spin) greenpatch", tooltip: `greenpatch: starting${detail}${click}` };
    case "loadingModel":
      return { text: "$(loading~spin) greenpatch: loading model", tooltip: `greenpatch: loading the model${detail}${click}` };
    case "ready":
      return {
        text: completionsEnabled ? "$(check) greenpatch" : "$(circle-slash) greenpatch",
        tooltip: `greenpatch: ready${off}${detail}${click}`,
      };
    case "verifying": {
      const n = status.candidates;
      const what = n === undefined ? "" : ` ${n} candidate${n === 1 ? "" : "s"}`;
      return { text: `$(beaker~spin) greenpatch: verifying${what}`, tooltip: `greenpatch: testing fixes${what ? ` (${n})` : ""}${detail}${click}` };
    }
    case "noModel":
      return {
        text: "$(cloud-download) greenpatch: no model",
        tooltip: `greenpatch: no model installed${detail}\nClick to install one.`,
        background: "statusBarItem.warningBackground",
      };
    case "error":
      return {
        text: "$(error) greenpatch",
        tooltip: `greenpatch: error${detail}${click}`,
        background: "statusBarItem.errorBackground",
      };
  }
}

export type MenuAction =
  | "showLog"
  | "restartServer"
  | "installModel"
  | "repairCurrentFile"
  | "toggleCompletions"
  | "showStats";

export interface MenuItem {
  action: MenuAction;
  label: string;
  description?: string;
}

export interface MenuContext {
  state: ServerState;
  completionsEnabled: boolean;
  /** Whether the active editor holds a Python file that can be repaired. */
  pythonFileOpen: boolean;
  trusted: boolean;
}

/** The click menu: the action the state calls for first. */
export function menuItems(ctx: MenuContext): MenuItem[] {
  const items: MenuItem[] = [
    { action: "showLog", label: "$(output) Show log" },
    { action: "restartServer", label: "$(debug-restart) Restart server" },
    { action: "installModel", label: "$(cloud-download) Install model" },
  ];
  if (ctx.pythonFileOpen) {
    items.push({
      action: "repairCurrentFile",
      label: "$(wrench) Repair current file",
      description: ctx.trusted ? undefined : "needs a trusted workspace (runs your tests)",
    });
  }
  items.push({ action: "showStats", label: "$(graph) Suggestion statistics", description: "what you accepted" });
  items.push({
    action: "toggleCompletions",
    label: ctx.completionsEnabled ? "$(circle-slash) Turn completions off" : "$(lightbulb) Turn completions on",
  });
  const first: MenuAction | undefined =
    ctx.state === "error" ? "showLog" : ctx.state === "noModel" ? "installModel" : undefined;
  if (first) {
    items.sort((a, b) => Number(b.action === first) - Number(a.action === first));
  }
  return items;
}

export const MENU_COMMANDS: Record<MenuAction, string> = {
  showLog: "greenpatch.showLog",
  restartServer: "greenpatch.restartServer",
  installModel: "greenpatch.installModel",
  repairCurrentFile: "greenpatch.repairCurrentFile",
  toggleCompletions: "greenpatch.toggleCompletions",
  showStats: "greenpatch.showStats",
};

/** The server's command that answers `greenpatch stats` for the workspace (server/greenpatch/protocol/completion.py). */
export const SERVER_STATS_COMMAND = "greenpatch.suggestionStats";

/** The status bar item; `api` is the `vscode` module, handed in by extension.ts. */
export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private current: StatusParams = { state: "starting", message: "" };
  private completionsEnabled = true;
  private preparing = false;

  constructor(private readonly api: typeof vscode) {
    this.item = api.window.createStatusBarItem("greenpatch.status", api.StatusBarAlignment.Right, 100);
    this.item.name = "greenpatch";
    this.item.command = "greenpatch.showMenu";
    this.render();
    this.item.show();
  }

  get state(): ServerState {
    return this.current.state;
  }

  update(status: StatusParams): void {
    this.current = status;
    this.render();
  }

  setCompletionsEnabled(enabled: boolean): void {
    this.completionsEnabled = enabled;
    this.render();
  }

  /** A suggestion is being prepared at the cursor (see cursor.ts). */
  setPreparing(preparing: boolean): void {
    this.preparing = preparing;
    this.render();
  }

  private render(): void {
    const view = presentStatus(this.current, this.completionsEnabled, this.preparing);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor = view.background ? new this.api.ThemeColor(view.background) : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}

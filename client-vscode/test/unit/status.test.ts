import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { MENU_COMMANDS, menuItems, parseStatus, presentStatus } from "../../src/status";

const packageJson = JSON.parse(readFileSync(join(__dirname, "..", "..", "..", "package.json"), "utf8"));

describe("status notifications", () => {
  it("accept every state the server sends", () => {
    for (const state of ["starting", "loadingModel", "ready", "verifying", "error", "noModel"]) {
      assert.equal(parseStatus({ state, message: "m" }).state, state);
    }
  });

  it("keep a whole, non-negative candidate count", () => {
    assert.deepEqual(parseStatus({ state: "verifying", message: "", candidates: 3 }), { state: "verifying", message: "", candidates: 3 });
    assert.equal(parseStatus({ state: "verifying", message: "", candidates: -1 }).candidates, undefined);
  });

  it("turn a malformed notification into a visible error", () => {
    const status = parseStatus({ state: "sleeping" });
    assert.equal(status.state, "error");
    assert.match(status.message, /sleeping/);
    assert.equal(parseStatus(null).state, "error");
  });
});

describe("status bar item", () => {
  it("counts the candidates being verified", () => {
    assert.equal(presentStatus({ state: "verifying", message: "", candidates: 3 }, true).text, "$(beaker~spin) greenpatch: verifying 3 candidates");
    assert.equal(presentStatus({ state: "verifying", message: "", candidates: 1 }, true).text, "$(beaker~spin) greenpatch: verifying 1 candidate");
  });

  it("shows errors on the error background with the server's message", () => {
    const view = presentStatus({ state: "error", message: "pytest not found" }, true);
    assert.equal(view.background, "statusBarItem.errorBackground");
    assert.match(view.tooltip, /pytest not found/);
  });

  it("shows when completions are turned off", () => {
    assert.equal(presentStatus({ state: "ready", message: "" }, false).text, "$(circle-slash) greenpatch");
    assert.match(presentStatus({ state: "ready", message: "" }, false).tooltip, /completions off/);
  });

  it("asks for a model when there is none", () => {
    const view = presentStatus({ state: "noModel", message: "" }, true);
    assert.match(view.text, /no model/);
    assert.equal(view.background, "statusBarItem.warningBackground");
  });
});

describe("status menu", () => {
  const ctx = { state: "ready" as const, completionsEnabled: true, pythonFileOpen: true, trusted: true };

  it("offers the five actions with a Python file open", () => {
    assert.deepEqual(menuItems(ctx).map((item) => item.action), ["showLog", "restartServer", "installModel", "repairCurrentFile", "showStats", "toggleCompletions"]);
  });

  it("leaves out repair when no Python file is open", () => {
    assert.ok(!menuItems({ ...ctx, pythonFileOpen: false }).some((item) => item.action === "repairCurrentFile"));
  });

  it("puts the log first after an error and model install first without a model", () => {
    assert.equal(menuItems({ ...ctx, state: "error" })[0].action, "showLog");
    assert.equal(menuItems({ ...ctx, state: "noModel" })[0].action, "installModel");
  });

  it("says turning completions on or off according to the setting", () => {
    assert.match(menuItems(ctx).at(-1)!.label, /off/);
    assert.match(menuItems({ ...ctx, completionsEnabled: false }).at(-1)!.label, /on/);
  });

  it("warns that repair needs trust in a restricted workspace", () => {
    const repair = menuItems({ ...ctx, trusted: false }).find((item) => item.action === "repairCurrentFile");
    assert.match(repair?.description ?? "", /trusted/);
  });

  it("runs only commands that package.json declares", () => {
    const declared = packageJson.contributes.commands.map((c: { command: string }) => c.command);
    for (const id of [...Object.values(MENU_COMMANDS), "greenpatch.showMenu"]) assert.ok(declared.includes(id), id);
  });
});

describe("preparing a suggestion", () => {
  it("shows in the status bar while ready", () => {
    assert.match(presentStatus({ state: "ready", message: "" }, true, true).text, /preparing suggestion/);
  });

  it("gives way to states that need the user", () => {
    assert.equal(presentStatus({ state: "error", message: "x" }, true, true).text, "$(error) greenpatch");
    assert.equal(presentStatus({ state: "ready", message: "" }, false, true).text, "$(circle-slash) greenpatch");
  });
});

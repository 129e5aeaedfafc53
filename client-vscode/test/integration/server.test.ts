// The real Python server, spawned the way the extension spawns it, spoken to the way vscode-languageclient speaks.
// Uses the fake model engine (setting model.completion/model.repair = "fake") so that answers are instant and fixed.

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { ACCEPTED_COMMAND, partialAcceptArguments } from "../../src/accepts";
import { REPAIR_FILE_COMMAND, repairFileArguments } from "../../src/launch";
import { defaultServerSettings } from "../../src/settings";
import { exampleWorkspace, FAKE_MODELS, requireServer, settingsWith, TestClient, testPython } from "./lsp";

const python = testPython();

interface TextEdit {
  range: { start: { line: number; character: number }; end: { line: number; character: number } };
  newText: string;
}

function applyEdits(text: string, edits: TextEdit[]): string {
  const lines = text.split("\n");
  const offset = (p: { line: number; character: number }) =>
    lines.slice(0, p.line).reduce((sum, line) => sum + line.length + 1, 0) + p.character;
  const sorted = [...edits].sort((a, b) => offset(b.range.start) - offset(a.range.start));
  let out = text;
  for (const edit of sorted) out = out.slice(0, offset(edit.range.start)) + edit.newText + out.slice(offset(edit.range.end));
  return out;
}

const isGreenpatch = (d: { source?: string }) => d.source === "greenpatch";

describe("settings contract", () => {
  it("sends the server's own names and defaults", () => {
    requireServer(python);
    const script =
      "import json; from greenpatch.config import Settings, settings_to_dict; print(json.dumps(settings_to_dict(Settings())))";
    const server = JSON.parse(execFileSync(python, ["-c", script], { encoding: "utf8" }));
    assert.deepEqual(defaultServerSettings(true), server);
  });
});

describe("the real server in a trusted workspace", () => {
  const workspace = exampleWorkspace();
  let client: TestClient;

  before(async () => {
    requireServer(python);
    client = await TestClient.start(workspace.root, settingsWith(FAKE_MODELS, true));
  });
  after(async () => {
    await client?.stop();
    workspace.dispose();
  });

  it("advertises inline completion, quick fixes and the repair command", () => {
    const caps = client.initializeResult!.capabilities as Record<string, any>;
    assert.ok(caps.inlineCompletionProvider, "inlineCompletionProvider");
    assert.ok(caps.codeActionProvider, "codeActionProvider");
    assert.ok(caps.executeCommandProvider?.commands?.includes(REPAIR_FILE_COMMAND), "executeCommandProvider");
  });

  it("reports that it is ready on greenpatch/status", async () => {
    const status = await client.waitFor("greenpatch/status", (p: any) => p.state === "ready");
    assert.equal(typeof status.message, "string");
  });

  it("answers an inline completion from the model", async () => {
    const uri = await client.open(join(workspace.root, "shop", "scratch.py"), "def add(");
    const result: any = await client.connection.sendRequest("textDocument/inlineCompletion", {
      textDocument: { uri },
      position: { line: 0, character: 8 },
      context: { triggerKind: 2 },
    });
    const items = Array.isArray(result) ? result : result?.items;
    assert.equal(items?.[0]?.insertText, "a, b):");
  });

  it("records a partial accept of an inline item with the length taken", async () => {
    // recording on, into a cache of the test's own (the user's record stays untouched)
    const cache = mkdtempSync(join(tmpdir(), "greenpatch-cache-"));
    const recording = await TestClient.start(
      workspace.root,
      settingsWith({ ...FAKE_MODELS, "completions.record": true }, true),
      { XDG_CACHE_HOME: cache },
    );
    try {
      const uri = await recording.open(join(workspace.root, "shop", "scratch3.py"), "def add(");
      const result: any = await recording.connection.sendRequest("textDocument/inlineCompletion", {
        textDocument: { uri },
        position: { line: 0, character: 8 },
        context: { triggerKind: 2 },
      });
      const item = (Array.isArray(result) ? result : result?.items)?.[0];
      const args = partialAcceptArguments(item?.command, 3);
      assert.ok(args, "the item carries the server's command");
      await recording.connection.sendRequest("workspace/executeCommand", { command: ACCEPTED_COMMAND, arguments: args });
      const stats: any = await recording.connection.sendRequest("workspace/executeCommand", {
        command: "greenpatch.suggestionStats",
        arguments: [],
      });
      assert.equal(stats.data.overall.outcomes.partial, 1);
    } finally {
      await recording.stop();
      rmSync(cache, { recursive: true, force: true });
    }
  });

  it("stops completing when the completions setting is turned off", async () => {
    await client.changeSettings(settingsWith({ ...FAKE_MODELS, "completions.enabled": false }, true));
    const uri = await client.open(join(workspace.root, "shop", "scratch2.py"), "def add(");
    const result: any = await client.connection.sendRequest("textDocument/inlineCompletion", {
      textDocument: { uri },
      position: { line: 0, character: 8 },
      context: { triggerKind: 2 },
    });
    const items = Array.isArray(result) ? result : (result?.items ?? []);
    assert.equal(items.length, 0);
    await client.changeSettings(settingsWith(FAKE_MODELS, true));
  });

  it("after a save with a failing test, shows the failure and a quick fix that makes the tests pass", async () => {
    const path = join(workspace.root, "shop", "pricing.py");
    const text = readFileSync(path, "utf8");
    const uri = await client.open(path, text);
    await client.connection.sendNotification("textDocument/didSave", { textDocument: { uri }, text });
    const published: any = await client.waitFor(
      "textDocument/publishDiagnostics",
      (p: any) => p.uri === uri && p.diagnostics.some(isGreenpatch),
      150_000,
    );
    const diagnostic = published.diagnostics.find(isGreenpatch);
    assert.match(diagnostic.message, /test_bulk_discount_starts_at_ten/);

    const actions: any[] = await client.connection.sendRequest("textDocument/codeAction", {
      textDocument: { uri },
      range: diagnostic.range,
      context: { diagnostics: [diagnostic], only: ["quickfix"], triggerKind: 1 },
    });
    const fix = actions.find((a) => a.kind === "quickfix" && a.edit);
    assert.ok(fix, `a quick fix with an edit among ${JSON.stringify(actions.map((a) => a.title))}`);
    const change = fix.edit.documentChanges?.[0] ?? { edits: fix.edit.changes[uri] };
    writeFileSync(path, applyEdits(text, change.edits));
    const tests = spawnSync(python, ["-m", "pytest", "-q", "-p", "no:cacheprovider"], { cwd: workspace.root, encoding: "utf8" });
    assert.equal(tests.status, 0, `the example's tests after the quick fix:\n${tests.stdout}`);
  });
});

describe("the real server in a restricted workspace", () => {
  const workspace = exampleWorkspace();
  let client: TestClient;

  before(async () => {
    requireServer(python);
    client = await TestClient.start(workspace.root, settingsWith(FAKE_MODELS, false));
  });
  after(async () => {
    await client?.stop();
    workspace.dispose();
  });

  it("runs no tests on save and says why", async () => {
    const path = join(workspace.root, "shop", "pricing.py");
    const text = readFileSync(path, "utf8");
    const uri = await client.open(path, text);
    await client.connection.sendNotification("textDocument/didSave", { textDocument: { uri }, text });
    await client.connection.sendRequest("workspace/executeCommand", { command: REPAIR_FILE_COMMAND, arguments: repairFileArguments(uri) });
    const message: any = await client.waitFor("window/showMessage", (p: any) => /trust/i.test(p.message));
    assert.match(message.message, /trust/i);
    assert.ok(!client.notifications.some((n) => n.method === "greenpatch/status" && n.params.state === "verifying"), "no tests ran");
    assert.ok(
      !client.notifications.some((n) => n.method === "textDocument/publishDiagnostics" && n.params.diagnostics.some(isGreenpatch)),
      "no test diagnostics",
    );
  });

  it("still completes", async () => {
    const uri = await client.open(join(workspace.root, "shop", "scratch.py"), "def add(");
    const result: any = await client.connection.sendRequest("textDocument/inlineCompletion", {
      textDocument: { uri },
      position: { line: 0, character: 8 },
      context: { triggerKind: 2 },
    });
    const items = Array.isArray(result) ? result : result?.items;
    assert.equal(items?.[0]?.insertText, "a, b):");
  });
});

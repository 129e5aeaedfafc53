import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { chooseInterpreter, configurationContribution, defaultServerSettings, serverSettings, SETTINGS } from "../../src/settings";

const packageJson = JSON.parse(readFileSync(join(__dirname, "..", "..", "..", "package.json"), "utf8"));

describe("server settings", () => {
  it("nests every setting under its section in camelCase and adds trust", () => {
    const values: Record<string, unknown> = { "completions.debounceMs": 300, "model.completion": "fake", logLevel: "debug" };
    const settings = serverSettings((key) => values[key], false);
    assert.equal((settings.completions as Record<string, unknown>).debounceMs, 300);
    assert.equal((settings.completions as Record<string, unknown>).enabled, true);
    assert.equal((settings.model as Record<string, unknown>).completion, "fake");
    assert.equal(settings.logLevel, "debug");
    assert.equal(settings.trusted, false);
    assert.deepEqual(Object.keys(settings).sort(), ["completions", "engine", "logLevel", "model", "python", "repair", "trusted", "verify"]);
  });

  it("falls back to the default when a hand-edited value has the wrong type", () => {
    const values: Record<string, unknown> = { "repair.candidates": "eight", "completions.maxTokens": 12.5, "verify.testTimeout": 7.5 };
    const settings = serverSettings((key) => values[key], true);
    assert.equal((settings.repair as Record<string, unknown>).candidates, 8);
    assert.equal((settings.completions as Record<string, unknown>).maxTokens, 64);
    assert.equal((settings.verify as Record<string, unknown>).testTimeout, 7.5);
  });

  it("has the server's defaults when nothing is set", () => {
    const settings = defaultServerSettings();
    assert.deepEqual(settings.repair, { onSave: true, candidates: 8, rounds: 2, maxSeconds: 120 });
    assert.equal((settings.completions as Record<string, unknown>).gateThreshold, -0.25);
  });

  it("is what package.json contributes (run `node scripts/sync-package.mjs` after changing SETTINGS)", () => {
    assert.deepEqual(packageJson.contributes.configuration, configurationContribution());
  });

  it("are all documented in the README's settings table", () => {
    const readme = readFileSync(join(__dirname, "..", "..", "..", "README.md"), "utf8");
    for (const spec of SETTINGS) assert.ok(readme.includes(`| \`greenpatch.${spec.key}\` |`), spec.key);
  });

  it("gives every setting a description", () => {
    for (const spec of SETTINGS) assert.ok(spec.description.length > 20, spec.key);
  });

  it("keeps the settings that choose a program or a destination out of a restricted workspace's reach", () => {
    const restricted: string[] = packageJson.capabilities.untrustedWorkspaces.restrictedConfigurations;
    for (const key of ["greenpatch.python", "greenpatch.engine.url", "greenpatch.engine.apiKeyEnv"]) {
      assert.ok(restricted.includes(key), key);
    }
  });
});

describe("interpreter choice", () => {
  const base = { configured: "", trusted: true, workspaceFolders: ["/home/u/shop"], platform: "linux" as const };

  it("prefers the greenpatch.python setting", () => {
    const choice = chooseInterpreter({ ...base, configured: " /opt/py/bin/python ", pythonExtension: "/usr/bin/python3.12" });
    assert.deepEqual(choice, { python: "/opt/py/bin/python", source: "setting" });
  });

  it("uses the Python extension's interpreter when the setting is empty", () => {
    const choice = chooseInterpreter({ ...base, pythonExtension: "/home/u/shop/.venv/bin/python" });
    assert.deepEqual(choice, { python: "/home/u/shop/.venv/bin/python", source: "python extension" });
  });

  it("falls back to python3, or python on Windows", () => {
    assert.equal(chooseInterpreter(base).python, "python3");
    assert.equal(chooseInterpreter({ ...base, platform: "win32", workspaceFolders: ["C:\\shop"] }).python, "python");
  });

  it("does not run an interpreter from inside a restricted workspace", () => {
    const choice = chooseInterpreter({ ...base, trusted: false, pythonExtension: "/home/u/shop/.venv/bin/python" });
    assert.equal(choice.python, "python3");
    assert.match(choice.note ?? "", /restricted/);
  });

  it("still uses an interpreter outside a restricted workspace", () => {
    const choice = chooseInterpreter({ ...base, trusted: false, pythonExtension: "/home/u/shopping/.venv/bin/python" });
    assert.equal(choice.python, "/home/u/shopping/.venv/bin/python");
  });

  it("compares Windows paths without regard to case", () => {
    const choice = chooseInterpreter({
      configured: "", trusted: false, platform: "win32", workspaceFolders: ["C:\\Shop"], pythonExtension: "c:\\shop\\.venv\\Scripts\\python.exe",
    });
    assert.equal(choice.python, "python");
  });
});

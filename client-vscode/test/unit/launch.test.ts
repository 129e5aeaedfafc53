import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";

import {
  checkInstalled,
  classifyCheck,
  compareVersions,
  explainPipFailure,
  findBundledWheel,
  modelChoices,
  modelInstallCommand,
  parseModelList,
  pipInstallCommand,
  repairFileArguments,
  serverCommand,
} from "../../src/launch";

describe("command lines", () => {
  it("start the server on stdio as a module of the chosen Python", () => {
    assert.deepEqual(serverCommand("/venv/bin/python"), { command: "/venv/bin/python", args: ["-m", "greenpatch", "serve"] });
  });

  it("install a model by name", () => {
    assert.deepEqual(modelInstallCommand("py", "fast").args, ["-m", "greenpatch", "model", "install", "fast"]);
  });

  it("install the bundled wheel, with an optional extra", () => {
    assert.deepEqual(pipInstallCommand("py", "/x/greenpatch-0.1.0-py3-none-any.whl").args, ["-m", "pip", "install", "--upgrade", "/x/greenpatch-0.1.0-py3-none-any.whl"]);
    assert.equal(pipInstallCommand("py", "/x/g.whl", "llm").args.at(-1), "/x/g.whl[llm]");
  });

  it("pass the document URI as the repair command's only argument", () => {
    assert.deepEqual(repairFileArguments("file:///shop/pricing.py"), ["file:///shop/pricing.py"]);
  });
});

describe("install check", () => {
  it("reports a Python that cannot be started", async () => {
    const check = await checkInstalled(join(tmpdir(), "no-such-python-here"));
    assert.equal(check.installed, false);
    assert.equal(check.installed === false && check.reason, "no-python");
  });

  it("tells a missing package from a broken one", () => {
    const missing = classifyCheck({ code: 1, stdout: "", stderr: "Traceback...\nModuleNotFoundError: No module named 'greenpatch'\n" });
    assert.deepEqual(missing, { installed: false, reason: "no-greenpatch", detail: "ModuleNotFoundError: No module named 'greenpatch'" });
    const broken = classifyCheck({ code: 1, stdout: "", stderr: "ImportError: cannot import name 'x' from 'pygls'\n" });
    assert.equal(broken.installed === false && broken.reason, "broken");
    assert.deepEqual(classifyCheck({ code: 0, stdout: "0.1.0", stderr: "" }), { installed: true, version: "0.1.0" });
  });

  it("explains the failures users hit with pip", () => {
    assert.match(explainPipFailure({ code: 1, stdout: "", stderr: "error: externally-managed-environment\n" }), /virtual environment/);
    assert.match(explainPipFailure({ code: 1, stdout: "", stderr: "/usr/bin/python3: No module named pip\n" }), /no pip/);
    assert.match(explainPipFailure({ code: 1, stdout: "", stderr: "ERROR: boom\n" }), /pip failed: ERROR: boom/);
  });
});

describe("bundled wheel", () => {
  it("is the newest greenpatch wheel in the folder", () => {
    const dir = mkdtempSync(join(tmpdir(), "gp-wheels-"));
    try {
      for (const name of ["greenpatch-0.9.0-py3-none-any.whl", "greenpatch-0.10.0-py3-none-any.whl", "other-1.0-py3-none-any.whl", "notes.txt"]) {
        writeFileSync(join(dir, name), "");
      }
      assert.equal(findBundledWheel(dir), join(dir, "greenpatch-0.10.0-py3-none-any.whl"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("is absent when the folder is", () => {
    assert.equal(findBundledWheel(join(tmpdir(), "gp-no-such-dir")), undefined);
  });

  it("compares versions numerically", () => {
    assert.ok(compareVersions("0.10.0", "0.9.1") > 0);
    assert.equal(compareVersions("1.0", "1.0.0"), 0);
  });
});

describe("model list", () => {
  const stdout = JSON.stringify([
    { name: "default", title: "Big", size: 1.1e9, installed: false, note: "best" },
    { name: "tiny", title: "Small", size: 0.2e9, installed: true, note: "" },
    { title: "no name" },
  ]);

  it("reads the rows of `greenpatch model list --json` and drops broken ones", () => {
    assert.deepEqual(parseModelList(stdout).map((row) => row.name), ["default", "tiny"]);
    assert.deepEqual(parseModelList("not json"), []);
  });

  it("offers the configured model first and marks installed ones", () => {
    const choices = modelChoices(parseModelList(stdout), ["tiny"]);
    assert.equal(choices[0].name, "tiny");
    assert.match(choices[0].description, /installed/);
    assert.match(choices[0].detail, /configured/);
  });
});

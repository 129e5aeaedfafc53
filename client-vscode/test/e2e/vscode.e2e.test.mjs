// The packaged extension in a real VS Code (code-server), driven by Playwright in headless Chromium as a user would.
// Run through .ci/vscode-e2e.sh, which provides the tools; it passes them in these variables:
//   CODE_SERVER_NODE  Node 24 binary        CODE_SERVER_ENTRY  code-server's out/node/entry.js
//   CHROMIUM          browser executable    GREENPATCH_VSIX    the packaged extension
//   GREENPATCH_PYTHON Python with greenpatch importable (set as greenpatch.python in the throwaway user settings)
//   GREENPATCH_E2E_ARTIFACTS  where screenshots and logs go (default: test-results/e2e)
// The server runs with the fake model engine (greenpatch.model.* = "fake"), so suggestions are fixed and instant.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const HERE = dirname(fileURLToPath(import.meta.url));
const CLIENT = resolve(HERE, "..", "..");
const REPO = resolve(CLIENT, "..");

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this test through .ci/vscode-e2e.sh`);
  return value;
}

const env = {
  node: required("CODE_SERVER_NODE"),
  entry: required("CODE_SERVER_ENTRY"),
  chromium: process.env.CHROMIUM || "/usr/bin/chromium",
  vsix: process.env.GREENPATCH_VSIX || join(CLIENT, "greenpatch.vsix"),
  python: process.env.GREENPATCH_PYTHON || join(REPO, ".venv", "bin", "python"),
  artifacts: resolve(process.env.GREENPATCH_E2E_ARTIFACTS || join(CLIENT, "test-results", "e2e")),
};

const STEP_TIMEOUT = 90_000;
const TEST_TIMEOUT = 240_000;

function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/** One code-server with a fresh profile, the extension installed, and the example workspace copy. */
class VsCode {
  constructor(name, { trusted, python = env.python }) {
    this.name = name;
    this.trusted = trusted;
    this.python = python;
    this.base = mkdtempSync(join(tmpdir(), `greenpatch-e2e-${name}-`));
    this.extensions = join(this.base, "extensions");
    this.userData = join(this.base, "user-data");
    this.workspace = join(this.base, "example");
    this.output = "";
    this.shots = 0;
  }

  async start() {
    cpSync(join(REPO, "tests", "data", "example"), this.workspace, {
      recursive: true,
      filter: (src) => !/(__pycache__|\.pytest_cache)/.test(src),
    });
    mkdirSync(join(this.userData, "User"), { recursive: true });
    writeFileSync(
      join(this.userData, "User", "settings.json"),
      JSON.stringify(
        {
          "greenpatch.python": typeof this.python === "function" ? this.python(this.base) : this.python,
          "greenpatch.model.completion": "fake",
          "greenpatch.model.repair": "fake",
          "greenpatch.logLevel": "debug",
          // Only the inline completion may offer text, so Tab accepts exactly that.
          "editor.quickSuggestions": { other: false, comments: false, strings: false },
          "editor.suggestOnTriggerCharacters": false,
          "editor.wordBasedSuggestions": "off",
          "editor.autoClosingBrackets": "never",
          "editor.inlineSuggest.enabled": true,
          "security.workspace.trust.startupPrompt": "never",
          "security.workspace.trust.banner": "always",
          "workbench.startupEditor": "none",
          "workbench.secondarySideBar.defaultVisibility": "hidden",
          "workbench.tips.enabled": false,
          "workbench.enableExperiments": false,
          "extensions.ignoreRecommendations": true,
          "extensions.autoCheckUpdates": false,
          "telemetry.telemetryLevel": "off",
          "git.enabled": false,
          "chat.disableAIFeatures": true,
        },
        null,
        2,
      ),
    );
    const childEnv = { ...process.env, XDG_CONFIG_HOME: join(this.base, "config"), XDG_DATA_HOME: join(this.base, "data") };
    const install = spawnSync(
      env.node,
      [env.entry, "--extensions-dir", this.extensions, "--user-data-dir", this.userData, "--install-extension", env.vsix],
      { encoding: "utf8", env: childEnv, timeout: 120_000 },
    );
    assert.equal(install.status, 0, `installing ${env.vsix} failed:\n${install.stdout}\n${install.stderr}`);
    assert.match(install.stdout, /greenpatch/i);

    this.port = await freePort();
    const args = [
      env.entry,
      "--bind-addr", `127.0.0.1:${this.port}`,
      "--auth", "none",
      "--disable-telemetry",
      "--disable-update-check",
      "--extensions-dir", this.extensions,
      "--user-data-dir", this.userData,
    ];
    if (this.trusted) args.push("--disable-workspace-trust");
    args.push(this.workspace);
    this.process = spawn(env.node, args, { env: childEnv, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const listening = new Promise((resolveStart, reject) => {
      const timer = setTimeout(() => reject(new Error(`code-server did not start:\n${this.output}`)), 60_000);
      const onData = (chunk) => {
        this.output += chunk.toString();
        if (/HTTP server listening/.test(this.output)) {
          clearTimeout(timer);
          resolveStart();
        }
      };
      this.process.stdout.on("data", onData);
      this.process.stderr.on("data", onData);
      this.process.on("exit", (code) => reject(new Error(`code-server exited (${code}):\n${this.output}`)));
    });
    await listening;

    this.browser = await chromium.launch({
      executablePath: env.chromium,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"],
    });
    this.page = await this.browser.newPage({ viewport: { width: 1400, height: 900 } });
    this.page.setDefaultTimeout(STEP_TIMEOUT);
    await this.page.goto(`http://127.0.0.1:${this.port}/?folder=${encodeURIComponent(this.workspace)}`);
    await this.page.locator(".monaco-workbench").waitFor();
    await this.page.locator(".statusbar").waitFor();
  }

  async shot(label) {
    mkdirSync(env.artifacts, { recursive: true });
    this.shots += 1;
    const file = join(env.artifacts, `${this.name}-${String(this.shots).padStart(2, "0")}-${label}.png`);
    await this.page.screenshot({ path: file });
    return file;
  }

  /** The greenpatch status bar item. */
  status() {
    return this.page.locator(".statusbar-item").filter({ hasText: "greenpatch" }).first();
  }

  async waitForStatus(pattern, timeout = STEP_TIMEOUT) {
    await this.page.waitForFunction(
      ([source, flags]) => {
        const re = new RegExp(source, flags);
        return [...document.querySelectorAll(".statusbar-item")].some((el) => {
          const text = `${el.textContent} ${el.getAttribute("aria-label") ?? ""} ${[...el.querySelectorAll(".codicon")].map((c) => c.className).join(" ")}`;
          return /greenpatch/.test(text) && re.test(text);
        });
      },
      [pattern.source, pattern.flags],
      { timeout },
    );
  }

  async openFile(name) {
    await this.page.locator(".monaco-workbench").click({ position: { x: 700, y: 400 } }).catch(() => {});
    await this.page.keyboard.press("Control+P");
    const input = this.page.locator(".quick-input-widget input");
    await input.waitFor();
    await input.fill(name);
    await this.page.locator(".quick-input-list .monaco-list-row").filter({ hasText: name }).first().waitFor();
    await this.page.keyboard.press("Enter");
    await this.page.locator(`.tab[aria-label*="${name}"]`).first().waitFor();
    await this.page.locator(".monaco-editor .view-lines").first().click();
  }

  /** Runs a command from the command palette by its title. */
  async runCommand(title) {
    await this.page.keyboard.press("F1");
    const input = this.page.locator(".quick-input-widget input");
    await input.waitFor();
    await input.fill(`>${title}`);
    await this.page.locator(".quick-input-list .monaco-list-row").filter({ hasText: title }).first().waitFor();
    await this.page.keyboard.press("Enter");
  }

  /** The editor's visible text, with the non-breaking spaces Monaco renders turned back into spaces. */
  async editorText() {
    const text = await this.page.locator(".monaco-editor .view-lines").first().innerText();
    return text.replace(/\u00a0/g, " ");
  }

  /** The ghost text Monaco shows at the cursor (it renders it in several spans: token colours, cursor split). */
  async ghostText() {
    await this.page.locator(".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text").first().waitFor({ state: "visible" });
    return this.page.evaluate(() =>
      [...document.querySelectorAll(".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text-decoration-preview, .monaco-editor .ghost-text")]
        .map((el) => el.textContent ?? "")
        .join("")
        .replace(/\u00a0/g, " "),
    );
  }

  /** Waits until the ghost text reads `expected` (it may render in steps); returns what was last seen. */
  async waitForGhostText(expected) {
    let seen = "";
    try {
      await this.page.waitForFunction(
        (want) => {
          const text = [...document.querySelectorAll(".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text-decoration-preview, .monaco-editor .ghost-text")]
            .map((el) => el.textContent ?? "").join("").replace(/\u00a0/g, " ");
          return text.trim() === want.trim();
        },
        expected,
        { timeout: 30_000 },
      );
    } catch {
      // fall through: the assertion below reports what was shown
    }
    seen = await this.ghostText().catch(() => "");
    return seen;
  }

  async problemsText() {
    return (await this.page.locator(".markers-panel").first().innerText()).replace(/\u00a0/g, " ");
  }

  extensionHostLog() {
    const logs = join(this.userData, "logs");
    const found = [];
    const walk = (dir) => {
      for (const entry of existsSync(dir) ? readdirSync(dir, { withFileTypes: true }) : []) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (/exthost|greenpatch/i.test(path) && entry.name.endsWith(".log")) found.push(path);
      }
    };
    walk(logs);
    return found.map((path) => `== ${path}\n${readFileSync(path, "utf8").slice(-6000)}`).join("\n");
  }

  async stop() {
    try {
      mkdirSync(env.artifacts, { recursive: true });
      writeFileSync(join(env.artifacts, `${this.name}-logs.txt`), `${this.extensionHostLog()}\n== code-server\n${this.output.slice(-6000)}`);
    } catch {
      // artifacts are best effort
    }
    await this.browser?.close().catch(() => {});
    if (this.process && this.process.exitCode === null) {
      const exited = new Promise((r) => this.process.once("exit", r));
      try {
        process.kill(-this.process.pid, "SIGTERM"); // its process group: code-server, its extension host, the Python server
      } catch {
        // already gone
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-this.process.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }, 5000);
      await exited;
      clearTimeout(timer);
    }
    try {
      // The extension host (and the Python server under it) can outlive code-server's exit: end the whole group.
      process.kill(-this.process.pid, "SIGKILL");
    } catch {
      // nothing left
    }
    rmSync(this.base, { recursive: true, force: true });
  }
}

async function withShotOnFailure(vscode, label, body) {
  try {
    await body();
  } catch (error) {
    await vscode.shot(`FAILED-${label}`).catch(() => {});
    error.message += `\n--- extension host log (tail) ---\n${vscode.extensionHostLog().slice(-4000)}`;
    throw error;
  }
}

describe("greenpatch in VS Code (code-server), trusted workspace", { timeout: TEST_TIMEOUT * 4 }, () => {
  const vscode = new VsCode("trusted", { trusted: true });
  before(() => vscode.start(), { timeout: 180_000 });
  after(() => vscode.stop());

  it("starts the server and shows it ready in the status bar", { timeout: TEST_TIMEOUT }, async () => {
    await withShotOnFailure(vscode, "status", async () => {
      await vscode.openFile("pricing.py");
      await vscode.waitForStatus(/codicon-check/);
      await vscode.shot("status-ready");
    });
  });

  it("opens the greenpatch menu from the status bar item and shows the server log", { timeout: TEST_TIMEOUT }, async () => {
    await withShotOnFailure(vscode, "menu", async () => {
      await vscode.status().click();
      const rows = vscode.page.locator(".quick-input-list .monaco-list-row");
      for (const label of ["Show log", "Restart server", "Install model", "Repair current file", "Turn completions off"]) {
        await rows.filter({ hasText: label }).first().waitFor();
      }
      await vscode.shot("status-menu");
      await rows.filter({ hasText: "Show log" }).first().click();
      await vscode.page.locator(".output-view, .panel .monaco-editor").filter({ hasText: /greenpatch/ }).first().waitFor();
      await vscode.shot("server-log");
      await vscode.page.locator(".monaco-editor .view-lines").first().click();
    });
  });

  it("shows an inline completion as ghost text and accepts it with Tab", { timeout: TEST_TIMEOUT }, async () => {
    await withShotOnFailure(vscode, "completion", async () => {
      await vscode.page.keyboard.press("Control+End");
      await vscode.page.keyboard.press("Enter");
      await vscode.page.keyboard.press("Enter");
      await vscode.page.keyboard.type("def add(", { delay: 30 });
      assert.equal((await vscode.waitForGhostText("a, b):")).trim(), "a, b):");
      await vscode.shot("ghost-text");
      await vscode.page.keyboard.press("Tab");
      await vscode.page.waitForFunction(() => document.querySelector(".monaco-editor .view-lines")?.textContent?.replace(/\u00a0/g, " ").includes("def add(a, b):"));
      // A second suggestion on the indented body line: the function stays valid Python for the repair step.
      await vscode.page.keyboard.press("Enter");
      await vscode.page.keyboard.type("return a +", { delay: 30 });
      assert.equal((await vscode.waitForGhostText("b")).trim(), "b");
      await vscode.page.keyboard.press("Tab");
      await vscode.page.waitForFunction(() => document.querySelector(".monaco-editor .view-lines")?.textContent?.replace(/\u00a0/g, " ").includes("return a + b"));
      await vscode.shot("completion-accepted");
      assert.match(await vscode.editorText(), /def add\(a, b\):\s+return a \+ b/);
    });
  });

  it("on save, shows the failing test as a diagnostic and applies the verified quick fix", { timeout: TEST_TIMEOUT }, async () => {
    await withShotOnFailure(vscode, "repair", async () => {
      await vscode.page.keyboard.press("Control+S");
      await vscode.waitForStatus(/verifying/, 60_000);
      await vscode.shot("status-verifying");
      await vscode.page.keyboard.press("Control+Shift+M");
      const problem = vscode.page.locator(".markers-panel .monaco-list-row").filter({ hasText: "test_bulk_discount_starts_at_ten" }).first();
      await problem.waitFor({ timeout: 180_000 });
      assert.match(await vscode.problemsText(), /verified fix/);
      await vscode.shot("diagnostic");
      // Double-click opens the problem in the editor with the cursor on it and the focus in the editor.
      await problem.dblclick();
      await vscode.page.locator(".monaco-editor.focused").first().waitFor();
      await vscode.page.keyboard.press("Control+.");
      const menu = vscode.page.locator(".action-widget").filter({ hasText: /tests? pass/ }).first();
      await menu.waitFor();
      await vscode.shot("quick-fix-menu");
      const before = await vscode.editorText();
      await vscode.page.keyboard.press("Enter");
      await vscode.page.waitForFunction(
        (old) => (document.querySelector(".monaco-editor .view-lines")?.innerText ?? "").replace(/\u00a0/g, " ") !== old,
        before,
      );
      await vscode.shot("fix-applied");
      await vscode.page.keyboard.press("Control+S");
      // Saved with the fix, the tests run again and pass: the failure leaves the Problems panel.
      await problem.waitFor({ state: "detached", timeout: 180_000 });
      await vscode.shot("fix-saved-tests-pass");
      const tests = spawnSync(env.python, ["-m", "pytest", "-q", "-p", "no:cacheprovider"], { cwd: vscode.workspace, encoding: "utf8" });
      assert.equal(tests.status, 0, `the example's tests after the quick fix:\n${tests.stdout}`);
    });
  });
});

describe("greenpatch in VS Code (code-server), restricted workspace", { timeout: TEST_TIMEOUT * 3 }, () => {
  const vscode = new VsCode("restricted", { trusted: false });
  before(() => vscode.start(), { timeout: 180_000 });
  after(() => vscode.stop());

  it("runs no tests on save and says that the workspace is not trusted", { timeout: TEST_TIMEOUT }, async () => {
    await withShotOnFailure(vscode, "untrusted", async () => {
      await vscode.openFile("pricing.py");
      await vscode.waitForStatus(/codicon-check/);
      await vscode.page.keyboard.press("Control+End");
      await vscode.page.keyboard.type("\n# restricted\n");
      await vscode.page.keyboard.press("Control+S");
      const toast = vscode.page.locator(".notification-toast").filter({ hasText: /trust/i }).first();
      await toast.waitFor();
      await vscode.shot("untrusted-notice");
      await vscode.page.keyboard.press("Control+Shift+M");
      await vscode.page.locator(".markers-panel").first().waitFor();
      assert.doesNotMatch(await vscode.problemsText(), /test_bulk_discount_starts_at_ten/);
      await vscode.waitForStatus(/codicon-check/, 5_000);
      await vscode.shot("untrusted-no-tests");
    });
  });

  it("still shows inline completions", { timeout: TEST_TIMEOUT }, async () => {
    await withShotOnFailure(vscode, "untrusted-completion", async () => {
      await vscode.page.locator(".monaco-editor .view-lines").first().click();
      await vscode.page.keyboard.press("Control+End");
      await vscode.page.keyboard.type("\ndef add(", { delay: 30 });
      assert.equal((await vscode.waitForGhostText("a, b):")).trim(), "a, b):");
      await vscode.shot("untrusted-ghost-text");
      // Leave valid Python behind for the next test: dismiss the suggestion and clear the line.
      await vscode.page.keyboard.press("Escape");
      await vscode.page.keyboard.press("Home");
      await vscode.page.keyboard.press("Shift+End");
      await vscode.page.keyboard.press("Backspace");
    });
  });

  it("runs the tests once the user trusts the workspace", { timeout: TEST_TIMEOUT }, async () => {
    await withShotOnFailure(vscode, "trust-granted", async () => {
      await vscode.runCommand("Workspaces: Manage Workspace Trust");
      await vscode.page.locator(".workspace-trust-editor .monaco-button").filter({ hasText: /^Trust/ }).first().click();
      await vscode.page.locator(".statusbar-item").filter({ hasText: "Restricted Mode" }).waitFor({ state: "detached" });
      await vscode.shot("trusted-now");
      await vscode.runCommand("View: Close Editor"); // the trust editor opens as a modal over the workbench
      await vscode.page.locator(".workspace-trust-editor").waitFor({ state: "hidden" });
      await vscode.openFile("pricing.py");
      await vscode.page.keyboard.press("Control+End");
      await vscode.page.keyboard.type("\n# trusted now\n");
      await vscode.page.keyboard.press("Control+S");
      await vscode.page.keyboard.press("Control+Shift+M");
      await vscode.page.locator(".markers-panel .monaco-list-row").filter({ hasText: "test_bulk_discount_starts_at_ten" }).first().waitFor({ timeout: 180_000 });
      await vscode.shot("trusted-now-diagnostic");
    });
  });

});

describe("greenpatch in VS Code (code-server), Python without greenpatch", { timeout: TEST_TIMEOUT * 2 }, () => {
  // A fresh virtual environment: the interpreter runs, but greenpatch is not installed in it.
  const bare = (base) => {
    const venv = join(base, "bare-venv");
    const made = spawnSync(env.python, ["-m", "venv", "--without-pip", venv], { encoding: "utf8" });
    assert.equal(made.status, 0, `python -m venv failed: ${made.stderr}`);
    return join(venv, "bin", "python");
  };
  const vscode = new VsCode("not-installed", { trusted: true, python: bare });
  before(() => vscode.start(), { timeout: 180_000 });
  after(() => vscode.stop());

  it("says greenpatch is not installed there and offers to install it", { timeout: TEST_TIMEOUT }, async () => {
    await withShotOnFailure(vscode, "not-installed", async () => {
      await vscode.openFile("pricing.py");
      const toast = vscode.page.locator(".notification-toast").filter({ hasText: /greenpatch is not installed/ }).first();
      await toast.waitFor();
      await toast.locator(".monaco-button").filter({ hasText: /^Install$/ }).first().waitFor();
      await vscode.waitForStatus(/codicon-error/);
      await vscode.shot("install-offer");
    });
  });

  it("runs pip on Install and explains why it failed in a Python without pip", { timeout: TEST_TIMEOUT }, async () => {
    await withShotOnFailure(vscode, "install-fails", async () => {
      const offer = vscode.page.locator(".notification-toast").filter({ hasText: /greenpatch is not installed/ }).first();
      await offer.locator(".monaco-button").filter({ hasText: /^Install$/ }).first().click();
      await vscode.page.locator(".notification-toast").filter({ hasText: /Installing greenpatch failed: this Python has no pip/ }).first().waitFor();
      await vscode.shot("install-no-pip");
    });
  });
});

// Command lines the extension runs, and the checks around them. Plain Node (no `vscode`), so tests call it.

import { execFile } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

export interface CommandLine {
  command: string;
  args: string[];
}

/** The language server on stdio. */
export function serverCommand(python: string): CommandLine {
  return { command: python, args: ["-m", "greenpatch", "serve"] };
}

/** `greenpatch model install NAME`, run in a terminal so the user sees the download. */
export function modelInstallCommand(python: string, name: string): CommandLine {
  return { command: python, args: ["-m", "greenpatch", "model", "install", name] };
}

/** `greenpatch model list --json`: the names offered by "Install model". */
export function modelListCommand(python: string): CommandLine {
  return { command: python, args: ["-m", "greenpatch", "model", "list", "--json"] };
}

/**
 * pip install of the wheel bundled in the .vsix. `extra` adds an optional dependency group (`llm`: the
 * llama.cpp engine, which pip may have to compile).
 */
export function pipInstallCommand(python: string, wheel: string, extra?: string): CommandLine {
  return { command: python, args: ["-m", "pip", "install", "--upgrade", extra ? `${wheel}[${extra}]` : wheel] };
}

/** Arguments of the server's `greenpatch.repairFile` command (workspace/executeCommand). */
export function repairFileArguments(uri: string): [string] {
  return [uri];
}

export const REPAIR_FILE_COMMAND = "greenpatch.repairFile";

export type InstallCheck =
  | { installed: true; version: string }
  | { installed: false; reason: "no-python" | "no-greenpatch" | "broken"; detail: string };

const CHECK_SCRIPT = "import sys, greenpatch; sys.stdout.write(greenpatch.__version__)";

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Set when the program could not be started at all (ENOENT, EACCES). */
  spawnError?: string;
}

export function run(cmd: CommandLine, options: { timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      cmd.command,
      cmd.args,
      { timeout: options.timeoutMs ?? 30_000, cwd: options.cwd, env: options.env, maxBuffer: 4 * 1024 * 1024, windowsHide: true },
      (error, stdout, stderr) => {
        const err = error as (NodeJS.ErrnoException & { code?: number | string }) | null;
        if (err && typeof err.code === "string") {
          resolve({ code: null, stdout: String(stdout), stderr: String(stderr), spawnError: `${err.code}: ${err.message}` });
          return;
        }
        resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** Whether `python -c "import greenpatch"` works, and if not, why. */
export async function checkInstalled(python: string, env?: NodeJS.ProcessEnv): Promise<InstallCheck> {
  const result = await run({ command: python, args: ["-c", CHECK_SCRIPT] }, { timeoutMs: 30_000, env });
  return classifyCheck(result);
}

export function classifyCheck(result: RunResult): InstallCheck {
  if (result.spawnError) {
    return { installed: false, reason: "no-python", detail: result.spawnError };
  }
  if (result.code === 0) {
    return { installed: true, version: result.stdout.trim() };
  }
  const stderr = result.stderr.trim();
  if (/ModuleNotFoundError: No module named '?greenpatch'?/.test(stderr)) {
    return { installed: false, reason: "no-greenpatch", detail: lastLine(stderr) };
  }
  return { installed: false, reason: "broken", detail: lastLine(stderr) || `exit code ${result.code}` };
}

function lastLine(text: string): string {
  const lines = text.split(/\r?\n/).filter((line) => line.trim());
  return lines[lines.length - 1] ?? "";
}

/** The newest greenpatch wheel in `dir` (the .vsix's `bundled/`), or undefined. */
export function findBundledWheel(dir: string): string | undefined {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return undefined;
  }
  const wheels = names.filter((name) => /^greenpatch-[^-]+-.*\.whl$/.test(name));
  wheels.sort((a, b) => compareVersions(versionOf(b), versionOf(a)));
  return wheels.length ? join(dir, wheels[0]) : undefined;
}

function versionOf(wheel: string): string {
  return wheel.split("-")[1] ?? "0";
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+]/).map((part) => Number.parseInt(part, 10) || 0);
  const pb = b.split(/[.+]/).map((part) => Number.parseInt(part, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (diff) return diff;
  }
  return 0;
}

/** A one-line reason for a failed pip install, with what to do. */
export function explainPipFailure(result: RunResult): string {
  const text = `${result.stderr}\n${result.stdout}`;
  if (result.spawnError) {
    return `could not start Python (${result.spawnError}); set greenpatch.python to an interpreter`;
  }
  if (/externally-managed-environment/.test(text)) {
    return "this Python is managed by the system and refuses pip installs; create a virtual environment and set greenpatch.python to its python";
  }
  if (/No module named pip/.test(text)) {
    return "this Python has no pip; install pip or choose another interpreter with greenpatch.python";
  }
  return `pip failed: ${lastLine(result.stderr) || lastLine(result.stdout) || `exit code ${result.code}`}`;
}

export interface ModelRow {
  name: string;
  title: string;
  size: number;
  installed: boolean;
  note: string;
}

/** Rows of `greenpatch model list --json`; anything unreadable is dropped. */
export function parseModelList(stdout: string): ModelRow[] {
  let data: unknown;
  try {
    data = JSON.parse(stdout);
  } catch {
    return [];
  }
  if (!Array.isArray(data)) return [];
  return data
    .filter((row): row is Record<string, unknown> => typeof row === "object" && row !== null && typeof row.name === "string")
    .map((row) => ({
      name: row.name as string,
      title: typeof row.title === "string" ? row.title : "",
      size: typeof row.size === "number" ? row.size : 0,
      installed: row.installed === true,
      note: typeof row.note === "string" ? row.note : "",
    }));
}

/** Quick-pick entries for "Install model": the configured models first, installed ones marked. */
export function modelChoices(rows: readonly ModelRow[], configured: readonly string[]): { name: string; label: string; description: string; detail: string }[] {
  const rank = (row: ModelRow) => (configured.includes(row.name) ? 0 : 1);
  return [...rows]
    .sort((a, b) => rank(a) - rank(b))
    .map((row) => ({
      name: row.name,
      label: row.name,
      description: `${row.title} · ${(row.size / 1e9).toFixed(2)} GB${row.installed ? " · installed" : ""}`,
      detail: [configured.includes(row.name) ? "configured" : "", row.note].filter(Boolean).join(" · "),
    }));
}

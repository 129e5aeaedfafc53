// Builds the greenpatch server wheel into bundled/ so that the .vsix can install the server into the user's Python.
// Python: $GREENPATCH_PYTHON, else ../.venv/bin/python, else python3. Needs pip (builds with hatchling).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve("..");
const venv = join(root, ".venv", process.platform === "win32" ? "Scripts/python.exe" : "bin/python");
const python = process.env.GREENPATCH_PYTHON || (existsSync(venv) ? venv : "python3");
const out = resolve("bundled");
mkdirSync(out, { recursive: true });
for (const name of readdirSync(out)) if (name.endsWith(".whl")) rmSync(join(out, name));
const result = spawnSync(python, ["-m", "pip", "wheel", "--no-deps", "--quiet", "-w", out, root], { stdio: "inherit" });
if (result.status !== 0) {
  console.error(`bundle-wheel: "${python} -m pip wheel" failed (exit ${result.status ?? result.error}); the .vsix needs the server wheel`);
  process.exit(1);
}
console.log(`bundle-wheel: ${readdirSync(out).filter((n) => n.endsWith(".whl")).join(", ")}`);

// Writes package.json's contributes.configuration from src/settings.ts (the single list of settings).
// Run after changing SETTINGS: `node scripts/sync-package.mjs`. A unit test fails when they disagree.
import { build } from "esbuild";
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";

const dir = mkdtempSync(join(tmpdir(), "greenpatch-sync-"));
try {
  const outfile = join(dir, "settings.cjs");
  await build({ entryPoints: ["src/settings.ts"], bundle: true, platform: "node", format: "cjs", outfile, logLevel: "warning" });
  const { configurationContribution } = createRequire(import.meta.url)(outfile);
  const pkg = JSON.parse(readFileSync("package.json", "utf8"));
  pkg.contributes.configuration = configurationContribution();
  writeFileSync("package.json", JSON.stringify(pkg, null, 2) + "\n");
  console.log(`package.json: ${Object.keys(pkg.contributes.configuration.properties).length} settings`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

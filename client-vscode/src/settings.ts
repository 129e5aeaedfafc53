// The extension's settings, the object the server receives, and the choice of interpreter.
//
// Pure (no `vscode` import) so that the unit tests run under plain Node. The same names and defaults as
// server/greenpatch/config.py; package.json's `contributes.configuration` is generated from SETTINGS by
// `node scripts/sync-package.mjs`, and a unit test keeps the two in step.

export type SettingType = "boolean" | "integer" | "number" | "string";

export interface SettingSpec {
  /** Dotted key under `greenpatch`, camelCase: `completions.debounceMs`. */
  key: string;
  type: SettingType;
  default: boolean | number | string;
  description: string;
  minimum?: number;
  maximum?: number;
  enum?: string[];
  /** "machine": only in user settings (security-relevant: which program runs, where code is sent). */
  scope?: "machine" | "resource" | "window";
}

export const SECTION = "greenpatch";

export const SETTINGS: readonly SettingSpec[] = [
  {
    key: "completions.enabled",
    type: "boolean",
    default: true,
    description: "Show inline (ghost text) completions from the local model.",
  },
  {
    key: "completions.debounceMs",
    type: "integer",
    default: 120,
    minimum: 0,
    description: "Milliseconds of typing pause before a completion is requested.",
  },
  {
    key: "completions.maxTokens",
    type: "integer",
    default: 64,
    minimum: 1,
    description: "Most tokens the model may generate for one completion.",
  },
  {
    key: "completions.gateThreshold",
    type: "number",
    default: -0.25,
    maximum: 0,
    description:
      "Mean token log-probability below which a suggestion is withheld. 0 hides everything, -99 shows everything.",
  },
  {
    key: "completions.cutLogprob",
    type: "number",
    default: -0.75,
    maximum: 0,
    description:
      "Show a suggestion only up to its first token below this log-probability; typing or accepting that far shows the rest once the model is sure of it. -99: shown whole.",
  },
  {
    key: "completions.contextTokens",
    type: "integer",
    default: 1024,
    minimum: 64,
    description: "Token budget of the prompt (code before the cursor, nearby definitions, imported symbols).",
  },
  {
    key: "completions.suffixLines",
    type: "integer",
    default: 10,
    minimum: 0,
    description: "Lines after the cursor given to the model as the fill-in-the-middle suffix.",
  },
  {
    key: "completions.blockSeconds",
    type: "number",
    default: 2,
    minimum: 0,
    description: "Seconds a multi-line (block) suggestion may take: when they are up it ends at the next line end and shows the complete lines it has. 0: no limit.",
  },
  {
    key: "completions.alternatives",
    type: "integer",
    default: 8,
    minimum: 0,
    description: "On an empty line above code, when the model would rather not end the fill after its line (it does not close the gap to the code below), sample this many other lines and show the likeliest whole fill (line and end). 0: off.",
  },
  {
    key: "completions.prefetch",
    type: "boolean",
    default: false,
    description: "While a line suggestion is shown, compute the suggestion for the line after it as it will be once accepted and Enter pressed, so that it is there sooner. Off by default: in the project's typing benchmark it answered no next line ahead and made the slowest suggestions slower.",
  },
  {
    key: "completions.prepareAhead",
    type: "boolean",
    default: true,
    description: "While the model is idle, read ahead the code where you are likely to type next (where the cursor rests, a file you open, the line after a suggestion), so that the first suggestion there comes sooner. Typing always comes first: a request stops this work at once.",
  },
  {
    key: "completions.shortPromptTokens",
    type: "integer",
    default: 192,
    minimum: 0,
    description: "With prepareAhead: the first suggestion at a place the model has not read yet comes from the lines around the cursor only (about this many tokens, no code from other files), so that it comes in seconds instead of ten or more on a slow machine; the full view is read behind it for what you type next there. 0: always the full view.",
  },
  {
    key: "completions.examples",
    type: "boolean",
    default: true,
    description: "Where the cursor is in a function whose docstring has doctest examples, run them on the suggestion in a sandbox (trusted workspaces only): a line that fails them is replaced by a sampled line that passes, where one does.",
  },
  {
    key: "completions.examplesSeconds",
    type: "number",
    default: 2,
    minimum: 0.1,
    description: "Wall-clock limit of one run of a function's docstring examples (importing its module included).",
  },
  {
    key: "completions.record",
    type: "boolean",
    default: true,
    description: "Keep a log of the suggestions shown and whether each was accepted, on this machine only (the user cache, never the workspace, never sent anywhere): `greenpatch stats` reads it and `completions.acceptTarget` learns from it.",
  },
  {
    key: "completions.acceptTarget",
    type: "number",
    default: 0,
    minimum: 0,
    maximum: 1,
    description: "Show only suggestions of a confidence you accepted at least this share of the time (0.5: half): the gate's threshold is calibrated on your recorded suggestions once there are 50 (in this workspace, else in all). 0: the fixed `completions.gateThreshold`.",
  },
  {
    key: "repair.onSave",
    type: "boolean",
    default: true,
    description: "On save, run the affected tests and, when one fails, look for a fix that makes it pass.",
  },
  {
    key: "repair.candidates",
    type: "integer",
    default: 8,
    minimum: 1,
    description: "Candidate fixes generated per round; each is tested before it is shown.",
  },
  {
    key: "repair.rounds",
    type: "integer",
    default: 2,
    minimum: 1,
    description: "Repair rounds: a later round sees why the earlier candidates failed.",
  },
  {
    key: "repair.maxSeconds",
    type: "number",
    default: 120,
    minimum: 1,
    description: "Time limit of one repair, generation and tests included.",
  },
  {
    key: "verify.testTimeout",
    type: "number",
    default: 30,
    minimum: 0,
    description: "Seconds one test may take (setup, call and teardown); past it that test fails alone and the run goes on. 0: no per-test limit.",
  },
  {
    key: "verify.runTimeout",
    type: "number",
    default: 300,
    minimum: 1,
    description: "Seconds one sandboxed test run may take in all; a repair's own time limit bounds it too.",
  },
  {
    key: "verify.parallel",
    type: "integer",
    default: 2,
    minimum: 1,
    description: "Test runs (candidate fixes) verified at the same time.",
  },
  {
    key: "verify.memoryMb",
    type: "integer",
    default: 2048,
    minimum: 64,
    description: "Memory limit of one test run, in MiB.",
  },
  {
    key: "model.completion",
    type: "string",
    default: "default",
    description: "Completion model: a name from `greenpatch model list` or the path of a local .gguf file.",
    scope: "machine",
  },
  {
    key: "model.repair",
    type: "string",
    default: "default",
    description: "Repair model: a name from `greenpatch model list` or the path of a local .gguf file.",
    scope: "machine",
  },
  {
    key: "model.cacheDir",
    type: "string",
    default: "",
    description: "Where models are stored. Empty: the user cache directory.",
    scope: "machine",
  },
  {
    key: "model.threads",
    type: "integer",
    default: 0,
    minimum: 0,
    description: "CPU threads for the model. 0: chosen from the number of cores.",
  },
  {
    key: "engine.url",
    type: "string",
    default: "",
    description:
      "Empty: run the model on this machine with llama.cpp. Otherwise the base URL of an OpenAI-compatible server (your code is sent there).",
    scope: "machine",
  },
  {
    key: "engine.model",
    type: "string",
    default: "",
    description: "Model name to ask the OpenAI-compatible server for (with engine.url).",
  },
  {
    key: "engine.apiKeyEnv",
    type: "string",
    default: "",
    description: "Name of the environment variable holding the API key for engine.url (the key itself is never stored).",
    scope: "machine",
  },
  {
    key: "engine.timeout",
    type: "number",
    default: 30,
    minimum: 1,
    description: "Seconds to wait for the OpenAI-compatible server.",
  },
  {
    key: "engine.logprobs",
    type: "boolean",
    default: true,
    description:
      "Ask the OpenAI-compatible server for token log-probabilities (the confidence gate and ranking use them). llama-cpp-python's server computes them slowly: turn off there to trade the gate for speed.",
  },
  {
    key: "python",
    type: "string",
    default: "",
    description:
      "Python interpreter that runs the greenpatch server (and, through it, your tests). Empty: the Python extension's selected interpreter, else python3.",
    scope: "machine",
  },
  {
    key: "logLevel",
    type: "string",
    default: "info",
    enum: ["debug", "info", "warning", "error"],
    description: "How much the server writes to the greenpatch output channel.",
  },
];

export type Json = boolean | number | string | null | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** Looks up a setting the way `vscode.workspace.getConfiguration("greenpatch").get(key)` does. */
export type SettingGetter = (key: string) => unknown;

function setPath(target: JsonObject, key: string, value: Json): void {
  const parts = key.split(".");
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (typeof next !== "object" || next === null || Array.isArray(next)) {
      node[part] = {};
    }
    node = node[part] as JsonObject;
  }
  node[parts[parts.length - 1]] = value;
}

function valid(spec: SettingSpec, value: unknown): value is Json {
  switch (spec.type) {
    case "boolean":
      return typeof value === "boolean";
    case "integer":
      return typeof value === "number" && Number.isInteger(value);
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "string":
      return typeof value === "string";
  }
}

/**
 * The object the server receives as `initializationOptions` and in `workspace/didChangeConfiguration`
 * (`{settings: {greenpatch: <this>}}`): every setting, nested and camelCase like config.py, plus `trusted`.
 * A value of the wrong type (hand-edited settings.json) falls back to its default rather than failing the server.
 */
export function serverSettings(get: SettingGetter, trusted: boolean): JsonObject {
  const out: JsonObject = {};
  for (const spec of SETTINGS) {
    const value = get(spec.key);
    setPath(out, spec.key, valid(spec, value) ? value : spec.default);
  }
  out.trusted = trusted;
  return out;
}

/** The server settings with every option at its default. */
export function defaultServerSettings(trusted = true): JsonObject {
  return serverSettings(() => undefined, trusted);
}

/** `contributes.configuration` for package.json. */
export function configurationContribution(): JsonObject {
  const properties: JsonObject = {};
  for (const spec of SETTINGS) {
    const property: JsonObject = {
      type: spec.type,
      default: spec.default,
      markdownDescription: spec.description,
    };
    if (spec.minimum !== undefined) property.minimum = spec.minimum;
    if (spec.maximum !== undefined) property.maximum = spec.maximum;
    if (spec.enum !== undefined) property.enum = spec.enum;
    if (spec.scope !== undefined) property.scope = spec.scope;
    properties[`${SECTION}.${spec.key}`] = property;
  }
  return { title: "greenpatch", properties };
}

/** Settings whose change needs a new server process rather than a configuration notification. */
export const RESTART_SETTINGS: readonly string[] = ["python"];

export interface InterpreterInputs {
  /** `greenpatch.python` (in a restricted workspace VS Code gives only the user-level value). */
  configured: string;
  /** The Python extension's selected interpreter, when that extension is present and has one. */
  pythonExtension?: string;
  trusted: boolean;
  /** File-system paths of the workspace folders. */
  workspaceFolders: readonly string[];
  platform?: NodeJS.Platform;
}

export interface InterpreterChoice {
  python: string;
  source: "setting" | "python extension" | "default";
  /** Why a candidate was passed over, for the log. */
  note?: string;
}

function inside(path: string, folder: string, platform: NodeJS.Platform): boolean {
  const sep = platform === "win32" ? "\\" : "/";
  const norm = (p: string) => (platform === "win32" ? p.toLowerCase() : p).replace(/[\\/]+$/, "");
  const p = norm(path);
  const f = norm(folder);
  return p === f || p.startsWith(f + sep) || (platform === "win32" && p.startsWith(f + "/"));
}

/**
 * Which Python starts the server: `greenpatch.python`, else the Python extension's interpreter, else python3.
 * In a restricted workspace an interpreter inside the workspace (its own .venv) is not run: starting it would
 * run code the user has not trusted.
 */
export function chooseInterpreter(inputs: InterpreterInputs): InterpreterChoice {
  const platform = inputs.platform ?? process.platform;
  const configured = inputs.configured.trim();
  if (configured) {
    return { python: configured, source: "setting" };
  }
  const fallback = platform === "win32" ? "python" : "python3";
  const fromExtension = inputs.pythonExtension?.trim();
  if (fromExtension) {
    if (!inputs.trusted && inputs.workspaceFolders.some((folder) => inside(fromExtension, folder, platform))) {
      return {
        python: fallback,
        source: "default",
        note: `not starting ${fromExtension} from the restricted workspace; using ${fallback}`,
      };
    }
    return { python: fromExtension, source: "python extension" };
  }
  return { python: fallback, source: "default" };
}

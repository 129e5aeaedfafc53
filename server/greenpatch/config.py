"""Typed settings with defaults.

The same names travel everywhere: VS Code settings `greenpatch.<section>.<name>`, LSP `initializationOptions`
(`{"completions": {"enabled": true}, ...}`), `workspace/didChangeConfiguration` (`{"greenpatch": {...}}`) and the
README's settings table. A missing option takes its default; an unknown one is ignored; a value of the wrong type
or out of range is a ConfigError naming the option and the value, and that one option takes its default (the
server reports it and keeps every other setting). `trusted` fails closed: any value but `true` or `false`, and
options that are not an object at all, mean untrusted; a client that never sends it keeps the default.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from greenpatch.errors import ConfigError


@dataclass
class CompletionSettings:
    enabled: bool = True
    debounce_ms: int = 120
    max_tokens: int = 64
    # Mean token log-probability below which a suggestion is withheld; 0 hides everything, -99 shows everything.
    # -0.25: `greenpatch bench complete --tasks 100` on two slices of HumanEval single-line infilling (--offset 0
    # and 5, 10 suffix lines, with the end check of completion/alternatives.py, 8 alternatives) showed 87.5 % of
    # suggestions, 94.3 % of them right; -0.2: 83 %, 94.0 % (both measured again with filters.fit_indentation).
    # On a held-out slice (--offset 7) -0.25 showed 89 %, 92.1 % right, and -0.2 84 %, 92.9 %: not worth moving
    # the default.
    gate_threshold: float = -0.25
    # A token log-probability below which a suggestion is shown only up to that token (what follows an unsure
    # token is a guess built on a guess; typing or accepting that far shows the rest once the model is sure of it);
    # -99: shown whole. -0.75: `greenpatch bench complete --tasks 0 --keystrokes 0 --real-lines 8` (default model;
    # the grid of gates and cuts judged on the same keystrokes, bench/realcode.py): greenpatch's files 73.6 % of the
    # shown characters right instead of 69.0 %, 0.88 of the characters shown; pydantic-graph's 68.4 % instead of
    # 54.3 %, 0.77 as many shown. -0.5 was righter (82 %, 88 %) but showed only 0.73 / 0.58 as much (at this gate;
    # a looser gate would show more, and HumanEval's whole lines less precisely). Checked on mcp's files, never tuned
    # on: docs/benchmarks.md.
    cut_logprob: float = -0.75
    context_tokens: int = 1024
    # 10: `greenpatch bench complete --tasks 100 --suffix-lines N` passed 87 % and 89 % of two slices (--offset 0,
    # 5) with 10 lines, 85 % and 85 % with 3; 40 lines gave no more (87 % on the first slice).
    suffix_lines: int = 10
    # A block suggestion (on an empty line that opens a body) ends at the first line end after this many seconds
    # and shows the complete lines it has: a whole 64-token block took ~6 s with the default model on 2 cores (ad hoc).
    # 0: no limit.
    block_seconds: float = 2.0
    # On an empty line with code below, when the model would not end the fill after its line, sample this many
    # lines and show the most likely whole fill (completion/alternatives.py; README for the figures). They decode
    # side by side in one batch: 8 cost about what 3 one by one did, and passed 1 more task of 100 on 2 of 3 slices
    # of `greenpatch bench complete --tasks 100 --alternatives N`. 0: off.
    alternatives: int = 8
    # While a line suggestion is shown (and typed along, which needs no model), compute the suggestion for the
    # line after it as it will be once accepted and Enter pressed (completion/service.py). Off: in the typing
    # replay of `greenpatch bench complete` it answered no next line (few suggestions there are exactly the line
    # typed) and made p95 worse (README, "prefetch" mode).
    prefetch: bool = False
    # While the engine is idle, evaluate the prompt where the user is likely to type next (a file opened, the cursor
    # resting, the first edit at a new place, the line after a shown suggestion; completion/ahead.py), so that the
    # first suggestion there does not wait for it. A request preempts it within a prompt step.
    prepare_ahead: bool = True
    # With prepareAhead, the first suggestion at a place whose full prompt is not evaluated yet (a cold jump, a rest
    # too short to prepare it) comes from a prompt of about this many tokens (the lines around the cursor, no repo
    # context), and the full one is prepared behind it for the next keystroke there. 0: always the full prompt.
    short_prompt_tokens: int = 192
    # Where the cursor is in a function whose docstring has doctest examples, run them on the suggestion in a
    # sandbox (trusted workspaces only; completion/examples.py): a line that fails them in a whole function is
    # replaced by the likeliest sampled line that passes them; where none does it stays. The gate decides after.
    examples: bool = True
    # Wall-clock limit of one such run (importing the module and running the examples).
    examples_seconds: float = 2.0
    # Keep a log of the suggestions shown and whether each was accepted, on this machine only (the user cache,
    # completion/feedback.py): `greenpatch stats` reads it, and acceptTarget calibrates the gate on it.
    record: bool = True
    # Show only suggestions of a confidence this user accepted at least this share of the time (0.5: half), the
    # gate's threshold calibrated on the recorded outcomes once there are 50; 0: the fixed gateThreshold.
    accept_target: float = 0.0


@dataclass
class RepairSettings:
    on_save: bool = True
    candidates: int = 8
    rounds: int = 2
    max_seconds: float = 120.0


@dataclass
class VerifySettings:
    # Seconds one test may take (setup, call and teardown): past it the test fails alone, "timed out after N s",
    # and the run goes on with the others. 0: no per-test limit.
    test_timeout: float = 30.0
    # Seconds one sandboxed run of pytest may take in all (the outer bound; a repair's own deadline is shorter).
    run_timeout: float = 300.0
    parallel: int = 2
    memory_mb: int = 2048


@dataclass
class ModelSettings:
    # A name from models/manifest.toml or a path to a local .gguf file.
    completion: str = "default"
    repair: str = "default"
    cache_dir: str = ""
    threads: int = 0


@dataclass
class EngineSettings:
    # Empty: run the model in-process with llama.cpp. Otherwise an OpenAI-compatible server's base URL.
    url: str = ""
    model: str = ""
    api_key_env: str = ""
    timeout: float = 30.0
    # Ask the server for token log-probabilities (the confidence gate and ranking use them). llama-cpp-python's
    # server computes them in Python, slowly; turn off there to trade the gate for speed.
    logprobs: bool = True


@dataclass
class Settings:
    completions: CompletionSettings = field(default_factory=CompletionSettings)
    repair: RepairSettings = field(default_factory=RepairSettings)
    verify: VerifySettings = field(default_factory=VerifySettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    # Interpreter that runs the workspace's tests; empty: .venv/venv in the workspace, else greenpatch's own.
    python: str = ""
    # Whether the client trusts the workspace. Untrusted: no workspace code runs (no tests, no repair).
    trusted: bool = True
    log_level: str = "info"


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# Lower bounds of numeric settings (inclusive, or exclusive where the value must be more than it): a negative
# memory limit or a zero timeout would break every run, so such a value takes the default like a wrong type.
_AT_LEAST: dict[str, float] = {
    "completions.debounceMs": 0, "completions.maxTokens": 1, "completions.contextTokens": 1,
    "completions.suffixLines": 0, "completions.blockSeconds": 0, "completions.alternatives": 0,
    "completions.acceptTarget": 0, "repair.candidates": 1, "repair.rounds": 1, "verify.parallel": 1, "verify.memoryMb": 1, "model.threads": 0,
}
_MORE_THAN: dict[str, float] = {
    "completions.examplesSeconds": 0, "repair.maxSeconds": 0, "verify.testTimeout": 0, "engine.timeout": 0,
}
_AT_MOST: dict[str, float] = {"completions.acceptTarget": 1, "completions.cutLogprob": 0}
_KIND_NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}
_INVALID = object()


def _shown(value: Any) -> str:
    """A client's value as a message quotes it: short, whatever the client sent."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _coerce(path: str, kind: Any, value: Any) -> Any:
    """`value` as `kind`, or a ConfigError naming the setting and the value."""
    result: Any = _INVALID
    if kind is bool:
        if isinstance(value, bool):
            result = value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            result = value
        elif isinstance(value, float) and value.is_integer():
            result = int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            result = float(value)
    elif kind is str:
        if isinstance(value, str):
            result = value
        elif value is None:
            result = ""
    else:
        raise AssertionError(kind)
    if result is _INVALID:
        raise ConfigError(f"setting {path}: {_shown(value)} is not {_KIND_NAMES[kind]}")
    if path in _AT_LEAST and result < _AT_LEAST[path]:
        raise ConfigError(f"setting {path}: {_shown(value)} is less than {_AT_LEAST[path]:g}")
    if path in _AT_MOST and result > _AT_MOST[path]:
        raise ConfigError(f"setting {path}: {_shown(value)} is more than {_AT_MOST[path]:g}")
    if path in _MORE_THAN and result <= _MORE_THAN[path]:
        raise ConfigError(f"setting {path}: {_shown(value)} must be more than {_MORE_THAN[path]:g}")
    return result


@dataclass
class SettingsRead:
    """Settings read from a client, and what was wrong in what it sent (each bad value took its default)."""

    settings: Settings
    problems: list[ConfigError] = field(default_factory=list)


def _default_note(error: ConfigError, path: str, default: Any) -> ConfigError:
    outcome = "the workspace is treated as untrusted" if path == "trusted" else f"using the default {default!r}"
    return ConfigError(f"{error.message}; {outcome}", "fix it in your editor settings")


def _merge(obj: Any, data: Any, prefix: str, problems: list[ConfigError]) -> Any:
    hints = get_type_hints(type(obj))
    defaults = type(obj)()
    changes: dict[str, Any] = {}
    for key, value in data.items():
        name = _snake(key) if isinstance(key, str) else ""
        if name not in hints:
            continue  # unknown options are ignored so older servers accept newer clients
        path = f"{prefix}.{_camel(name)}" if prefix else _camel(name)
        kind = hints[name]
        # `trusted` fails closed: whatever is not a valid answer is "no"
        default = False if path == "trusted" else getattr(defaults, name)
        if dataclasses.is_dataclass(kind):
            if isinstance(value, dict):
                changes[name] = _merge(getattr(obj, name), value, path, problems)
                continue
            problems.append(ConfigError(f"setting {path}: {_shown(value)} is not an object; using its defaults",
                                        "fix it in your editor settings"))
            changes[name] = default
            continue
        try:
            changes[name] = _coerce(path, kind, value)
        except ConfigError as exc:
            problems.append(_default_note(exc, path, default))
            changes[name] = default
    return dataclasses.replace(obj, **changes)


def read_settings(data: Any, base: Settings | None = None) -> SettingsRead:
    """Settings from a client's options on top of `base` (defaults when None), never failing: each value that
    cannot be used takes its default and is listed in `problems`. Accepts {"greenpatch": {...}}. None (nothing
    sent) leaves `base` as it is."""
    base = base or Settings()
    if isinstance(data, dict) and "greenpatch" in data:
        data = data["greenpatch"]
    if data is None:
        return SettingsRead(base)
    if not isinstance(data, dict):
        # nothing in it can be read, including whether the client trusts the workspace
        problem = ConfigError(f"settings: {_shown(data)} is not an object; ignored, and the workspace is treated "
                              "as untrusted", "fix your editor's greenpatch settings")
        return SettingsRead(dataclasses.replace(base, trusted=False), [problem])
    problems: list[ConfigError] = []
    settings = _merge(base, data, "", problems)
    return SettingsRead(settings, problems)


def settings_from(data: Any, base: Settings | None = None) -> Settings:
    """Like read_settings, but the first bad value is a ConfigError (for callers that build settings themselves)."""
    read = read_settings(data, base)
    if read.problems:
        raise read.problems[0]
    return read.settings


def settings_to_dict(settings: Settings) -> dict[str, Any]:
    """camelCase dict of all settings (for docs, `doctor` and the client's defaults)."""

    def convert(obj: Any) -> Any:
        if dataclasses.is_dataclass(obj):
            return {_camel(f.name): convert(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        return obj

    return convert(settings)  # type: ignore[no-any-return]

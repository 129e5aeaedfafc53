"""What inline completion shows on code the model cannot have seen, and what a user would take of it.

The typing replay of `greenpatch bench complete` types lines of real files one character at a time through the real
CompletionService (repo context from the files' project index, as the server has it). Here every line is typed to
its end with the gate open (shows all), and each keystroke keeps the suggestion's per-token log-probabilities, so
that what a gate policy would have shown at that keystroke follows without asking the model again: the fixed gate
and the tuned one are judged on the same suggestions, in one run. A withheld suggestion is typed along too in the
server (see TypedAlong), so the model is asked at the same keystrokes whatever the gate.

Sets of files none of which the model can have seen: greenpatch's own files as of REPLAY_COMMIT (the tuning set:
filters and gate were tuned on it), and HELDOUT's, files of PyPI sdists released after the model (downloaded once
into the user cache, outside any repository): "heldout" (pydantic-graph; its figures for the whole grid of gates
and cuts were read when completions.cutLogprob and gateThreshold were chosen on 2026-12-07, so it is held out no
more for those two), and "heldout-b" (mcp; never tuned on).

Per policy and set:
- shown characters and the share of them the file has next (the first line shown at each keystroke against the
  rest of the line, as the latency replay counts them);
- a simulated user who accepts a suggestion when what is shown is a prefix of what the file has next: suggestions
  shown (one per model answer shown at some keystroke), accepted, and the characters accepted.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import tarfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

from greenpatch.bench.retype import keystroke_streams
from greenpatch.completion.cache import mean_after
from greenpatch.completion.filters import SHORT_PROMPT_CUT, SHOW_ALL, confident_end, passes_gate
from greenpatch.completion.service import CompletionService
from greenpatch.config import CompletionSettings
from greenpatch.engine import EngineWorker
from greenpatch.engine.base import Engine
from greenpatch.errors import UsageError
from greenpatch.resources import user_cache_dir

# Released after the default model (Qwen2.5-Coder, 2024): per set, an sdist and the files replayed from it.
HELDOUT = {
    "heldout": ("pydantic-graph", "2.68.0", ["pydantic_graph/decision.py", "pydantic_graph/join.py",
                                             "pydantic_graph/paths.py"]),
    "heldout-b": ("mcp", "2.3.0", ["src/mcp/shared/uri_template.py", "src/mcp/server/mcpserver/resolve.py",
                                   "src/mcp/cli/cli.py"]),
}
LINES_PER_FILE = 8  # typed lines per file (in pairs: a line, then the next line of code after it)
FOLLOWS_CHARS = 600  # what the file has next is compared this far


@dataclass(frozen=True)
class Policy:
    """What is shown of a suggestion: the confidence gate's threshold on the mean token log-probability, and
    `cut`, the token log-probability below which the suggestion is shown only up to that token (None: whole)."""

    name: str
    threshold: float
    cut: float | None = None


@dataclass
class Keystroke:
    """One request of the replay: the suggestion's whole text as the model made it (`full`), how much of it the user
    had typed (`typed`), and what the file has next at the cursor."""

    answer: int  # which model answer it belongs to (typing along keeps the number)
    full: str
    typed: int
    mean_logprob: float | None
    end_logprob: float | None
    logprobs: list[float]
    token_ends: list[int]
    examples: str
    follows: str


def heldout_files(cache: Path | None = None, which: str = "heldout") -> list[Path]:
    """The files of HELDOUT[which], its sdist downloaded with pip and unpacked under the user cache the first time."""
    name, version, files = HELDOUT[which]
    home = (cache or user_cache_dir() / "bench" / "heldout") / f"{name}-{version}"
    top = home / "src"
    if not all((top / f).exists() for f in files):
        home.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "-q",
                            "-d", str(home), f"{name}=={version}"], check=True, capture_output=True, timeout=300)
            archive = next(home.glob("*.tar.gz"))
            with tarfile.open(archive) as tar:
                tar.extractall(home, filter="data")
            unpacked = next(p for p in home.iterdir() if p.is_dir() and p.name != "src")
            unpacked.rename(top)
        except (OSError, subprocess.SubprocessError, tarfile.TarError, StopIteration) as exc:
            raise UsageError(f"the held-out sdist {name}=={version} could not be fetched: {exc}",
                             "check that pip can reach PyPI, or pass --real-sets greenpatch") from None
    return [top / f for f in files]


def _follows(original: list[str], line: int, col: int) -> str:
    return "\n".join([original[line][col:], *original[line + 1 :]])[:FOLLOWS_CHARS]


async def _type(service: CompletionService, streams: list[tuple[Path, str, int, str]],
                log: Path | None = None) -> list[Keystroke]:
    """Type every stream's line to its end; one Keystroke per request that answered (appended to `log` as JSON
    lines as they come, so that a run cut short can still be judged: see judge_log)."""
    out = _Logged(log)
    version = 0
    answer = -1
    head: Keystroke | None = None
    originals: dict[Path, list[str]] = {}
    for path, text, line, target in streams:
        original = originals.setdefault(path, path.read_text(encoding="utf-8").split("\n"))
        rows = text.split("\n")
        indent = rows[line]
        body = target[len(indent) :]
        head = None  # a new place: nothing to type along
        for n in range(len(body) + 1):
            rows[line] = indent + body[:n]
            version += 1
            uri = path.as_uri()
            service.notify_change(uri, version)
            s = await service.complete(uri, path, "\n".join(rows), version, line, len(rows[line]))
            follows = _follows(original, line, len(indent) + n)
            if s is None or not s.text:
                head = None
                continue
            if s.along == "rest" and head is not None and head.full.endswith(s.text):
                typed = len(head.full) - len(s.text)
                out.append(Keystroke(head.answer, head.full, typed, head.mean_logprob, head.end_logprob,
                                     head.logprobs, head.token_ends, head.examples, follows))
                continue
            answer += 1
            head = Keystroke(answer, s.text, 0, s.mean_logprob, s.end_logprob, list(s.logprobs or []),
                             list(s.token_ends or []), s.examples, follows)
            out.append(head)
        print(f"bench complete: real code: {path.name}:{line + 1} typed ({answer + 1} answers)", file=sys.stderr)
    return out


class _Logged(list[Keystroke]):
    def __init__(self, path: Path | None) -> None:
        super().__init__()
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")

    def append(self, k: Keystroke) -> None:
        super().append(k)
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(asdict(k)) + "\n")


def judge_log(path: Path, policies: list[Policy]) -> list[dict[str, Any]]:
    """Judge policies on the keystrokes a replay logged (see _type)."""
    keystrokes = [Keystroke(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [measure(keystrokes, p) for p in policies]


def shown_text(keystrokes: list[Keystroke], policy: Policy) -> list[str]:
    """What `policy` shows at each keystroke ("" for nothing), as the server decides: a new answer when it passes
    the gate (its mean and end log-probabilities) and the docstring examples did not fail it; its rest while typed
    along once shown, or as soon as the rest alone passes the gate; cut before its first unsure token."""
    out: list[str] = []
    shown_answer = -1
    for k in keystrokes:
        if k.examples == "failed":
            out.append("")
            continue
        if k.answer != shown_answer:
            if k.typed == 0:
                ok = passes_gate(k.mean_logprob, policy.threshold, k.end_logprob)
            else:
                ok = passes_gate(mean_after(k.logprobs, k.token_ends, k.typed), policy.threshold)
            if not ok:
                out.append("")
                continue
            shown_answer = k.answer
        end = len(k.full)
        if policy.cut is not None:
            end = confident_end(k.logprobs, k.token_ends, k.typed, policy.cut, len(k.full))
        rest = k.full[k.typed : end]
        out.append(rest if rest.strip() else "")
    return out


def measure(keystrokes: list[Keystroke], policy: Policy) -> dict[str, Any]:
    """Shown characters, the share the file has next, and the simulated user's accepts, for one policy."""
    chars = right = 0
    shown: set[int] = set()
    accepted: dict[int, int] = {}
    for k, text in zip(keystrokes, shown_text(keystrokes, policy)):
        if not text:
            continue
        first = text.split("\n", 1)[0].rstrip()
        chars += len(first)
        right += len(os.path.commonprefix([first, k.follows.split("\n", 1)[0]]))
        if k.answer not in shown:
            shown.add(k.answer)
        whole = text.rstrip()
        if k.answer not in accepted and whole and k.follows.startswith(whole):
            accepted[k.answer] = len(whole)
    return {
        "policy": policy.name, "threshold": policy.threshold, "cut": policy.cut,
        "keystrokes": len(keystrokes), "shown_chars": chars, "right_chars": right,
        "shown_chars_right": round(right / chars, 4) if chars else None,
        "suggestions_shown": len(shown), "accepted": len(accepted),
        "accept_rate": round(len(accepted) / len(shown), 4) if shown else None,
        "accepted_chars": sum(accepted.values()),
    }


def replay(engine: Engine, files: list[Path], policies: list[Policy], lines_per_file: int = LINES_PER_FILE,
           log: Path | None = None, cold: bool = False) -> dict[str, Any]:
    """Type `files` with the gate open once, then judge every policy on the same keystrokes. Every request has the
    full prompt (nothing is prepared ahead: the replay does not pause, so what would be is a matter of timing), or
    with `cold` the short prompt of a cold place (completions.shortPromptTokens; bench/humaneval.py AlwaysCold)."""
    from greenpatch.completion.command import _index, find_root

    streams = keystroke_streams(files, 0, lines_per_file)
    root = find_root(files[0]) if files else None
    index = _index(root) if root is not None else None
    worker = EngineWorker(lambda: engine, owns_engine=False)
    # the gate open: every suggestion is kept with its log-probabilities, the policies decide afterwards
    settings = CompletionSettings(debounce_ms=0, prefetch=False, gate_threshold=SHOW_ALL, cut_logprob=SHOW_ALL,
                                  record=False, prepare_ahead=cold)
    if cold:
        from greenpatch.bench.humaneval import AlwaysCold

        engine = cast(Engine, AlwaysCold(engine))
    service = CompletionService(worker, settings, index=index, root=root)
    started = time.perf_counter()
    keystrokes = asyncio.run(_type(service, streams, log))
    worker.close()
    return {
        "files": [str(f) for f in files], "lines": len(streams), "model_calls": service.model_calls,
        "seconds": round(time.perf_counter() - started, 1),
        "policies": [measure(keystrokes, p) for p in policies],
        "keystroke_log": [{"answer": k.answer, "typed": k.typed, "full": k.full, "mean": _round(k.mean_logprob),
                           "end": _round(k.end_logprob), "logprobs": [round(x, 4) for x in k.logprobs],
                           "token_ends": k.token_ends, "examples": k.examples, "follows": k.follows[:200]}
                          for k in keystrokes],
    }


def _round(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, 4)


def side_by_side(fixed: dict[str, Any], tuned: dict[str, Any]) -> dict[str, Any]:
    """The tuned policy against the fixed gate, measured on the same keystrokes."""
    return {
        "shown_chars_right": (fixed["shown_chars_right"], tuned["shown_chars_right"]),
        "shown_chars_ratio": round(tuned["shown_chars"] / fixed["shown_chars"], 3) if fixed["shown_chars"] else None,
        "right_chars_ratio": round(tuned["right_chars"] / fixed["right_chars"], 3) if fixed["right_chars"] else None,
        "accept_rate": (fixed["accept_rate"], tuned["accept_rate"]),
        "accepted_chars_ratio": round(tuned["accepted_chars"] / fixed["accepted_chars"], 3)
        if fixed["accepted_chars"] else None,
    }


# Policies judged besides the fixed gate and the server's, to see around the chosen one (thresholds x cuts).
GRID = [Policy(f"gate {t:g} cut {c:g}" if c is not None else f"gate {t:g}", t, c)
        for t in (-0.15, -0.25, -0.4, -0.6, -1.0, SHOW_ALL) for c in (None, -0.4, -0.5, -0.6, -0.75, -1.0, -1.5, -2.5)]


SETS = ("greenpatch", *HELDOUT)


def real_code(engine: Engine, files: list[Path], settings: CompletionSettings, lines_per_file: int = LINES_PER_FILE,
              sets: list[str] | None = None, log_dir: Path | None = None, short: bool = False) -> dict[str, Any]:
    """The fixed gate and the server's policy side by side on `files` (greenpatch's, the tuning set) and on
    HELDOUT's files, each typed once (the keystrokes logged under `log_dir`, SET.jsonl, when given)."""
    fixed = Policy("fixed", CompletionSettings.gate_threshold)
    server = Policy("server", settings.gate_threshold, settings.cut_logprob)
    wanted = sets or list(SETS)
    chosen = {name: (files if name == "greenpatch" else heldout_files(which=name)) for name in SETS if name in wanted}
    out: dict[str, Any] = {"heldout": {k: f"{n}=={v}" for k, (n, v, _) in HELDOUT.items()}, "summary": {}}
    for name, paths in chosen.items():
        log = log_dir / f"{name}.jsonl" if log_dir is not None else None
        result = replay(engine, paths, [fixed, server, *GRID], lines_per_file, log)
        by_name = {p["policy"]: p for p in result["policies"]}
        result["side_by_side"] = side_by_side(by_name["fixed"], by_name["server"])
        out[name] = result
        for p in result["policies"]:  # as each set ends: the run is long
            print(f"bench complete: real code: {name}: {p['policy']}: {p['shown_chars']} chars shown, "
                  f"{p['shown_chars_right']} right, {p['accepted']}/{p['suggestions_shown']} accepted "
                  f"({p['accepted_chars']} chars)", file=sys.stderr)
        for key, (a, b) in (("shown_chars_right", result["side_by_side"]["shown_chars_right"]),
                            ("accept_rate", result["side_by_side"]["accept_rate"])):
            out["summary"][f"real_{name}_{key}_fixed"] = a
            out["summary"][f"real_{name}_{key}_server"] = b
        out["summary"][f"real_{name}_shown_chars_ratio"] = result["side_by_side"]["shown_chars_ratio"]
        if short:  # the same lines typed as at a cold place: every request from the short prompt
            cold_log = log_dir / f"{name}-short.jsonl" if log_dir is not None else None
            # the server's policy there: its cut at SHORT_PROMPT_CUT at least
            cut = max(settings.cut_logprob, SHORT_PROMPT_CUT) if settings.cut_logprob > SHOW_ALL else None
            cold_server = Policy("server", settings.gate_threshold, cut)
            cold = replay(engine, paths, [fixed, cold_server, *GRID], lines_per_file, cold_log, cold=True)
            result["short_prompt"] = {k: v for k, v in cold.items() if k != "keystroke_log"}
            for p in cold["policies"]:
                out["summary"][f"real_{name}_short_prompt_shown_chars_right_{p['policy']}"] = p["shown_chars_right"]
                out["summary"][f"real_{name}_short_prompt_shown_chars_{p['policy']}"] = p["shown_chars"]
                print(f"bench complete: real code, short prompts: {name}: {p['policy']}: {p['shown_chars']} chars "
                      f"shown, {p['shown_chars_right']} right", file=sys.stderr)
    return out

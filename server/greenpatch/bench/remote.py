"""The remote engine's latency next to the in-process engine, for `greenpatch bench complete --engine URL`.

The same keystroke replay as the local latency benchmark (bench.complete: lines of real files retyped through
the real CompletionService) runs against the in-process engine and against the server, in alternating rounds so
that a noisy machine hurts both alike. The HTTP overhead is the ratio of the model-call p50s, compared with the
local engine in "prefix" reuse mode: llama-cpp-python's server also reuses the longest common token prefix, so
that pair differs only in the path (HTTP, JSON, SSE, the server's Python layer). The local "chunk" mode (KV
shifting, what greenpatch uses in-process) is reported too, as what a user gives up or gains by going remote.

The server is run twice: asking for log-probabilities (what the gate needs) and without. llama-cpp-python's
server computes each token's log-probabilities in Python over the whole vocabulary, which is a cost of that
server rather than of HTTP; the pair shows how much of the difference it is. Start the server on the same model
file and thread count as the local engine, e.g.

    python -m llama_cpp.server --model $(greenpatch model path fast) --n_threads 2 --port 8080
    greenpatch bench complete --model fast --engine http://127.0.0.1:8080 --tasks 0
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from greenpatch.bench.stats import pct as _pct
from greenpatch.completion.service import CompletionService
from greenpatch.config import CompletionSettings
from greenpatch.engine import EngineWorker
from greenpatch.engine.base import Engine
from greenpatch.engine.remote import RemoteEngine

PROBES = 20
PREFIX_CHARS = 2000  # what a ~550-token prompt holds; keeps both sides inside the context window

log = logging.getLogger(__name__)

# bench.retype.keystroke_streams: file, text with the line cut, line number, the line's text
Stream = tuple[Path, str, int, str]
# bench.retype.replay (service, streams, keystrokes, per line): passed in by bench.complete, so that this module
# needs nothing of the completion benchmark's
Replay = Callable[[CompletionService, list[Stream], int, int], Coroutine[Any, Any, list[dict[str, Any]]]]


def _replay_once(
    engine: Engine, replay: Replay, streams: list[Stream], keystrokes: int, per_line: int
) -> list[dict[str, Any]]:
    worker = EngineWorker(lambda: engine, owns_engine=False)
    service = CompletionService(worker, CompletionSettings(debounce_ms=0, prefetch=False))  # requests alone
    try:
        return asyncio.run(replay(service, streams, keystrokes, per_line))
    finally:
        worker.close()


def _summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    times = [s["seconds"] for s in samples]
    model_times = [s["seconds"] for s in samples if s["model"]]
    return {
        "keystrokes": len(samples),
        "model_calls": len(model_times),
        "p50": _pct(times, 0.5),
        "p95": _pct(times, 0.95),
        "mean": round(statistics.mean(times), 4) if times else None,
        "model_p50": _pct(model_times, 0.5),
        "model_p95": _pct(model_times, 0.95),
        "shown": sum(s["shown"] for s in samples),
    }


def _paired(
    local: Engine, remote: Engine, streams: list[Stream], keystrokes: int, per_line: int
) -> dict[str, Any]:
    """The same infill requests, alternating local and remote per keystroke (line mode: 16 tokens, stop at a newline).

    Both engines keep their own KV cache, so alternating does not disturb either; the pairs see the same load.
    Only pairs whose texts agree count for the overhead, so both sides generated the same tokens.
    """
    pairs: list[tuple[float, float]] = []
    differing = 0
    for _path, text, line, target in streams:
        rows = text.split("\n")
        indent = rows[line]
        body = target[len(indent) :]
        # The window starts at a fixed line for the whole line being typed: a window that slid with every
        # keystroke would change the prompt's first tokens each time and defeat both sides' prefix reuse.
        head = "\n".join(rows[:line]) + "\n"
        start = head.find("\n", max(0, len(head) - PREFIX_CHARS)) + 1 if len(head) > PREFIX_CHARS else 0
        head = head[start:]
        for n in range(min(len(body), per_line) + 1):
            if len(pairs) + differing >= keystrokes:
                break
            before = head + indent + body[:n]
            after = "\n".join(rows[line + 1 : line + 4])
            a = local.infill(before, "\n" + after, max_tokens=16, stop=["\n"])
            b = remote.infill(before, "\n" + after, max_tokens=16, stop=["\n"])
            if n == 0:
                continue  # warms both caches for this place
            if a.text.strip() == b.text.strip():  # llama-cpp-python drops a first token's leading space
                pairs.append((a.seconds, b.seconds))
            else:
                differing += 1
    local_p50 = statistics.median([p[0] for p in pairs]) if pairs else None
    remote_p50 = statistics.median([p[1] for p in pairs]) if pairs else None
    return {
        "pairs": len(pairs),
        "differing_outputs": differing,
        "local_p50": round(local_p50, 4) if local_p50 else None,
        "remote_p50": round(remote_p50, 4) if remote_p50 else None,
        "overhead_p50": _overhead(remote_p50, local_p50),
        "median_of_ratios": round(statistics.median([b / a for a, b in pairs]) - 1.0, 3) if pairs else None,
    }


def _overhead(remote: float | None, local: float | None) -> float | None:
    return round(remote / local - 1.0, 3) if remote and local else None


def remote_latency(
    url: str,
    local: Engine,
    streams: list[Stream],
    replay: Replay,
    keystrokes: int,
    *,
    model: str = "",
    api_key_env: str = "",
    timeout: float = 120.0,  # a cold prompt on a busy machine; the benchmark measures, it must not give up
    rounds: int = 2,
) -> dict[str, Any]:
    """Replay the same keystrokes (`streams`, typed by `replay`) against `local` (prefix and chunk reuse) and the
    server at `url`.

    Returns {"summary": {...}, "local_prefix": {...}, "local_chunk": {...}, "remote": {...},
    "remote_no_logprobs": {...}, "http_round_trip_ms": {...}}; `summary["http_overhead_p50"]` is the headline
    (paired identical requests, remote vs local prefix mode, +0.15 = 15 % slower).
    """
    with_lp = RemoteEngine(url, model=model, api_key_env=api_key_env, timeout=timeout, fim=local.fim)
    without_lp = RemoteEngine(
        url, model=model, api_key_env=api_key_env, timeout=timeout, fim=local.fim, logprobs=False
    )
    served = with_lp.models()
    per_line = max(4, keystrokes // max(1, len(streams)))
    per_round = max(4, keystrokes // rounds)
    samples: dict[str, list[dict[str, Any]]] = {
        k: [] for k in ("local_prefix", "local_chunk", "remote", "remote_no_logprobs")
    }
    has_modes = hasattr(local, "reuse")
    started = time.perf_counter()
    try:
        for _ in range(rounds):
            for key in samples:
                if key.startswith("local"):
                    if not has_modes and key == "local_chunk":
                        continue
                    if has_modes:
                        local.reuse = key.removeprefix("local_")  # type: ignore[attr-defined]
                        local._clear()  # type: ignore[attr-defined]
                    engine: Engine = local
                else:
                    engine = with_lp if key == "remote" else without_lp
                phase = time.perf_counter()
                samples[key] += _replay_once(engine, replay, streams, per_round, per_line)
                log.info("remote bench: %s replayed in %.1f s", key, time.perf_counter() - phase)
        if has_modes:
            local.reuse = "prefix"  # type: ignore[attr-defined]
            local._clear()  # type: ignore[attr-defined]
        phase = time.perf_counter()
        paired = _paired(local, without_lp, streams, keystrokes, per_line)
        log.info("remote bench: paired requests in %.1f s", time.perf_counter() - phase)
        trips = []
        for _ in range(PROBES):
            trips.append(with_lp.probe(timeout=timeout))
    finally:
        with_lp.close()
        without_lp.close()
    out: dict[str, Any] = {k: _summary(v) for k, v in samples.items() if v}
    out["paired_engine_calls"] = paired
    out["http_round_trip_ms"] = {
        "what": "GET /v1/models, keep-alive",
        "p50": round(statistics.median(trips) * 1000, 2),
    }
    lp, prefix = out["remote"], out["local_prefix"]
    summary: dict[str, Any] = {
        "url": url,
        "server_model": served[0] if served else "",
        "local_engine": local.name,
        "remote_model_p50": lp["model_p50"],
        "remote_no_logprobs_model_p50": out["remote_no_logprobs"]["model_p50"],
        "local_prefix_model_p50": prefix["model_p50"],
        # The headline: identical requests and outputs, local prefix reuse vs the server, no log-probabilities.
        "http_overhead_p50": paired["overhead_p50"],
        "paired_pairs": paired["pairs"],
        "paired_local_p50": paired["local_p50"],
        "paired_remote_p50": paired["remote_p50"],
        "replay_overhead_model_p50": _overhead(lp["model_p50"], prefix["model_p50"]),
        "replay_overhead_model_p50_no_logprobs": _overhead(
            out["remote_no_logprobs"]["model_p50"], prefix["model_p50"]
        ),
        "http_round_trip_p50_ms": out["http_round_trip_ms"]["p50"],
        "target": "<= 0.15",
    }
    if "local_chunk" in out:
        summary["local_chunk_model_p50"] = out["local_chunk"]["model_p50"]
        summary["remote_vs_local_chunk_p50"] = _overhead(lp["model_p50"], out["local_chunk"]["model_p50"])
    out["summary"] = summary
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out

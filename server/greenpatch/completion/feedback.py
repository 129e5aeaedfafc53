"""What the user did with the suggestions shown: a local log, its statistics, and a gate calibrated from it.

Kept on this machine only (the user cache, one file per workspace, never the workspace itself, never sent), so
that the confidence gate can learn what this user accepts. The log is append-only JSON lines of events:
`shown` (a suggestion displayed: its mean log-probability, length, kind, model, latency), then at most one outcome
per id among `accepted` (the client ran the item's command after inserting it; `chars` when it reports taking only
part of it), `typed` (the user typed the whole suggestion by hand) and `passed` (the next request for the same
document found it neither accepted nor being typed along: the user typed past it or moved elsewhere). An `accepted`
that arrives after `passed` (the client's command racing the next request) wins. A shown suggestion with no outcome
(the editor closed) counts nowhere.

Appends are one short write each; the file is trimmed to its newer half past MAX_BYTES. Disk errors stop the
recording for the session and never reach a completion.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from greenpatch.resources import user_cache_dir, workspace_key

log = logging.getLogger(__name__)

MAX_BYTES = 5_000_000  # ~25,000 events: trimmed to the newer half past this
MAX_LOGS = 64  # workspaces: a new one's log replaces the least recently written past this
MIN_SHOWN = 50  # resolved suggestions needed before the gate is calibrated on them (workspace, else all)
RECENT = 1000  # the calibration looks at this many of the newest resolved suggestions (tastes change)
MIN_KEPT = 10  # a threshold is judged only on at least this many suggestions it would have shown
CALIBRATION_TAIL = 1_000_000  # bytes of a log read for calibrating: RECENT outcomes with room to spare
CALIBRATION_LOGS = 8  # other workspaces' logs the global fallback reads: the most recently written
RECALIBRATE_EVERY = 20  # new outcomes between two calibrations (never per keystroke)
CONFIDENCE_Z = 1.0  # the share a threshold keeps must reach the target at this many standard errors (84 %)
STEP = 0.05  # candidate thresholds: multiples of this up to 0
OUTCOMES = ("accepted", "partial", "typed", "passed")
_RANK = {"passed": 0, "typed": 1, "partial": 2, "accepted": 3}  # a later event replaces an earlier of lower rank


def feedback_dir() -> Path:
    return user_cache_dir() / "feedback"


def log_path(root: Path | None) -> Path:
    """The log of one workspace (named like verify's state dir: folder name and a hash of its path)."""
    if root is None:
        return feedback_dir() / "no-workspace.jsonl"
    return feedback_dir() / f"{workspace_key(root)}.jsonl"


@dataclass
class Record:
    """One shown suggestion and what became of it ("" while unknown)."""

    id: str
    mean_logprob: float | None
    chars: int
    kind: str  # "line", "block" or "next line" (computed ahead, see CompletionService._prefetch_after)
    model: str
    latency_ms: float
    time: float = 0.0
    outcome: str = ""
    accepted_chars: int = 0

    @property
    def took(self) -> bool:
        """Whether the suggestion went into the file, whole or in part, by Tab or by typing it."""
        return self.outcome in ("accepted", "partial", "typed")


def read_records(paths: Iterable[Path], tail: int | None = None) -> list[Record]:
    """The shown suggestions of these logs (of their last `tail` bytes only), in order, with their outcomes; lines
    that cannot be read are skipped."""
    records: dict[str, Record] = {}
    for path in paths:
        try:
            with open(path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - tail) if tail else 0)
                data = f.read()
        except OSError:
            continue
        lines = data.decode("utf-8", errors="replace").splitlines()
        if tail and size > tail:
            lines = lines[1:]  # cut mid-line
        for line in lines:
            try:
                event = json.loads(line)
                _apply(records, event)
            except (ValueError, TypeError, KeyError, AttributeError):
                continue
    return list(records.values())


def _apply(records: dict[str, Record], event: dict[str, Any]) -> None:
    kind, id_ = event["event"], str(event["id"])
    if kind == "shown":
        logprob = event.get("mean_logprob")
        records[id_] = Record(id_, None if logprob is None else float(logprob), int(event["chars"]),
                              str(event["kind"]), str(event["model"]), float(event["latency_ms"]),
                              float(event.get("time", 0.0)))
        return
    record = records.get(id_)
    if record is None or kind not in _RANK:
        return
    if _RANK[kind] >= _RANK.get(record.outcome, -1):
        record.outcome = kind
        record.accepted_chars = int(event.get("chars", record.chars if kind != "passed" else 0))


def trim(path: Path, keep: int) -> int:
    """Keep the newest `keep` bytes of the log, from a line start (replacing the file whole): its new size."""
    data = path.read_bytes()
    if len(data) > keep:
        cut = data.find(b"\n", len(data) - keep)
        data = data[cut + 1:] if cut >= 0 else b""
    temporary = path.with_suffix(".trim")
    temporary.write_bytes(data)
    os.replace(temporary, path)
    return len(data)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def prune(folder: Path, keep: int) -> None:
    """Remove all but the `keep` most recently written logs."""
    logs = sorted(folder.glob("*.jsonl"), key=_mtime, reverse=True)
    for old in logs[keep:]:
        old.unlink(missing_ok=True)


class FeedbackLog:
    """The log of one workspace, with what is pending per document and the records seen so far (for the gate)."""

    def __init__(self, path: Path, others: Iterable[Path] = ()) -> None:
        self.path = path
        self.others = list(others)  # other workspaces' logs: the global fallback of the calibration
        self.enabled = True
        self._pending: dict[str, str] = {}  # document uri -> id of the suggestion shown there last
        self._records: dict[str, Record] | None = None  # loaded on first calibration
        self._global: list[Record] | None = None
        self._calibration: Calibration | None = None
        self._outcomes_since = 0
        self._size: int | None = None

    @classmethod
    def for_workspace(cls, root: Path | None) -> FeedbackLog:
        path = log_path(root)
        try:
            others = [p for p in feedback_dir().glob("*.jsonl") if p != path]
        except OSError:
            others = []
        return cls(path, others)

    # --- events -----------------------------------------------------------------------------------------------

    def request(self, uri: str, along: str) -> None:
        """A new completion request for `uri` was answered. `along`: "rest" when the answer is the rest of the
        suggestion shown there being typed along (it stays pending), "whole" when it was typed to its end."""
        pending = self._pending.get(uri)
        if pending is None or along == "rest":
            return
        del self._pending[uri]
        self._event(pending, "typed" if along == "whole" else "passed")

    def shown(self, uri: str, *, mean_logprob: float | None, chars: int, kind: str, model: str, seconds: float,
              along: str = "") -> str:
        """A suggestion is displayed in `uri`: its id (the one pending there when it is the rest of it)."""
        pending = self._pending.get(uri)
        if along == "rest" and pending is not None:
            return pending
        id_ = uuid.uuid4().hex[:16]
        self._pending[uri] = id_
        logprob = None if mean_logprob is None or not math.isfinite(mean_logprob) else round(mean_logprob, 4)
        self._write({"event": "shown", "id": id_, "time": round(time.time(), 3), "mean_logprob": logprob,
                     "chars": chars, "kind": kind, "model": model, "latency_ms": round(seconds * 1000, 1)},
                    Record(id_, logprob, chars, kind, model, round(seconds * 1000, 1), time.time()))
        return id_

    def accepted(self, id_: str, chars: int | None = None) -> None:
        """The client inserted suggestion `id_` (`chars`: only that many of its characters, a partial accept)."""
        id_ = str(id_)
        for uri, pending in list(self._pending.items()):
            if pending == id_ and chars is None:
                del self._pending[uri]  # whole: nothing left to type along
        self._event(id_, "accepted" if chars is None else "partial", chars)

    def forget(self, uri: str) -> None:
        self._pending.pop(uri, None)

    def _event(self, id_: str, outcome: str, chars: int | None = None) -> None:
        event: dict[str, Any] = {"event": outcome, "id": id_}
        if chars is not None:
            event["chars"] = chars
        self._write(event, None)
        self._outcomes_since += 1

    def _write(self, event: dict[str, Any], record: Record | None) -> None:
        if self._records is not None:
            if record is not None:
                self._records[record.id] = record
            else:
                _apply(self._records, event)
        if not self.enabled:
            return
        line = json.dumps(event, separators=(",", ":")) + "\n"
        try:
            if self._size is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if not self.path.exists():
                    prune(self.path.parent, MAX_LOGS - 1)
                self._size = self.path.stat().st_size if self.path.exists() else 0
            if self._size + len(line) > MAX_BYTES:
                self._size = trim(self.path, MAX_BYTES // 2)
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(line)
            self._size += len(line.encode())
        except OSError as exc:
            self.enabled = False  # a full or read-only cache: stop recording, keep completing
            log.warning("not recording suggestions any more: %s", exc)

    # --- the calibrated gate ----------------------------------------------------------------------------------

    def threshold(self, target: float, default: float) -> float:
        """The gate's threshold for acceptance target `target` (0: the fixed `default`), recalibrated every
        RECALIBRATE_EVERY outcomes."""
        if target <= 0:
            return default
        current = self._calibration
        if (current is None or current.target != target or current.default != default
                or self._outcomes_since >= RECALIBRATE_EVERY):
            current = self._calibration = self.calibrate(target, default)
            self._outcomes_since = 0
        return current.threshold

    def calibrate(self, target: float, default: float) -> Calibration:
        """Calibrate on the records so far; the logs are read once (their tails: a bounded wait, on the event loop
        where the completion service asks) and the global fallback only while this workspace has too few."""
        if self._records is None:
            self._records = {r.id: r for r in read_records([self.path], CALIBRATION_TAIL)}
        mine = list(self._records.values())
        if self._global is None and len(_resolved(mine)) < MIN_SHOWN:
            recent = sorted(self.others, key=_mtime, reverse=True)[:CALIBRATION_LOGS]
            self._global = read_records(recent, CALIBRATION_TAIL)
        return calibrate(mine, self._global or [], target, default)


@dataclass
class Calibration:
    threshold: float
    target: float
    default: float
    scope: str  # "workspace", "all workspaces" or "default" (too few records)
    records: int  # resolved shown suggestions it was computed from
    accepted_share: float | None  # of those the threshold keeps
    kept: int
    reason: str
    table: list[tuple[float, int, float]] = field(default_factory=list)  # threshold, kept, accepted share


def calibrate(workspace: list[Record], everywhere: list[Record], target: float, default: float,
              min_shown: int = MIN_SHOWN) -> Calibration:
    """The least strict threshold whose shown suggestions were taken at least at `target` (a share, 0-1), over the
    workspace's newest RECENT resolved suggestions, else all workspaces', else `default` with fewer than
    `min_shown`. Suggestions only exist above the thresholds in force when they were shown, so the calibration can
    make the gate stricter than what was shown, never looser than the loosest suggestion seen. Where no threshold
    reaches the target, the one with the highest share."""
    if target <= 0:
        return Calibration(default, target, default, "default", 0, None, 0,
                           "no acceptance target (completions.acceptTarget = 0): the fixed gate")
    scope, chosen = "workspace", _resolved(workspace)
    if len(chosen) < min_shown:
        scope, chosen = "all workspaces", _resolved(workspace + everywhere)
    if len(chosen) < min_shown:
        return Calibration(default, target, default, "default", len(chosen), None, 0,
                           f"{len(chosen)} suggestions with an outcome, fewer than the {min_shown} needed: "
                           "the fixed gate")
    table = _table(chosen)
    # the share's lower confidence bound, not the share: the least strict threshold whose share reaches the target
    # by chance would show less than the target from then on
    reaching = [row for row in table if row[1] >= MIN_KEPT and _lower_bound(row[2], row[1]) >= target]
    if reaching:
        threshold, kept, share = reaching[0]
        reason = (f"the least strict threshold whose suggestions were taken {share:.0%} of the time "
                  f"(target {target:.0%}, over {kept} of {len(chosen)})")
    else:
        candidates = [row for row in table if row[1] >= MIN_KEPT] or table[:1]
        threshold, kept, share = max(candidates, key=lambda row: (row[2], -row[0]))
        reason = (f"no threshold reaches the target {target:.0%}; the best one was taken {share:.0%} "
                  f"of the time (over {kept} of {len(chosen)})")
    return Calibration(threshold, target, default, scope, len(chosen), share, kept, reason, table)


def _lower_bound(share: float, n: int, z: float = CONFIDENCE_Z) -> float:
    """Wilson score interval's lower end of a share observed over `n`."""
    centre = share + z * z / (2 * n)
    spread = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


def _resolved(records: list[Record]) -> list[Record]:
    done = [r for r in records if r.outcome and r.mean_logprob is not None]
    done.sort(key=lambda r: r.time)
    return done[-RECENT:]


def _table(records: list[Record]) -> list[tuple[float, int, float]]:
    """For each candidate threshold from the loosest suggestion seen up to 0 (least strict first): how many of
    `records` it keeps and the share of those taken."""
    ordered = sorted(records, key=lambda r: r.mean_logprob or 0.0, reverse=True)
    lowest = min(r.mean_logprob or 0.0 for r in ordered)
    steps = math.floor(lowest / STEP)
    rows: list[tuple[float, int, float]] = []
    i = kept = took = 0
    for k in range(0, steps - 1, -1):  # 0, -0.05, ... down to the loosest
        threshold = round(k * STEP, 4)
        while i < len(ordered) and (ordered[i].mean_logprob or 0.0) >= threshold - 1e-9:
            kept += 1
            took += ordered[i].took
            i += 1
        if kept:
            rows.append((threshold, kept, took / kept))
    rows.reverse()
    return rows


# --- statistics --------------------------------------------------------------------------------------------------

GATE_BUCKETS = (-0.1, -0.25, -0.5, -1.0)  # mean log-probability at least this (the last bucket: below -1)
LATENCY_BUCKETS_MS = (100, 300, 1000)


def _gate_bucket(logprob: float | None) -> str:
    if logprob is None:
        return "unknown"
    high = 0.0
    for low in GATE_BUCKETS:
        if logprob >= low:
            return f"{low:g}..{high:g}"
        high = low
    return f"< {GATE_BUCKETS[-1]:g}"


def _latency_bucket(ms: float) -> str:
    low = 0
    for high in LATENCY_BUCKETS_MS:
        if ms < high:
            return f"{low}-{high} ms"
        low = high
    return f">= {LATENCY_BUCKETS_MS[-1]} ms"


def _rate(records: list[Record]) -> dict[str, Any]:
    resolved = [r for r in records if r.outcome]
    took = sum(r.took for r in resolved)
    return {"shown": len(records), "resolved": len(resolved), "accepted": took,
            "passed_over": sum(r.outcome == "passed" for r in resolved),
            "rate": round(took / len(resolved), 4) if resolved else None}


def summarize(records: list[Record]) -> dict[str, Any]:
    """Acceptance overall and by gate bucket, kind, model and latency bucket (rate: taken / with an outcome)."""

    def by(key: Any, order: list[str] | None = None) -> dict[str, Any]:
        groups: dict[str, list[Record]] = {}
        for r in records:
            groups.setdefault(key(r), []).append(r)
        names = [n for n in order if n in groups] if order else sorted(groups)
        return {name: _rate(groups[name]) for name in names}

    gate_order = [_gate_bucket(low) for low in GATE_BUCKETS] + [f"< {GATE_BUCKETS[-1]:g}", "unknown"]
    latency_order = [_latency_bucket(h - 1) for h in LATENCY_BUCKETS_MS] + [f">= {LATENCY_BUCKETS_MS[-1]} ms"]
    return {
        "overall": {**_rate(records), "outcomes": {o: sum(r.outcome == o for r in records) for o in OUTCOMES}},
        "by_gate": by(lambda r: _gate_bucket(r.mean_logprob), gate_order),
        "by_kind": by(lambda r: r.kind, ["line", "block", "next line"]),
        "by_model": by(lambda r: r.model),
        "by_latency": by(lambda r: _latency_bucket(r.latency_ms), latency_order),
    }


def calibration_dict(c: Calibration) -> dict[str, Any]:
    data = asdict(c)
    data["table"] = [{"threshold": t, "kept": k, "accepted_share": round(s, 4)} for t, k, s in c.table]
    if c.accepted_share is not None:
        data["accepted_share"] = round(c.accepted_share, 4)
    return data

"""`greenpatch stats`: what the user did with the suggestions shown (completion/feedback.py), and the gate that
completions.acceptTarget would calibrate from it."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from greenpatch.completion import feedback
from greenpatch.config import CompletionSettings

BAR = 30  # characters of a full bar


def report(root: Path | None, target: float, *, everywhere: bool = False) -> dict[str, Any]:
    """The statistics of one workspace's log (or of every log) and the calibration at `target`."""
    path = feedback.log_path(root)
    logs = sorted(feedback.feedback_dir().glob("*.jsonl")) if feedback.feedback_dir().is_dir() else []
    others = [p for p in logs if p != path]
    mine = feedback.read_records([path])
    rest = feedback.read_records(others)
    records = mine + rest if everywhere else mine
    default = CompletionSettings().gate_threshold
    calibration = feedback.calibrate(mine, rest, target, default)
    return {
        "log": str(feedback.feedback_dir()) if everywhere else str(path),
        "records": len(records),
        **feedback.summarize(records),
        "calibration": feedback.calibration_dict(calibration),
    }


def _bar(rate: float | None) -> str:
    if rate is None:
        return ""
    filled = round(rate * BAR)
    return "#" * filled + "." * (BAR - filled)


def _rows(title: str, groups: dict[str, Any], out: TextIO) -> None:
    print(f"\n{title}", file=out)
    for name, row in groups.items():
        rate = "   -" if row["rate"] is None else f"{row['rate']:4.0%}"
        print(f"  {name:<12} {rate}  {_bar(row['rate']):<{BAR}}  {row['accepted']}/{row['resolved']}"
              f" (shown {row['shown']})", file=out)


def print_text(data: dict[str, Any], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    overall = data["overall"]
    print(f"suggestion log: {data['log']}", file=out)
    if not data["records"]:
        print("no suggestions recorded yet: they are recorded as the editor shows them "
              "(setting greenpatch.completions.record, on by default)", file=out)
    else:
        outcomes = ", ".join(f"{n} {k.replace('passed', 'passed over')}" for k, n in overall["outcomes"].items())
        rate = "-" if overall["rate"] is None else f"{overall['rate']:.0%}"
        print(f"{overall['shown']} shown, {overall['resolved']} with an outcome ({outcomes}): "
              f"accepted {rate}", file=out)
        _rows("by confidence (mean log-probability)", data["by_gate"], out)
        _rows("by kind", data["by_kind"], out)
        _rows("by model", data["by_model"], out)
        _rows("by latency", data["by_latency"], out)
    c = data["calibration"]
    print(f"\ncalibrated gate at acceptTarget {c['target']:g}: threshold {c['threshold']:g} "
          f"({'fixed gate' if c['scope'] == 'default' else 'from ' + c['scope']}, {c['records']} records): "
          f"{c['reason']}", file=out)


def render(data: dict[str, Any]) -> str:
    out = io.StringIO()
    print_text(data, out)
    return out.getvalue()


def stats_command(path: Path, *, as_json: bool = False, everywhere: bool = False, target: float = 0.5) -> int:
    data = report(path, target, everywhere=everywhere)
    if as_json:
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_text(data)
    return 0

"""Small statistics helpers shared by the benchmarks."""

from __future__ import annotations

import os
import platform
import statistics
from datetime import datetime, timezone
from typing import Any


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def pct(values: list[float], q: float) -> float | None:
    """The `q` quantile (0..1, nearest rank) rounded to 4 digits; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[k], 4)


def describe(values: list[float], scale: float = 1.0, digits: int = 4) -> dict[str, float]:
    """p50/p95/mean/max of `values` times `scale` (e.g. 1000 for milliseconds)."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50) * scale, digits),
        "p95": round(percentile(values, 95) * scale, digits),
        "mean": round(statistics.fmean(values) * scale, digits),
        "max": round(max(values) * scale, digits),
    }


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }

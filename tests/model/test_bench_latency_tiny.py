"""The completion latency replay with the real tiny model: modes chosen with --modes, ratios only between modes run."""

from __future__ import annotations

from pathlib import Path

import pytest
from greenpatch.bench.complete import latency
from greenpatch.engine.kvplan import DEFAULT_REUSE

pytestmark = pytest.mark.model


def test_the_replay_runs_the_chosen_modes_and_always_the_servers_own(tiny_engine, tmp_path: Path) -> None:
    source = tmp_path / "shapes.py"
    source.write_text("".join(f"def area_{i}(width, height):\n    return width * height + {i}\n\n" for i in range(12)))
    out = latency(tiny_engine, [source], 4, typing_ms=0, modes=["none"])
    assert DEFAULT_REUSE in out and "none" in out and "chunk" not in out
    assert out[DEFAULT_REUSE]["keystrokes"] > 0 and out["none"]["keystrokes"] > 0
    assert "speedup_model_p50_vs_none" in out, "the ratio of the two modes run"
    assert not any(key.startswith(("drafts_", "healing_", "prefetch_")) for key in out), "no ratio to a mode not run"

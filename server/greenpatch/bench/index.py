"""`greenpatch bench index PATH`: cold scan+index time per 1,000 files, and incremental reparse latency for
single-character edits replayed on the workspace's real files (insert a character, then delete it)."""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from greenpatch.bench.stats import describe, machine
from greenpatch.workspace import syntax
from greenpatch.workspace.documents import Document
from greenpatch.workspace.index import WorkspaceIndex


def run(args: argparse.Namespace) -> dict[str, Any]:
    index = WorkspaceIndex(args.path)
    started = time.perf_counter()
    stats = index.scan()
    cold = time.perf_counter() - started
    per_1000 = cold / max(stats.files, 1) * 1000

    rng = random.Random(1234)
    files = [f for f in index.files if (e := index.entry(f)) and len(e.lines) > 5]
    incremental: list[float] = []
    full: list[float] = []
    mismatches = 0
    for _ in range(args.edits):
        path = rng.choice(files)
        entry = index.entry(path)
        assert entry is not None
        document = Document(path.as_uri(), path, "\n".join(entry.lines), 1)
        line = rng.randrange(len(entry.lines))
        col = rng.randint(0, len(entry.lines[line]))
        char = rng.choice("abx_(:= 0")
        t0 = time.perf_counter()
        document.apply_change((line, col), (line, col), char)
        incremental.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        fresh = syntax.parse(document.text)
        full.append(time.perf_counter() - t0)
        if str(fresh.root_node) != str(document.tree.root_node):
            mismatches += 1
        document.apply_change((line, col), (line, col + 1), "")
    inc, fl = describe(incremental, 1000), describe(full, 1000)
    summary = {
        "files": stats.files,
        "symbols": stats.symbols,
        "cold_index_seconds": round(cold, 3),
        "cold_seconds_per_1000_files": round(per_1000, 3),
        "reparse_ms_p50": inc.get("p50"),
        "reparse_ms_p95": inc.get("p95"),
        "full_parse_ms_p50": fl.get("p50"),
        "incremental_speedup_p50": round(fl["p50"] / inc["p50"], 2) if inc.get("p50") else None,
        "incremental_tree_mismatches": mismatches,
        "targets": {"cold_seconds_per_1000_files": 5.0, "reparse_ms_p95": 5.0},
    }
    return {
        "benchmark": "index",
        "path": str(args.path),
        "machine": machine(),
        "summary": summary,
        "reparse_ms": inc,
        "full_parse_ms": fl,
        "method": "one cold scan; then N single-character insertions at random positions of random indexed files "
        "(seed 1234), each applied with tree.edit + incremental reparse, compared with a full parse of the same text",
    }

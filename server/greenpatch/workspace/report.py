"""`greenpatch index PATH`: scan a workspace and print what the index holds."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from greenpatch.workspace.index import WorkspaceIndex


def index_command(path: Path, *, as_json: bool) -> int:
    index = WorkspaceIndex(path)
    stats = index.scan()
    files: list[dict[str, Any]] = []
    for file in index.files:
        entry = index.entry(file)
        assert entry is not None
        files.append(
            {
                "path": file.relative_to(index.root).as_posix(),
                "symbols": [
                    {"name": s.name, "kind": s.kind, "line": s.start_line + 1, "container": s.container}
                    for s in entry.symbols
                ],
                "errors": [{"line": p.line + 1, "column": p.col + 1, "message": p.message} for p in entry.problems],
            }
        )
    if as_json:
        summary = {"files": stats.files, "skipped": stats.skipped, "symbols": stats.symbols, "errors": stats.errors,
                   "seconds": round(stats.seconds, 4)}
        json.dump({"root": str(index.root), "summary": summary, "files": files}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for row in files:
        print(f"{row['path']}: {len(row['symbols'])} symbols")
        for symbol in row["symbols"]:
            owner = f"{symbol['container']}." if symbol["container"] else ""
            print(f"  {symbol['line']:>5}  {symbol['kind']:<8} {owner}{symbol['name']}")
        for error in row["errors"]:
            print(f"  {error['line']:>5}:{error['column']}  {error['message']}")
    print(
        f"{stats.files} files, {stats.symbols} symbols, {stats.errors} syntax errors, {stats.skipped} skipped "
        f"in {stats.seconds:.2f} s"
    )
    return 0

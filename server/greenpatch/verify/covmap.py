"""The test -> executed lines map behind affected-test selection, stored on disk as JSON.

Built from the lines file the pytest plugin writes (node id -> file -> lines, measured per test by the project's
coverage.py or greenpatch's own tracer). Each source file's sha256 at measurement time is kept, so a file edited
since then is known to be stale.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = 1


def content_hash(text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


@dataclass
class CoverageMap:
    hashes: dict[str, str] = field(default_factory=dict)  # workspace-relative path -> sha256 when measured
    tests: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # node id -> {path: sorted 1-based lines}
    built: float = 0.0
    seconds: float = 0.0  # how long the measuring run took
    # Python sources as measured (saved beside the map), so an edit made on disk since can be diffed against them
    snapshot: dict[str, str] = field(default_factory=dict)

    def is_fresh(self, rel: str, current: str | bytes | None) -> bool:
        return current is not None and self.hashes.get(rel) == content_hash(current)

    def tests_executing(self, rel: str, ranges: list[tuple[int, int]]) -> set[str]:
        """Node ids of tests that executed any line in any of the 1-based inclusive `ranges` of `rel`."""
        found = set()
        for nodeid, files in self.tests.items():
            lines = files.get(rel)
            if lines and any(start <= line <= end for line in lines for start, end in ranges):
                found.add(nodeid)
        return found

    def line_coverage(self) -> dict[str, dict[str, set[int]]]:
        return {nodeid: {rel: set(lines) for rel, lines in files.items()} for nodeid, files in self.tests.items()}

    def merge(self, other: CoverageMap, replaced_tests: set[str]) -> None:
        for nodeid in replaced_tests:
            self.tests.pop(nodeid, None)
        self.tests.update(other.tests)
        self.hashes.update(other.hashes)
        self.snapshot.update(other.snapshot)
        self.built = time.time()

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        data = {"format": FORMAT, "built": self.built, "seconds": self.seconds, "hashes": self.hashes,
                "tests": self.tests}
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)
        tmp.write_text(json.dumps(self.snapshot), encoding="utf-8")
        os.replace(tmp, path.with_name(path.stem + "-sources.json"))

    @classmethod
    def load(cls, path: Path) -> CoverageMap | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return None
        try:
            snapshot = json.loads(path.with_name(path.stem + "-sources.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            snapshot = {}
        return cls(hashes=data["hashes"], tests=data["tests"], built=data.get("built", 0.0),
                   seconds=data.get("seconds", 0.0), snapshot=snapshot if isinstance(snapshot, dict) else {})

    def measured_source(self, rel: str) -> str | None:
        """The content of `rel` when the map was built (None if not kept or not matching its hash)."""
        text = self.snapshot.get(rel)
        return text if text is not None and self.is_fresh(rel, text) else None


def from_coverage_data(
    data_file: Path, src: Path, hashes: dict[str, str], snapshot: dict[str, str] | None = None
) -> CoverageMap:
    """Read the lines file the test process wrote (pytest_plugin/greenpatch_lines.py: node id -> absolute path ->
    lines, from the project's coverage.py or greenpatch's tracer) for sandbox `src`; paths become workspace-relative.
    A missing or unreadable file gives a map with no tests (selection then falls back to coarser levels)."""
    cmap = CoverageMap(hashes=dict(hashes), built=time.time(), snapshot=dict(snapshot or {}))
    try:
        data = json.loads(data_file.read_text(encoding="utf-8"))
        tests = data["tests"]
    except (OSError, ValueError, TypeError, KeyError):
        return cmap
    if not isinstance(tests, dict):
        return cmap
    src_text = str(src.resolve())
    relative: dict[str, str | None] = {}
    for nodeid, files in tests.items():
        if not nodeid or not isinstance(files, dict):
            continue  # "": collection and import time, not a test
        for measured, lines in files.items():
            if measured not in relative:
                try:
                    relative[measured] = Path(os.path.realpath(measured)).relative_to(src_text).as_posix()
                except ValueError:
                    relative[measured] = None
            rel = relative[measured]
            if rel is None or not isinstance(lines, list):
                continue
            found = cmap.tests.setdefault(nodeid, {}).setdefault(rel, [])
            found.extend(line for line in lines if isinstance(line, int))
    for files in cmap.tests.values():
        for rel in files:
            files[rel] = sorted(set(files[rel]))
    return cmap

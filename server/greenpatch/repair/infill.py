"""Model candidates by infilling (AlphaRepair-style): mask one suspicious statement and let the model fill the
hole, seeing the code before and after it and the failing test as repo context."""

from __future__ import annotations

from dataclasses import dataclass

from greenpatch.engine.base import Engine, FimFormat, Generation
from greenpatch.repair.prompt_context import Window, window_text


@dataclass
class Hole:
    path: str
    first: int  # 1-based lines replaced
    last: int
    prefix: str
    suffix: str
    indent: str


def make_hole(path: str, text: str, first: int, last: int, window: Window | None = None) -> Hole:
    """The hole at lines first..last, its prefix and suffix the whole file or, with a `window`, the part of the
    file around it (prompt_context.hole_window)."""
    lines = text.split("\n")
    line = lines[first - 1]
    indent = line[: len(line) - len(line.lstrip())]
    # The prefix ends at the newline: a prefix ending in spaces tokenizes unlike anything seen in training and
    # derails FIM models; the indentation is put back on the fill.
    if window is not None:
        prefix, suffix = window_text(lines, window, first, last)
    else:
        prefix = "\n".join(lines[: first - 1]) + "\n"
        suffix = "\n" + "\n".join(lines[last:])
    return Hole(path, first, last, prefix, suffix, indent)


def render_context(fim: FimFormat | None, current: str, tests: list[tuple[str, str]], repo: str = "") -> str:
    """The failing tests' files (and what failed) placed before the file being repaired."""
    if fim is not None and fim.file_sep:
        head = f"{fim.repo_name}{repo or 'workspace'}\n" if fim.repo_name else ""
        body = "".join(f"{fim.file_sep}{path}\n{content.rstrip()}\n" for path, content in tests)
        return f"{head}{body}{fim.file_sep}{current}\n"
    return "".join(f"# file: {path}\n{content.rstrip()}\n\n" for path, content in tests)


def fill(engine: Engine, hole: Hole, context: str, *, temperature: float, seed: int, max_tokens: int = 64,
         cancel: object = None) -> tuple[list[str], Generation] | None:
    """The new lines for the hole, or None when the fill is unusable (empty, cut off, cancelled)."""
    n_lines = hole.last - hole.first + 1
    stop = ["\n"] if n_lines == 1 else ["\n\n"]
    gen = engine.infill(hole.prefix, hole.suffix, context=context, max_tokens=max_tokens * n_lines, stop=stop,
                        temperature=temperature, seed=seed, cancel=cancel,  # type: ignore[arg-type]
                        code_first=True)  # an empty fill is unusable: ask for the best one that writes code
    if gen.stop_reason == "cancelled":
        return None
    text = gen.text
    if not text.strip():
        return None
    text = text.lstrip("\n")
    new_lines = text.split("\n")[:n_lines] if n_lines > 1 else [text.split("\n")[0]]
    new_lines[0] = hole.indent + new_lines[0].lstrip(" \t") if new_lines[0].strip() else new_lines[0]
    return new_lines, gen

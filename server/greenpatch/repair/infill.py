"""Model candidates by infilling (AlphaRepair-style): mask one suspicious statement and let the model fill the
hole, seeing the code before and after it and the failing test as repo context."""

from __future__ import annotations

from dataclasses import dataclass

from greenpatch.engine.base import Engine, FimFormat, Generation


@dataclass
class Hole:
    path: str
    first: int  # 1-based lines replaced
    last: int
    prefix: str
    suffix: str
    indent: str
    size: int = 0  # lines the fill writes; 0: as many as it replaces (an insertion replaces none: last = first - 1)

    @property
    def lines(self) -> int:
        return self.size or self.last - self.first + 1


def make_hole(path: str, text: str, first: int, last: int) -> Hole:
    lines = text.split("\n")
    line = lines[first - 1]
    indent = line[: len(line) - len(line.lstrip())]
    # The prefix ends at the newline: a prefix ending in spaces tokenizes unlike anything seen in training and
    # derails FIM models; the indentation is put back on the fill.
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
         cancel: object = None, generated: list[Generation] | None = None) -> tuple[list[str], Generation] | None:
    """The new lines for the hole, or None when the fill is unusable (empty, cut off, cancelled). The model's
    generation is appended to `generated`, usable or not (what the model's time went on)."""
    n_lines = hole.lines
    stop = ["\n"] if n_lines == 1 else ["\n\n"]
    gen = engine.infill(hole.prefix, hole.suffix, context=context, max_tokens=max_tokens * n_lines, stop=stop,
                        temperature=temperature, seed=seed, cancel=cancel,  # type: ignore[arg-type]
                        code_first=True)  # an empty fill is unusable: ask for the best one that writes code
    if generated is not None:
        generated.append(gen)
    if gen.stop_reason == "cancelled":
        return None
    text = gen.text
    if not text.strip():
        return None
    text = text.lstrip("\n")
    new_lines = text.split("\n")[:n_lines] if n_lines > 1 else [text.split("\n")[0]]
    new_lines[0] = hole.indent + new_lines[0].lstrip(" \t") if new_lines[0].strip() else new_lines[0]
    return new_lines, gen

"""Model-free candidates that edit a string or regular-expression literal of a suspicious statement, guided by what
the failing assertion expected and got when that is known (`expected`/`actual`, as text), and by the slips string
and pattern literals commonly carry when it is not.

Guided edits work on the difference between actual and expected: where the literal's value holds what the actual
value has and the expected one has not (a wrong separator, a missing character, a word), the literal is changed
the same way. The literal keeps its quotes and prefix; only its value changes.
"""

from __future__ import annotations

import ast
import difflib
import io
import tokenize
from collections.abc import Iterator

from greenpatch.repair.budget import LITERAL, Edit, decay

MAX_GUIDED = 12  # guided edits of one literal
# Regular-expression functions whose first argument is a pattern.
_REGEX_CALLS = ("compile", "match", "search", "fullmatch", "sub", "subn", "findall", "finditer", "split")
# Separators a literal may have wrong for another (`,` for `, `, `-` for `_`): used when nothing is known.
_SEPARATORS = [",", ", ", ";", ":", "-", "_", " ", "/", ".", "|", "\n", "\t", ""]


def literal_edits(text: str, first: int, last: int, expected: str | None = None, actual: str | None = None) -> \
        Iterator[Edit]:
    """Edits of the string literals on lines first..last (1-based, inclusive); `expected`/`actual` are the failing
    assertion's two sides as text (reprs or plain), when known."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
        tree = ast.parse(text)
    except (tokenize.TokenError, IndentationError, SyntaxError, ValueError):
        return
    starts = [0]
    for line in text.split("\n"):
        starts.append(starts[-1] + len(line) + 1)
    patterns = _pattern_lines(tree)
    docstrings = _docstring_lines(tree)
    want, got = _plain(expected), _plain(actual)
    for tok in tokens:
        if tok.type != tokenize.STRING or not first <= tok.start[0] <= last or tok.start[0] in docstrings:
            continue
        prefix, quote, _ = _parts(tok.string)
        if prefix is None or "f" in prefix.lower() or "b" in prefix.lower():
            continue
        try:
            value = ast.literal_eval(tok.string)
        except (ValueError, SyntaxError):
            continue
        if not isinstance(value, str):
            continue
        a = starts[tok.start[0] - 1] + tok.start[1]
        b = starts[tok.end[0] - 1] + tok.end[1]
        is_pattern = (tok.start[0], tok.start[1]) in patterns or "r" in prefix.lower()
        seen = {value}
        edits: list[tuple[str, str, float]] = []
        guided = want is not None and got is not None
        if guided:
            edits += _guided(value, got or "", want or "")
        # what the assertion says outweighs the usual slips: those come after, at a lower weight
        unguided = _regex_edits(value) if is_pattern else _plain_edits(value)
        edits += [(new, why, weight * (0.5 if guided else 1.0)) for new, why, weight in unguided]
        for rank, (new, why, weight) in enumerate(edits):
            if new in seen:
                continue
            seen.add(new)
            rendered = _render(prefix, quote, new)
            if rendered is None:
                continue
            yield Edit(text[:a] + rendered + text[b:], f"{tok.string} -> {rendered}" + (f" ({why})" if why else ""),
                       LITERAL, weight * decay(rank // 4))


def _plain(side: str | None) -> str | None:
    """A side of an assertion as the string it stands for: `'a-b'` (a repr) -> `a-b`; other text as it is."""
    if side is None:
        return None
    try:
        value = ast.literal_eval(side.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return side
    return value if isinstance(value, str) else side


def _guided(value: str, got: str, want: str) -> list[tuple[str, str, float]]:
    out: list[tuple[str, str, float]] = []
    if value and value == got:
        out.append((want, "the expected value", 1.0))
    matcher = difflib.SequenceMatcher(None, got, want, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        old, new = got[i1:i2], want[j1:j2]
        if old and old in value:
            out.append((value.replace(old, new, 1), "as the expected value differs", 0.9))
            if value.count(old) > 1:
                out.append((value.replace(old, new), "as the expected value differs", 0.8))
        elif not old:
            # an insertion: find where the literal lines up with the text around it
            before, after = got[max(0, i1 - 3):i1], got[i1:i1 + 3]
            if before and before in value:
                at = value.index(before) + len(before)
                out.append((value[:at] + new + value[at:], "as the expected value has more", 0.8))
            elif after and value.startswith(after):
                out.append((new + value, "as the expected value has more", 0.7))
            elif got.endswith(value) and i1 == len(got):
                out.append((value + new, "as the expected value has more", 0.7))
        if len(out) >= MAX_GUIDED:
            break
    return out


def _plain_edits(value: str) -> list[tuple[str, str, float]]:
    out: list[tuple[str, str, float]] = []
    stripped = value.strip()
    if stripped != value:
        out.append((stripped, "spaces trimmed", 0.3))
    if 0 < len(value) <= 3:  # a separator: another separator (an empty string is an initial value)
        for sep in _SEPARATORS:
            out.append((sep, "", 0.3))
    if value[:1].isalpha():
        out.append((value[:1].swapcase() + value[1:], "case", 0.15))
    if value.endswith("\n"):
        out.append((value[:-1], "", 0.15))
    return out


def _regex_edits(value: str) -> list[tuple[str, str, float]]:
    out: list[tuple[str, str, float]] = []
    if not value.startswith("^"):
        out.append(("^" + value, "anchored at the start", 0.5))
    else:
        out.append((value[1:], "start anchor dropped", 0.4))
    if not value.endswith("$"):
        out.append((value + "$", "anchored at the end", 0.5))
    elif not value.endswith("\\$"):
        out.append((value[:-1], "end anchor dropped", 0.4))
    for i, ch in enumerate(value):
        escaped = i > 0 and value[i - 1] == "\\"
        if escaped:
            continue
        if ch in "*+":
            other = "+" if ch == "*" else "*"
            out.append((value[:i] + other + value[i + 1:], f"`{ch}` -> `{other}`", 0.45))
            if value[i + 1:i + 2] != "?":
                out.append((value[:i + 1] + "?" + value[i + 1:], "non-greedy", 0.35))
        elif ch == "?" and i > 0 and value[i - 1] in "*+":
            out.append((value[:i] + value[i + 1:], "greedy", 0.35))
        elif ch == "." and not _in_class(value, i):
            out.append((value[:i] + "\\." + value[i + 1:], "a literal dot", 0.35))
    for short, wide in (("\\d", "[\\d.]"), ("\\w", "[\\w-]"), ("\\s", "\\s*"), ("\\S", "[^\\s]")):
        if short in value:
            out.append((value.replace(short, wide, 1), f"`{short}` -> `{wide}`", 0.25))
    return out


def _in_class(value: str, index: int) -> bool:
    opened = value.rfind("[", 0, index)
    return opened != -1 and value.rfind("]", opened, index) == -1


def _pattern_lines(tree: ast.Module) -> set[tuple[int, int]]:
    """Positions of the string literals that are regular expressions: `re.*(pattern, ...)`."""
    found: set[tuple[int, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in _REGEX_CALLS and isinstance(node.func.value, ast.Name) and \
                node.func.value.id in ("re", "regex") and node.args and isinstance(node.args[0], ast.Constant):
            found.add((node.args[0].lineno, node.args[0].col_offset))
    return found


def _docstring_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and \
                    isinstance(first.value.value, str):
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def _parts(token: str) -> tuple[str | None, str, str]:
    """A string token's prefix, quote and body (None prefix for what this module does not edit)."""
    at = 0
    while at < len(token) and token[at] not in "'\"":
        at += 1
    prefix, rest = token[:at], token[at:]
    for quote in ('"""', "'''", '"', "'"):
        if rest.startswith(quote) and rest.endswith(quote) and len(rest) >= 2 * len(quote):
            return prefix, quote, rest[len(quote):-len(quote)]
    return None, "", ""


def _render(prefix: str, quote: str, value: str) -> str | None:
    """`value` as a literal with the original's prefix and quotes (None where it cannot be written so)."""
    if "r" in prefix.lower():
        if quote in value or value.endswith("\\") or ("\n" in value and len(quote) == 1):
            return None
        return f"{prefix}{quote}{value}{quote}"
    body = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\r", "\\r")
    if len(quote) == 1:
        body = body.replace("\n", "\\n").replace(quote, "\\" + quote)
    elif quote[0] in body or body.endswith(quote[0]):
        body = body.replace(quote[0], "\\" + quote[0])
    return f"{prefix}{quote}{body}{quote}"

"""Model-free candidates: classic single-edit mutation operators applied to one suspicious statement.

Edits are made on tokens of the original text (never by unparsing the AST), so a fix changes exactly the
characters it needs and keeps the author's formatting."""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterator

# Replacements for each operator, closest first (a bug is usually one step away: `<` for `<=`, `+` for `-`).
OPERATORS: dict[str, list[str]] = {
    "<": ["<=", ">", "!=", "=="], "<=": ["<", ">=", "=="], ">": [">=", "<", "!=", "=="], ">=": [">", "<=", "=="],
    # an equality test is often a bound in disguise (`balance == 0` for `balance < 0`): every ordering too
    "==": ["!=", "<=", ">=", "<", ">"], "!=": ["==", "<", ">", "<=", ">="],
    "+": ["-", "*"], "-": ["+", "*"], "*": ["/", "//", "+", "**"], "/": ["//", "*"], "//": ["/", "%", "*"],
    "%": ["//"], "**": ["*"],
    "+=": ["-="], "-=": ["+="], "*=": ["/=", "//="], "//=": ["/=", "*="], "/=": ["//=", "*="],
    "and": ["or"], "or": ["and"], "is": ["is not"], "in": ["not in"],
    "True": ["False"], "False": ["True"], "min": ["max"], "max": ["min"],
    "<<": [">>"], ">>": ["<<"], "&": ["|"], "|": ["&"],
}


def _offsets(text: str) -> list[int]:
    starts = [0]
    for line in text.split("\n"):
        starts.append(starts[-1] + len(line) + 1)
    return starts


def _splice(text: str, starts: list[int], start: tuple[int, int], end: tuple[int, int], new: str) -> str:
    a = starts[start[0] - 1] + start[1]
    b = starts[end[0] - 1] + end[1]
    return text[:a] + new + text[b:]


def mutations(text: str, first: int, last: int) -> Iterator[tuple[str, str]]:
    """(new text, description) for every single mutation of lines first..last (1-based, inclusive)."""
    starts = _offsets(text)
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return
    span = [t for t in tokens if first <= t.start[0] <= last]
    late: list[tuple[str, str]] = []
    for new, description, last_element in _token_mutations(text, starts, span):
        if last_element:
            late.append((new, description))
        else:
            yield new, description
    yield from _ast_mutations(text, starts, first, last)
    # `x[-1]` is the idiom for the last element, seldom the slip: its mutations go after every other one (python-
    # dateutil's `tokens[idx + 1]` off by one waited behind six of `skipped_tokens[-1]`'s)
    yield from late


def _token_mutations(text: str, starts: list[int], span: list[tokenize.TokenInfo]) -> Iterator[tuple[str, str, bool]]:
    """(new text, description, whether it mutates an `[-1]` index) for the tokens' operators and numbers."""
    for i, tok in enumerate(span):
        nxt = span[i + 1] if i + 1 < len(span) else None
        prev = span[i - 1] if i > 0 else None
        idiom = _last_index(span, i)
        before = span[i - 2] if i > 1 else None  # what precedes `prev`: a binary `+`/`-` follows an operand
        binary = prev is not None and prev.string in ("+", "-") and before is not None and (
            before.type in (tokenize.NAME, tokenize.NUMBER, tokenize.STRING) or before.string in (")", "]", "}"))
        for new, description in _token_mutation(text, starts, tok, prev, nxt, binary):
            yield new, description, idiom


def _last_index(span: list[tokenize.TokenInfo], i: int) -> bool:
    """Whether token i is the `-` or the `1` of a `[-1]` subscript."""
    at = i if span[i].string == "-" else i - 1
    words = [t.string for t in span[max(0, at - 1): at + 3]] if at >= 1 else []
    return words == ["[", "-", "1", "]"]


def _token_mutation(text: str, starts: list[int], tok: tokenize.TokenInfo, prev: tokenize.TokenInfo | None,
                    nxt: tokenize.TokenInfo | None, binary: bool = False) -> Iterator[tuple[str, str]]:
    """The mutations of one token; `binary`: it is the right operand of a binary `+` or `-`."""
    s = tok.string
    if tok.type == tokenize.OP or (tok.type == tokenize.NAME and s in OPERATORS):
        if s == "is" and nxt is not None and nxt.string == "not":
            yield _splice(text, starts, tok.start, nxt.end, "is"), "`is not` -> `is`"
            return
        if s == "not" or (s == "in" and prev is not None and prev.string == "not"):
            return
        if s in ("min", "max") and (nxt is None or nxt.string != "("):
            return
        if s == "-" and (prev is None or prev.type == tokenize.OP and prev.string not in (")", "]", "}")):
            # unary minus: drop it
            yield _splice(text, starts, tok.start, tok.end, ""), "drop unary `-`"
            return
        for repl in OPERATORS.get(s, []):
            if repl in ("*", "/", "//") and nxt is not None and nxt.string == "1":
                continue  # `x * 1` is `x`: "drop the `± 1`" says it plainly
            yield _splice(text, starts, tok.start, tok.end, repl), f"`{s}` -> `{repl}`"
    elif tok.type == tokenize.NAME and s == "not":
        if nxt is not None and nxt.string == "in":
            yield _splice(text, starts, tok.start, nxt.end, "in"), "`not in` -> `in`"
        else:
            end = nxt.start if nxt is not None else tok.end
            yield _splice(text, starts, tok.start, end, ""), "drop `not`"
    elif tok.type == tokenize.NUMBER:
        try:
            value = ast.literal_eval(s)
        except (ValueError, SyntaxError):
            return
        if isinstance(value, int) and not isinstance(value, bool):
            for number in (value + 1, value - 1):
                if number == 0 and binary:
                    continue  # `x + 0` is `x`: "drop the `± 1`" says it plainly
                if number >= 0 or value < 0:
                    yield _splice(text, starts, tok.start, tok.end, str(number)), f"`{s}` -> `{number}`"
                    continue
                # a negative literal as a replacement needs care inside expressions: parenthesize
                yield _splice(text, starts, tok.start, tok.end, f"({number})"), f"`{s}` -> `{number}`"
        elif isinstance(value, float):
            for real in (value + 1, value - 1) if value.is_integer() else ():
                yield _splice(text, starts, tok.start, tok.end, repr(real)), f"`{s}` -> `{real!r}`"


def _segment(text: str, starts: list[int], node: ast.AST) -> tuple[int, int]:
    a = starts[node.lineno - 1] + node.col_offset  # type: ignore[attr-defined]
    b = starts[node.end_lineno - 1] + node.end_col_offset  # type: ignore[attr-defined]
    return a, b


SWAPS_PER_NAME = 4  # other variables tried in place of one use of a variable, the nearest defined first


def _variables(function: ast.FunctionDef | ast.AsyncFunctionDef, line: int) -> list[str]:
    """The function's parameters and the local variables assigned above `line`, the one assigned nearest above it
    first (self/cls left out)."""
    args = function.args
    nearest: dict[str, int] = {}
    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, *(a for a in (args.vararg, args.kwarg) if a)]:
        nearest[arg.arg] = line - function.lineno
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.lineno < line:
            nearest[node.id] = min(nearest.get(node.id, 10**9), line - node.lineno)
    return [n for n in sorted(nearest, key=lambda n: nearest[n]) if n not in ("self", "cls")]


def _variable_swaps(tree: ast.Module, text: str, starts: list[int], first: int,
                    last: int) -> Iterator[tuple[str, str]]:
    """A variable used in place of another of the same function (`enumerate(ret)` for `enumerate(lines)`,
    `other.peek(...)` for `source.peek(...)`): each use on the lines, replaced by the nearest-defined others."""
    function = None
    for node in ast.walk(tree):
        if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                and node.lineno <= first <= (node.end_lineno or node.lineno)
                and (function is None or node.lineno > function.lineno)):
            function = node
    if function is None:
        return
    names = _variables(function, first)
    uses = sorted((n for n in ast.walk(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
                   and first <= n.lineno <= last and n.id in names), key=lambda n: (n.lineno, n.col_offset))
    for use in uses:
        a, b = _segment(text, starts, use)
        for other in [n for n in names if n != use.id][:SWAPS_PER_NAME]:
            yield text[:a] + other + text[b:], f"`{use.id}` -> `{other}`"


def _ast_mutations(text: str, starts: list[int], first: int, last: int) -> Iterator[tuple[str, str]]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return
    yield from _node_mutations(tree, text, starts, first, last)
    yield from _variable_swaps(tree, text, starts, first, last)


def _node_mutations(tree: ast.Module, text: str, starts: list[int], first: int,
                    last: int) -> Iterator[tuple[str, str]]:
    for node in ast.walk(tree):
        line = getattr(node, "lineno", None)
        if line is None or not first <= line <= last:
            continue
        if isinstance(node, ast.Call) and len(node.args) == 2 and not node.keywords:
            a0, a1 = (_segment(text, starts, arg) for arg in node.args)
            s0, s1 = text[a0[0]:a0[1]], text[a1[0]:a1[1]]
            if s0 != s1:
                new = text[: a0[0]] + s1 + text[a0[1]: a1[0]] + s0 + text[a1[1]:]
                yield new, "swap the arguments"
        # `x - 1` -> `x` and `x + 1` -> `x`: off-by-one in an index or a bound
        if (isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub))
                and isinstance(node.right, ast.Constant) and node.right.value == 1):
            a, b = _segment(text, starts, node)
            la, lb = _segment(text, starts, node.left)
            yield text[:a] + text[la:lb] + text[b:], "drop the `± 1`"
        if isinstance(node, ast.Slice):
            for part, name in ((node.lower, "start"), (node.upper, "stop")):
                if part is not None:
                    a, b = _segment(text, starts, part)
                    seg = text[a:b]
                    yield text[:a] + f"{seg} + 1" + text[b:], f"slice {name} + 1"
                    yield text[:a] + f"{seg} - 1" + text[b:], f"slice {name} - 1"
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
                and len(node.args) in (1, 2)):
            a, b = _segment(text, starts, node.args[-1])
            seg = text[a:b]
            yield text[:a] + f"{seg} + 1" + text[b:], "range stop + 1"
            yield text[:a] + f"{seg} - 1" + text[b:], "range stop - 1"
        if (isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr)) and node.end_lineno is not None
                and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))):  # not a docstring
            # excess logic: drop a whole simple statement that has its lines to itself (an emptied block does not
            # parse, and is dropped with the other unparsable candidates)
            a, b = _segment(text, starts, node)
            line_start, line_end = starts[node.lineno - 1], starts[node.end_lineno] - 1
            if not text[line_start:a].strip() and not text[b:line_end].strip():
                yield text[:line_start] + text[line_end + 1:], "drop the statement"
        if (isinstance(node, (ast.If, ast.While)) and node.test.lineno == line
                and not (isinstance(node.test, ast.UnaryOp) and isinstance(node.test.op, ast.Not))):
            # a condition the wrong way round (`if callable(key)` for `if not callable(key)`); a `not` already
            # there is dropped by the token mutations
            a, b = _segment(text, starts, node.test)
            seg = text[a:b]
            simple = isinstance(node.test, (ast.Name, ast.Call, ast.Attribute, ast.Subscript))
            yield text[:a] + (f"not {seg}" if simple else f"not ({seg})") + text[b:], "negate the condition"
        if isinstance(node, ast.Return) and isinstance(node.value, ast.UnaryOp) and isinstance(node.value.op, ast.Not):
            a, b = _segment(text, starts, node.value)
            oa, ob = _segment(text, starts, node.value.operand)
            yield text[:a] + text[oa:ob] + text[b:], "drop `not`"

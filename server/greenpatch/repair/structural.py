"""Model-free candidates of the kinds real one-hunk fixes are made of, on one suspicious statement: a call's
arguments edited from the callee's signature, a condition strengthened or weakened with names in scope, a lookup
made tolerant of a missing key, a file opened in another mode.

Like repair/mutate.py, edits splice the original text at AST positions (never unparse), so a fix changes only the
characters it needs and keeps the author's formatting. Every edit is only a candidate: the tests decide.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from greenpatch.repair.budget import CALL_ARGS, CONDITION, LOOKUP, OPEN_MODE, Edit, decay
from greenpatch.repair.signatures import Param, Signature, SignatureLookup

MAX_NAMES = 6  # names in scope tried as an extra clause of one condition
MAX_ADDED = 12  # keyword arguments added to one call


class _Text:
    """The file's text with offsets for AST positions (utf-8 column offsets on lines)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.split("\n")
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line) + 1)

    def offset(self, line: int, col: int) -> int:
        # ast columns count utf-8 bytes
        return self.starts[line - 1] + len(self.lines[line - 1].encode("utf-8")[:col].decode("utf-8", "replace"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        return (self.offset(node.lineno, node.col_offset),  # type: ignore[attr-defined]
                self.offset(node.end_lineno, node.end_col_offset))  # type: ignore[attr-defined]

    def source(self, node: ast.AST) -> str:
        a, b = self.span(node)
        return self.text[a:b]

    def replace(self, a: int, b: int, new: str) -> str:
        return self.text[:a] + new + self.text[b:]

    def replace_node(self, node: ast.AST, new: str) -> str:
        return self.replace(*self.span(node), new)


def structural_edits(text: str, first: int, last: int, signatures: SignatureLookup | None = None) -> Iterator[Edit]:
    """Every structural edit of the statement on lines first..last (1-based, inclusive)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return
    src = _Text(text)
    scope = _Scope(tree, first)
    nodes = [n for n in ast.walk(tree) if first <= getattr(n, "lineno", 0) <= last]
    for node in nodes:
        if isinstance(node, ast.Call):
            yield from call_argument_edits(src, node, scope, signatures)
            yield from open_mode_edits(src, node)
        elif isinstance(node, (ast.If, ast.While, ast.IfExp, ast.Assert)) and first <= node.test.lineno <= last:
            yield from condition_edits(src, node.test, scope)
        elif isinstance(node, ast.Subscript):
            yield from lookup_edits(src, node)
    yield from guard_edits(src, tree, first, last, scope)


# --- names in scope ------------------------------------------------------------------------------------------


class _Scope:
    """Names a fix at `line` can use: the enclosing function's parameters and the names assigned in it before the
    line (nearest first), and whether it is a method (so `self.x` attributes can be used)."""

    def __init__(self, tree: ast.Module, line: int) -> None:
        self.function: ast.FunctionDef | ast.AsyncFunctionDef | None = None
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno <= line <= (
                node.end_lineno or node.lineno
            ) and (self.function is None or node.lineno > self.function.lineno):
                self.function = node
        self.params: list[str] = []
        self.defaults: dict[str, ast.expr] = {}
        assigned: dict[str, int] = {}
        kinds: dict[str, set[str]] = {}  # how each local is assigned: "literal" (never None) or "other"
        if self.function is not None:
            args = self.function.args
            positional = args.posonlyargs + args.args
            self.params = [a.arg for a in positional + args.kwonlyargs]
            for arg, default in zip(positional[len(positional) - len(args.defaults):], args.defaults):
                self.defaults[arg.arg] = default
            for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults):
                if kw_default is not None:
                    self.defaults[arg.arg] = kw_default
            for node in ast.walk(self.function):
                if isinstance(node, ast.Assign):
                    made = "literal" if isinstance(node.value, _NEVER_NONE) else "other"
                    for target in node.targets:
                        if isinstance(target, ast.Name):
                            kinds.setdefault(target.id, set()).add(made)
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.lineno < line:
                    assigned[node.id] = max(assigned.get(node.id, 0), node.lineno)
                elif isinstance(node, ast.arg) and node.lineno < line and \
                        node.arg not in self.params:
                    assigned[node.arg] = max(assigned.get(node.arg, 0), node.lineno)
        # locals only ever bound to a literal, a display or arithmetic: a None check on them is no fix
        self.never_none = {name for name, how in kinds.items() if how == {"literal"}}
        self.method = bool(self.params) and self.params[0] in ("self", "cls")
        self.self_name = self.params[0] if self.method else ""
        locals_ = sorted(assigned, key=lambda n: -assigned[n])
        self.names = list(dict.fromkeys([n for n in locals_ if n != "_"] +
                                        [p for p in self.params if p != self.self_name]))
        self.attributes: set[str] = set()
        if self.method:
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                        node.value.id == self.self_name:
                    self.attributes.add(node.attr)

    def has(self, name: str) -> bool:
        return name in self.names

    def boolean(self, name: str) -> bool:
        """A name that reads as a flag: a parameter defaulting to True/False, or named like a predicate."""
        default = self.defaults.get(name)
        if isinstance(default, ast.Constant) and isinstance(default.value, bool):
            return True
        return name.startswith(("is_", "has_", "allow", "use_", "strict", "ignore", "skip", "force", "no_")) or \
            name in ("strict", "force", "quiet", "verbose", "recursive", "reverse", "dry_run")


_NEVER_NONE = (ast.Constant, ast.List, ast.Dict, ast.Set, ast.Tuple, ast.ListComp, ast.DictComp, ast.SetComp,
               ast.JoinedStr, ast.BinOp)


# --- call arguments ------------------------------------------------------------------------------------------


def _call_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        parts = [func.attr]
        value = func.value
        while isinstance(value, ast.Attribute):
            parts.append(value.attr)
            value = value.value
        if isinstance(value, ast.Name):
            parts.append(value.id)
            return ".".join(reversed(parts))
        return "." + func.attr  # a method of something computed: only its name is known
    return ""


def _value_choices(name: str, default: str | None, scope: _Scope) -> list[tuple[str, float]]:
    """Values for a keyword argument `name` not passed yet, most likely first."""
    out: list[tuple[str, float]] = []
    if scope.has(name):
        out.append((name, 1.0))  # forwarding the caller's own argument: the most common fix of this kind
    if scope.method and name in scope.attributes:
        out.append((f"{scope.self_name}.{name}", 0.8))
    if default in ("True", "False"):
        out.append(("False" if default == "True" else "True", 0.7))
    elif default == "None":
        for other in scope.names:
            if other != name and (other in name or name in other) and len(other) > 2:
                out.append((other, 0.5))
        out.append(("True", 0.3))
    elif default is None:  # a required parameter not passed: only names fit
        for other in scope.names:
            if other != name and (other in name or name in other) and len(other) > 2:
                out.append((other, 0.5))
    else:
        out.append(("None", 0.2))
    return out


def call_argument_edits(src: _Text, call: ast.Call, scope: _Scope, signatures: SignatureLookup | None) -> Iterator[
        Edit]:
    name = _call_name(call)
    passed = {kw.arg for kw in call.keywords if kw.arg}
    splat = any(kw.arg is None for kw in call.keywords) or any(isinstance(a, ast.Starred) for a in call.args)
    shown = name.lstrip(".") or "the call"
    # add a keyword argument the callee accepts
    if signatures is not None and name and not splat:
        added: list[tuple[str, str, float]] = []
        for signature in signatures(name):
            for param in _open_params(signature, len(call.args), passed):
                for value, weight in _value_choices(param.name, param.default, scope):
                    added.append((param.name, value, weight))
        added.sort(key=lambda item: -item[2])
        seen: set[tuple[str, str]] = set()
        for param_name, value, weight in added[:MAX_ADDED]:
            if (param_name, value) in seen:
                continue
            seen.add((param_name, value))
            yield Edit(_add_argument(src, call, f"{param_name}={value}"), f"{shown}(..., {param_name}={value})",
                       CALL_ARGS, weight)
    # an existing keyword argument given the caller's same-named variable instead of a constant
    for kw in call.keywords:
        if kw.arg and scope.has(kw.arg) and isinstance(kw.value, ast.Constant):
            yield Edit(src.replace_node(kw.value, kw.arg), f"{shown}(..., {kw.arg}={kw.arg})", CALL_ARGS, 0.9)
    # drop one argument
    arguments: list[ast.AST] = [*call.args, *call.keywords]
    for index, arg in enumerate(arguments):
        if len(arguments) < 2 and not isinstance(arg, ast.keyword):
            continue  # `f(x)` -> `f()` is rarely a fix; a lone keyword argument may be one
        yield Edit(_drop_argument(src, arguments, index), f"{shown}(...) without `{src.source(arg)}`", CALL_ARGS,
                   0.5 * decay(len(arguments) - 1 - index))  # the last arguments are the likelier extras
    # swap two positional arguments (two alone, no keywords: repair/mutate.py does that one)
    positional = [a for a in call.args if not isinstance(a, ast.Starred)]
    if len(positional) >= 3 or (len(positional) == 2 and call.keywords):
        for i in range(len(positional)):
            for j in range(i + 1, len(positional)):
                a, b = positional[i], positional[j]
                sa, sb = src.source(a), src.source(b)
                if sa == sb:
                    continue
                (a0, a1), (b0, b1) = src.span(a), src.span(b)
                new = src.text[:a0] + sb + src.text[a1:b0] + sa + src.text[b1:]
                yield Edit(new, f"{shown}: `{sa}` and `{sb}` swapped", CALL_ARGS, 0.4 * decay(j - i - 1))
    # swap the values of two keyword arguments
    keywords = [kw for kw in call.keywords if kw.arg]
    for i in range(len(keywords)):
        for j in range(i + 1, len(keywords)):
            a, b = keywords[i].value, keywords[j].value
            sa, sb = src.source(a), src.source(b)
            if sa != sb:
                (a0, a1), (b0, b1) = src.span(a), src.span(b)
                new = src.text[:a0] + sb + src.text[a1:b0] + sa + src.text[b1:]
                yield Edit(new, f"{shown}: values of `{keywords[i].arg}` and `{keywords[j].arg}` swapped",
                           CALL_ARGS, 0.3)


def _open_params(signature: Signature, positional: int, passed: set[str]) -> list[Param]:
    out = []
    for index, param in enumerate(signature.params):
        if param.name in passed or (index < positional and not param.keyword_only) or param.positional_only:
            continue
        out.append(param)
    return out


def _add_argument(src: _Text, call: ast.Call, argument: str) -> str:
    arguments: list[ast.AST] = [*call.args, *call.keywords]
    if not arguments:
        end = src.offset(call.end_lineno or call.lineno, call.end_col_offset or 0) - 1  # before the `)`
        return src.replace(end, end, argument)
    _, last_end = src.span(arguments[-1])
    rest = src.text[last_end:]
    # after a trailing comma (a call spread over lines), the new argument goes after it
    stripped = rest.lstrip(" \t")
    if stripped.startswith(","):
        return src.replace(last_end, last_end, f", {argument}")
    return src.replace(last_end, last_end, f", {argument}")


def _drop_argument(src: _Text, arguments: list[ast.AST], index: int) -> str:
    a, b = src.span(arguments[index])
    if index + 1 < len(arguments):
        b, _ = src.span(arguments[index + 1])  # up to the next argument: its comma goes too
    elif index > 0:
        _, a = src.span(arguments[index - 1])  # from the previous argument's end: the comma before it goes
    return src.replace(a, b, "")


# --- files opened in another mode --------------------------------------------------------------------------

_MODES: dict[str, list[str]] = {
    "r": ["rb", "r+", "w"], "rt": ["rb"], "rb": ["r"], "w": ["wb", "a", "w+"], "wt": ["wb"], "wb": ["w", "ab"],
    "a": ["w", "ab"], "ab": ["a", "wb"], "r+": ["r", "w+"], "w+": ["w", "r+"], "x": ["w"], "rU": ["r"],
}
_OPENERS = ("open", "io.open", "codecs.open", "gzip.open", "bz2.open", "lzma.open", ".open")


def open_mode_edits(src: _Text, call: ast.Call) -> Iterator[Edit]:
    name = _call_name(call)
    if not (name in _OPENERS or name.endswith(".open")):
        return
    mode_at = 0 if name.startswith(".") or (name.endswith(".open") and name not in _OPENERS) else 1  # Path.open(mode)
    mode: ast.expr | None = call.args[mode_at] if len(call.args) > mode_at else None
    mode = next((kw.value for kw in call.keywords if kw.arg == "mode"), mode)
    if mode is None:
        current = "r"
        for rank, new in enumerate(_MODES["r"]):
            argument = repr(new) if len(call.args) == mode_at and not call.keywords else f"mode={new!r}"
            yield Edit(_add_argument(src, call, argument), f"open in mode {new!r}", OPEN_MODE, decay(rank))
    elif isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        current = mode.value
        for rank, new in enumerate(_MODES.get(current, [])):
            quote = src.source(mode)[0] if src.source(mode)[:1] in "'\"" else "'"
            yield Edit(src.replace_node(mode, f"{quote}{new}{quote}"), f"open in mode {new!r}, not {current!r}",
                       OPEN_MODE, decay(rank))
    else:
        return
    if "b" not in current and not any(kw.arg == "encoding" for kw in call.keywords) and name != ".open":
        yield Edit(_add_argument(src, call, 'encoding="utf-8"'), "open with encoding utf-8", OPEN_MODE, 0.5)


# --- lookups tolerant of a missing key -----------------------------------------------------------------------


def lookup_edits(src: _Text, node: ast.Subscript) -> Iterator[Edit]:
    if not isinstance(node.ctx, ast.Load) or isinstance(node.slice, (ast.Slice, ast.Tuple)):
        return
    if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int):
        return  # a list or tuple index: `.get` is no fix there
    if isinstance(node.slice, (ast.UnaryOp, ast.BinOp)):
        return  # arithmetic indexes a sequence
    container, key = src.source(node.value), src.source(node.slice)
    if isinstance(node.value, (ast.Name, ast.Attribute, ast.Subscript, ast.Call)):
        yield Edit(src.replace_node(node, f"{container}.get({key})"), f"`{container}[{key}]` -> "
                   f"`{container}.get({key})`", LOOKUP, 1.0)


# --- conditions ----------------------------------------------------------------------------------------------


def _needs_parens(node: ast.expr) -> bool:
    return isinstance(node, (ast.BoolOp, ast.IfExp, ast.Lambda, ast.NamedExpr))


def condition_edits(src: _Text, test: ast.expr, scope: _Scope) -> Iterator[Edit]:
    shown = src.source(test)
    wrapped = f"({shown})" if _needs_parens(test) else shown
    used = [n.id for n in ast.walk(test) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]
    used = list(dict.fromkeys(u for u in used if scope.has(u)))
    # truthiness where None was meant: `if x:` -> `if x is not None:`; `if not x:` -> `if x is None:`
    for node in [test, *(test.values if isinstance(test, ast.BoolOp) else [])]:
        if isinstance(node, (ast.Name, ast.Attribute)):
            s = src.source(node)
            yield Edit(src.replace_node(node, f"{s} is not None"), f"`{s}` -> `{s} is not None`", CONDITION, 0.9)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not) and \
                isinstance(node.operand, (ast.Name, ast.Attribute)):
            s = src.source(node.operand)
            yield Edit(src.replace_node(node, f"{s} is None"), f"`not {s}` -> `{s} is None`", CONDITION, 0.9)
    # one clause of an `and`/`or` dropped
    if isinstance(test, ast.BoolOp):
        for index, value in enumerate(test.values):
            rest = [src.source(v) for i, v in enumerate(test.values) if i != index]
            op = " and " if isinstance(test.op, ast.And) else " or "
            yield Edit(src.replace_node(test, op.join(rest)), f"condition without `{src.source(value)}`",
                       CONDITION, 0.6)
    # strengthened: `C and X`; weakened: `C or X`
    bare = isinstance(test, ast.Name)  # `if x:` has its own `is not None` edit above
    nullable = [u for u in used if u not in scope.never_none]
    extra_and: list[tuple[str, float]] = [(f"{u} is not None", 0.5) for u in nullable if not bare]
    extra_or: list[tuple[str, float]] = [(f"{u} is None", 0.4) for u in nullable if not bare]
    others = [n for n in scope.names if n not in used]
    others.sort(key=lambda n: not scope.boolean(n))  # flags first, then nearest first (a stable sort)
    for rank, name in enumerate(others[:MAX_NAMES]):
        weight = (0.7 if scope.boolean(name) else 0.35) * decay(rank)
        extra_and += [(name, weight), (f"not {name}", weight * 0.8)]
        extra_or += [(name, weight * 0.9), (f"not {name}", weight * 0.7)]
    for clause, weight in extra_and:
        yield Edit(src.replace_node(test, f"{wrapped} and {clause}"), f"condition `and {clause}`", CONDITION, weight)
    for clause, weight in extra_or:
        yield Edit(src.replace_node(test, f"{wrapped} or {clause}"), f"condition `or {clause}`", CONDITION, weight)
    # negated
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return  # mutate.py drops a `not`
    yield Edit(src.replace_node(test, f"not {f'({shown})' if not isinstance(test, (ast.Name, ast.Call, ast.Attribute)) else shown}"),
               "condition negated", CONDITION, 0.4)


def guard_edits(src: _Text, tree: ast.Module, first: int, last: int, scope: _Scope) -> Iterator[Edit]:
    """A simple statement that dereferences a name that may be None, guarded: `if x is not None:` around it."""
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Expr, ast.Assign, ast.AugAssign, ast.Return)) or node.lineno != first or \
                (node.end_lineno or node.lineno) > last:
            continue
        line = src.lines[node.lineno - 1]
        indent = line[: len(line) - len(line.lstrip())]
        if line.strip() != src.source(node).split("\n")[0].strip():
            continue  # shares its line with something else
        derefs = [n.value.id for n in ast.walk(node) if isinstance(n, (ast.Attribute, ast.Subscript)) and
                  isinstance(n.value, ast.Name) and scope.has(n.value.id) and n.value.id != scope.self_name and
                  n.value.id not in scope.never_none]
        for rank, name in enumerate(dict.fromkeys(derefs)):
            body = "\n".join("    " + row if row.strip() else row
                             for row in src.lines[node.lineno - 1: (node.end_lineno or node.lineno)])
            a = src.starts[node.lineno - 1]
            b = src.starts[node.end_lineno or node.lineno] - 1
            yield Edit(src.replace(a, b, f"{indent}if {name} is not None:\n{body}"),
                       f"guarded by `if {name} is not None`", CONDITION, 0.5 * decay(rank))
        break


"""Model-free candidates for an attribute the failure says an object does not have, where the class's code uses it
as its own: the initialization written back into the class's `__init__`.

A dropped `self.count = 0` fails far from where it was: in the method that first reads or updates the attribute
(`AttributeError: 'FilePerms' object has no attribute '_integer'` from `fp_obj._integer |= mode`). Localization
ranks that method, and an edit there (`getattr(obj, "_integer", 0) | mode`) passes the tests without being the
developer's fix. The message names the class and the attribute, so the likely fix is known by kind: the class's
`__init__` sets it, to the value its updates start from (`|=`, `+=` start from 0, `.append` from a list).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator

from greenpatch.repair.budget import INIT, Edit, decay
from greenpatch.repair.holes import indent_of, is_docstring

# "'FilePerms' object has no attribute '_integer'" (Python 3.10+ may add ". Did you mean: ...?")
_MISSING = re.compile(r"'(\w+)' object has no attribute '(\w+)'")
_START = {ast.Add: "0", ast.Sub: "0", ast.BitOr: "0", ast.BitXor: "0", ast.Mult: "1", ast.LShift: "0",
          ast.RShift: "0"}  # what an augmented assignment's attribute starts from
_METHODS = {"append": "[]", "extend": "[]", "insert": "[]", "add": "set()", "update": "{}", "setdefault": "{}",
            "items": "{}", "keys": "{}", "values": "{}", "get": "{}"}  # what a method called on it says it is


def missing_attributes(messages: Iterable[str]) -> list[tuple[str, str]]:
    """(class, attribute) pairs the failures' messages say are missing, in order, without repeats."""
    found: dict[tuple[str, str], None] = {}
    for message in messages:
        for match in _MISSING.finditer(message or ""):
            found[(match.group(1), match.group(2))] = None
    return list(found)


def initialization_edits(text: str, cls: str, attribute: str) -> Iterator[Edit]:
    """`self.<attribute> = <value>` inserted at the start of class `cls`'s `__init__` in `text` (at its end when it
    only calls the base's), where the module assigns that attribute somewhere (a typo in the name is a mutation's
    job, not this) and the `__init__` does not set it already."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return
    init = _init_of(tree, cls)
    if init is None or not init.args.args or not init.body:
        return
    me = init.args.args[0].arg
    if any(_sets(node, me, attribute) for node in ast.walk(init)):
        return
    values = _values(tree, attribute)
    if values is None:
        return
    lines = text.split("\n")
    body = init.body
    start = 0
    if is_docstring(body[0]):
        start = 1
    while start < len(body) and _is_super_init(body[start]):
        start += 1
    # First in the body (after the docstring and the base's __init__): the value is a constant, and the statements
    # after it may read it already (a property's setter did, in boltons' FilePerms); at the end it passes only
    # the tests whose __init__ sets nothing through those statements.
    if start < len(body):
        before, where = body[start].lineno, "at the start of"
    else:
        before, where = (body[-1].end_lineno or body[-1].lineno) + 1, "at the end of"
    indent = indent_of(lines[body[0].lineno - 1])
    for rank, value in enumerate(values):
        new = f"{indent}{me}.{attribute} = {value}"
        edited = lines[: before - 1] + [new] + lines[before - 1:]
        yield Edit("\n".join(edited), f"`{new.strip()}` {where} {cls}.__init__", INIT, decay(rank))


def _init_of(tree: ast.Module, cls: str) -> ast.FunctionDef | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == cls:
            return next((item for item in node.body
                         if isinstance(item, ast.FunctionDef) and item.name == "__init__"), None)
    return None


def _sets(node: ast.AST, me: str, attribute: str) -> bool:
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    flat: list[ast.expr] = []
    for target in targets:
        flat += list(target.elts) if isinstance(target, (ast.Tuple, ast.List)) else [target]
    return any(isinstance(t, ast.Attribute) and t.attr == attribute and isinstance(t.value, ast.Name)
               and t.value.id == me for t in flat)


def _values(tree: ast.Module, attribute: str) -> list[str] | None:
    """The values to try, likeliest first, from how the module uses the attribute; None where the module never
    assigns it (then it is not an attribute its objects are meant to have)."""
    assigned = False
    guesses: dict[str, None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.AugAssign) and _is_attribute(node.target, attribute):
            assigned = True
            start = _START.get(type(node.op))
            if start is not None:
                guesses[start] = None
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                items = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
                if any(_is_attribute(item, attribute) for item in items):
                    assigned = True
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and _is_attribute(node.func.value, attribute) and node.func.attr in _METHODS:
            guesses[_METHODS[node.func.attr]] = None
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store) \
                and _is_attribute(node.value, attribute):
            guesses["{}"] = None
    if not assigned and not guesses:
        return None
    return [*guesses, *(v for v in ("None",) if v not in guesses)][:3]


def _is_attribute(node: ast.AST, attribute: str) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == attribute


def _is_super_init(stmt: ast.stmt) -> bool:
    """`super().__init__(...)` or `Base.__init__(self, ...)`: the attribute goes after it (the base may reset)."""
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) \
        and isinstance(stmt.value.func, ast.Attribute) and stmt.value.func.attr == "__init__"

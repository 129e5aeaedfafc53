"""CodeT-style differential check: when several candidates pass the tests, run them on extra inputs shaped like
the arguments the tests use (drawn with hypothesis) and group them by behaviour. Weak tests let wrong fixes
through; the behaviour most candidates share is the better bet, and disagreement is worth telling the user.

The candidates run in the verifier's sandbox like any test: a generated test file that calls the function on
each input and fails on purpose with a digest of the outputs in its message."""

from __future__ import annotations

import ast
import logging
import re
from pathlib import PurePosixPath
from typing import Any

log = logging.getLogger(__name__)

PROBE_FILE = "test_greenpatch_probe.py"
MARK = "GREENPATCH-PROBE"
_DIGESTS = re.compile(MARK + r" ([0-9a-z ]+)")


def _literal(node: ast.AST) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None


def call_examples(test_text: str, name: str) -> tuple[str, list[tuple[Any, ...]]] | None:
    """(how the test module refers to the function, argument tuples of its literal calls) or None.

    Handles direct calls (`f(1, 2)`, `mod.f(1, 2)`) and the HumanEval `check(candidate)` pattern, where a helper
    takes the function as a parameter and calls that parameter."""
    try:
        tree = ast.parse(test_text)
    except SyntaxError:
        return None
    short = name.split(".")[-1]
    imported: set[str] = set()  # how the test module can call the function
    node: ast.AST  # a statement here, any node in the walks below
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            imported |= {alias.asname or alias.name for alias in node.names if alias.name == short}
        elif isinstance(node, ast.Import):
            imported |= {f"{alias.asname or alias.name}.{short}" for alias in node.names}
    callee_names = set(imported)
    # helpers called with the function as an argument: their parameter stands for it
    passed_to: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            for i, arg in enumerate(node.args):
                if isinstance(arg, ast.Name) and arg.id in imported or (
                    isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name)
                    and f"{arg.value.id}.{arg.attr}" in imported
                ):
                    passed_to[node.func.id] = i
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in passed_to:
            params = node.args.args
            if passed_to[node.name] < len(params):
                callee_names.add(params[passed_to[node.name]].arg)
    examples: list[tuple[Any, ...]] = []
    used: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or node.keywords:
            continue
        func = node.func
        label = func.id if isinstance(func, ast.Name) else (
            f"{func.value.id}.{func.attr}" if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
            else None
        )
        if label not in callee_names:
            continue
        values = [_literal(arg) for arg in node.args]
        if values and all(ok for ok, _ in values):
            examples.append(tuple(v for _, v in values))
            if label in imported:
                used.append(label)
    # the name to call: one the test calls directly, else any imported spelling the helpers receive
    names = used or sorted(n for n in imported if "." not in n) or sorted(
        n for n in imported if any(n == f"{a}.{b}" for a, b in _attr_args(tree))
    )
    if not examples or not names:
        return None
    arity = max({len(e) for e in examples}, key=lambda n: sum(len(e) == n for e in examples))
    return names[0], [e for e in examples if len(e) == arity][:20]


def _attr_args(tree: ast.AST) -> list[tuple[str, str]]:
    return [(n.value.id, n.attr) for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)]


def _strategy(value: Any, st: Any) -> Any:
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        bound = max(10, abs(value) * 2)
        return st.integers(-bound, bound)
    if isinstance(value, float):
        limit = max(10.0, abs(value) * 2)
        return st.floats(-limit, limit, allow_nan=False, allow_infinity=False).map(lambda x: round(x, 2))
    if isinstance(value, str):
        alphabet = "".join(sorted(set(value))) or "ab"
        alphabet += "abcXY 0" if len(alphabet) < 4 else ""
        return st.text(alphabet=alphabet, max_size=max(8, len(value) * 2))
    if value is None:
        return st.none()
    if isinstance(value, (list, tuple, set)):
        items = list(value)
        inner = st.one_of(*[_strategy(v, st) for v in items[:3]]) if items else st.integers(-10, 10)
        size = max(6, len(items) + 3)
        if isinstance(value, tuple):
            return st.tuples(*[_strategy(v, st) for v in items]) if items else st.just(())
        lists = st.lists(inner, max_size=size)
        return lists.map(set) if isinstance(value, set) else lists
    if isinstance(value, dict):
        if not value:
            return st.just({})
        k, v = next(iter(value.items()))
        return st.dictionaries(_strategy(k, st), _strategy(v, st), max_size=5)
    return st.just(value)


def extra_inputs(examples: list[tuple[Any, ...]], count: int = 24, seed: int = 0) -> list[tuple[Any, ...]]:
    """Argument tuples shaped like the examples (deterministic), the examples themselves first."""
    try:
        from hypothesis import HealthCheck, given, settings
        from hypothesis import strategies as st
    except ImportError:
        return list(examples)
    arity = len(examples[0])
    per_arg = [st.one_of(*[_strategy(e[i], st) for e in examples[:3]]) for i in range(arity)]
    drawn: list[tuple[Any, ...]] = []

    @settings(max_examples=count, database=None, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.tuples(*per_arg))
    def collect(args: tuple[Any, ...]) -> None:
        if args not in drawn and len(drawn) < count:
            drawn.append(args)

    try:
        collect()
    except Exception as exc:  # noqa: BLE001 - a strategy hypothesis cannot draw from: keep what we have
        log.debug("drawing extra inputs failed: %s", exc)
    unique: dict[str, tuple[Any, ...]] = {}
    for args in list(examples) + drawn:  # examples first
        unique.setdefault(repr(args), args)
    return list(unique.values())[: count + len(examples)]


def probe_source(test_text: str, callee: str, inputs: list[tuple[Any, ...]]) -> str:
    """A test file: the test module's imports, then one test that digests the function's output per input."""
    tree = ast.parse(test_text)
    imports = [ast.get_source_segment(test_text, n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    lines = [line for line in imports if line]
    return "\n".join(
        ["import copy as _gp_copy", "import hashlib as _gp_hashlib", *lines, "",
         f"_GP_INPUTS = {inputs!r}", "",
         "def test_greenpatch_probe():",
         "    digests = []",
         "    for args in _GP_INPUTS:",
         "        try:",
         f"            out = repr({callee}(*_gp_copy.deepcopy(args)))",
         "        except Exception as exc:",
         "            out = 'raised ' + type(exc).__name__",
         "        digests.append(_gp_hashlib.sha1(out.encode()).hexdigest()[:6])",
         f"    assert False, {MARK!r} + ' ' + ' '.join(digests)", ""]
    )


def probe_path(test_file: str) -> str:
    return str(PurePosixPath(test_file).parent / PROBE_FILE) if "/" in test_file else PROBE_FILE


def digests(message: str) -> tuple[str, ...] | None:
    found = _DIGESTS.search(message)
    return tuple(found.group(1).split()) if found else None

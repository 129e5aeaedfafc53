"""Let execution judge a suggestion where the code says what it should do: the examples in a docstring.

When the cursor is in the body of a function whose docstring has doctest examples (`>>> f(2)` / `4`), the module
with the suggestion in place is imported in a sandbox and the examples run (verify/examples.py):

* they fail where the function is whole (code follows the suggestion in it, or it ends in a return): other lines
  are sampled (or those sampled already are taken) and the likeliest one whose examples pass replaces it. Where
  none passes, the line is withheld (and typing along it shows nothing): the function's own examples say it is
  wrong, and showing nothing beats showing a line that fails them. Hand-written examples are sometimes wrong
  themselves (an expected value off), and then a right line is withheld too: on HumanEval single-line infilling,
  of the 12 such lines in 600 tasks 4 were right (under wrong examples), 8 wrong; the gate alone would have shown
  4 of each, at half the precision of the lines shown (96 %). Examples doctest cannot read, or that are not
  Python, give no verdict (verify/examples.py);
* they pass, or cannot judge (a module that does not import says nothing about it): nothing changes;
* a function still being written (no code after the suggestion, no return or raise at its end) fails its examples
  whatever the line: they are not run there, which would only make the user wait.
The confidence gate then decides as for any suggestion: lines that pass a docstring's few examples can still be
wrong, so passing them is no reason to show a line the model is unsure of.

Only trusted workspaces run code, and only modules whose top level just defines things (imports, functions,
classes, assignments, `if`/`try` blocks): a script that does its work at import is never run at a keystroke.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

_DEFINES = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign,
            ast.AnnAssign, ast.AugAssign, ast.If, ast.Try, ast.Pass)


@dataclass(frozen=True)
class Target:
    qualname: str  # "func" or "Class.method": what the examples runner looks up in the module
    whole: bool  # failing examples mean the suggestion is wrong (see the module docstring)


def _importable(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring or a bare constant
        if not isinstance(node, _DEFINES):
            return False  # a call, a loop, a `with` at the top level: the module does its work at import
    return True


def _functions(tree: ast.Module) -> list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, str]]:
    """Module-level functions and the methods of module-level classes (what doctest can reach by name)."""
    out: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, str]] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.append((node, node.name))
        elif isinstance(node, ast.ClassDef):
            out.extend((item, f"{node.name}.{item.name}") for item in node.body
                       if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)))
    return out


def target(document: str, first_line: int, last_line: int) -> Target | None:
    """The function whose examples judge a suggestion on lines first_line..last_line (0-based) of `document` (the
    text with the suggestion in place), or None where examples cannot judge it."""
    if ">>>" not in document:
        return None
    try:
        tree = ast.parse(document)
    except (SyntaxError, ValueError):
        return None
    if not _importable(tree):
        return None
    for node, qualname in _functions(tree):
        end = node.end_lineno if node.end_lineno is not None else node.lineno
        if not node.lineno - 1 <= first_line <= end - 1:
            continue
        doc = ast.get_docstring(node, clean=False)
        if not doc or ">>>" not in doc:
            return None
        docstring = node.body[0]
        if first_line <= (docstring.end_lineno or docstring.lineno) - 1:
            return None  # the suggestion is in the signature or the docstring itself
        follows = any(isinstance(n, ast.stmt) and n.lineno - 1 > last_line for n in ast.walk(node) if n is not node)
        whole = follows or isinstance(node.body[-1], (ast.Return, ast.Raise))
        return Target(qualname, whole)
    return None

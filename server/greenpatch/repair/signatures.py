"""What a callee accepts: the parameters of a function, method or class a call names, found in the file itself, in
the workspace index (other modules of the project), or, for the standard library and builtins, by inspecting them
in this process (they are greenpatch's own interpreter's, close enough to propose a candidate the tests judge)."""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from greenpatch.workspace.index import FileEntry, Symbol


@dataclass(frozen=True)
class Param:
    name: str
    default: str | None = None  # the default's source; None: required
    keyword_only: bool = False
    positional_only: bool = False


@dataclass(frozen=True)
class Signature:
    name: str
    params: tuple[Param, ...]


SignatureLookup = Callable[[str], list[Signature]]


class Definitions(Protocol):
    """What signatures need of the workspace index (workspace/index.py's WorkspaceIndex has it)."""

    def lookup(self, name: str) -> list[Symbol]: ...

    def entry(self, path: Path) -> FileEntry | None: ...


def from_def(node: ast.FunctionDef | ast.AsyncFunctionDef, *, bound: bool, name: str = "") -> Signature:
    """The parameters a caller passes (`self`/`cls` left out of a bound method); no *args/**kwargs."""
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    defaults: dict[str, str] = {}
    for arg, default in zip(positional[len(positional) - len(args.defaults):], args.defaults):
        defaults[arg.arg] = ast.unparse(default)
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults):
        if kw_default is not None:
            defaults[arg.arg] = ast.unparse(kw_default)
    params = [Param(a.arg, defaults.get(a.arg), positional_only=a in args.posonlyargs) for a in positional]
    params += [Param(a.arg, defaults.get(a.arg), keyword_only=True) for a in args.kwonlyargs]
    static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)
    if bound and not static and params and params[0].name in ("self", "cls", "mcs"):
        params = params[1:]
    return Signature(name or node.name, tuple(params))


def _class_signature(node: ast.ClassDef) -> Signature | None:
    for child in node.body:
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and child.name == "__init__":
            return from_def(child, bound=True, name=node.name)
    if any("dataclass" in ast.unparse(d) for d in node.decorator_list):
        params = [Param(s.target.id, ast.unparse(s.value) if s.value is not None else None)
                  for s in node.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)]
        return Signature(node.name, tuple(params))
    return None


def file_signatures(tree: ast.Module) -> dict[str, list[Signature]]:
    """Functions, methods (by their bare name) and classes (their constructor) defined in one module."""
    found: dict[str, list[Signature]] = {}

    def visit(body: list[ast.stmt], in_class: bool) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.setdefault(node.name, []).append(from_def(node, bound=in_class))
            elif isinstance(node, ast.ClassDef):
                signature = _class_signature(node)
                if signature is not None:
                    found.setdefault(node.name, []).append(signature)
                visit(node.body, True)

    visit(tree.body, False)
    return found


def _stdlib_imports(tree: ast.Module) -> dict[str, str]:
    """Local name -> dotted path, for names bound by imports of the standard library."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in sys.stdlib_module_names:
                    names[(alias.asname or alias.name).split(".")[0]] = alias.name if alias.asname else \
                        alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level and \
                node.module.split(".")[0] in sys.stdlib_module_names:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def runtime_signature(dotted: str) -> Signature | None:
    """The signature of a standard-library or builtin callable, by its dotted path (`json.dumps`, `sorted`)."""
    module_name, _, attr_path = dotted.partition(".")
    try:
        if not attr_path:
            target: object = getattr(builtins, module_name)
        else:
            if module_name not in sys.stdlib_module_names:
                return None
            parts = dotted.split(".")
            target = None
            for cut in range(len(parts), 0, -1):  # the longest importable module prefix, then attributes
                try:
                    target = importlib.import_module(".".join(parts[:cut]))
                except ImportError:
                    continue
                for attr in parts[cut:]:
                    target = getattr(target, attr)
                break
            if target is None:
                return None
        signature = inspect.signature(target)  # type: ignore[arg-type]
    except (AttributeError, ValueError, TypeError, ImportError):
        return None
    params = []
    for p in signature.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = None if p.default is p.empty else repr(p.default)
        params.append(Param(p.name, default, keyword_only=p.kind == p.KEYWORD_ONLY,
                            positional_only=p.kind == p.POSITIONAL_ONLY))
    return Signature(dotted, tuple(params))


def _index_signatures(index: Definitions, name: str) -> list[Signature]:
    found: list[Signature] = []
    for symbol in index.lookup(name):
        if symbol.kind not in ("function", "method", "class"):
            continue
        entry = index.entry(symbol.path)
        if entry is None:
            continue
        source = textwrap.dedent("\n".join(entry.lines[symbol.start_line: symbol.end_line + 1]))
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        node = tree.body[0] if tree.body else None
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append(from_def(node, bound=symbol.kind == "method"))
        elif isinstance(node, ast.ClassDef) and (signature := _class_signature(node)) is not None:
            found.append(signature)
    return found


def lookup(text: str, index: Definitions | None = None) -> SignatureLookup:
    """A lookup of the signatures a call's name (as written: `f`, `mod.f`, `obj.method`, `.method`) may refer to,
    from the point of view of the module `text`."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        tree = ast.Module(body=[], type_ignores=[])
    local = file_signatures(tree)
    stdlib = _stdlib_imports(tree)
    cache: dict[str, list[Signature]] = {}

    def find(name: str) -> list[Signature]:
        if name in cache:
            return cache[name]
        head, _, rest = name.partition(".")
        bare = name.rsplit(".", 1)[-1]
        found: list[Signature] = []
        if head in stdlib:
            signature = runtime_signature(stdlib[head] + (f".{rest}" if rest else ""))
            found = [signature] if signature is not None else []
        elif not rest and head in local:
            found = local[head]
        elif rest or not head:
            found = local.get(bare, [])  # a method, on an object of this module or another
            if not found and index is not None:
                found = _index_signatures(index, bare)
        else:
            found = _index_signatures(index, head) if index is not None else []
            if not found and hasattr(builtins, head):
                signature = runtime_signature(head)
                found = [signature] if signature is not None else []
        cache[name] = found
        return found

    return find

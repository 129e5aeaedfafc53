"""Model candidates by rewriting: the chat model rewrites the suspicious function given the failing test and the
error, with feedback rounds. Prompts are data files (prompts/repair_rewrite_*.txt)."""

from __future__ import annotations

import ast
import re
import textwrap

from greenpatch.engine.base import ChatMessage
from greenpatch.resources import read_prompt

_BLOCK = re.compile(r"```(?:python|py)?\s*\n(.*?)(?:```|$)", re.DOTALL)


def first_messages(path: str, function: str, source: str, test: str, error: str,
                   context: str = "") -> list[ChatMessage]:
    """`context`: what the function uses from the package (prompt_context.rewrite_context), "" for none."""
    user = read_prompt("repair_rewrite_user.txt").format(
        path=path, function=function, source=source.rstrip(), test=test.rstrip(), error=error.strip() or "(none)",
        context=context,
    )
    return [ChatMessage("system", read_prompt("repair_rewrite_system.txt").strip()), ChatMessage("user", user)]


def feedback_message(function: str, error: str) -> ChatMessage:
    return ChatMessage("user", read_prompt("repair_rewrite_feedback.txt").format(function=function, error=error))


def extract_function(reply: str, name: str) -> str | None:
    """The source of the function `name` in the model's reply (dedented), or None."""
    blocks = _BLOCK.findall(reply) or [reply]
    short = name.split(".")[-1]
    for block in blocks:
        code = textwrap.dedent(block)
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == short:
                start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
                lines = code.split("\n")[start : node.end_lineno]
                return textwrap.dedent("\n".join(lines))
    return None


def splice_function(text: str, first: int, last: int, new_source: str) -> str | None:
    """Replace lines first..last (1-based: the `def` line to the end of the function) with new_source,
    indented like the original `def` (decorators above `first` stay, so drop any in new_source)."""
    lines = text.split("\n")
    header = lines[first - 1]
    indent = header[: len(header) - len(header.lstrip())]
    new_lines = new_source.rstrip("\n").split("\n")
    while new_lines and new_lines[0].lstrip().startswith("@"):
        new_lines.pop(0)
    if not new_lines:
        return None
    body = [indent + line if line.strip() else "" for line in new_lines]
    return "\n".join(lines[: first - 1] + body + lines[last:])

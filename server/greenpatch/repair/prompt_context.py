"""Where the repair prompts' context is built: what the model sees besides the code around the hole (infill) or
the function (rewrite). One place, so that what goes in is decided by measurement, for both kinds of prompt."""

from __future__ import annotations

import ast

from greenpatch.engine.base import ChatMessage
from greenpatch.repair import rewrite
from greenpatch.repair.files import RunFiles
from greenpatch.repair.group import Group
from greenpatch.repair.infill import Hole
from greenpatch.repair.localize import Suspect, test_file_of


class PromptContext:
    def __init__(self, files: RunFiles) -> None:
        self.files = files

    def infill(self, group: Group, suspect: Suspect, hole: Hole) -> str:
        """Text put before the file in an infill prompt."""
        # No repo context: measured with the 0.5B model, putting the failing test before the file made it fill every
        # hole with code from elsewhere; the bare file fills correctly.
        return ""

    def rewrite(self, group: Group, source: str) -> list[ChatMessage]:
        """The rewrite's first messages: the function's source, the failing test and its message."""
        result = group.failing[0]
        test_text = self.files.text(test_file_of(result.nodeid)) or ""
        test = test_function(test_text, result.nodeid) or test_text[:3000]
        return rewrite.first_messages(group.path, group.function, source, test, result.message)


def test_function(text: str, nodeid: str) -> str | None:
    """Source of the test function a node id names (parametrize ids and classes handled)."""
    name = nodeid.split("::")[-1].split("[")[0]
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return ast.get_source_segment(text, node)
    return None

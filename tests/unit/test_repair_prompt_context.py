"""The repair prompts' context: a window of the file around the hole, the definitions it uses, the failing test."""

from __future__ import annotations

from pathlib import Path

import pytest
from greenpatch.config import RepairSettings
from greenpatch.engine.base import FimFormat
from greenpatch.engine.fake import FakeEngine
from greenpatch.repair import RepairPipeline, infill, prompt_context
from greenpatch.repair.failure import FailureFacts
from greenpatch.repair.rewrite import first_messages
from greenpatch.verify import Verifier
from greenpatch.verify.types import Frame
from greenpatch.workspace.index import WorkspaceIndex
from inline_worker import InlineWorker
from verify_helpers import copy_workspace

QWEN = FimFormat("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|repo_name|>", "<|file_sep|>")


@pytest.fixture
def package(tmp_path: Path) -> Path:
    return copy_workspace("failure_package", tmp_path)


@pytest.fixture
def index(package: Path) -> WorkspaceIndex:
    index = WorkspaceIndex(package)
    index.scan()
    return index


def module(functions: int) -> str:
    head = '"""A module."""\n\nimport math\nfrom os import path\n\n'
    body = "".join(f"\ndef f{i}(x):\n    y = x + {i}\n    return math.floor(y)\n\n" for i in range(functions))
    return head + body + "\nclass Box:\n    size = 1\n\n    def area(self, w):\n        return w * self.size\n"


def hole_in_area(text: str, window: bool) -> infill.Hole:
    lines = text.split("\n")
    line = next(n for n, row in enumerate(lines, 1) if "return w * self.size" in row)
    around = infill.hole_window(text, line, line) if window else None
    return infill.make_hole("m.py", text, line, line, around)


def test_a_hole_in_a_4000_line_module_costs_the_prompt_of_one_in_a_40_line_module() -> None:
    big, small = module(800), module(8)
    assert big.count("\n") > 4000 and small.count("\n") < 60
    windowed = hole_in_area(big, window=True)
    assert len(windowed.prefix + windowed.suffix) == len(
        (w := hole_in_area(small, window=True)).prefix + w.suffix)
    assert windowed.prefix == "import math\nfrom os import path\n\n\nclass Box:\n    def area(self, w):\n"
    assert windowed.suffix == "\n\n"
    whole = hole_in_area(big, window=False)
    assert len(whole.prefix) > 50 * len(windowed.prefix)


def test_a_hole_outside_any_function_or_in_a_file_that_does_not_parse_gets_no_window() -> None:
    assert infill.hole_window("X = 1\n\ndef f():\n    return X\n", 1, 1) is None
    assert infill.hole_window("def f(:\n    return 1\n", 2, 2) is None


def test_a_long_function_keeps_the_lines_around_the_hole() -> None:
    text = "def long(x):\n" + "".join(f"    x += {i}\n" for i in range(1000)) + "    return x\n"
    window = infill.hole_window(text, 600, 600)
    assert window is not None
    assert window.first <= 600 <= window.last and window.last - window.first < infill.FUNCTION_LINES


def test_the_definitions_a_function_uses_come_from_other_modules_and_from_its_own_outside_the_window(
    package: Path, index: WorkspaceIndex,
) -> None:
    cart = (package / "shop/cart.py").read_text()
    line = cart.split("\n").index("        return round(subtotal * (1 + rate_for(self.region)), 2)") + 1
    window = infill.hole_window(cart, line, line)
    found = prompt_context.used_definitions(cart, "shop/cart.py", line, line, index, package, window, 2000)
    assert found == [("shop/pricing/rates.py", "def rate_for(region):\n    return RATES[normal(region)]")]
    text = (package / "shop/text.py").read_text()
    found = prompt_context.used_definitions(text, "shop/text.py", 2, 2, index, package,
                                            infill.hole_window(text, 2, 2), 2000)
    assert found == [("shop/text.py", 'def _clean(name):\n    return name.replace("_", " ").strip("-")')]
    assert prompt_context.used_definitions(text, "shop/text.py", 2, 2, index, package, None, 10) == []


def facts() -> FailureFacts:
    return FailureFacts(
        "tests/test_cart.py::test_total", "KeyError: 'nort'", error="KeyError",
        frames=[Frame("shop/cart.py", 15, "total"), Frame("shop/pricing/rates.py", 5, "rate_for")],
        test_path="tests/test_cart.py", test_source="def test_total():\n    assert Cart('North').total() == 11.0")


def test_the_infill_context_is_in_the_models_repo_format_with_the_failure_as_comments() -> None:
    definitions = [("shop/pricing/rates.py", "def rate_for(region):\n    return RATES[normal(region)]")]
    context = prompt_context.infill_context(QWEN, "shop/cart.py", definitions, facts(), "shop")
    assert context == (
        "<|repo_name|>shop\n<|file_sep|>shop/pricing/rates.py\ndef rate_for(region):\n    return RATES[normal(region)]\n"
        "<|file_sep|>tests/test_cart.py\ndef test_total():\n    assert Cart('North').total() == 11.0\n"
        "# KeyError: 'nort'\n# raised in:\n#   shop/cart.py:15 in total\n#   shop/pricing/rates.py:5 in rate_for\n"
        "<|file_sep|>shop/cart.py\n")
    assert prompt_context.infill_context(QWEN, "shop/cart.py", [], facts(), with_test=False) == ""


def test_the_rewrite_prompt_shows_the_definitions_and_the_failure() -> None:
    definitions = [("shop/pricing/rates.py", "def rate_for(region):\n    return RATES[normal(region)]")]
    messages = first_messages("shop/cart.py", "Cart.total", "def total(self):\n    ...", "def test_total(): ...",
                              "KeyError: 'nort'", prompt_context.rewrite_context(definitions))
    user = messages[1].content
    assert "It uses these definitions from the package:\n\n```python\n# shop/pricing/rates.py\ndef rate_for" in user
    assert user.index("rate_for") < user.index("This test fails")
    assert "{context}" not in first_messages("a.py", "f", "def f(): ...", "def test(): ...", "boom")[1].content


@pytest.mark.slow
def test_the_pipelines_fills_see_the_window_and_what_the_function_uses_and_the_fix_is_verified(
    package: Path, tmp_path: Path,
) -> None:
    # the slip in `normal` fails the cart's total with a KeyError two modules down from the test
    fake = FakeEngine(text="return region.strip().lower()")
    with Verifier(package, timeout=60, state_dir=tmp_path / "state") as verifier:
        pipeline = RepairPipeline(package, verifier, InlineWorker(fake),  # type: ignore[arg-type]
                                  RepairSettings(max_seconds=120.0))
        report = pipeline.repair(focus=["shop/pricing/rates.py"])
    fixes = [f for f in report.fixes if f.path == "shop/pricing/rates.py"]
    assert fixes and "return region.strip().lower()\n" in fixes[0].new_text
    asked = [call for call in fake.calls if "def normal(region):" in str(call["prefix"])]
    assert asked, fake.calls
    prefix = str(asked[0]["prefix"])
    assert prefix.startswith("RATES") is False and "def rate_for" not in prefix  # the window: `normal` alone
    assert all(len(str(call["prefix"])) < 200 for call in fake.calls)

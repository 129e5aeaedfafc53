"""Prompt context: windows around the cursor, names in use, repo context from the index, recent edits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from greenpatch.context.builder import (
    WINDOW_SLACK,
    WINDOW_STEP,
    RecentEdits,
    names_near,
    nearby,
    repo_context,
    split_at,
)
from greenpatch.engine.fake import FAKE_FIM


@dataclass(frozen=True)
class Sym:
    name: str
    kind: str
    path: Path
    start_line: int
    end_line: int


class FakeIndex:
    def __init__(self, symbols: list[Sym], sources: dict[Sym, str]) -> None:
        self.symbols, self.sources = symbols, sources

    def lookup(self, name: str) -> list[Sym]:
        return [s for s in self.symbols if s.name == name]

    def snippet(self, symbol: Sym) -> str:
        return self.sources[symbol]


def test_split_at_cuts_the_document_at_the_cursor() -> None:
    assert split_at("ab\ncd\nef", 1, 1) == ("ab\nc", "d\nef")
    assert split_at("ab\ncd", 1, 99) == ("ab\ncd", "")


def test_the_suffix_window_keeps_the_rest_of_the_line_and_n_more_lines() -> None:
    text = "\n".join(f"line{i}" for i in range(10))
    prefix, suffix = nearby(text, 3, 2, prefix_chars=1000, suffix_lines=2)
    assert prefix.endswith("line2\nli")
    assert suffix == "ne3\nline4\nline5"


def test_the_prefix_window_starts_on_a_step_so_it_does_not_slide_with_every_line() -> None:
    text = "\n".join("x" * 20 for _ in range(200))
    starts = set()
    for line in range(100, 100 + WINDOW_STEP - 2):
        prefix, _ = nearby(text, line, 0, prefix_chars=800, suffix_lines=1)
        assert len(prefix) <= 800
        starts.add(line - prefix.count("\n"))
    assert len(starts) <= 2


def test_a_held_window_start_is_kept_until_the_window_is_over_its_slack() -> None:
    text = "\n".join(f"{i:03d}" + "x" * 16 for i in range(300))  # 21 characters a line
    moves = {False: 0, True: 0}
    for held in (False, True):
        head, start = None, None
        for line in range(100, 100 + 4 * WINDOW_STEP):
            prefix, _ = nearby(text, line, 0, prefix_chars=800, suffix_lines=1, held_head=head if held else None)
            assert len(prefix) <= 800 * (1 + WINDOW_SLACK)
            now = line - prefix.count("\n")
            if now != start:
                moves[held] += start is not None
                start, head = now, prefix[:256]
    assert moves[True] < moves[False], moves
    prefix, _ = nearby(text, 120, 0, prefix_chars=800, suffix_lines=1, held_head="no such text")
    assert prefix == nearby(text, 120, 0, prefix_chars=800, suffix_lines=1)[0], "a head not in the file: as usual"


def test_names_near_the_cursor_include_imports_and_recent_identifiers() -> None:
    prefix = "from shop.pricing import apply_discount, Item as It\nimport os\n\ntotal = compute_total(items)\n"
    names = names_near(prefix)
    assert {"apply_discount", "Item", "os", "compute_total", "items"} <= set(names)
    assert "import" not in names


def test_repo_context_brings_definitions_from_other_files_in_a_stable_order(tmp_path: Path) -> None:
    pricing, here = tmp_path / "shop" / "pricing.py", tmp_path / "shop" / "cart.py"
    a = Sym("apply_discount", "function", pricing, 10, 14)
    b = Sym("Item", "class", pricing, 2, 6)
    own = Sym("checkout", "function", here, 1, 3)
    index = FakeIndex([a, b, own], {a: "def apply_discount(p, pct):\n    ...", b: "class Item:\n    name: str",
                                    own: "def checkout(): ..."})
    ctx = repo_context(index, "from shop.pricing import apply_discount, Item\ncheckout()\n", current=here,
                       root=tmp_path, budget_chars=2000)
    assert [path for path, _ in ctx.files] == ["shop/pricing.py"]
    content = ctx.files[0][1]
    assert content.index("class Item") < content.index("def apply_discount"), "sorted by line, not by use"
    rendered = ctx.render(FAKE_FIM, "shop/cart.py", "shop")
    assert rendered.startswith("<|repo_name|>shop\n<|file_sep|>shop/pricing.py\n")
    assert rendered.endswith("<|file_sep|>shop/cart.py\n")


def test_repo_context_respects_its_budget_and_tolerates_no_index(tmp_path: Path) -> None:
    big = Sym("helper", "function", tmp_path / "other.py", 0, 100)
    index = FakeIndex([big], {big: "x" * 5000})
    assert repo_context(index, "helper()\n", current=None, root=tmp_path, budget_chars=1000).files == []
    assert repo_context(None, "helper()\n", current=None, root=tmp_path, budget_chars=1000).files == []


def test_recent_edits_keep_the_changed_area_once_per_place() -> None:
    edits = RecentEdits(size=3, radius=1)
    text = "\n".join(f"v{i} = {i}" for i in range(30))
    edits.record("a.py", text)
    edits.record("a.py", text.replace("v20 = 20", "v20 = 2000"))
    edits.record("a.py", text.replace("v20 = 20", "v20 = 20001"))
    regions = edits.regions()
    assert len(regions) == 1 and "v20 = 20001" in regions[0].text
    assert edits.regions(exclude=("a.py", 15, 25)) == []


def test_names_typed_on_the_cursor_line_do_not_change_the_context() -> None:
    assert "compute_total" not in names_near("x = 1\ntotal = compute_total")
    assert "compute_total" in names_near("total = compute_total(items)\n")


def test_the_edits_shown_stay_the_same_while_typing_in_one_place() -> None:
    edits = RecentEdits(size=2, radius=3)
    text = "\n".join(f"v{i} = {i}" for i in range(200))
    edits.record("a.py", text)
    edits.record("a.py", text := text.replace("v10 = 10", "v10 = 11"))
    edits.record("b.py", "x = 1")
    edits.record("b.py", "x = 2")
    shown = edits.near_cursor("a.py", 150)
    assert [r.path for r in shown] == ["a.py", "b.py"]
    for typed in ("w", "wo", "wor"):  # a new region near line 150 pushes out the oldest one...
        edits.record("a.py", text.replace("v150 = 150", f"v150 = {typed}"))
        assert edits.near_cursor("a.py", 150) == shown, "...but the prompt keeps the same context"
    moved = edits.near_cursor("a.py", 100)
    assert [r.path for r in moved] == ["b.py", "a.py"] and "v150 = wor" in moved[1].text


def test_the_repo_context_is_held_while_the_user_writes_on_in_one_place(tmp_path: Path) -> None:
    from greenpatch.completion.prompt import build_request
    from greenpatch.config import CompletionSettings
    from greenpatch.context.builder import HeldContext

    a = Sym("apply_discount", "function", tmp_path / "pricing.py", 1, 2)
    b = Sym("Item", "class", tmp_path / "models.py", 1, 2)
    index = FakeIndex([a, b], {a: "def apply_discount(p, pct):\n    ...", b: "class Item:\n    name: str"})
    me = tmp_path / "cart.py"
    head = "from pricing import apply_discount\n\n\ndef total(items):\n"
    held = HeldContext(lines=10)

    def context(lines: list[str], line: int) -> str:
        text = head + "\n".join(lines + ["    "]) + "\n" + "\n" * 40 + "x = 1\n"
        return build_request(text, line, 4, CompletionSettings(), fim=FAKE_FIM, path=me, root=tmp_path,
                             index=index, held=held).context

    first = context([], 4)
    assert "apply_discount" in first and "class Item" not in first
    # The line just finished names Item: a fresh context would bring its class (and evaluate the whole prompt
    # again); the held one stays, so only the new line is evaluated.
    assert context(["    first = Item()"], 5) == first
    assert "class Item" in build_request(head + "    first = Item()\n    \n", 5, 4, CompletionSettings(),
                                         fim=FAKE_FIM, path=me, root=tmp_path, index=index).context
    # Far enough away, or in another file, it is computed again.
    assert "class Item" in context(["    first = Item()"] + ["    pass"] * 12, 17)
    assert held.get(str(tmp_path / "other.py"), 17, "") is None


def test_a_held_context_waits_for_the_cursor_to_come_back_to_its_file() -> None:
    from greenpatch.context.builder import HeldContext

    held = HeldContext(lines=10, files=2)
    held.hold("a.py", 5, "head a", "context of a")
    held.hold("b.py", 40, "head b", "context of b")
    assert held.get("a.py", 7, "head a and more") == "context of a", "back in a.py, near where the cursor was"
    assert held.get("a.py", 30, "head a") is None, "another area of a.py"
    held.hold("c.py", 1, "head c", "context of c")
    assert held.get("a.py", 7, "head a") is None, "a.py was left longest ago: forgotten"
    assert held.get("b.py", 40, "head b") == "context of b"

"""The latency replay's keystroke streams and jumps back (pure: no engine)."""

from __future__ import annotations

from pathlib import Path

from greenpatch.bench.retype import keystroke_streams, revisits


def _module(path: Path, name: str) -> Path:
    body = "".join(f"def {name}_{i}(width, height):\n    return width * height + {i}  # area\n\n" for i in range(12))
    path.write_text(body)
    return path


def test_a_jump_back_opens_a_new_line_below_the_last_line_typed_in_that_file(tmp_path: Path) -> None:
    files = [_module(tmp_path / "a.py", "alpha"), _module(tmp_path / "b.py", "beta")]
    streams = keystroke_streams(files, 40)
    back = revisits(streams)
    assert [b[0] for b in back] == files, "the file left before the last, then the last"
    for path, text, line, target in back:
        last = [s for s in streams if s[0] == path][-1]
        rows = text.split("\n")
        assert rows[line - 1] == last[3], "the line typed there is whole above the cursor"
        assert rows[line] == target == last[3][: len(last[3]) - len(last[3].lstrip())], "a new line, indented alike"
        assert rows[line + 1 :] == last[1].split("\n")[last[2] + 1 :], "the rest of the file as it was"
        typed = {"\n".join(s[1].split("\n")[: s[2]] + [s[3]]) for s in streams}
        assert "\n".join(rows[: line + 1]) not in typed, "a request the replay never made"


def test_one_file_has_no_jump_back(tmp_path: Path) -> None:
    assert revisits(keystroke_streams([_module(tmp_path / "a.py", "alpha")], 40)) == []

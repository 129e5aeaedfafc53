from pathlib import Path

from greenpatch.workspace.index import WorkspaceIndex


def write(root: Path, rel: str, content: bytes | str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)
    return path


def test_scan_skips_virtualenvs_vcs_build_dirs_and_gitignored_files(tmp_path: Path):
    write(tmp_path, "app/core.py", "def core(): pass\n")
    write(tmp_path, ".venv/lib/site.py", "def in_venv(): pass\n")
    write(tmp_path, "env2/pyvenv.cfg", "home = /usr\n")
    write(tmp_path, "env2/lib/x.py", "def in_unnamed_venv(): pass\n")
    write(tmp_path, "node_modules/pkg/x.py", "def in_node(): pass\n")
    write(tmp_path, "build/lib/x.py", "def built(): pass\n")
    write(tmp_path, ".gitignore", "generated/\n*_pb2.py\n")
    write(tmp_path, "generated/g.py", "def generated(): pass\n")
    write(tmp_path, "app/thing_pb2.py", "def proto(): pass\n")
    index = WorkspaceIndex(tmp_path)
    stats = index.scan()
    assert [p.relative_to(tmp_path).as_posix() for p in index.files] == ["app/core.py"]
    assert stats.files == 1


def test_binary_huge_and_non_utf8_files_are_skipped_not_fatal(tmp_path: Path):
    write(tmp_path, "ok.py", "def fine(): pass\n")
    write(tmp_path, "bin.py", b"\x00\x01binary")
    write(tmp_path, "latin.py", "def caf\xe9(): pass\n".encode("latin-1"))
    write(tmp_path, "huge.py", "x = 1\n" * 300_000)
    index = WorkspaceIndex(tmp_path)
    stats = index.scan()
    assert stats.files == 1 and stats.skipped == 3
    assert index.lookup("fine")


def test_updating_a_file_replaces_its_symbols_and_removing_drops_them(tmp_path: Path):
    path = write(tmp_path, "m.py", "def old_name(): pass\n")
    index = WorkspaceIndex(tmp_path)
    index.scan()
    assert index.lookup("old_name")
    index.update_file(path, "def new_name(): pass\n")
    assert not index.lookup("old_name") and index.lookup("new_name")
    path.unlink()
    index.update_file(path)
    assert not index.lookup("new_name")


def test_search_ranks_exact_then_prefix_then_substring(tmp_path: Path):
    write(tmp_path, "m.py", "def get_total(): pass\ndef total(): pass\ndef totals_by_day(): pass\n")
    index = WorkspaceIndex(tmp_path)
    index.scan()
    assert [s.name for s in index.search("total")] == ["total", "totals_by_day", "get_total"]


def test_snippet_is_the_definition_source(tmp_path: Path):
    write(tmp_path, "m.py", "x = 1\n\ndef f(a):\n    return a + x\n")
    index = WorkspaceIndex(tmp_path)
    index.scan()
    assert index.snippet(index.lookup("f")[0]) == "def f(a):\n    return a + x"

"""`greenpatch repair` on the README's example project, with the model-free generator (CI has no model)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from greenpatch.cli import main

DATA = Path(__file__).parent.parent / "data"


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the verifier's state goes here


def test_repair_prints_a_verified_diff_and_leaves_the_files_alone(example_project: Path, capsys) -> None:
    before = (example_project / "shop" / "pricing.py").read_text()
    code = main(["repair", str(example_project), "--model", "none"])
    out, err = capsys.readouterr()
    assert code == 1  # every failure got a verified fix
    assert "-    if quantity > 10:\n+    if quantity >= 10:\n" in out
    assert "tests pass" in out
    assert "run again with --apply" in err
    assert (example_project / "shop" / "pricing.py").read_text() == before


def test_repair_apply_writes_the_fix_and_then_nothing_fails(example_project: Path, capsys) -> None:
    assert main(["repair", str(example_project), "--model", "none", "--apply"]) == 1
    assert "if quantity >= 10:" in (example_project / "shop" / "pricing.py").read_text()
    capsys.readouterr()
    assert main(["repair", str(example_project), "--model", "none", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["failures"] == [] and data["exit_code"] == 0


def test_repair_json_names_the_fix_its_generator_and_the_tests_it_passed(example_project: Path, capsys) -> None:
    assert main(["repair", str(example_project), "--model", "none", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    best = data["fixes"][0]
    assert best["verified"] and best["generator"] == "mutation" and best["path"] == "shop/pricing.py"
    assert best["tests_passed"] == best["tests_run"] > 0
    assert data["unfixed"] == []


def test_repair_exits_3_when_no_verified_fix_is_found(tmp_path: Path, capsys) -> None:
    import shutil

    root = tmp_path / "ws"
    shutil.copytree(DATA / "buggy_breaks_other", root)
    assert main(["repair", str(root), "--model", "none", "--rounds", "1"]) == 3
    assert "no verified fix" in capsys.readouterr().err


def test_repair_of_a_missing_folder_is_a_usage_error(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["repair", str(tmp_path / "nope")])
    assert exc.value.code == 2


def crlf(path: Path, bom: bool = False) -> bytes:
    """Rewrite `path` with CRLF line endings (and a UTF-8 BOM); its new bytes."""
    data = (b"\xef\xbb\xbf" if bom else b"") + path.read_bytes().replace(b"\n", b"\r\n")
    path.write_bytes(data)
    return data


def test_apply_on_a_crlf_file_changes_one_line_and_keeps_every_crlf(example_project: Path, capsys) -> None:
    pricing = example_project / "shop" / "pricing.py"
    before = crlf(pricing)
    assert main(["repair", str(example_project), "--model", "none", "--apply"]) == 1
    after = pricing.read_bytes()
    assert after.count(b"\r\n") == before.count(b"\r\n") and after.count(b"\n") == before.count(b"\n")
    changed = [(a, b) for a, b in zip(before.split(b"\n"), after.split(b"\n")) if a != b]
    assert changed == [(b"    if quantity > 10:\r", b"    if quantity >= 10:\r")]
    out = capsys.readouterr().out  # the diff printed is the change written, CRs included
    assert "-    if quantity > 10:\r\n+    if quantity >= 10:\r\n" in out


def test_apply_keeps_a_utf8_bom(example_project: Path) -> None:
    pricing = example_project / "shop" / "pricing.py"
    before = crlf(pricing, bom=True)
    assert main(["repair", str(example_project), "--model", "none", "--apply"]) == 1
    assert pricing.read_bytes() == before.replace(b"quantity > 10", b"quantity >= 10")


def test_the_sandbox_verifies_a_crlf_file_with_its_crlf(example_project: Path, capsys) -> None:
    """A test that reads the module's bytes passes only if the candidate is written as the file is."""
    crlf(example_project / "shop" / "pricing.py")
    (example_project / "tests" / "test_line_endings.py").write_text(
        "from pathlib import Path\n\nimport shop.pricing\n\n\n"
        "def test_pricing_keeps_windows_line_endings():\n"
        "    shop.pricing.bulk_discount(1)  # runs the fixed line, so the fix's verification runs this test\n"
        "    assert b'\\r\\n' in Path(shop.pricing.__file__).read_bytes()\n"
    )
    assert main(["repair", str(example_project), "--model", "none"]) == 1
    assert "quantity >= 10" in capsys.readouterr().out


def test_a_file_in_a_non_utf8_encoding_is_never_rewritten(example_project: Path) -> None:
    pricing = example_project / "shop" / "pricing.py"
    data = b"# -*- coding: latin-1 -*-\n# caf\xe9\n" + pricing.read_bytes()
    pricing.write_bytes(data)
    assert main(["repair", str(example_project), "--model", "none", "--apply"]) == 3
    assert pricing.read_bytes() == data


def test_apply_to_a_read_only_file_exits_4_and_leaves_it_intact(example_project: Path, capsys) -> None:
    pricing = example_project / "shop" / "pricing.py"
    before = pricing.read_bytes()
    pricing.chmod(0o444)
    assert main(["repair", str(example_project), "--model", "none", "--apply"]) == 4
    err = capsys.readouterr().err
    assert pricing.read_bytes() == before
    (line,) = [line for line in err.splitlines() if "error" in line]
    assert line.startswith("greenpatch: error: could not write") and "read-only" in line
    assert "Traceback" not in err and "applied the fix" not in err and "run again with --apply" not in err


def test_apply_on_a_full_disk_exits_4_and_the_original_stays_intact(tmp_path: Path, capsys) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], check=False).returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        root = disk / "example"
        shutil.copytree(DATA / "example", root, ignore=shutil.ignore_patterns(".pytest_cache", "__pycache__"))
        before = (root / "shop" / "pricing.py").read_bytes()
        filler = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(filler, b"\0" * 512):
                pass
        except OSError:
            pass  # ENOSPC: the disk is full
        finally:
            os.close(filler)
        assert main(["repair", str(root), "--model", "none", "--apply"]) == 4
        err = capsys.readouterr().err
        assert (root / "shop" / "pricing.py").read_bytes() == before
        assert "greenpatch: error: could not write" in err and "No space left on device" in err
        assert "Traceback" not in err
        assert sorted(p.name for p in (root / "shop").iterdir() if p.name != "__pycache__") == [
            "__init__.py", "inventory.py", "pricing.py"
        ]
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_apply_with_two_bugs_in_one_file_writes_both_fixes_verified_together(tmp_path: Path, capsys) -> None:
    root = tmp_path / "ws"
    shutil.copytree(DATA / "buggy_two_bugs", root)
    assert main(["repair", str(root), "--model", "none", "--apply"]) == 1
    text = (root / "stats.py").read_text()
    assert "result += value" in text and "max(values) - min(values)" in text
    err = capsys.readouterr().err
    assert "3/3 failing tests fixed" in err
    assert main(["repair", str(root), "--model", "none"]) == 0


def test_fixes_that_pass_alone_but_fail_together_are_not_both_written(tmp_path: Path, capsys) -> None:
    root = tmp_path / "ws"
    shutil.copytree(DATA / "buggy_two_bugs", root)
    # Passes with either fix alone, fails with both: only one of them may be written.
    (root / "tests" / "test_together.py").write_text(
        "from stats import spread, total\n\n\n"
        "def test_not_both():\n"
        "    assert not (total([1, 1]) == 2 and spread([1, 1]) == 0)\n"
    )
    code = main(["repair", str(root), "--model", "none", "--apply", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 3 and data["exit_code"] == 3
    assert data["unfixed"] == ["tests/test_stats.py::test_total_adds_the_values"]  # spread's fix fixes two
    assert len(data["plan"]["files"][0]["fixes"]) == 1 and data["plan"]["combined_runs"] == 1
    text = (root / "stats.py").read_text()
    assert ("result += value" in text) != ("max(values) - min(values)" in text)
    assert any("fail with it and the other fixes together" in note for note in data["notes"])

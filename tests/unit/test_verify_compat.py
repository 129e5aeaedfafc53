"""The project's interpreter as it is: greenpatch's test runs work with the project's own Python (3.8+), pytest
(7.0+) and coverage.py (missing, too old, too new for its Python, or fine), and with pytest-cov in its addopts,
without installing anything there. Real virtualenvs from PyPI (cached, see venvs.py); skipped when a Python or
PyPI is not available."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from greenpatch.cli import main
from greenpatch.errors import VerifyError
from greenpatch.verify import Verifier
from greenpatch.verify.covmap import from_coverage_data
from greenpatch.verify.python import probe
from greenpatch.verify.verifier import PLUGIN_DIR, base_environment
from venvs import Unavailable, cache_root, ensure_venv
from verify_helpers import RUN_LIMIT

DATA = Path(__file__).resolve().parents[1] / "data"
TWO, ONE, SPREAD = ("tests/test_stats.py::test_average_of_two", "tests/test_stats.py::test_average_of_one",
                    "tests/test_stats.py::test_spread")


@dataclass(frozen=True)
class Env:
    name: str
    version: str
    requirements: tuple[str, ...]
    mode: str  # what doctor and the probe say records the lines
    pytest_cov: bool = False  # the workspace turns pytest-cov on in its addopts


ENVS = [
    Env("py3.9-pytest7.0-no-coverage", "3.9", ("pytest==7.0.1",), "greenpatch's tracer (coverage not installed)"),
    Env("py3.12-pytest7.4-coverage6.5", "3.12", ("pytest~=7.4.0", "coverage==6.5.0"), "coverage.py 6.5.0"),
    Env("py3.11-pytest8-pytest-cov-in-addopts", "3.11", ("pytest~=8.3", "pytest-cov~=5.0"), "coverage.py 7.",
        pytest_cov=True),
    Env("py3.8-pytest7.0-no-coverage", "3.8", ("pytest==7.0.1",), "greenpatch's tracer (coverage not installed)"),
    Env("py3.13-pytest8-no-coverage", "3.13", ("pytest~=8.3",), "greenpatch's tracer (coverage not installed)"),
    # the reported failure: a coverage made for a newer Python (`match` statements) in a 3.9 project
    Env("py3.9-coverage-too-new-for-it", "3.9",
        ("pytest==7.0.1", ";", "--no-deps", "--ignore-requires-python", "coverage==7.18.0"),
        "greenpatch's tracer (coverage does not import here: SyntaxError)"),
]


def _venv(version: str, requirements: tuple[str, ...]) -> Path:
    try:
        return ensure_venv(version, list(requirements))
    except Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session", params=ENVS, ids=[e.name for e in ENVS])
def env(request: pytest.FixtureRequest) -> tuple[Env, Path]:
    spec: Env = request.param
    return spec, _venv(spec.version, spec.requirements)


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENPATCH_TEST_VENVS", str(cache_root()))  # the venvs stay where they are cached
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the verifier's state goes here


def _workspace(tmp_path: Path, spec: Env) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(DATA / "buggy_operator", root)
    if spec.pytest_cov:
        # a line no test runs, so the project's own --cov-fail-under=100 fails a plain `pytest` of a fixed tree
        with (root / "stats.py").open("a") as f:
            f.write("\n\ndef unused():\n    return 1\n")
        with (root / "pyproject.toml").open("a") as f:
            f.write('addopts = "--cov=stats --cov-fail-under=100"\n')
    return root


def _fixed(root: Path) -> str:
    return (root / "stats.py").read_text().replace("sum(values) * len(values)", "sum(values) / len(values)")


@pytest.mark.slow
@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
def test_the_baseline_maps_each_test_to_its_lines_and_runs_judge_changes(
    env: tuple[Env, Path], warm: bool, tmp_path: Path
) -> None:
    spec, python = env
    root = _workspace(tmp_path, spec)
    with Verifier(root, python=str(python), timeout=RUN_LIMIT, state_dir=tmp_path / "state", warm=warm) as verifier:
        assert spec.mode in verifier.interpreter().describe()
        base = verifier.baseline()
        assert base.error == ""
        assert {r.nodeid: r.outcome for r in base.results} == {TWO: "failed", ONE: "passed", SPREAD: "passed"}
        cmap = verifier.coverage_map
        assert cmap is not None
        assert cmap.tests[TWO] == {"stats.py": [2], "tests/test_stats.py": [5]}
        assert cmap.tests[ONE] == {"stats.py": [2], "tests/test_stats.py": [9]}
        assert cmap.tests[SPREAD] == {"stats.py": [6], "tests/test_stats.py": [13]}

        fixed = verifier.run({"stats.py": _fixed(root)})
        assert fixed.passed and {r.nodeid for r in fixed.results} == {TWO, ONE}  # only the tests of line 2
        broken = verifier.run({"stats.py": _fixed(root).replace("max(values) - min", "max(values) + min")})
        assert broken.error == "" and [r.nodeid for r in broken.failed] == [SPREAD]
        assert (verifier.warm_runs > 0) == warm


@pytest.mark.slow
def test_repair_with_the_projects_interpreter_finds_the_verified_fix(
    env: tuple[Env, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, python = env
    root = _workspace(tmp_path, spec)
    code = main(["repair", str(root), "--python", str(python), "--model", "none", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1, data
    best = data["fixes"][0]
    assert best["verified"] and best["path"] == "stats.py" and data["unfixed"] == []


@pytest.mark.slow
def test_doctor_says_which_python_pytest_and_line_recording_the_tests_get(
    env: tuple[Env, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, python = env
    main(["doctor", str(_workspace(tmp_path, spec)), "--python", str(python)])
    line = next(x for x in capsys.readouterr().out.splitlines() if " tests: " in x)
    assert line.startswith("ok") and f"Python {spec.version}." in line and spec.mode in line
    assert ("pytest-cov" in line) == spec.pytest_cov


@pytest.mark.slow
def test_a_pytest_older_than_7_is_a_clear_error_before_anything_runs(tmp_path: Path) -> None:
    python = _venv("3.9", ("pytest==6.2.5",))
    verifier = Verifier(_workspace(tmp_path, ENVS[0]), python=str(python), state_dir=tmp_path / "state")
    with verifier, pytest.raises(VerifyError, match=r"pytest 6\.2\.5; greenpatch needs pytest 7\.0") as caught:
        verifier.run()
    assert "pip install 'pytest>=7'" in str(caught.value)


@pytest.mark.slow
def test_a_coverage_older_than_5_is_left_alone_and_the_tracer_records_the_lines(tmp_path: Path) -> None:
    python = _venv("3.9", ("pytest==7.0.1", "coverage==4.5.4"))
    root = _workspace(tmp_path, ENVS[0])
    with Verifier(root, python=str(python), timeout=RUN_LIMIT, state_dir=tmp_path / "state") as verifier:
        assert "greenpatch's tracer (coverage 4.5.4 is older than 5.0)" in verifier.interpreter().describe()
        assert verifier.baseline().error == ""
        assert verifier.coverage_map is not None
        assert verifier.coverage_map.tests[SPREAD] == {"stats.py": [6], "tests/test_stats.py": [13]}


# --- the tracer against coverage.py, in greenpatch's own interpreter (which has coverage) --------------------

RICH = {
    "shapes.py": '''\
import functools


def collatz(n):
    steps = 0
    while n != 1:
        if n % 2:
            n = 3 * n + 1
        else:
            n //= 2
        steps += 1
    return steps


def squares(limit):
    for i in range(limit):
        yield i * i


class Box:
    def __init__(self, items):
        self.items = list(items)

    @property
    def total(self):
        return sum(
            self.items,
        )

    @functools.lru_cache(maxsize=None)
    def never(self):
        return 0


def fails():
    try:
        raise ValueError("x")
    except ValueError:
        return "caught"
    finally:
        pass


def sign(x):
    if x < 0:
        return -1
    return 1
''',
    "tests/conftest.py": '''\
import pytest


@pytest.fixture
def box():
    from shapes import Box
    return Box([1, 2, 3])
''',
    "tests/test_shapes.py": '''\
import threading

from shapes import collatz, fails, sign, squares


def test_collatz():
    assert collatz(6) == 8


def test_a_branch_taken_only_on_a_later_call():
    assert [sign(v) for v in (1, 2, 3, -4)] == [1, 1, 1, -1]


def test_squares_in_a_thread(box):
    out = []
    worker = threading.Thread(target=lambda: out.extend(squares(3)))
    worker.start()
    worker.join()
    assert out == [0, 1, 4] and box.total == 6


def test_fails():
    assert fails() == "caught"
''',
    "pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["."]\n',
}


def _measure(python: str, root: Path, engine: str, out: Path) -> dict[str, dict[str, list[int]]]:
    env = base_environment(python, str(out), str(out))
    env.update({"GREENPATCH_RESULTS": str(out / f"{engine}.jsonl"), "GREENPATCH_COVERAGE_ENGINE": engine,
                "GREENPATCH_COVERAGE": str(out / f"{engine}.json")})
    subprocess.run([python, "-m", "pytest", "-p", "greenpatch_pytest", "-p", "no:cacheprovider", "-q"],
                   cwd=root, env=env, capture_output=True, check=True, timeout=120)
    return from_coverage_data(out / f"{engine}.json", root, {}).tests


def _compare_engines(python: str, tmp_path: Path) -> dict[str, dict[str, list[int]]]:
    root = tmp_path / "rich"
    for rel, text in RICH.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    assert probe(python, base_environment(python, str(tmp_path), str(tmp_path))).coverage
    by_coverage = _measure(python, root, "coverage", tmp_path)
    by_tracer = _measure(python, root, "tracer", tmp_path)
    names = ("test_collatz", "test_a_branch_taken_only_on_a_later_call", "test_squares_in_a_thread", "test_fails")
    assert set(by_coverage) == {f"tests/test_shapes.py::{name}" for name in names}
    assert by_tracer == by_coverage
    return by_tracer


def test_greenpatchs_tracer_records_the_same_lines_per_test_as_coverage_py(tmp_path: Path) -> None:
    lines = _compare_engines(sys.executable, tmp_path)  # sys.monitoring on 3.12+, settrace below
    assert lines["tests/test_shapes.py::test_squares_in_a_thread"]["shapes.py"] == [16, 17, 22, 26, 27]
    assert lines["tests/test_shapes.py::test_a_branch_taken_only_on_a_later_call"]["shapes.py"] == [45, 46, 47]


@pytest.mark.slow
@pytest.mark.parametrize("version,requirements", [("3.11", ("pytest~=8.3", "pytest-cov~=5.0")),
                                                  ("3.8", ("pytest~=7.4.0", "coverage==5.5")),
                                                  ("3.12", ("pytest~=7.4.0", "coverage==6.5.0"))],
                         ids=["settrace-py3.11-coverage7", "settrace-py3.8-coverage5.5", "monitoring-py3.12-coverage6.5"])
def test_the_tracer_records_the_same_lines_as_the_projects_coverage(
    version: str, requirements: tuple[str, ...], tmp_path: Path
) -> None:
    _compare_engines(str(_venv(version, requirements)), tmp_path)


def test_the_map_keeps_tests_and_files_of_the_sandbox_only(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    data = {"engine": "greenpatch tracer (settrace)", "tests": {
        "t.py::a": {str(src / "pkg" / "m.py"): [3, 1, 3], "/usr/lib/python3/json/__init__.py": [10]},
        "": {str(src / "pkg" / "m.py"): [1]},
    }}
    (tmp_path / "lines.json").write_text(json.dumps(data))
    cmap = from_coverage_data(tmp_path / "lines.json", src, {"pkg/m.py": "h"})
    assert cmap.tests == {"t.py::a": {"pkg/m.py": [1, 3]}} and cmap.hashes == {"pkg/m.py": "h"}
    assert from_coverage_data(tmp_path / "missing.json", src, {}).tests == {}


def test_the_plugin_folder_parses_as_python_3_8() -> None:
    import ast

    for path in sorted(PLUGIN_DIR.glob("*.py")):
        ast.parse(path.read_text(), filename=str(path), feature_version=(3, 8))


def test_an_untrusted_workspaces_interpreter_is_never_probed(tmp_path: Path) -> None:
    from greenpatch.errors import UntrustedWorkspace

    with Verifier(_workspace(tmp_path, ENVS[0]), state_dir=tmp_path / "state", trusted=False) as verifier, \
            pytest.raises(UntrustedWorkspace):
        verifier.interpreter()


def test_the_probe_is_asked_once_per_interpreter_and_names_the_mode(tmp_path: Path) -> None:
    env = base_environment(sys.executable, str(tmp_path), str(tmp_path))
    first = probe(sys.executable, env)
    assert probe(sys.executable, env) is first
    assert first.version == sys.version.split()[0] and first.engine == "coverage" and first.pytest == pytest.__version__
    assert first.describe().startswith(f"Python {first.version}, pytest {first.pytest}, coverage: coverage.py ")

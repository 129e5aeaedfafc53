"""The user's own say in what runs: pytest arguments given after `--`, and the project's pytest configuration.

* `split_args`: pytest arguments -> (options, positional). Options (`-k EXPR`, `-m MARK`, `-p`, ...) go to every
  run; the positional ones (files, folders, node ids) are the run's scope: the whole scope when greenpatch runs
  everything, and the bound of any narrower selection (`narrow`).
* `TestFiles`: whether a file is a test file as pytest decides it, by the `python_files` of the pytest
  configuration nearest to it (pytest.ini, .pytest.ini, pyproject.toml, tox.ini, setup.cfg), else pytest's default.
"""

from __future__ import annotations

import configparser
import fnmatch
from pathlib import Path, PurePosixPath

DEFAULT_PYTHON_FILES = ("test_*.py", "*_test.py")

# pytest's (and common plugins') options that take the next argument as their value.
_WITH_VALUE = frozenset({
    "-k", "-m", "-p", "-o", "-c", "-W", "-r", "-n", "--deselect", "--ignore", "--ignore-glob", "--rootdir",
    "--confcutdir", "--basetemp", "--maxfail", "--tb", "--durations", "--durations-min", "--import-mode",
    "--log-level", "--log-cli-level", "--log-file", "--log-file-level", "--log-format", "--log-date-format",
    "--junitxml", "--junit-xml", "--junit-prefix", "--override-ini", "--capture", "--inifile", "--config-file",
    "--cov", "--cov-report", "--cov-config", "--cov-fail-under", "--timeout", "--dist", "--numprocesses",
    "--randomly-seed", "--pythonwarnings", "--show-capture", "--doctest-glob", "--assert",
})


def split_args(args: list[str]) -> tuple[list[str], list[str]]:
    """(options with their values, positional arguments) in the order given."""
    options: list[str] = []
    positional: list[str] = []
    take_value = False
    for arg in args:
        if take_value:
            options.append(arg)
            take_value = False
        elif arg.startswith("-") and arg != "-":
            options.append(arg)
            take_value = "=" not in arg and arg in _WITH_VALUE
        else:
            positional.append(arg)
    return options, positional


def _within(item: str, scope: str) -> bool:
    """Whether node id / path `item` is `scope` or inside it (a folder, a file, a class, a parametrized test)."""
    scope = scope.rstrip("/")
    return item == scope or scope in ("", ".") or item.startswith((scope + "/", scope + "::", scope + "["))


def narrow(targets: list[str], scope: list[str]) -> list[str]:
    """The part of a selection (`targets`: node ids or files) inside the user's `scope`: a target inside it stays;
    a target file holding scope items is replaced by them. Empty scope: everything stays."""
    if not scope:
        return list(targets)
    out: list[str] = []
    for target in targets:
        if any(_within(target, s) for s in scope):
            out.append(target)
        else:
            out.extend(s for s in scope if _within(s, target))
    return list(dict.fromkeys(out))


def _patterns(value: object) -> list[str] | None:
    if isinstance(value, str):
        found = value.split()
    elif isinstance(value, list):
        found = [str(v) for v in value]
    else:
        return None
    return found or None


Config = tuple[bool, list[str] | None, list[str] | None]  # (found, python_files, testpaths)


def _read_config(folder: Path) -> Config:
    """(folder holds a pytest configuration, its python_files, its testpaths), by pytest's order of precedence."""
    for name, section in (("pytest.ini", "pytest"), (".pytest.ini", "pytest")):
        if (folder / name).is_file():
            return True, _ini_value(folder / name, section, "python_files"), _ini_value(
                folder / name, section, "testpaths")
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file():
        try:
            import tomllib
        except ImportError:  # Python < 3.11
            tomllib = None  # type: ignore[assignment, unused-ignore]
        if tomllib is not None:
            try:
                data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            except (OSError, ValueError, UnicodeDecodeError):
                data = {}
            options = data.get("tool", {}).get("pytest", {}).get("ini_options")
            if isinstance(options, dict):
                return True, _patterns(options.get("python_files")), _patterns(options.get("testpaths"))
    for name, section in (("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")):
        if (folder / name).is_file():
            parser = _parser(folder / name)
            if parser is not None and parser.has_section(section):
                return True, _patterns(parser.get(section, "python_files", fallback=None)), _patterns(
                    parser.get(section, "testpaths", fallback=None))
    return False, None, None


def _parser(path: Path) -> configparser.RawConfigParser | None:
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read_string(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, configparser.Error):
        return None
    return parser


def _ini_value(path: Path, section: str, key: str) -> list[str] | None:
    parser = _parser(path)
    if parser is None or not parser.has_section(section):
        return None
    return _patterns(parser.get(section, key, fallback=None))


def matches(rel: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """pytest's python_files match: a pattern without a slash matches the file name, one with a slash the path."""
    path = PurePosixPath(rel)
    if path.suffix != ".py":
        return False
    return any(fnmatch.fnmatch(path.name, p) if "/" not in p else
               fnmatch.fnmatch(str(path), p) or fnmatch.fnmatch(str(path), "*/" + p) for p in patterns)


class TestFiles:
    """is-a-test-file by the workspace's pytest configuration (nearest config upwards from the file's folder,
    up to the workspace root; pytest's defaults without one). Reads each folder's config once."""

    __test__ = False  # not a pytest test class

    def __init__(self, root: Path) -> None:
        self.root = root
        self._folders: dict[str, Config] = {}

    def patterns(self, rel: str) -> tuple[str, ...]:
        folder = PurePosixPath(rel).parent
        while True:
            key = folder.as_posix()
            if key not in self._folders:
                self._folders[key] = _read_config(self.root / key)
            found, patterns, _ = self._folders[key]
            if found:
                return tuple(patterns or DEFAULT_PYTHON_FILES)
            if key in ("", "."):
                return DEFAULT_PYTHON_FILES
            folder = folder.parent

    def __call__(self, rel: str) -> bool:
        return matches(rel, self.patterns(rel))

    def in_testpaths(self, rel: str) -> bool:
        """Whether pytest run from the workspace root without arguments collects `rel`: inside one of the root
        configuration's `testpaths` (folders or globs), or anywhere when it has none."""
        if "." not in self._folders:
            self._folders["."] = _read_config(self.root)
        testpaths = self._folders["."][2]
        if not testpaths:
            return True
        for entry in testpaths:
            entry = entry.strip("/").removeprefix("./")
            if entry in ("", ".") or rel == entry or rel.startswith(entry + "/"):
                return True
            parts = rel.split("/")
            if any(fnmatch.fnmatch("/".join(parts[:i]), entry) for i in range(1, len(parts) + 1)):
                return True
        return False


def workspace_args(root: Path, args: list[str], cwd: Path | None = None) -> list[str]:
    """The user's pytest arguments with each file, folder or node id made relative to the workspace `root` (pytest
    runs in a copy of it): given relative to the current folder or to the workspace, or as an absolute path."""
    positional = split_args(args)[1]
    cwd = cwd or Path.cwd()
    mapped: dict[str, str] = {}
    for arg in positional:
        path, sep, rest = arg.partition("::")
        given = Path(path).expanduser()
        for candidate in ([given] if given.is_absolute() else [cwd / given, root / given]):
            if not candidate.exists():
                continue
            try:
                rel = candidate.resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                continue
            mapped[arg] = (rel if rel != "." else "") + sep + rest or "."
            break
    return [mapped.get(arg, arg) for arg in args]

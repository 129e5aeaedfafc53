"""Why a test fails when no edit of the project's code can make it pass.

A failing test gets a cause (TestResult.cause):
* "environment": the test process lacks something the project does not provide: a module that is not part of the
  workspace (ModuleNotFoundError, ImportError from such a module), the network (the sandbox has none: name
  resolution and connections to hosts other than this machine fail), a fixture that is not defined anywhere (a
  missing pytest plugin), or a fixture that failed at setup without running any of the project's own code;
* "flaky": it failed, then passed when run again (decided by the verifier, not here);
* "": a failure a fix may reach.
Tests with a cause are reported, never repair targets and never the verdict on a candidate.
Pure functions: the verifier calls them with what pytest reported and the workspace's file list.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import PurePosixPath

from greenpatch.verify.types import Frame

ENVIRONMENT = "environment"
FLAKY = "flaky"

_MISSING_MODULE = re.compile(r"ModuleNotFoundError: No module named '([^']+)'")
_CANNOT_IMPORT = re.compile(r"ImportError: cannot import name '[^']+' from '([^']+)'")
_NO_FIXTURE = re.compile(r"fixture '[^']+' not found|FixtureLookupError")
# What a socket says in a namespace without network: no name resolution, no route anywhere but loopback.
_NO_NETWORK = re.compile(
    r"gaierror|Temporary failure in name resolution|Name or service not known|nodename nor servname"
    r"|No address associated with hostname|Network is unreachable|No route to host|\[Errno (?:-2|-3|-5|101|113)\]"
)
_CONNECTION = re.compile(r"ConnectionRefusedError|Connection refused|URLError|ConnectionError|NewConnectionError"
                         r"|MaxRetryError")
_HOST = re.compile(r"host='([^']+)'|https?://([^/:\s'\"]+)|\(\s*'([^']+)',\s*\d+\s*\)")
_LOCAL_HOSTS = ("localhost", "127.", "::1", "0.0.0.0", "[::1]", "ip6-localhost")


def workspace_names(files: Iterable[str]) -> frozenset[str]:
    """Every name a module of the workspace could be imported by: each folder and each .py file's stem, at any
    depth (generous on purpose: a module counted as the project's is a failure greenpatch still tries to repair)."""
    names: set[str] = set()
    for rel in files:
        *folders, name = rel.split("/")
        names.update(folders)
        if name.endswith((".py", ".pyi", ".so", ".pyd")):
            names.add(name.split(".", 1)[0])
    return frozenset(names)


def _outside(module: str, names: frozenset[str]) -> bool:
    """A module the workspace does not have, nor a close misspelling of one (an import typo is the user's bug)."""
    top = module.split(".", 1)[0]
    return bool(top) and top not in names and not difflib.get_close_matches(top, names, n=1, cutoff=0.8)


def _remote_host(message: str) -> bool:
    hosts = [next(g for g in match.groups() if g) for match in _HOST.finditer(message)]
    return any(not host.startswith(_LOCAL_HOSTS) for host in hosts)


def _project_code(frames: list[Frame]) -> bool:
    return any(not _test_code(frame.path) for frame in frames)


def _test_code(rel: str) -> bool:
    path = PurePosixPath(rel)
    name = path.name
    return (name == "conftest.py" or name.startswith("test_") or name.endswith("_test.py")
            or any(part in ("tests", "test", "testing") for part in path.parts[:-1]))


def environment_cause(message: str, when: str, frames: list[Frame], names: frozenset[str]) -> str:
    """ENVIRONMENT when the failure's message (and where it happened) shows something outside the project is
    missing, else "". `when`: the pytest phase ("setup", "call", "teardown", "collect")."""
    for pattern in (_MISSING_MODULE, _CANNOT_IMPORT):
        match = pattern.search(message)
        if match and _outside(match.group(1), names):
            return ENVIRONMENT
    if _NO_NETWORK.search(message):
        return ENVIRONMENT
    if _CONNECTION.search(message) and _remote_host(message):
        return ENVIRONMENT
    if when == "setup" and (_NO_FIXTURE.search(message) or not _project_code(frames)):
        return ENVIRONMENT
    return ""

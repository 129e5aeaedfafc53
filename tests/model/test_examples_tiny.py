"""Docstring examples judge the real tiny model's lines (real llama.cpp sampling, real sandboxed doctest runs)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from greenpatch.cancel import CancelToken
from greenpatch.completion.examples import target
from greenpatch.completion.service import CompletionService
from greenpatch.config import CompletionSettings
from greenpatch.engine.worker import EngineWorker
from greenpatch.verify.examples import run_examples

pytestmark = pytest.mark.model

DOC = '''def double(n):
    """Twice n.

    >>> double(2)
    4
    >>> double(5)
    10
    """
    
    return result
'''


def test_a_shown_line_the_examples_judged_passes_them_or_is_the_models_own(tiny_model_path: Path) -> None:
    from greenpatch.engine.llama import LlamaEngine

    worker = EngineWorker(lambda: LlamaEngine(tiny_model_path, name="tiny", n_ctx=2048))
    # examples given a minute, not an editor's 2 s: a run cut short by a busy machine has no verdict
    settings = CompletionSettings(debounce_ms=0, gate_threshold=-99, alternatives=4, examples_seconds=60)
    service = CompletionService(worker, settings)
    try:
        s = asyncio.run(service.complete("file:///t.py", None, DOC, 1, 8, 4, CancelToken()))
    finally:
        worker.close()
    assert s is not None and s.unjudged is not None
    if not s.text:
        return  # the filters dropped the tiny model's line: nothing to judge
    assert s.examples in ("passed", "replaced", "failed", "error"), "the examples ran on the line"
    document = DOC.replace("    \n    return", "    " + s.text + "\n    return")
    found = target(document, 8, 8)
    assert found is not None and found.whole
    verdict = run_examples(document, found.qualname, path=None, root=None, python=sys.executable, timeout=60).verdict
    if s.examples in ("passed", "replaced"):
        assert verdict == "passed", "a line shown as passing its examples passes them"
    if s.examples == "replaced":
        assert s.text != s.unjudged[0] and s.sampled > 0
    if s.examples == "failed":
        assert s.text == s.unjudged[0] and verdict == "failed" and not s.shown, "no sampled line passed: withheld"

"""The model in a supervised child process: a crash of that process fails one request, says so, and the next
request gets a new one; the server's own process lives on."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from greenpatch.config import Settings
from greenpatch.engine.child import ChildEngine
from greenpatch.errors import EngineCrashed, ErrorKind, ModelNotInstalled


def test_a_crash_of_the_model_process_fails_one_request_and_the_next_one_gets_a_new_process() -> None:
    statuses: list[tuple[str, str]] = []
    engine = ChildEngine("fake", Settings(), on_status=lambda state, message: statuses.append((state, message)))
    try:
        assert engine.infill("def add(", "").text
        first = engine.pid
        assert first is not None and first != os.getpid()
        os.kill(first, signal.SIGSEGV)  # what a native crash inside llama.cpp does to the process
        with pytest.raises(EngineCrashed, match="SIGSEGV"):
            engine.infill("def add(", "")
        assert statuses[-1][0] == "error" and "crashed" in statuses[-1][1]
        assert engine.infill("def add(", "").text
        assert engine.pid not in (None, first)
        assert statuses[-1] == ("ready", "model fake restarted after a crash")
    finally:
        engine.close()


def test_a_load_error_in_the_model_process_reaches_the_caller_as_itself(tmp_path: Path) -> None:
    settings = Settings()
    settings.model.cache_dir = str(tmp_path)
    with pytest.raises(ModelNotInstalled, match="greenpatch model install tiny") as caught:
        ChildEngine("tiny", settings)
    assert caught.value.kind is ErrorKind.NOT_INSTALLED  # its kind comes back over the pipe with its class


def test_the_optional_capabilities_go_through_the_model_process_with_their_arguments() -> None:
    engine = ChildEngine("fake", Settings())
    try:
        samples = engine.infill_many("def add(", "", [0, 1, 2], temperature=0.8, max_tokens=8)
        assert [g.text for g in samples] == ["a, b):"] * 3  # the fake's rule; its own defaults, one by one
        assert engine.score("def add(", "", "a, b):") == []  # the fake cannot score
    finally:
        engine.close()

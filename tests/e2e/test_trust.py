"""Settings fail closed: a client that says the workspace is untrusted is believed whatever else is wrong with its
settings, and then nothing of the workspace runs: not its tests, not its docstring examples, not its interpreter."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import pytest_lsp
from greenpatch.verify.examples import run_examples
from greenpatch.verify.python import probe
from lsp_helpers import SERVER, Notifications, open_file
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

CALC = '''\
def add(a, b):
    """
    >>> add(1, 2)
    3
    """
    return a +
'''


def hostile_workspace(root: Path, markers: Path) -> None:
    """A project whose every way of running code leaves a file in `markers`: its interpreter, its conftest.py, the
    top level of its test module."""
    markers.mkdir()
    venv_bin = root / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    python = venv_bin / "python"
    python.write_text(f'#!/bin/sh\necho "$@" > "{markers}/venv-python"\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    (root / "conftest.py").write_text(f"open({str(markers / 'conftest')!r}, 'w').close()\n")
    (root / "calc.py").write_text(CALC.replace("return a +", "return a - b"))
    (root / "tests").mkdir()
    (root / "tests" / "test_calc.py").write_text(
        f"open({str(markers / 'test-module')!r}, 'w').close()\n"
        "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    )


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def distrusting_client(lsp_client: LanguageClient, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A client that says "untrusted" next to a mistyped setting, on a workspace that marks whatever it runs."""
    root = tmp_path / "ws"
    root.mkdir()
    hostile_workspace(root, tmp_path / "markers")
    lsp_client.root = root  # type: ignore[attr-defined]
    lsp_client.markers = tmp_path / "markers"  # type: ignore[attr-defined]
    lsp_client.notes = Notifications(lsp_client)  # type: ignore[attr-defined]
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual_studio_code"),
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
            initialization_options={
                "trusted": False, "verify": {"memoryMb": "2GB"}, "model": {"completion": "fake", "repair": "fake"},
            },
        )
    )
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio
async def test_an_untrusted_workspace_with_a_bad_setting_runs_none_of_its_code(
    distrusting_client: LanguageClient,
) -> None:
    client = distrusting_client
    root: Path = client.root  # type: ignore[attr-defined]
    notes = client.notes  # type: ignore[attr-defined]
    reported = await notes.wait_for(types.WINDOW_SHOW_MESSAGE, lambda p: "verify.memoryMb" in p.message)
    assert "'2GB'" in reported.message

    uri = open_file(client, root / "calc.py", CALC)
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    await notes.wait_for(types.WINDOW_SHOW_MESSAGE, lambda p: "not trusted" in p.message)
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="greenpatch.repairFile", arguments=[uri])
    )
    # the fake engine answers " b" here, and the function's docstring examples could judge it
    await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=5, character=len("    return a +")),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
        )
    )
    assert sorted(p.name for p in client.markers.iterdir()) == []  # type: ignore[attr-defined]
    assert not [p for m, p in notes.seen if m == "greenpatch/status" and p.state == "verifying"]


def test_the_markers_appear_when_the_workspaces_interpreter_does_run(tmp_path: Path) -> None:
    """The markers above would appear if anything ran: a trusted workspace's interpreter is asked what it has (the
    probe runs it outside the sandbox; inside, /tmp is private and the marker could not be seen), and its
    docstring examples run under it."""
    root = tmp_path / "ws"
    root.mkdir()
    hostile_workspace(root, tmp_path / "markers")
    python = str(root / ".venv" / "bin" / "python")
    probe(python, dict(os.environ))
    assert (tmp_path / "markers" / "venv-python").exists()
    run = run_examples(CALC.replace("return a +", "return a + b"), "add", path=root / "calc.py", root=root,
                       python=python, timeout=30)
    assert run.verdict == "passed"


@pytest.mark.asyncio
async def test_each_bad_setting_pops_up_once_however_often_it_is_sent(distrusting_client: LanguageClient) -> None:
    client = distrusting_client
    notes = client.notes  # type: ignore[attr-defined]
    for value in ("3GB", "4GB", "5GB"):
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"greenpatch": {"verify": {"memoryMb": value}}})
        )
    await notes.wait_for(types.WINDOW_LOG_MESSAGE, lambda p: "'5GB'" in p.message)
    shown = [p for m, p in notes.seen if m == types.WINDOW_SHOW_MESSAGE and "verify.memoryMb" in p.message]
    assert len(shown) == 1
    logged = [p for m, p in notes.seen if m == types.WINDOW_LOG_MESSAGE and "verify.memoryMb" in p.message]
    assert len(logged) == 4  # the initialize options' '2GB' and the three changes

"""A native crash of the model (SIGSEGV inside llama.cpp) does not take the language server down: the model runs in
a child process; the server says it crashed and answers the next request with a new one."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import pytest_lsp
from lsp_helpers import SERVER, begin, open_file
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient
from test_completion import inline

pytestmark = pytest.mark.model


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def tiny_client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory,  # type: ignore[no-untyped-def]
                      tiny_model_path: Path):
    await begin(lsp_client, tmp_path_factory, {
        "model": {"completion": str(tiny_model_path), "repair": "fake"},
        "completions": {"debounceMs": 0, "gateThreshold": -5},  # the tiny model is unsure of most things
    })
    yield
    await lsp_client.shutdown_session()


def _children(pid: int) -> list[int]:
    """The server's model processes (multiprocessing's spawned children; its resource tracker is not one)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                command = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in command:
                found.append(int(entry))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the model's process through /proc")
@pytest.mark.asyncio
async def test_a_crash_of_the_model_leaves_the_server_serving_and_says_so(tiny_client: LanguageClient) -> None:
    def scratch(name: str, function: str) -> str:
        path = tiny_client.root / "shop" / name  # type: ignore[attr-defined]
        path.write_text(f"def {function}(a, b):\n    retu\n")
        return open_file(tiny_client, path)

    # a new document for each request: the completion cache must not answer in the model's place
    first = scratch("scratch1.py", "add")
    assert await inline(tiny_client, first, 1, len("    retu")), "the model answers before the crash"
    server = tiny_client._server  # the server's own process, as pytest-lsp started it
    assert server is not None
    (model,) = _children(server.pid)
    os.kill(model, signal.SIGSEGV)  # what a native crash inside llama.cpp does
    await inline(tiny_client, scratch("scratch2.py", "sub"), 1, len("    retu"))  # meets the dead process
    status = await tiny_client.notes.wait_for(  # type: ignore[attr-defined]
        "greenpatch/status", lambda p: p.state == "error" and "crashed" in p.message, timeout=60
    )
    assert "SIGSEGV" in status.message
    assert server.returncode is None, "the server is still running"
    await inline(tiny_client, scratch("scratch3.py", "mul"), 1, len("    retu"))
    await tiny_client.notes.wait_for(  # type: ignore[attr-defined]
        "greenpatch/status", lambda p: p.state == "ready" and "restarted after a crash" in p.message, timeout=60
    )
    assert _children(server.pid) not in ([], [model])
    symbols = await tiny_client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=first))
    )
    assert symbols

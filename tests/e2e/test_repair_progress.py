"""On-save repair reports LSP work-done progress through the real server: created by the server, then begin, the
phases (baseline tests, localizing, verifying FILE:FUNCTION with candidates and time left), and end."""

from __future__ import annotations

from typing import Any

import pytest
from lsp_helpers import open_file
from lsprotocol import types
from pytest_lsp import LanguageClient


def _value(params: Any) -> dict[str, Any]:
    value = params.value
    if isinstance(value, dict):
        return value
    return {"kind": value.kind, "message": getattr(value, "message", None), "title": getattr(value, "title", None)}


@pytest.mark.slow
@pytest.mark.asyncio
async def test_on_save_repair_reports_work_done_progress_from_begin_to_end(client: LanguageClient) -> None:
    root = client.root  # type: ignore[attr-defined]
    uri = open_file(client, root / "shop" / "pricing.py")
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    await client.notes.wait_for(  # type: ignore[attr-defined]
        "$/progress", lambda p: _value(p)["kind"] == "end", timeout=180
    )
    values = [_value(p) for m, p in client.notes.seen if m == "$/progress"]  # type: ignore[attr-defined]
    kinds = [v["kind"] for v in values]
    assert kinds[0] == "begin" and kinds[-1] == "end" and kinds.count("begin") == kinds.count("end") == 1
    assert values[0]["title"] == "greenpatch"
    reports = [v["message"] or "" for v in values if v["kind"] == "report"]
    assert any(r.startswith("baseline tests") for r in reports), reports
    verifying = [r for r in reports if r.startswith("verifying shop/pricing.py:")]
    assert verifying and "candidates" in verifying[0] and verifying[0].endswith("s left"), reports
    assert "verified fix" in (values[-1]["message"] or ""), values[-1]

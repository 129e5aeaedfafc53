"""The short prompt of a cold place (completion/prompt.py short_request): whole lines, mostly above the cursor, a
start that typing on the cursor's line keeps, no repo context."""

from __future__ import annotations

from greenpatch.completion.prompt import CompletionRequest, short_request

ABOVE = "".join(f"x{i} = {i}\n" for i in range(100))
BELOW = "".join(f"y{i} = {i}\n" for i in range(100))


def _request(line: str, context: str = "ctx") -> CompletionRequest:
    prefix = ABOVE + line
    return CompletionRequest(prefix, "\n" + BELOW, context, "line", ["\n"], 48, prefix, "\n" + BELOW)


def test_the_window_is_whole_lines_around_the_cursor_without_repo_context() -> None:
    short = short_request(_request("total = x1 +"), 40)
    assert short is not None and short.short and short.context == ""
    assert short.prefix.endswith("x99 = 99\ntotal = x1 +") and short.prefix.startswith("x")
    assert len(short.prefix) + len(short.suffix) <= 40 * 3.5 + len("total = x1 +")
    assert short.suffix.startswith("\ny0 = 0") and len(short.suffix) <= 40 * 3.5 / 4


def test_typing_on_the_line_keeps_the_start_of_the_window() -> None:
    a, b = short_request(_request("t"), 40), short_request(_request("total = x1 + x2 + x3"), 40)
    assert a is not None and b is not None
    assert a.prefix.rpartition("\n")[0] == b.prefix.rpartition("\n")[0] and a.suffix == b.suffix


def test_a_request_that_is_short_already_stays_as_it_is() -> None:
    request = CompletionRequest("x = 1\ny =", "\n", "", "line", ["\n"], 48, "x = 1\ny =", "\n")
    assert short_request(request, 100) is None


def test_the_next_lines_keep_the_start_of_the_window_mostly() -> None:
    starts = []
    for n in range(40, 80):
        text = "".join(f"x{i} = {i}\n" for i in range(n))
        request = CompletionRequest(text, "\n" + BELOW, "ctx", "line", ["\n"], 48, text, "\n" + BELOW)
        short = short_request(request, 40)
        assert short is not None
        starts.append(short.prefix.split(" ", 1)[0])
    assert len(set(starts)) <= 40 // 8 + 1, "the start moves in steps of SHORT_ALIGN lines"

"""A line suggestion that opens a block gets its body at the end of a function or file.

There a suggested `if n < 0:` alone would leave the file broken (Python wants a body) and is half a unit. The model
writes the body too, in block mode after the line, and the suggestion becomes the line and its body (the filters of
a block apply). When no body comes (out of time, or the filters drop it), the line alone is shown only where the
user began it.
"""

from __future__ import annotations

from dataclasses import replace

from greenpatch.cancel import CancelToken
from greenpatch.completion.alternatives import code_follows
from greenpatch.completion.filters import _indent, _is_code, _line_tokens, _opens_block, post_filter
from greenpatch.completion.prompt import BLOCK_STOPS, CompletionRequest
from greenpatch.engine.base import Engine, Generation


def needs_body(generation: Generation, request: CompletionRequest) -> bool:
    """A whole line that opens a block, at the end of its line, with no deeper code below it to be its body, where
    no code follows that the fill must connect to (the end of the file or of a definition, see
    alternatives.code_follows). Above code, a line opening a block the code below does not continue is the model
    going another way than that code: the filters drop it and other lines are sampled (HumanEval single-line
    infilling, first slice, ad hoc: giving such lines their bodies passed 1 task fewer and showed 2 wrong ones)."""
    if request.mode != "line" or generation.stop_reason not in ("stop", "eos") or "\n" in generation.text:
        return False
    current_before = request.full_prefix.rsplit("\n", 1)[-1]
    rest_of_line, _, after_line = request.full_suffix.partition("\n")
    if rest_of_line.strip():
        return False
    line = current_before + generation.text.rstrip()
    if not _opens_block(_line_tokens(line) or []):
        return False
    if code_follows(request.full_suffix):
        return False
    below = next((x for x in after_line.split("\n") if _is_code(x)), None)
    return below is None or _indent(below) <= _indent(line)


def with_body(engine: Engine, request: CompletionRequest, line: Generation, max_tokens: int,
              cancel: CancelToken | None, end_check: bool = False) -> tuple[Generation, str]:
    """The line and the body the model writes after it: the joined generation and its filtered text ("" when no
    body came). `end_check`: how likely the fill ends after the body (the gate, see filters.passes_gate)."""
    text = line.text.rstrip()
    body = engine.infill(request.prefix + text + "\n", request.suffix, context=request.context,
                         max_tokens=max_tokens, stop=list(BLOCK_STOPS), cancel=cancel, code_first=True,
                         end_check=end_check)
    joined = Generation(
        text + "\n" + body.text, line.logprobs + body.logprobs,
        "time" if body.stop_reason == "length" else body.stop_reason,  # "time": the complete lines are kept
        prompt_tokens=line.prompt_tokens, reused_tokens=line.reused_tokens, seconds=line.seconds + body.seconds,
        drafted_tokens=line.drafted_tokens + body.drafted_tokens,
        accepted_tokens=line.accepted_tokens + body.accepted_tokens,
        token_ends=line.token_ends[: len(line.logprobs)] + [len(text) + 1 + end for end in body.token_ends],
        end_logprob=body.end_logprob,
    )
    if body.stop_reason == "cancelled":
        return joined, ""
    raw = joined.text if body.stop_reason != "length" else joined.text.rsplit("\n", 1)[0]  # cut off mid-line
    filtered = post_filter(raw, replace(request, mode="block")) or ""
    if "\n" in filtered:
        return joined, filtered
    if request.full_prefix.rsplit("\n", 1)[-1].strip():
        # no body came, but the user is writing this line (`def add(` -> `a, b):`): completing it still helps
        return line, post_filter(line.text, request) or ""
    return joined, ""

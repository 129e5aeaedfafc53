"""Post-filters: showing nothing beats showing noise.

A raw completion is trimmed to what the cursor position wants (one line, or a block that stays inside the
cursor's indentation), cut where it starts repeating the text after the cursor, dropped when it only repeats the
lines around the cursor, makes the file's parse worse or compares something with itself, and finally gated on the
model's confidence.
"""

from __future__ import annotations

import ast
import io
import math
import tokenize

from greenpatch.completion.prompt import CompletionRequest


def _problems(text: str) -> list[tuple[int, str]] | None:
    try:
        from greenpatch.workspace.syntax import syntax_problems
    except ImportError:
        return None
    return [(p.line, p.message) for p in syntax_problems(text)]


def parse_not_worse(full_prefix: str, completion: str, full_suffix: str) -> bool:
    """True when inserting `completion` adds no syntax problem (tree-sitter), fixing some is fine.

    Counting ERROR nodes is not enough (an unfinished line and a wrong one both make one error), so problems
    are compared by line and message, lines after the cursor shifted by the lines the completion adds.
    """
    before = _problems(full_prefix + full_suffix)
    if before is None:
        return True
    after = _problems(full_prefix + completion + full_suffix)
    assert after is not None
    if not after or len(after) < len(before):
        return True
    cursor_line = full_prefix.count("\n")
    added = completion.count("\n")
    shifted = {(line + added if line > cursor_line else line, message) for line, message in before}
    return all(problem in shifted for problem in after)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def trim_block(text: str, full_prefix: str) -> str:
    """Keep the lines that belong to the block at the cursor: stop at the first line indented less than it."""
    current = full_prefix.rsplit("\n", 1)[-1]
    lines = text.split("\n")
    first = current + lines[0]
    base = _indent(first) if first.strip() else None
    kept = [lines[0]]
    for line in lines[1:]:
        if line.strip():
            if base is None:
                base = _indent(line)
            elif _indent(line) < base:
                break
        kept.append(line)
    return "\n".join(kept).rstrip()


def _line_tokens(line: str) -> list[tokenize.TokenInfo] | None:
    """The line's code tokens, or None where it does not stand alone (an open bracket, a continuation, a string
    left open)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    return [t for t in tokens if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER)]


def _is_code(line: str) -> bool:
    return bool(line.strip()) and not line.lstrip().startswith("#")


def _opens_block(tokens: list[tokenize.TokenInfo]) -> bool:
    return bool(tokens) and tokens[0].string in _OPENERS and tokens[-1].string == ":"


def indent_unit(text: str) -> int:
    """The file's indentation step: the smallest increase from one code line to the next (4 when none)."""
    steps = []
    previous = 0
    for line in text.split("\n"):
        if _is_code(line):
            if _indent(line) > previous:
                steps.append(_indent(line) - previous)
            previous = _indent(line)
    return min(steps, default=4)


_DEDENTERS = {"return", "pass", "raise", "break", "continue"}


def indent_after_enter(line: str, around: str) -> str:
    """The indentation an editor puts on the new line when Enter is pressed at the end of `line` (VS Code's and
    Vim's Python rules): one step in after a block opener, one step out after return/pass/raise/break/continue,
    else the same. `around` is code to learn the file's step from."""
    indent = line[: _indent(line)]
    tokens = _line_tokens(line)
    if not tokens:
        return indent
    step = "\t" if indent.startswith("\t") else " " * indent_unit(around)
    if _opens_block(tokens):
        return indent + step
    if tokens[0].string in _DEDENTERS:
        return indent[: max(0, len(indent) - len(step))]
    return indent


_OPENERS = {"if", "elif", "else", "for", "while", "def", "class", "with", "try", "except", "finally", "async", "match",
            "case"}


def opens_block_without_body(line: str, after: str) -> bool:
    """`line` opens a block (`if x:`) but the next code line sits at its own indentation, so the block would have
    no body: Python rejects that file, though tree-sitter's error recovery accepts it."""
    if not _opens_block(_line_tokens(line) or []):
        return False
    nxt = next((x for x in after.split("\n") if _is_code(x)), None)
    return nxt is not None and _indent(nxt) == _indent(line)


def _rejected_at(source: str) -> int | None:
    """The line (1-based) where Python's compiler rejects `source`, None when it compiles. Nothing is run."""
    try:
        compile(source, "<suggestion>", "exec", dont_inherit=True)
    except SyntaxError as e:
        return e.lineno
    except (ValueError, RecursionError, MemoryError):
        return None
    return None


def fit_indentation(text: str, req: CompletionRequest) -> str | None:
    """A line suggested on an empty line, at an indentation that agrees with the code below it.

    The model chooses the indentation when the cursor is at column 0 and sometimes picks another block's level:
    a plain statement above a deeper line (Python rejects the file there: unexpected indent), or a block opener
    whose body below would sit two steps deeper where one step in is a level the code above uses (valid, but not
    what the code around says; files with odd steps keep their lines). At column 0 the line moves to the level the
    code below asks for; after indentation the user typed, the line is withheld (None) instead."""
    current_before = req.full_prefix.rsplit("\n", 1)[-1]
    rest_of_line, _, after_line = req.full_suffix.partition("\n")
    if "\n" in text or current_before.strip() or rest_of_line.strip():
        return text
    line = current_before + text
    tokens = _line_tokens(line)
    below = after_line.split("\n")
    k = next((i for i, x in enumerate(below) if _is_code(x)), None)
    if not tokens or k is None or _indent(below[k]) <= _indent(line):
        return text  # nothing below sits deeper: nothing to fit (the common case, decided without more work)
    nxt = below[k]
    if _opens_block(tokens):
        unit = indent_unit(req.prefix + req.suffix)
        if _indent(nxt) <= _indent(line) + unit or \
                _indent(nxt) - unit not in {_indent(x) for x in req.prefix.split("\n") if _is_code(x)}:
            return text
        want = _indent(nxt) - unit  # the block below is its body, one step in from a level used above
    else:
        # inside brackets indentation is free: act only where Python itself rejects the line below
        cursor_line = req.full_prefix.count("\n") + 1
        if _rejected_at(req.full_prefix + text + req.full_suffix) != cursor_line + 1 + k:
            return text
        want = _indent(nxt)  # the line belongs to the deeper block below
    if current_before:
        return None
    return nxt[:want] + text.lstrip()  # the code below's own whitespace (tabs stay tabs)


_SELF_COMPARED = (ast.Eq, ast.Is, ast.Lt, ast.Gt, ast.LtE, ast.GtE, ast.In, ast.NotIn, ast.IsNot)


def _same_operands(tokens: list[tokenize.TokenInfo]) -> bool:
    """Cheap first look before parsing anything: the same few tokens on both sides of a comparison (`x == x`,
    `a[i] <= a[i]`, `k not in k`)."""
    words = [t.string for t in tokens]
    for i, word in enumerate(words):
        if word not in ("==", "<", ">", "<=", ">=", "is", "in"):
            continue
        left = i - 1 if word == "in" and i > 0 and words[i - 1] == "not" else i  # `not in`
        right = i + 2 if word == "is" and words[i + 1 : i + 2] == ["not"] else i + 1  # `is not`
        if any(0 < k <= left and words[left - k : left] == words[right : right + k] for k in range(1, 7)):
            return True
    return False


def compares_with_itself(full_prefix: str, text: str, full_suffix: str) -> bool:
    """The suggestion compares an expression with itself (`x == x`, `lst[i] < lst[i]`), which is constant: pylint's
    comparison-with-itself, a slip where another name was meant. `!=` is left alone (`x != x` tests for NaN), and so
    are operands with calls in them (`next(it) == next(it)` compares two values)."""
    if not any(_same_operands(_line_tokens(line) or []) for line in text.split("\n")):
        return False
    try:
        tree = ast.parse(full_prefix + text + full_suffix)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False  # the file does not parse as it stands: say nothing
    first = full_prefix.count("\n") + 1
    last = first + text.count("\n")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare) or not first <= node.lineno <= last:
            continue
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands, operands[1:]):
            if isinstance(op, _SELF_COMPARED) and ast.dump(left) == ast.dump(right) and \
                    not any(isinstance(n, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr))
                            for n in ast.walk(left)):
                return True
    return False


def _overlap_with_rest(text: str, rest: str) -> str:
    """Remove a tail of `text` that the rest of the line already holds (e.g. auto-closed brackets)."""
    rest = rest.rstrip()
    if not rest:
        return text
    for n in range(len(rest), 0, -1):
        if text.endswith(rest[:n]) and rest[:n].strip():
            return text[: -n]
    return text


def post_filter(completion: str, req: CompletionRequest, *, check_syntax: bool = True) -> str | None:
    """The text to show, or None when it should not be shown at all."""
    if req.mode == "line":
        text = completion.split("\n", 1)[0].rstrip()
    else:
        text = trim_block(completion.rstrip(), req.full_prefix)
    if not text.strip():
        return None
    current_before = req.full_prefix.rsplit("\n", 1)[-1]
    rest_of_line, _, after_line = req.full_suffix.partition("\n")
    text = _overlap_with_rest(text, rest_of_line)
    if not text.strip():
        return None
    first_line = (current_before + text.split("\n", 1)[0]).strip()
    following = [x.strip() for x in after_line.split("\n", 3)[:3] if x.strip()]
    above = [x.strip() for x in req.full_prefix.split("\n")[:-1] if x.strip()][-1:]
    if first_line and (following[:1] == [first_line] or above == [first_line]):
        return None  # it echoes the line right below or right above the cursor
    if len(text.strip()) >= 4 and req.full_suffix.lstrip().startswith(text.strip()):
        return None  # it repeats what follows the cursor
    if req.mode == "line":
        fitted = fit_indentation(text, req)
        if fitted is None:
            return None  # the indentation typed does not agree with the code below
        text = fitted
    if req.mode == "line" and opens_block_without_body(current_before + text + rest_of_line, after_line):
        return None  # not a complete unit where it stands
    if check_syntax:
        candidate = text
        # a block must not end by opening one with no room for its body (tree-sitter's recovery accepts that)
        while not parse_not_worse(req.full_prefix, candidate, req.full_suffix) or (
            req.mode == "block" and not rest_of_line.strip()
            and opens_block_without_body((current_before + candidate).rsplit("\n", 1)[-1], after_line)
        ):
            if req.mode != "block" or "\n" not in candidate:
                return None
            candidate = candidate.rsplit("\n", 1)[0].rstrip()  # a shorter block may be a complete unit
        if not candidate.strip():
            return None
        text = candidate
    if compares_with_itself(req.full_prefix, text, req.full_suffix):
        return None
    return text


ENDS = math.log(0.5)  # the fill ends after the text at least as likely as not: the text closes the gap
SHOW_ALL = -99.0  # a gate threshold at or below this shows everything


# A suggestion made from a cold place's short prompt (completion/prompt.py short_request: no repo context) is cut
# at its first token below this log-probability at least (completions.cutLogprob, when on). `greenpatch bench complete
# --real-lines 8 --short-prompt` on greenpatch's files (the tuning set), gate -0.25: cut -0.75 showed 3,932
# characters, 58.4 % right, 17 of 43 suggestions accepted; -0.4: 2,116, 78.2 % right, 23 of 37 (the full prompt's:
# 70.3 %). A stricter gate instead did worse (-0.15: 62.3 % of 1,599). Checked on mcp's: docs/benchmarks.md.
SHORT_PROMPT_CUT = -0.4


def passes_gate(mean_logprob: float | None, threshold: float, end_logprob: float | None = None) -> bool:
    """Confidence gate on the mean token log-probability; an engine without logprobs cannot be judged, so it shows.

    `end_logprob` (an empty line above code, see alternatives.py): a line after which the model would rather go on
    writing does not close the gap to the code below, and is withheld too (HumanEval single-line infilling, first
    slice, one bench run's results gated with and without it: 94.3 -> 95.2 % of shown right, 87 -> 84 % shown)."""
    if threshold <= SHOW_ALL:
        return True
    if end_logprob is not None and end_logprob < ENDS:
        return False
    return True if mean_logprob is None else mean_logprob >= threshold


def confident_end(logprobs: list[float], token_ends: list[int], typed: int, floor: float, length: int) -> int:
    """Where to stop showing a suggestion whose first `typed` characters the user typed: before its first token
    after those whose log-probability is below `floor` (what comes after an unsure token is a guess built on a
    guess), else its end (`length`), also where the engine cannot tell where tokens end."""
    if not logprobs or len(logprobs) != len(token_ends):
        return length
    start = 0
    for logprob, end in zip(logprobs, token_ends):
        if end > typed and logprob < floor:
            return max(start, typed)
        start = end
    return length

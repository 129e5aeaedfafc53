"""How the in-process engine loads this llama.cpp build: weights repacked or not (AMX), the context's sequences.

Only used by engine/llama.py while it creates its `Llama` object (llama_cpp is imported there first, behind the
check that it is installed).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import llama_cpp

PARALLEL = 8  # sequences sampled side by side at most (see llama_batch.py); sequence 0 holds the prompt


def amx_build() -> bool:
    info = llama_cpp.llama_print_system_info()
    return b"AMX_INT8 = 1" in (info if isinstance(info, bytes) else str(info).encode())


def extra_bufts() -> bool:
    """Whether weights go to llama.cpp's extra buffer types (repacked for faster matmuls); see patched_defaults."""
    return os.environ.get("GREENPATCH_EXTRA_BUFTS") == "1" or not amx_build()


@contextlib.contextmanager
def patched_defaults(repack: bool) -> Iterator[None]:
    """Context with several sequences; and weights without llama.cpp's "extra buffer types" when the build uses AMX.

    A llama.cpp built with GGML_NATIVE on an AMX CPU routes matmuls through AMX tiles, which segfault in VMs
    that do not grant tile state (seen on this project's CI machines). Plain buffers avoid the AMX path (and the
    weight repacking). GREENPATCH_EXTRA_BUFTS=1 keeps them.
    """
    import llama_cpp.llama as llama_module

    low: Any = llama_module.llama_cpp  # type: ignore[attr-defined]  # llama.py's own import, not re-exported
    model_defaults, context_defaults = low.llama_model_default_params, low.llama_context_default_params
    no_extra = not repack

    def model_params() -> object:
        p = model_defaults()
        if no_extra:
            p.use_extra_bufts = False
        return p

    def context_params() -> object:
        # A second sequence is the scratch space for evaluating new tokens *before* reused chunks (see
        # KvCache.prepare), and samples decode side by side in sequences of their own (llama_batch.py); a unified
        # cache lets the sequences share the prompt's cells.
        p = context_defaults()
        p.n_seq_max = 1 + PARALLEL
        p.kv_unified = True
        return p

    low.llama_model_default_params, low.llama_context_default_params = model_params, context_params
    try:
        yield
    finally:
        low.llama_model_default_params, low.llama_context_default_params = model_defaults, context_defaults

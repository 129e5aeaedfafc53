"""Start llama-cpp-python's OpenAI-compatible server for the remote-engine tests.

Same arguments as `python -m llama_cpp.server`. Weight repacking into llama.cpp's "extra buffer types" is turned
off first, as the in-process engine does (engine/llama_build.py `patched_defaults`): a llama.cpp built natively on an AMX
CPU segfaults in `llama_decode` in VMs that do not grant AMX tile state, so the server would die on its first
request. Plain buffers work everywhere, only slower on real AMX hardware.
"""

from __future__ import annotations

import llama_cpp.llama_cpp as llama_lib

_default_params = llama_lib.llama_model_default_params


def _params_without_repacking():  # type: ignore[no-untyped-def]
    params = _default_params()
    params.use_extra_bufts = False
    return params


llama_lib.llama_model_default_params = _params_without_repacking

if __name__ == "__main__":
    from llama_cpp.server.__main__ import main

    main()

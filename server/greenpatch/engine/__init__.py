"""Model engines: the in-process llama.cpp engine (the only module importing llama_cpp), a fake for tests.

`load_engine(name_or_path, settings)` builds one; `EngineWorker` owns it on a thread; `models` installs models.
"""

from greenpatch.engine.loader import load_engine
from greenpatch.engine.worker import EngineWorker

__all__ = ["EngineWorker", "load_engine"]

"""Model engines: the in-process llama.cpp engine (the only module importing llama_cpp), a fake for tests."""

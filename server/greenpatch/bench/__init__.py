"""Benchmarks behind `greenpatch bench`: each module has run(args) -> dict with a "summary"."""

# The completion latency replay's modes (bench/complete.py says what each one changes); here, so that the command
# line can offer them without importing the benchmark.
LATENCY_MODES = ("prefix", "chunk", "nodraft", "shownonly", "noheal", "unheld", "noalt", "nopark", "prefetch", "noahead",
                 "none")

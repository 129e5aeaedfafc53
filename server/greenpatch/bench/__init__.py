"""Benchmarks behind `greenpatch bench`: each module has run(args) -> dict with a "summary"."""

"""Verification: run the affected tests of a candidate edit in a sandboxed copy, never in the workspace."""

from greenpatch.verify.python import resolve_python
from greenpatch.verify.select import Selection
from greenpatch.verify.types import Changes, Frame, TestResult, TestRun
from greenpatch.verify.verifier import Verifier

__all__ = ["Changes", "Frame", "Selection", "TestResult", "TestRun", "Verifier", "resolve_python"]

"""Verification: run the affected tests of a candidate edit in a sandboxed copy, never in the workspace."""

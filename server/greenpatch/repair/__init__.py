"""Repair: failing test -> localize -> candidates (mutation, infill, rewrite) -> verify -> rank -> verified fixes.

`RepairPipeline(root, verifier, engine_worker_or_None, settings.repair).repair(changes=..., focus=[...])` returns a
RepairReport whose fixes all passed the tests; `repair.command.repair_command` is `greenpatch repair`.
"""

from greenpatch.repair.pipeline import RepairPipeline
from greenpatch.repair.types import Failure, Fix, RepairReport

__all__ = ["Failure", "Fix", "RepairPipeline", "RepairReport"]

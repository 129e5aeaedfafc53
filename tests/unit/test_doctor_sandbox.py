"""`greenpatch doctor` says which parts of the test sandbox this machine gives."""

from __future__ import annotations

import pytest
from greenpatch import doctor
from greenpatch.verify import process


def test_doctor_names_every_sandbox_feature_that_is_active_here() -> None:
    facts = process.isolation().describe()
    check = doctor._sandbox()
    active = check.detail.split(";")[0]
    for key, name in doctor.SANDBOX_FEATURES.items():
        assert (name in active) == bool(facts[key]), (key, check.detail)


def test_without_namespaces_doctor_warns_what_is_missing_and_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    bare = process.Isolation((), False, False, False, "", True)
    monkeypatch.setattr(process, "isolation", lambda: bare)
    check = doctor._sandbox()
    assert not check.ok and not check.required
    assert check.detail.startswith("active: none; not here: read-only file systems, locked mounts")
    assert "verify.memoryMb x 64 processes" in check.detail
    assert "user namespaces" in check.fix

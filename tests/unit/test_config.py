import pytest

from greenpatch.config import Settings, settings_from, settings_to_dict
from greenpatch.errors import ConfigError


def test_missing_options_take_their_defaults():
    assert settings_from(None) == Settings()
    assert settings_from({}) == Settings()


def test_camel_case_options_from_the_client_override_defaults():
    settings = settings_from({"completions": {"debounceMs": 40, "gateThreshold": -1}, "python": "/usr/bin/python3"})
    assert settings.completions.debounce_ms == 40
    assert settings.completions.gate_threshold == -1.0
    assert settings.python == "/usr/bin/python3"
    assert settings.repair == Settings().repair


def test_did_change_configuration_payload_nested_under_greenpatch_is_accepted():
    settings = settings_from({"greenpatch": {"repair": {"onSave": False}}})
    assert settings.repair.on_save is False


def test_later_changes_keep_earlier_ones():
    first = settings_from({"repair": {"candidates": 3}})
    second = settings_from({"repair": {"rounds": 4}}, first)
    assert (second.repair.candidates, second.repair.rounds) == (3, 4)


def test_unknown_options_are_ignored():
    assert settings_from({"noSuchThing": 1, "completions": {"alsoUnknown": True}}) == Settings()


def test_a_wrong_type_names_the_option():
    with pytest.raises(ConfigError, match="repair.onSave"):
        settings_from({"repair": {"onSave": "yes"}})


def test_settings_round_trip_through_the_camel_case_dict():
    data = settings_to_dict(Settings())
    assert data["completions"]["debounceMs"] == Settings().completions.debounce_ms
    assert settings_from(data) == Settings()

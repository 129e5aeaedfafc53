import pytest
from greenpatch.config import Settings, read_settings, settings_from, settings_to_dict
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


# --- fail closed: one bad value is reported and takes its default; trust is never assumed ---------------------

def test_one_mistyped_setting_keeps_the_others_and_the_clients_distrust():
    read = read_settings({"trusted": False, "verify": {"memoryMb": "2GB", "parallel": 3}})
    assert read.settings.trusted is False
    assert read.settings.verify.memory_mb == Settings().verify.memory_mb
    assert read.settings.verify.parallel == 3
    (problem,) = read.problems
    assert "verify.memoryMb" in str(problem) and "'2GB'" in str(problem)


@pytest.mark.parametrize("value", ["true", "yes", 1, None, [], {"x": True}])
def test_a_trusted_value_that_is_not_a_boolean_means_untrusted(value):
    read = read_settings({"trusted": value, "completions": {"enabled": False}})
    assert read.settings.trusted is False
    assert read.settings.completions.enabled is False
    assert any("trusted" in str(p) for p in read.problems)


def test_a_client_that_sends_no_trust_keeps_the_default_and_a_later_change_keeps_its_earlier_answer():
    assert read_settings({"verify": {"parallel": 1}}).settings.trusted is True
    untrusted = read_settings({"trusted": False}).settings
    later = read_settings({"repair": {"candidates": "many"}}, untrusted)
    assert later.settings.trusted is False
    assert later.settings.repair.candidates == Settings().repair.candidates


@pytest.mark.parametrize("data", ["trusted", 3, [{"trusted": True}], {"greenpatch": "x"}])
def test_options_that_are_not_an_object_are_reported_and_trust_nothing(data):
    read = read_settings(data)
    assert read.settings.trusted is False
    assert read.problems


def test_a_section_that_is_not_an_object_takes_its_defaults_and_the_rest_is_kept():
    read = read_settings({"verify": 5, "repair": {"rounds": 3}, "trusted": True})
    assert read.settings.verify == Settings().verify
    assert (read.settings.repair.rounds, read.settings.trusted) == (3, True)
    assert ["verify" in str(p) for p in read.problems] == [True]


@pytest.mark.parametrize("path, value", [
    (("verify", "memoryMb"), -5), (("verify", "parallel"), 0), (("verify", "testTimeout"), float("inf")),
    (("repair", "maxSeconds"), float("nan")), (("completions", "debounceMs"), -1), (("engine", "timeout"), 0),
])
def test_numbers_out_of_range_take_their_default(path, value):
    section, name = path
    read = read_settings({section: {name: value}})
    assert read.settings == Settings()
    assert f"{section}.{name}" in str(read.problems[0])


def test_a_bad_value_in_a_later_change_falls_back_to_the_default_not_the_earlier_value():
    first = settings_from({"verify": {"parallel": 4}})
    assert read_settings({"verify": {"parallel": "four"}}, first).settings.verify.parallel == Settings().verify.parallel

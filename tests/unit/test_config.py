"""Settings: defaults, and every bad value stops start-up with a message naming it."""

from __future__ import annotations

from datetime import time
from decimal import Decimal

import pytest

from ivr.config import ConfigError, load_settings, parse_hours, parse_window


def test_defaults_model_the_vologda_line() -> None:
    settings = load_settings({}, instance_path="/srv/meterline")
    assert settings.database_url == "sqlite:////srv/meterline/meterline.db"
    assert settings.window == (23, 25)
    assert settings.operator_hours == (time(8, 0), time(20, 0))
    assert settings.timezone.key == "Europe/Moscow"
    assert settings.city_code == "8172"
    assert settings.thresholds.anomaly_factor == Decimal(3)
    assert settings.public_url == "http://127.0.0.1:5000"
    assert not settings.skip_signature_check


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("METERLINE_WINDOW", "25-23", "METERLINE_WINDOW"),
        ("METERLINE_WINDOW", "23", "METERLINE_WINDOW"),
        ("METERLINE_WINDOW", "0-5", "METERLINE_WINDOW"),
        ("METERLINE_OPERATOR_HOURS", "20:00-08:00", "METERLINE_OPERATOR_HOURS"),
        ("METERLINE_OPERATOR_HOURS", "8-20", "METERLINE_OPERATOR_HOURS"),
        ("METERLINE_OPERATOR_HOURS", "08:00-25:00", "METERLINE_OPERATOR_HOURS"),
        ("METERLINE_TIMEZONE", "Europe/Vologda", "METERLINE_TIMEZONE"),
        ("METERLINE_CITY_CODE", "81a2", "METERLINE_CITY_CODE"),
        ("METERLINE_DATABASE_URL", "mysql://x", "METERLINE_DATABASE_URL"),
        ("METERLINE_PUBLIC_URL", "ivr.example.org", "METERLINE_PUBLIC_URL"),
        ("METERLINE_ANOMALY_FACTOR", "three", "METERLINE_ANOMALY_FACTOR"),
        ("METERLINE_ANOMALY_FACTOR", "-1", "METERLINE_ANOMALY_FACTOR"),
        ("METERLINE_CAP_HEAT", "NaN", "METERLINE_CAP_HEAT"),
        ("METERLINE_AGI_ALLOW", "127.0.0.0/8, everyone", "METERLINE_AGI_ALLOW"),
        ("METERLINE_ASTERISK_SOUNDS", "sounds", "METERLINE_ASTERISK_SOUNDS"),
        ("METERLINE_ASTERISK_OPERATOR", "PJSIP/op;rm -rf", "METERLINE_ASTERISK_OPERATOR"),
        ("METERLINE_OUTSIDE_WINDOW", "maybe", "METERLINE_OUTSIDE_WINDOW"),
        ("METERLINE_CALLS_PER_HOUR", "0", "METERLINE_CALLS_PER_HOUR"),
        ("METERLINE_DEV_SKIP_SIGNATURE", "perhaps", "METERLINE_DEV_SKIP_SIGNATURE"),
        ("METERLINE_PROMPTS", "/no/such/file.toml", "METERLINE_PROMPTS"),
        ("METERLINE_VOSK_MODEL", "/no/such/model", "METERLINE_VOSK_MODEL"),
        ("METERLINE_VOSK_URL", "http://x", "METERLINE_VOSK_URL"),
        ("METERLINE_OPERATOR_NUMBER", "call me", "METERLINE_OPERATOR_NUMBER"),
    ],
)
def test_a_bad_value_fails_with_a_message_naming_it(name: str, value: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings({name: value})


def test_public_url_loses_its_trailing_slash() -> None:
    settings = load_settings({"METERLINE_PUBLIC_URL": "https://ivr.example.org/meterline/"})
    assert settings.public_url == "https://ivr.example.org/meterline"


@pytest.mark.parametrize(
    ("raw", "window"), [("23-25", (23, 25)), (" 1 - 31 ", (1, 31)), ("20-20", (20, 20))]
)
def test_windows_parse(raw: str, window: tuple[int, int]) -> None:
    assert parse_window(raw) == window


def test_hours_parse() -> None:
    assert parse_hours("9:30-18:00") == (time(9, 30), time(18, 0))


def test_the_asterisk_back_end_listens_to_loopback_only_unless_told() -> None:
    settings = load_settings({})
    assert [str(n) for n in settings.agi_allow] == ["127.0.0.0/8", "::1/128"]
    assert settings.asterisk_operator is None
    assert settings.tts_command == ("espeak-ng", "-v", "ru", "--stdout")
    told = load_settings({"METERLINE_AGI_ALLOW": "10.0.0.5", "METERLINE_TTS_COMMAND": "rhvoice"})
    assert [str(n) for n in told.agi_allow] == ["10.0.0.5/32"]
    assert told.tts_command == ("rhvoice",)

"""The start-up summary and the access log: what they show, and what they never show."""

from __future__ import annotations

import pytest

from ivr.commands.accesslog import mask_numbers
from ivr.commands.serve import control_socket
from ivr.commands.summary import port_mismatch, summary_lines
from ivr.config import load_settings


def test_the_summary_names_each_setting_but_no_secret_or_password() -> None:
    settings = load_settings(
        {
            "METERLINE_DATABASE_URL": "postgresql://meterline:pa55word@db.local/meterline",
            "TWILIO_AUTH_TOKEN": "token-0123456789",
            "METERLINE_PUBLIC_URL": "https://ivr.example.org",
            "METERLINE_OPERATOR_NUMBER": "+78172597904",
            "METERLINE_VOSK_URL": "ws://127.0.0.1:2700",
        }
    )
    text = "\n".join(summary_lines(settings, "127.0.0.1:8000", {"access log": "off"}))
    assert "pa55word" not in text and "token-0123456789" not in text
    assert settings.secret_key not in text
    for expected in (
        "public URL       https://ivr.example.org",
        "database         postgresql://meterline:***@db.local/meterline",
        "Twilio token     set",
        "secret key       random per process",
        "operator number  +78172597904",
        "speech           on, vosk-server ws://127.0.0.1:2700",
        "access log       off",
    ):
        assert expected in text


def test_the_summary_says_loudly_when_signatures_are_not_checked() -> None:
    settings = load_settings({"METERLINE_DEV_SKIP_SIGNATURE": "1"})
    assert any("NOT CHECKED" in line for line in summary_lines(settings, "127.0.0.1:5000", {}))


@pytest.mark.parametrize(
    ("public", "port", "warned"),
    [
        ("http://127.0.0.1:5000", 6112, True),
        ("http://localhost:5000", 6112, True),
        ("http://[::1]:6112", 6112, False),
        ("http://127.0.0.1:5000", 5000, False),
        ("http://127.0.0.1", 80, False),
        ("https://ivr.example.org", 6112, False),
        ("http://10.0.0.5:5000", 6112, False),
    ],
)
def test_only_a_local_public_url_on_another_port_is_warned_about(
    public: str, port: int, warned: bool
) -> None:
    assert (port_mismatch(public, port) is not None) is warned


@pytest.mark.parametrize(
    ("line", "hidden"),
    [
        ("GET /operator/accounts?q=%2B79211234567 HTTP/1.1", "9211234567"),
        ("GET /operator/accounts?q=8%20(921)%20123-45-67 HTTP/1.1", "123-45"),
        ("GET /operator/accounts?q=+7+921+123+45+67 HTTP/1.1", "921+123"),
        ("https://ivr.example.org/operator/calls?phone=89211234567", "9211234567"),
    ],
)
def test_the_access_log_masks_phone_numbers(line: str, hidden: str) -> None:
    masked = mask_numbers(line)
    assert hidden not in masked and "45-67" in masked


@pytest.mark.parametrize(
    "line", ["GET /voice/step?seq=12 HTTP/1.1", "10.20.30.40", "GET /operator/calls/4711"]
)
def test_the_access_log_keeps_short_numbers_and_addresses(line: str) -> None:
    assert mask_numbers(line) == line


def test_the_control_socket_is_per_instance_and_port_or_off() -> None:
    assert control_socket("/srv/meterline/instance", 8000) == {
        "control_socket": "/srv/meterline/instance/gunicorn-8000.ctl"
    }
    assert control_socket(None, 8000) == {"control_socket_disable": True}
    assert control_socket("/" + "d" * 120, 8000) == {"control_socket_disable": True}


def test_each_worker_freezes_its_start_up_heap() -> None:
    import gc

    from gunicorn.config import Config

    from ivr.commands.serve import freeze_heap, gunicorn_options

    config = Config()
    for key, value in gunicorn_options("127.0.0.1", 8000, 1, 1).items():
        config.set(key, value)  # gunicorn checks the hook's signature here
    assert config.post_worker_init is freeze_heap
    before = gc.get_freeze_count()
    try:
        config.post_worker_init(object())  # what gunicorn calls with the worker
        assert gc.get_freeze_count() > before
        assert len(gc.get_objects(generation=2)) < gc.get_freeze_count()
    finally:
        gc.unfreeze()

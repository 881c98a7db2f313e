"""What `meterline serve` prints at start-up: the settings that decide whether calls work."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from ivr.commands.schema import database_shown
from ivr.config import Settings

LOOPBACK_NAMES = ("localhost", "ip6-localhost")


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def port_mismatch(public_url: str, port: int) -> str | None:
    """A warning when the public URL is on this machine but names another port than `port`.

    Signatures are checked against the public URL, so a local test server on another port
    refuses every webhook with 403.

    >>> port_mismatch("http://127.0.0.1:5000", 6112) is not None
    True
    >>> port_mismatch("https://ivr.example.org", 6112) is None
    True
    """
    parts = urlsplit(public_url)
    if not parts.hostname or not _is_loopback(parts.hostname):
        return None
    public_port = parts.port or (443 if parts.scheme == "https" else 80)
    if public_port == port:
        return None
    return (
        f"METERLINE_PUBLIC_URL is {public_url} but this server listens on port {port}: "
        f"webhooks are checked against port {public_port} and will be refused (403). "
        f"Set METERLINE_PUBLIC_URL=http://{parts.hostname}:{port}"
    )


def _speech(settings: Settings) -> str:
    if settings.vosk_url:
        return f"on, vosk-server {settings.vosk_url}"
    if settings.vosk_model:
        return f"on, Vosk model {settings.vosk_model}"
    return "off (keys only)"


def summary_lines(settings: Settings, bind: str, extra: dict[str, str]) -> list[str]:
    """The start-up summary, one setting per line; no secret and no password is printed."""
    first, last = settings.window
    start, end = settings.operator_hours
    if settings.skip_signature_check:
        token = "NOT CHECKED (METERLINE_DEV_SKIP_SIGNATURE=1)"
    else:
        token = "set" if settings.twilio_auth_token else "NOT SET"
    rows = {
        "public URL": f"{settings.public_url} (webhook signatures are checked against it)",
        "listening on": bind,
        "database": database_shown(settings.database_url),
        "Twilio token": token,
        "secret key": "random per process" if settings.secret_key_generated else "set",
        "window": f"days {first}-{last} of the month, outside it: {settings.outside_window}",
        "operator hours": f"{start:%H:%M}-{end:%H:%M} {settings.timezone.key}",
        "operator number": settings.operator_number or "none (0 says the hours only)",
        "speech": _speech(settings),
        **extra,
    }
    width = max(len(name) for name in rows)
    return ["meterline serve:"] + [f"  {name:<{width}}  {value}" for name, value in rows.items()]

"""Settings from the environment, through a few typed helpers that fail loudly on bad values.

Tests and tools pass a dict to `create_app`; its keys are the same environment names.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callflows.model import Policy, Thresholds


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment."""

    database_url: str
    twilio_auth_token: str
    public_url: str
    skip_signature_check: bool
    operator_number: str | None
    window: tuple[int, int]
    operator_hours: tuple[time, time]
    timezone: ZoneInfo
    city_code: str
    outside_window: str
    thresholds: Thresholds
    prompts_file: Path | None
    secret_key: str
    secret_key_generated: bool
    vosk_model: Path | None
    vosk_url: str | None
    audio_dir: Path
    audio_keep_days: int
    calls_per_hour: int
    trusted_proxies: int
    # The Asterisk back end (`meterline agi`, `meterline prompts render`).
    asterisk_sounds: str = "/var/lib/meterline/sounds"
    agi_allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    asterisk_operator: str | None = None
    tts_command: tuple[str, ...] = ("espeak-ng", "-v", "ru", "--stdout")
    extra: dict[str, str] = field(default_factory=dict)
    # Twilio's REST API, for moving a live call on at a spoken answer (ivr/voice/redirect.py).
    twilio_account_sid: str | None = None
    twilio_api_url: str | None = None
    # Request guards (ivr/guards.py): the largest body accepted, and how long it may take.
    max_body_kb: int = 64
    body_timeout: float = 5.0
    # Media streams (ivr/streams/server.py): the port `meterline serve` serves them on (0:
    # the app's own route, as under the development server), and the URL Twilio is given.
    stream_port: int = 0
    stream_url: str = ""
    max_streams: int = 300  # accepted media streams per worker process (gate.py)
    # Calls from withheld, empty or unparseable numbers, all together, per hour.
    unknown_calls_per_hour: int = 20
    # Account-number attempts not ending in a confirmed second fact, all callers, per hour.
    account_guesses_per_hour: int = 30

    def policy(self, speech: bool = False) -> Policy:
        """The flow's view of these settings."""
        return Policy(
            window_days=self.window,
            timezone=self.timezone.key,
            operator_hours=(
                (self.operator_hours[0].hour, self.operator_hours[0].minute),
                (self.operator_hours[1].hour, self.operator_hours[1].minute),
            ),
            outside_window="flag" if self.outside_window == "flag" else "refuse",
            operator_number=self.operator_number,
            speech=speech,
            thresholds=self.thresholds,
        )


def _str(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(name, default).strip()


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = _str(env, name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r}: expected a number from {low} to {high}")
    return value


def _decimal(env: Mapping[str, str], name: str, default: str) -> Decimal:
    raw = _str(env, name, default)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigError(f"{name}={raw!r}: expected a number such as {default}") from None
    if not value.is_finite() or value <= 0:
        raise ConfigError(f"{name}={raw!r}: expected a positive number")
    return value


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = _str(env, name, "0").lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name}={raw!r}: expected 1 or 0")


def parse_window(raw: str, name: str = "METERLINE_WINDOW") -> tuple[int, int]:
    """'23-25' -> (23, 25): the days of the month readings are taken.

    >>> parse_window("23-25")
    (23, 25)
    """
    m = re.fullmatch(r"\s*(\d{1,2})\s*-\s*(\d{1,2})\s*", raw)
    if not m:
        raise ConfigError(f"{name}={raw!r}: expected days as FIRST-LAST, e.g. 23-25")
    first, last = int(m[1]), int(m[2])
    if not (1 <= first <= 31 and 1 <= last <= 31 and first <= last):
        raise ConfigError(f"{name}={raw!r}: days must be 1..31 and FIRST <= LAST")
    return first, last


def parse_hours(raw: str, name: str = "METERLINE_OPERATOR_HOURS") -> tuple[time, time]:
    """'08:00-20:00' -> (time(8), time(20)).

    >>> parse_hours("08:00-20:00")
    (datetime.time(8, 0), datetime.time(20, 0))
    """
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", raw)
    if not m:
        raise ConfigError(f"{name}={raw!r}: expected HH:MM-HH:MM, e.g. 08:00-20:00")
    try:
        start, end = time(int(m[1]), int(m[2])), time(int(m[3]), int(m[4]))
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: not a valid time of day") from None
    if start >= end:
        raise ConfigError(f"{name}={raw!r}: the start must be before the end")
    return start, end


def _timezone(raw: str) -> ZoneInfo:
    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"METERLINE_TIMEZONE={raw!r}: not a known time zone") from None


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    raw = _str(env, name, default).rstrip("/")
    if not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", raw):
        raise ConfigError(
            f"{name}={raw!r}: expected an http(s) URL such as https://ivr.example.org"
        )
    return raw


Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def parse_networks(
    raw: str, name: str = "METERLINE_AGI_ALLOW"
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """'127.0.0.0/8, 10.1.2.3' -> the networks allowed to open FastAGI connections.

    >>> [str(n) for n in parse_networks("127.0.0.0/8, 10.1.2.3")]
    ['127.0.0.0/8', '10.1.2.3/32']
    """
    networks = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(
                f"{name}={raw!r}: {item!r} is not a network such as 127.0.0.0/8 or 10.0.0.5"
            ) from None
    return tuple(networks)


def _asterisk(env: Mapping[str, str]) -> tuple[str, Networks, str | None, tuple[str, ...]]:
    """The Asterisk back end's settings: sounds folder, allowed networks, operator, TTS."""
    sounds = _str(env, "METERLINE_ASTERISK_SOUNDS", "/var/lib/meterline/sounds").rstrip("/")
    if not sounds.startswith("/") or re.search(r"\s", sounds):
        raise ConfigError(
            f"METERLINE_ASTERISK_SOUNDS={sounds!r}: expected an absolute folder without spaces"
        )
    operator = _str(env, "METERLINE_ASTERISK_OPERATOR") or None
    if operator and not re.fullmatch(r"[A-Za-z0-9/@._&:-]{3,200}", operator):
        raise ConfigError(
            f"METERLINE_ASTERISK_OPERATOR={operator!r}: expected a Dial target such as "
            "PJSIP/operators"
        )
    tts = shlex.split(_str(env, "METERLINE_TTS_COMMAND", "espeak-ng -v ru --stdout"))
    if not tts:
        raise ConfigError("METERLINE_TTS_COMMAND is empty: expected e.g. espeak-ng -v ru --stdout")
    allow = parse_networks(_str(env, "METERLINE_AGI_ALLOW", "127.0.0.0/8,::1"))
    return sounds, allow, operator, tuple(tts)


def _stream_url(env: Mapping[str, str]) -> str:
    """METERLINE_STREAM_URL, or the public URL's /voice/stream over ws(s)."""
    raw = _str(env, "METERLINE_STREAM_URL")
    if not raw:
        public = _url(env, "METERLINE_PUBLIC_URL", "http://127.0.0.1:5000")
        return public.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + (
            "/voice/stream"
        )
    if not re.fullmatch(r"wss?://[^\s/]+/\S*", raw):
        raise ConfigError(
            f"METERLINE_STREAM_URL={raw!r}: expected ws(s)://HOST[:PORT]/voice/stream"
        )
    return raw


def load_settings(env: Mapping[str, str] | None = None, instance_path: str = ".") -> Settings:
    """Read and check every setting; raise ConfigError naming the first bad one."""
    env = dict(os.environ if env is None else env)
    default_db = "sqlite:///" + str(Path(instance_path) / "meterline.db")
    database_url = _str(env, "METERLINE_DATABASE_URL", default_db)
    if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", database_url):
        raise ConfigError(
            f"METERLINE_DATABASE_URL={database_url!r}: expected sqlite:///PATH or postgresql://..."
        )
    skip = _bool(env, "METERLINE_DEV_SKIP_SIGNATURE")
    token = _str(env, "TWILIO_AUTH_TOKEN")
    # Without a token every webhook is refused (403); `meterline serve` will not start.
    outside = _str(env, "METERLINE_OUTSIDE_WINDOW", "refuse")
    if outside not in ("refuse", "flag"):
        raise ConfigError(f"METERLINE_OUTSIDE_WINDOW={outside!r}: expected refuse or flag")
    city_code = _str(env, "METERLINE_CITY_CODE", "8172")
    if not re.fullmatch(r"\d{3,5}", city_code):
        raise ConfigError(f"METERLINE_CITY_CODE={city_code!r}: expected 3 to 5 digits")
    prompts = _str(env, "METERLINE_PROMPTS")
    if prompts and not Path(prompts).is_file():
        raise ConfigError(f"METERLINE_PROMPTS={prompts!r}: no such file")
    vosk_model = _str(env, "METERLINE_VOSK_MODEL")
    if vosk_model and not Path(vosk_model).is_dir():
        raise ConfigError(f"METERLINE_VOSK_MODEL={vosk_model!r}: not a model directory")
    vosk_url = _str(env, "METERLINE_VOSK_URL") or None
    if vosk_url and not re.fullmatch(r"wss?://\S+", vosk_url):
        raise ConfigError(f"METERLINE_VOSK_URL={vosk_url!r}: expected ws://HOST:PORT")
    operator_number = _str(env, "METERLINE_OPERATOR_NUMBER") or None
    if operator_number and not re.fullmatch(r"\+?\d{5,15}", operator_number):
        raise ConfigError(
            f"METERLINE_OPERATOR_NUMBER={operator_number!r}: expected a number such as +78172597904"
        )
    secret = _str(env, "METERLINE_SECRET_KEY")
    generated = not secret
    if generated:
        secret = os.urandom(32).hex()
    thresholds = Thresholds(
        anomaly_factor=_decimal(env, "METERLINE_ANOMALY_FACTOR", "3"),
        monthly_cap={
            "hot_water": _decimal(env, "METERLINE_CAP_HOT_WATER", "30"),
            "cold_water": _decimal(env, "METERLINE_CAP_COLD_WATER", "30"),
            "heat": _decimal(env, "METERLINE_CAP_HEAT", "5"),
        },
        min_history_months=_int(env, "METERLINE_MIN_HISTORY_MONTHS", 3, 1, 36),
    )
    sounds, allow, asterisk_operator, tts = _asterisk(env)
    return Settings(
        database_url=database_url,
        twilio_auth_token=token,
        public_url=_url(env, "METERLINE_PUBLIC_URL", "http://127.0.0.1:5000"),
        skip_signature_check=skip,
        operator_number=operator_number,
        window=parse_window(_str(env, "METERLINE_WINDOW", "23-25")),
        operator_hours=parse_hours(_str(env, "METERLINE_OPERATOR_HOURS", "08:00-20:00")),
        timezone=_timezone(_str(env, "METERLINE_TIMEZONE", "Europe/Moscow")),
        city_code=city_code,
        outside_window=outside,
        thresholds=thresholds,
        prompts_file=Path(prompts) if prompts else None,
        secret_key=secret,
        secret_key_generated=generated,
        vosk_model=Path(vosk_model) if vosk_model else None,
        vosk_url=vosk_url,
        audio_dir=Path(_str(env, "METERLINE_AUDIO_DIR", str(Path(instance_path) / "audio"))),
        audio_keep_days=_int(env, "METERLINE_AUDIO_KEEP_DAYS", 90, 1, 3650),
        calls_per_hour=_int(env, "METERLINE_CALLS_PER_HOUR", 10, 1, 10000),
        trusted_proxies=_int(env, "METERLINE_TRUSTED_PROXIES", 0, 0, 5),
        asterisk_sounds=sounds,
        agi_allow=allow,
        asterisk_operator=asterisk_operator,
        tts_command=tts,
        extra={k: v for k, v in env.items() if k.startswith("METERLINE_TEST_")},
        twilio_account_sid=_account_sid(env),
        twilio_api_url=(
            _url(env, "METERLINE_TWILIO_API_URL", "")
            if _str(env, "METERLINE_TWILIO_API_URL")
            else None
        ),
        max_body_kb=_int(env, "METERLINE_MAX_BODY_KB", 64, 4, 10240),
        body_timeout=float(_int(env, "METERLINE_BODY_TIMEOUT", 5, 1, 60)),
        stream_port=_int(env, "METERLINE_STREAM_PORT", 0, 0, 65535),
        stream_url=_stream_url(env),
        max_streams=_int(env, "METERLINE_MAX_STREAMS", 300, 1, 10000),
        unknown_calls_per_hour=_int(env, "METERLINE_UNKNOWN_CALLERS_PER_HOUR", 20, 1, 10000),
        account_guesses_per_hour=_int(env, "METERLINE_ACCOUNT_GUESSES_PER_HOUR", 30, 1, 10000),
    )


def _account_sid(env: Mapping[str, str]) -> str | None:
    sid = _str(env, "TWILIO_ACCOUNT_SID")
    if sid and not re.fullmatch(r"AC[0-9a-fA-F]{32}", sid):
        raise ConfigError(f"TWILIO_ACCOUNT_SID={sid!r}: expected AC followed by 32 hex digits")
    return sid or None

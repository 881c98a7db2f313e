"""The web side of meterline: Twilio webhooks, the operator view and the command line."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

log = logging.getLogger("meterline")


def create_app(config: Mapping[str, Any] | None = None, *, serving: bool = False) -> Flask:
    """Build the app. `config` (tests, tools) overrides the environment, same names.
    `serving`: a `meterline serve` worker's app; on SQLite its webhooks take turns
    (ivr/voice/gate.py)."""
    # Imported here, not at the top: `meterline --help` imports this package and builds no app.
    import os

    from ivr.config import ConfigError, load_settings
    from ivr.prompts import CatalogueError, load_checked
    from ivr.request import MeterlineRequest, Sessions
    from ivr.services import Services

    app = Flask(__name__, instance_relative_config=True)
    app.request_class = MeterlineRequest
    app.session_interface = Sessions()
    os.makedirs(app.instance_path, exist_ok=True)
    env: dict[str, str] = dict(os.environ)
    if config:
        env.update({k: str(v) for k, v in config.items()})
    settings = load_settings(env, instance_path=app.instance_path)
    app.config["SECRET_KEY"] = settings.secret_key
    app.config["METERLINE_SETTINGS"] = settings
    services = Services.build(settings)
    try:
        services.cache["catalogue"] = load_checked(settings.prompts_file)
    except CatalogueError as exc:
        raise ConfigError(f"METERLINE_PROMPTS: {exc}") from None
    app.extensions["meterline"] = services

    if settings.skip_signature_check:
        log.warning(
            "!!! METERLINE_DEV_SKIP_SIGNATURE is set: Twilio webhook signatures are NOT checked. "
            "Anyone who can reach this server can place fake calls. Never run it so in production."
        )

    from ivr import guards
    from ivr.commands import register_commands
    from ivr.voice import voice
    from ivr.voice.proxies import trust_proxies

    trust_proxies(app, settings.trusted_proxies)
    turns = None
    if serving and settings.database_url.startswith("sqlite"):
        from ivr.voice.gate import GATE

        turns = GATE.around
    guards.init_app(app, settings.max_body_kb * 1024, settings.body_timeout, turns)
    app.register_blueprint(voice)
    _register_optional_blueprints(app)
    register_commands(app)
    return app


def _register_optional_blueprints(app: Flask) -> None:
    """Blueprints that live in their own feature packages."""
    from ivr.operator import register as register_operator
    from ivr.streams import register as register_streams

    register_operator(app)
    register_streams(app)

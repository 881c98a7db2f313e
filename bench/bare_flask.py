"""The ceiling for `bench/load.py`: a bare Flask app that answers every webhook with one fixed
TwiML document, served by gunicorn with exactly the options `meterline serve` uses.

No signature check, no database, no call flow: what is left is Flask, Werkzeug, gunicorn's
gthread worker and the HTTP client, which our line pays for too.

    python bench/bare_flask.py --port 5001 --workers 4 --threads 8
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request
from gunicorn.app.base import BaseApplication
from twilio.twiml.voice_response import VoiceResponse

from ivr.commands.serve import gunicorn_options

# About the size of our own prompts: a Say of ~150 Cyrillic letters inside a Gather.
PROMPT = (
    "Счётчик номер один: горячая вода. Заводской номер оканчивается на 5678. "
    "Наберите показание на клавиатуре телефона. В конце нажмите решётку."
)


def fixed_twiml(public_url: str, seq: int) -> str:
    """One Gather posting to the next step's URL, like each of our prompts."""
    response = VoiceResponse()
    action = f"{public_url}/voice/step?seq={seq + 1}"
    gather = response.gather(
        input="dtmf", action=action, method="POST", timeout=5, finish_on_key="#",
        action_on_empty_result=True,
    )  # fmt: skip
    gather.say(PROMPT, language="ru-RU")
    response.redirect(action, method="POST")
    return str(response)


def goodbye_twiml() -> str:
    """The end of a call: a Say and a Hangup."""
    response = VoiceResponse()
    response.say("Принято два показания. Спасибо, до свидания!", language="ru-RU")
    response.hangup()
    return str(response)


def create_bare_app(public_url: str, steps: int = 4) -> Flask:
    """Every webhook of ours, each answering a prebuilt document: `steps` Gathers, then goodbye
    (the same number of requests as a two-meter call of ours)."""
    app = Flask(__name__)
    bodies = [fixed_twiml(public_url, seq) for seq in range(steps)] + [goodbye_twiml()]

    @app.post("/voice/incoming")
    def incoming() -> Response:
        return Response(bodies[0], status=200, mimetype="text/xml")

    @app.post("/voice/step")
    def step() -> Response:
        seq = request.args.get("seq", "")
        body = bodies[min(int(seq), steps)] if seq.isdigit() and len(seq) < 4 else bodies[-1]
        return Response(body, status=200, mimetype="text/xml")

    @app.route("/voice/status", methods=["GET", "POST"])
    def status() -> Response:
        return Response("", status=200)

    return app


class AppServer(BaseApplication):
    """Gunicorn running the app `factory` builds, in each worker (the floor uses it too)."""

    def __init__(self, options: dict[str, Any], factory: Callable[[], Flask]):
        self.options = options
        self.factory = factory
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.factory()


def main() -> None:
    """Serve the bare app until stopped."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--public-url", default=None)
    parser.add_argument("--steps", type=int, default=4, help="Gathers before the goodbye")
    opts = parser.parse_args()
    public = opts.public_url or f"http://{opts.host}:{opts.port}"
    options = gunicorn_options(opts.host, opts.port, opts.workers, opts.threads)
    AppServer(options, lambda: create_bare_app(public, opts.steps)).run()


if __name__ == "__main__":
    main()

"""Render the flow's neutral actions as TwiML, only through the SDK's VoiceResponse."""

from __future__ import annotations

from dataclasses import dataclass

from twilio.twiml.voice_response import Gather as TwimlGather
from twilio.twiml.voice_response import VoiceResponse

from callflows.model import Action, Gather, Hangup, Say, Transfer
from ivr.prompts import Catalogue
from ivr.voice.backend import Rendered


@dataclass(frozen=True)
class StreamTarget:
    """Where Media Streams should send the caller's audio, with its per-call token."""

    url: str
    token: str


def _speak(node: VoiceResponse | TwimlGather, catalogue: Catalogue, say: Say) -> str:
    utterance = catalogue.render(say.prompt, say.params)
    if utterance.audio:
        node.play(utterance.audio)
    else:
        kwargs = {"language": catalogue.language}
        if catalogue.voice:
            kwargs["voice"] = catalogue.voice
        node.say(utterance.text, **kwargs)
    return utterance.text


def connect_stream(stream: StreamTarget | None, next_url: str) -> str:
    """Start streaming the caller's audio to us, wait a second, and come back to `next_url`."""
    response = VoiceResponse()
    if stream is not None:
        start = response.start()
        media = start.stream(url=stream.url, track="inbound_track")
        media.parameter(name="token", value=stream.token)
    response.pause(length=1)
    response.redirect(next_url, method="POST")
    return str(response)


def render(actions: list[Action], catalogue: Catalogue, step_url: str) -> Rendered:
    """TwiML for the actions; Gathers post to `step_url` (which carries the next step number)."""
    response = VoiceResponse()
    spoken: list[str] = []
    for action in actions:
        if isinstance(action, Say):
            spoken.append(_speak(response, catalogue, action))
        elif isinstance(action, Gather):
            # The prompt goes inside the Gather: keys pressed before it starts are lost.
            gather = response.gather(
                input="dtmf",
                action=step_url,
                method="POST",
                timeout=action.timeout,
                finish_on_key=action.finish_on_key,
                num_digits=action.num_digits,
                action_on_empty_result=True,
            )
            for say in action.prompts:
                spoken.append(_speak(gather, catalogue, say))
            # Only reached if a carrier ignores actionOnEmptyResult: treated as silence.
            response.redirect(step_url, method="POST")
        elif isinstance(action, Transfer):
            response.dial(action.number, timeout=30)
        elif isinstance(action, Hangup):
            response.hangup()
    return Rendered(reply=str(response), spoken=spoken)


# Said if even the catalogue fails us: an apology must never itself fail.
LAST_RESORT = "Извините, произошла техническая ошибка. Пожалуйста, позвоните позже."


def apology(catalogue: Catalogue, prompt: str = "system_error") -> str:
    """A spoken apology (or other parting prompt) and a hang-up."""
    try:
        return render([Say(prompt), Hangup()], catalogue, step_url="").twiml
    except (KeyError, ValueError, IndexError):
        response = VoiceResponse()
        response.say(LAST_RESORT, language="ru-RU")
        response.hangup()
        return str(response)


class TwimlRenderer:
    """The Twilio back end's renderer: TwiML whose Gathers post to the next step's URL."""

    def __init__(self, catalogue: Catalogue):
        self.catalogue = catalogue

    def render(self, actions: list[Action], next_step: str) -> Rendered:
        """TwiML for the actions."""
        return render(actions, self.catalogue, next_step)

    def apology(self, prompt: str = "system_error") -> str:
        """A spoken apology (or other parting prompt) and a hang-up, as TwiML."""
        return apology(self.catalogue, prompt=prompt)

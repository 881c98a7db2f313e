"""Render the flow's neutral actions as TwiML: the steps' documents as text held
byte-identical to the SDK's VoiceResponse by tests, the rare ones through VoiceResponse."""

from __future__ import annotations

import functools
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from twilio.twiml import TwiML
from twilio.twiml.voice_response import Say as TwimlSay
from twilio.twiml.voice_response import VoiceResponse

from callflows.model import Action, Gather, Hangup, Say, Transfer
from ivr.prompts import Catalogue
from ivr.voice.backend import Rendered


@dataclass(frozen=True)
class StreamTarget:
    """Where Media Streams should send the caller's audio, with its per-call token."""

    url: str
    token: str


XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def _text(text: str) -> str:
    """Element text escaped as ElementTree escapes it."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# A dozen attributes per document, nearly all the same few values (methods, timeouts, the
# step URLs): escaped once each. `typed`, so that True ("true") is not 1 ("1").
@functools.lru_cache(maxsize=1024, typed=True)
def _attribute(value: object) -> str:
    """An attribute value as the SDK writes it (booleans in lower case), escaped as
    ElementTree escapes attributes."""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    for raw, entity in _ATTRIBUTE_ENTITIES:
        text = text.replace(raw, entity)
    return text


_ATTRIBUTE_ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"),
                       ("\r", "&#13;"), ("\n", "&#10;"), ("\t", "&#09;"))  # fmt: skip


def _element(name: str, attrs: dict[str, object], text: str = "", children: str = "") -> str:
    """One TwiML verb, as VoiceResponse serialises it: attributes sorted, None ones left
    out, no text when empty, `<Verb />` when it holds nothing."""
    head = name + "".join(
        f' {key}="{_attribute(attrs[key])}"' for key in sorted(attrs) if attrs[key] is not None
    )
    if not text and not children:
        return f"<{head} />"
    return f"<{head}>{_text(text)}{children}</{name}>"


def _speak(catalogue: Catalogue, say: Say, spoken: list[str], said: Said | None) -> str:
    key = said.key(say) if said is not None else None
    found = said.get(key) if said is not None and key is not None else None
    if found is None:
        found = _said(catalogue, say)
        if said is not None and key is not None:
            said.keep(key, found)
    spoken.append(found[1])
    return found[0]


def _said(catalogue: Catalogue, say: Say) -> tuple[str, str]:
    """A prompt's verb (Say or Play) and its words."""
    utterance = catalogue.render(say.prompt, say.params)
    if utterance.audio:
        return _element("Play", {}, utterance.audio), utterance.text
    attrs: dict[str, object] = {"language": catalogue.language, "voice": catalogue.voice or None}
    if utterance.ssml is not None:
        return _ssml_say(utterance.ssml, attrs), utterance.text
    return _element("Say", attrs, utterance.text), utterance.text


class Said:
    """The verbs of the prompts a renderer spoke last, by prompt and parameters: most prompts
    have none or the same few (counts, ordinals, meter names), and each took a few µs to fill
    in, escape and wrap on every webhook (issue 9). The catalogue does not change once loaded.
    Bounded, oldest out first; keyed on the parameters' types too (True is not 1)."""

    def __init__(self, size: int = 2048) -> None:
        self._size = size
        self._verbs: dict[object, tuple[str, str]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(say: Say) -> object | None:
        """The cache key of a Say; None if its parameters cannot be one."""
        if not say.params:
            return say.prompt
        key = (say.prompt, tuple(sorted((k, type(v), v) for k, v in say.params.items())))
        try:
            hash(key)
        except TypeError:
            return None
        return key

    def get(self, key: object) -> tuple[str, str] | None:
        """The verb and words kept for `key`."""
        return self._verbs.get(key)

    def keep(self, key: object, verb: tuple[str, str]) -> None:
        """Remember a verb and its words."""
        with self._lock:
            self._verbs[key] = verb
            while len(self._verbs) > self._size:
                del self._verbs[next(iter(self._verbs))]


def _ssml_say(ssml: str, attrs: dict[str, object]) -> str:
    """A Say carrying SSML (a prompt's <prosody>, <break> …): rare, so built by the SDK."""
    say = TwimlSay(**{k: v for k, v in attrs.items() if v is not None})
    _nest_ssml(say, ET.fromstring(f"<speak>{ssml}</speak>"))
    return say.to_xml(xml_declaration=False)


def _nest_ssml(node: TwiML, element: ET.Element) -> None:
    """Copy parsed SSML into the SDK's nodes: text, then each tag with its text and tail."""
    if element.text:
        node.nest(element.text)
    for child in element:
        _nest_ssml(node.add_child(child.tag, None, **child.attrib), child)
        if child.tail:
            node.nest(child.tail)


def dial_url(step_url: str) -> str:
    """Where a transfer's result goes: the Dial-result route beside the step route."""
    return step_url.replace("/voice/step?", "/voice/dial?", 1)


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


def render(
    actions: list[Action], catalogue: Catalogue, step_url: str, said: Said | None = None
) -> Rendered:
    """TwiML for the actions; Gathers post to `step_url` (which carries the next step number).

    Written as text, not through VoiceResponse: the SDK builds an ElementTree and serialises
    it on every webhook, a cost the line's budget per webhook has no room for (issue 9).
    tests/webhooks/test_twiml_text.py holds every document byte-identical to VoiceResponse's
    for the same actions. `said` (a renderer's) keeps the prompts' verbs once written."""
    parts: list[str] = []
    spoken: list[str] = []
    for action in actions:
        if isinstance(action, Say):
            parts.append(_speak(catalogue, action, spoken, said))
        elif isinstance(action, Gather):
            # The prompt goes inside the Gather: keys pressed before it starts are lost.
            prompts = "".join(_speak(catalogue, say, spoken, said) for say in action.prompts)
            # Gather's timeout is both the wait for the first key and the gap between keys;
            # a pause inside the Gather (keys interrupt it) gives time to start, while a lone
            # `*` or `0` is acted on after the short gap.
            if action.first_key_wait and action.first_key_wait > action.timeout:
                prompts += _element("Pause", {"length": action.first_key_wait - action.timeout})
            attrs: dict[str, object] = {
                "input": "dtmf", "action": step_url, "method": "POST",
                "timeout": action.timeout, "finishOnKey": action.finish_on_key,
                "numDigits": action.num_digits, "actionOnEmptyResult": True,
            }  # fmt: skip
            parts.append(_element("Gather", attrs, children=prompts))
            # Only reached if a carrier ignores actionOnEmptyResult: treated as silence.
            parts.append(_element("Redirect", {"method": "POST"}, step_url))
        elif isinstance(action, Transfer) and action.result:
            # With an action URL a busy or unanswered operator comes back to the flow.
            attrs = {"timeout": 30, "action": dial_url(step_url), "method": "POST"}
            parts.append(_element("Dial", attrs, action.number))
        elif isinstance(action, Transfer):
            parts.append(_element("Dial", {"timeout": 30}, action.number))
        elif isinstance(action, Hangup):
            parts.append(_element("Hangup", {}))
    document = XML_DECLARATION + _element("Response", {}, children="".join(parts))
    return Rendered(reply=document, spoken=spoken)


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
        self.said = Said()

    def render(self, actions: list[Action], next_step: str) -> Rendered:
        """TwiML for the actions."""
        return render(actions, self.catalogue, next_step, self.said)

    def apology(self, prompt: str = "system_error") -> str:
        """A spoken apology (or other parting prompt) and a hang-up, as TwiML."""
        return apology(self.catalogue, prompt=prompt)

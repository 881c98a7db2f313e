"""The steps' TwiML, written as text, is byte for byte what the SDK's VoiceResponse writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.twiml.voice_response import VoiceResponse

from callflows.model import Action, Gather, Hangup, Say, Transfer
from ivr.prompts import Utterance
from ivr.voice.twiml import Said, render

TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
XMLISH = st.sampled_from(["", "&", "<b>", '"кавычки"', "a\r\nb\tc", "сто двадцать три"]) | TEXT


@dataclass
class Catalogue:
    """Prompts whose words are their names: any text, any audio URL."""

    language: str
    voice: str | None
    audio: dict[str, str]

    def render(self, key: str, params: dict[str, object] | None = None) -> Utterance:
        return Utterance(text=key, audio=self.audio.get(key))


def sdk_render(actions: list[Action], catalogue: Catalogue, step_url: str) -> str:
    """The reference: the same actions through VoiceResponse, as the line rendered them."""
    response = VoiceResponse()

    def speak(node: Any, say: Say) -> None:
        utterance = catalogue.render(say.prompt, say.params)
        if utterance.audio:
            node.play(utterance.audio)
        else:
            kwargs = {"language": catalogue.language}
            if catalogue.voice:
                kwargs["voice"] = catalogue.voice
            node.say(utterance.text, **kwargs)

    for action in actions:
        if isinstance(action, Say):
            speak(response, action)
        elif isinstance(action, Gather):
            gather = response.gather(
                input="dtmf", action=step_url, method="POST", timeout=action.timeout,
                finish_on_key=action.finish_on_key, num_digits=action.num_digits,
                action_on_empty_result=True,
            )  # fmt: skip
            for say in action.prompts:
                speak(gather, say)
            response.redirect(step_url, method="POST")
        elif isinstance(action, Transfer):
            response.dial(action.number, timeout=30)
        elif isinstance(action, Hangup):
            response.hangup()
    return str(response)


SAYS = XMLISH.map(Say)
ACTIONS = st.lists(
    st.one_of(
        SAYS,
        st.builds(Gather, prompts=st.lists(SAYS, max_size=3).map(tuple),
                  finish_on_key=st.sampled_from(["#", "", "*"]),
                  num_digits=st.none() | st.integers(1, 20), timeout=st.integers(1, 30)),
        st.builds(Transfer, number=XMLISH),
        st.just(Hangup()),
    ),
    max_size=5,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    actions=ACTIONS,
    language=st.sampled_from(["ru-RU", "en-US"]),
    voice=st.none() | st.sampled_from(["", "Polly.Tatyana", 'a"b']),
    audio=st.dictionaries(XMLISH, XMLISH, max_size=3),
    step_url=st.sampled_from(["https://ivr.example.org/voice/step?seq=3", ""]) | XMLISH,
)
def test_every_document_is_byte_identical_to_voice_response(
    actions: list[Action], language: str, voice: str | None, audio: dict[str, str],
    step_url: str,
) -> None:  # fmt: skip
    catalogue = Catalogue(language, voice, audio)
    rendered = render(actions, catalogue, step_url)  # type: ignore[arg-type]
    assert rendered.reply == sdk_render(actions, catalogue, step_url)
    said = Said()  # the renderer's: prompts written once, then kept
    for _ in range(2):
        again = render(actions, catalogue, step_url, said)  # type: ignore[arg-type]
        assert (again.reply, again.spoken) == (rendered.reply, rendered.spoken)


def test_a_prompt_inside_a_gather_is_spoken_and_listed() -> None:
    catalogue = Catalogue("ru-RU", None, {})
    actions: list[Action] = [Say("Здравствуйте & добро пожаловать"), Gather((Say("Наберите"),))]
    rendered = render(actions, catalogue, "https://ivr.example.org/voice/step?seq=1&x=<")  # type: ignore[arg-type]
    assert rendered.spoken == ["Здравствуйте & добро пожаловать", "Наберите"]
    assert rendered.reply == sdk_render(
        actions, catalogue, "https://ivr.example.org/voice/step?seq=1&x=<"
    )


def test_kept_prompts_tell_parameters_apart_by_value_and_type() -> None:
    catalogue, said = ParamsCatalogue("ru-RU", None), Said()

    def words(**params: object) -> list[str]:
        return render([Say("p", params)], catalogue, "", said).spoken  # type: ignore[arg-type]

    assert words(n=1) == ["p n=1:int"]
    assert words(n=True) == ["p n=True:bool"]
    assert words(n=2) == ["p n=2:int"]
    assert words(n=1) == ["p n=1:int"]
    assert words(n=[1]) == words(n=[1]) == ["p n=[1]:list"]  # not hashable: not kept


@dataclass
class ParamsCatalogue:
    """Prompts whose words name their parameters and the parameters' types."""

    language: str
    voice: str | None

    def render(self, key: str, params: dict[str, object] | None = None) -> Utterance:
        named = " ".join(f"{k}={v!r}:{type(v).__name__}" for k, v in (params or {}).items())
        return Utterance(text=f"{key} {named}")

"""Our one-HMAC signature check answers exactly as the SDK's `RequestValidator.validate`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlparse

from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator, add_port, remove_port
from werkzeug.datastructures import MultiDict

from ivr.request import parse_pairs
from ivr.voice.signature import _signed_fields, _signed_pairs, signature_matches

URL_TEXT = st.text(alphabet="abcXYZ019-_.~%/?#&=;:+ юж", max_size=12)
FIELD_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https"]))
    host = draw(st.sampled_from(["ivr.example.org", "127.0.0.1", "localhost"]))
    port = draw(st.sampled_from(["", ":80", ":443", ":5000", ":8443"]))
    path = draw(
        st.sampled_from(["/voice/incoming", "/voice/step", "/voice/status"])
        | URL_TEXT.map(lambda p: "/" + p)
    )
    query = draw(st.sampled_from(["", "?seq=1", "?seq=12"]) | URL_TEXT.map(lambda q: "?" + q))
    return f"{scheme}://{host}{port}{path}{query}"


@st.composite
def forms(draw: st.DrawFn) -> Any:
    pairs = draw(st.lists(st.tuples(FIELD_TEXT, FIELD_TEXT), max_size=6))
    if draw(st.booleans()):
        return MultiDict(pairs)  # what Flask's request.form is: repeated names allowed
    return dict(pairs)


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, str, Any, str]:
    token = draw(st.sampled_from(["secret-token", ""]) | FIELD_TEXT)
    url = draw(urls())
    form = draw(forms())
    parsed = urlparse(url)
    signer = RequestValidator(draw(st.sampled_from([token, token + "x"])))
    signed_url = draw(
        st.sampled_from([url, add_port(parsed), remove_port(parsed), parsed.geturl()]) | urls()
    )
    signed_form = draw(st.sampled_from([form, {}]) | forms())
    signature = signer.compute_signature(signed_url, signed_form)
    signature = draw(st.sampled_from([signature, signature[:-1], " " + signature]) | FIELD_TEXT)
    return token, url, form, signature


@settings(max_examples=400, deadline=None)
@given(cases())
def test_it_accepts_and_refuses_exactly_as_the_sdk_validator(
    case: tuple[str, str, Any, str],
) -> None:
    token, url, form, signature = case
    expected = RequestValidator(token).validate(url, form, signature)
    assert signature_matches(token, url, form, signature) is expected


def test_it_accepts_a_signature_made_with_or_without_the_default_port_only() -> None:
    form = {"CallSid": "CA1", "Digits": "112*5"}
    sign = RequestValidator("t").compute_signature
    without = sign("https://ivr.example.org/voice/step", form)
    assert signature_matches("t", "https://ivr.example.org:443/voice/step", form, without)
    with_port = sign("https://ivr.example.org:443/voice/step", form)
    assert signature_matches("t", "https://ivr.example.org/voice/step", form, with_port)
    other_port = sign("https://ivr.example.org:8443/voice/step", form)
    assert not signature_matches("t", "https://ivr.example.org/voice/step", form, other_port)


def test_it_refuses_a_signature_in_letters_outside_ascii() -> None:
    assert not signature_matches("t", "https://ivr.example.org/voice/step", {}, "подпись")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(FIELD_TEXT, FIELD_TEXT), max_size=8))
def test_the_parsed_pairs_sign_as_the_form_built_from_them(pairs: list[tuple[str, str]]) -> None:
    """is_valid joins the pairs the form parser read (ivr.request) rather than walking the
    MultiDict built from them: both give the same text, repeated names and pairs included."""
    parsed = parse_pairs(urlencode(pairs))
    assert _signed_pairs(parsed) == _signed_fields(MultiDict(parsed))

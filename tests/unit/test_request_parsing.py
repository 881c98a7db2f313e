"""The hand-written form and query parser reads every text as Werkzeug's parse_qsl call does."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from flask import Flask, request
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr import guards
from ivr.request import MeterlineRequest, parse_pairs

# Separators, escapes (valid, truncated, not UTF-8), pluses, and any other letters.
PIECES = st.sampled_from(
    ["&", "=", "+", "%", "%2", "%20", "%2B", "%26", "%3D", "%D0", "%BF", "%D0%BF", "%ff", "%zz",
     "a", "CallSid", "ж", " ", ";"]
) | st.text(max_size=3)  # fmt: skip
QUERY = st.lists(PIECES, max_size=16).map("".join)


@settings(max_examples=500, deadline=None)
@given(QUERY)
def test_it_parses_any_text_as_parse_qsl_does(text: str) -> None:
    expected = parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote")
    assert parse_pairs(text) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=8))
def test_it_reads_back_what_urlencode_wrote(pairs: list[tuple[str, str]]) -> None:
    text = urlencode(pairs)
    assert parse_pairs(text) == pairs
    assert parse_pairs(text) == parse_qsl(text, keep_blank_values=True)


def _app(request_class: type, guarded: bool = False) -> Flask:
    app = Flask(__name__)
    app.request_class = request_class
    if guarded:  # the body guard reads the body whole first: the form is parsed from it
        guards.init_app(app)

    @app.post("/echo")
    def echo() -> dict[str, object]:
        return {"form": list(request.form.items(multi=True)),
                "args": list(request.args.items(multi=True))}  # fmt: skip

    return app


@settings(max_examples=100, deadline=None)
@given(QUERY, st.binary(max_size=40) | QUERY.map(str.encode))
def test_the_app_sees_the_form_and_query_werkzeug_would(query: str, body: bytes) -> None:
    """Bodies that are not UTF-8 give an empty form, as Werkzeug's do."""
    ours, theirs = _app(MeterlineRequest), _app(Flask.request_class)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    path = "/echo?" + query.replace("#", "%23")
    got = ours.test_client().post(path, data=body, headers=headers)
    expected = theirs.test_client().post(path, data=body, headers=headers)
    assert (got.status_code, got.get_json()) == (expected.status_code, expected.get_json())


@settings(max_examples=100, deadline=None)
@given(QUERY, st.binary(max_size=40) | QUERY.map(str.encode))
def test_the_form_read_from_the_guards_body_is_werkzeugs(query: str, body: bytes) -> None:
    ours, theirs = _app(MeterlineRequest, guarded=True), _app(Flask.request_class)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    path = "/echo?" + query.replace("#", "%23")
    got = ours.test_client().post(path, data=body, headers=headers)
    expected = theirs.test_client().post(path, data=body, headers=headers)
    assert (got.status_code, got.get_json()) == (expected.status_code, expected.get_json())


def test_a_form_over_the_form_limit_is_refused_from_the_guards_body_too() -> None:
    ours, theirs = _app(MeterlineRequest, guarded=True), _app(Flask.request_class)
    for app in (ours, theirs):
        app.config["MAX_FORM_MEMORY_SIZE"] = 10  # under the guard's own limit (64 KiB)
    answers = [app.test_client().post("/echo", data={"CallSid": "CA" + "0" * 32}).status_code
               for app in (ours, theirs)]  # fmt: skip
    assert answers == [413, 413]


def test_a_multipart_form_is_werkzeugs() -> None:
    client = _app(MeterlineRequest, guarded=True).test_client()
    got = client.post("/echo", data={"a": "1", "b": "ж"})
    assert got.get_json()["form"] == [["a", "1"], ["b", "ж"]]

"""The prompt catalogue a utility edits: checked at start-up, audio played when given."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest

from callflows.model import Say
from ivr import create_app
from ivr.config import ConfigError
from ivr.prompts import DEFAULT_CATALOGUE, Catalogue, spoken_number
from ivr.voice.twiml import render


def _copy_with(tmp_path: Path, old: str, new: str) -> Path:
    text = DEFAULT_CATALOGUE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "prompts.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_the_shipped_catalogue_is_complete() -> None:
    catalogue = Catalogue.load()
    assert catalogue.problems_against(catalogue) == []


def test_a_prompt_with_audio_is_played_instead_of_spoken(tmp_path: Path) -> None:
    path = _copy_with(
        tmp_path, "[goodbye]\n", '[goodbye]\naudio = "https://cdn.example.org/bye.mp3"\n'
    )
    utterance = Catalogue.load(path).render("goodbye")
    assert utterance.audio == "https://cdn.example.org/bye.mp3"


def test_a_missing_prompt_stops_start_up(tmp_path: Path) -> None:
    path = _copy_with(tmp_path, "[goodbye]", "[good_bye]")
    with pytest.raises(ConfigError, match=r"prompt \[goodbye\] is missing"):
        create_app({"METERLINE_PROMPTS": str(path), "METERLINE_DATABASE_URL": "sqlite://"})


def test_a_placeholder_nobody_fills_stops_start_up(tmp_path: Path) -> None:
    path = _copy_with(tmp_path, "Спасибо,", "Спасибо, {name},")
    with pytest.raises(ConfigError, match=r"\{name\}"):
        create_app({"METERLINE_PROMPTS": str(path), "METERLINE_DATABASE_URL": "sqlite://"})


def test_a_bad_number_form_stops_start_up(tmp_path: Path) -> None:
    path = _copy_with(tmp_path, "Принято {count:n|", "Принято {count:x|")
    with pytest.raises(ConfigError, match="unknown number form"):
        create_app({"METERLINE_PROMPTS": str(path), "METERLINE_DATABASE_URL": "sqlite://"})


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (1, "Принято одно показание."),
        (3, "Принято три показания."),
        (5, "Принято пять показаний."),
        (21, "Принято двадцать одно показание."),
    ],
)
def test_counts_agree_with_the_noun(count: int, text: str) -> None:
    assert Catalogue.load().render("summary", {"count": count}).text == text


@pytest.mark.parametrize(
    ("value", "unit", "words"),
    [
        (Decimal("130.000"), "м3", "Вы ввели: сто тридцать кубометров."),
        (Decimal("2.5"), "м3", "Вы ввели: две целых пять десятых кубометра."),
        (Decimal("1"), "Гкал", "Вы ввели: одна гигакалория."),
        (Decimal("22"), "Гкал", "Вы ввели: двадцать две гигакалории."),
        (Decimal("7"), "", "Вы ввели: семь."),
    ],
)
def test_a_spoken_value_carries_its_unit_in_agreement(
    value: Decimal, unit: str, words: str
) -> None:
    assert Catalogue.load().render("readback_keyed", {"value": value, "unit": unit}).text == words


def test_street_abbreviations_are_spoken_in_full() -> None:
    params = {"tail": "1 2", "street": "ул. Мира, д. 1", "key": 1}
    text = Catalogue.load().render("choose_account_option", params).text
    assert "улица Мира, дом 1" in text


def test_hours_with_minutes_are_said_as_times() -> None:
    params = {"start": 8, "start_minutes": 30, "end": 18, "end_minutes": 30}
    text = Catalogue.load().render("operator_hours_minutes", params).text
    assert text == "Операторы отвечают с восьми тридцати до восемнадцати тридцати."


def test_the_shipped_catalogue_sets_a_female_russian_voice() -> None:
    catalogue = Catalogue.load()
    assert (catalogue.voice, catalogue.language) == ("Polly.Tatyana", "ru-RU")


def _with_ssml(tmp_path: Path, voice: str) -> Catalogue:
    path = _copy_with(
        tmp_path,
        'text = "Спасибо, до свидания!"',
        'text = \'<prosody rate="85%">Спасибо.</prosody><break time="300ms"/>'
        " До свидания, {name}!'",
    )
    text = path.read_text(encoding="utf-8").replace('"Polly.Tatyana"', f'"{voice}"')
    path.write_text(text, encoding="utf-8")
    return Catalogue.load(path)


def test_ssml_in_a_prompt_goes_to_a_voice_that_reads_it(tmp_path: Path) -> None:
    utterance = _with_ssml(tmp_path, "Polly.Tatyana").render("goodbye", {"name": "<Ира & Co>"})
    assert utterance.text == "Спасибо. До свидания, <Ира & Co>!"
    assert utterance.ssml is not None and '<prosody rate="85%">' in utterance.ssml
    assert "&lt;Ира &amp; Co&gt;" in utterance.ssml


def test_ssml_is_dropped_for_a_voice_that_cannot_read_it(tmp_path: Path) -> None:
    utterance = _with_ssml(tmp_path, "alice").render("goodbye", {"name": "Ира"})
    assert utterance.ssml is None and utterance.text == "Спасибо. До свидания, Ира!"


def test_broken_ssml_stops_start_up(tmp_path: Path) -> None:
    path = _copy_with(tmp_path, "до свидания!", "<prosody>до свидания!")
    with pytest.raises(ConfigError, match="goodbye"):
        create_app({"METERLINE_PROMPTS": str(path), "METERLINE_DATABASE_URL": "sqlite://"})


def test_a_broken_file_stops_start_up(tmp_path: Path) -> None:
    path = tmp_path / "prompts.toml"
    path.write_text('[greeting\ntext = "x"', encoding="utf-8")
    with pytest.raises(ConfigError, match="METERLINE_PROMPTS"):
        create_app({"METERLINE_PROMPTS": str(path), "METERLINE_DATABASE_URL": "sqlite://"})


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (Decimal("12345.000"), "двенадцать тысяч триста сорок пять"),
        (Decimal("123.450"), "сто двадцать три целых сорок пять сотых"),
        (Decimal("0.5"), "ноль целых пять десятых"),
        (7, "семь"),
        (Decimal("1E+2"), "сто"),
    ],
)
def test_numbers_are_spoken_without_useless_zeros(value: Decimal | int, words: str) -> None:
    assert spoken_number(value) == words


def test_ssml_reaches_the_twiml_inside_the_say(tmp_path: Path) -> None:
    twiml = render(
        [Say("goodbye", {"name": "Ира"})], _with_ssml(tmp_path, "Polly.Tatyana"), ""
    ).reply
    say = ET.fromstring(twiml).find("Say")
    assert say is not None and say.get("voice") == "Polly.Tatyana"
    prosody = say.find("prosody")
    assert prosody is not None and prosody.get("rate") == "85%" and prosody.text == "Спасибо."
    assert say.find("break") is not None and "До свидания, Ира!" in "".join(say.itertext())

"""The prompt catalogue a utility edits: checked at start-up, audio played when given."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from ivr import create_app
from ivr.config import ConfigError
from ivr.prompts import DEFAULT_CATALOGUE, Catalogue, spoken_number


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
    path = _copy_with(tmp_path, "Спасибо за звонок.", "Спасибо за звонок, {name}.")
    with pytest.raises(ConfigError, match=r"\{name\}"):
        create_app({"METERLINE_PROMPTS": str(path), "METERLINE_DATABASE_URL": "sqlite://"})


def test_a_bad_number_form_stops_start_up(tmp_path: Path) -> None:
    path = _copy_with(tmp_path, "{count:n}", "{count:x}")
    with pytest.raises(ConfigError, match="unknown number form"):
        create_app({"METERLINE_PROMPTS": str(path), "METERLINE_DATABASE_URL": "sqlite://"})


def test_counts_agree_with_the_neuter_noun() -> None:
    text = Catalogue.load().render("summary", {"count": 1}).text
    assert text == "Принято показаний: одно."


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

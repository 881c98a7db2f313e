"""The recognizer interface, its fake, and Vosk's result format."""

from __future__ import annotations

from pathlib import Path

import pytest

from speech.recognizer import FakeRecognizer, Result, Word, recognizer_factory, transcribe
from speech.vosk_local import LoadedModel, model_sample_rate


def test_results_take_the_mean_word_confidence() -> None:
    result = Result.from_vosk(
        {
            "text": "сто двадцать",
            "result": [
                {"word": "сто", "conf": 1.0, "start": 0.1, "end": 0.4},
                {"word": "двадцать", "conf": 0.5, "start": 0.4, "end": 0.9},
            ],
        }
    )
    assert result.text == "сто двадцать"
    assert result.confidence == pytest.approx(0.75)
    assert result.words[1] == Word("двадцать", 0.5, 0.4, 0.9)
    assert result.words_json()[0] == {"word": "сто", "conf": 1.0, "start": 0.1, "end": 0.4}


def test_an_empty_result_has_no_confidence() -> None:
    assert Result.from_vosk({"text": ""}) == Result(text="", confidence=0.0)


def test_the_fake_says_its_texts_one_utterance_at_a_time() -> None:
    fake = FakeRecognizer(["сто двадцать три", "да"], sample_rate=8000, utterance_seconds=0.1)
    assert fake.accept(bytes(800)) is None
    first = fake.accept(bytes(800))
    assert first is not None and first.text == "сто двадцать три"
    assert fake.accept(bytes(400)) is None
    assert fake.final().text == "да"
    assert fake.final().text == ""


def test_transcribe_collects_every_utterance_and_the_tail() -> None:
    fake = FakeRecognizer(["один", "два", "три"], sample_rate=8000, utterance_seconds=0.4)
    texts = [r.text for r in transcribe(fake, bytes(8000 * 2))]
    assert texts == ["один", "два", "три"]


def test_no_recognizer_is_built_when_none_is_configured() -> None:
    assert recognizer_factory(None, None, ["да"]) is None


def test_the_model_rate_comes_from_its_feature_config(tmp_path: Path) -> None:
    assert model_sample_rate(tmp_path) == 16000
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "mfcc.conf").write_text("--use-energy=false\n--sample-frequency=8000\n")
    assert model_sample_rate(tmp_path) == 8000


def test_the_vocabulary_comes_from_words_txt_when_the_model_has_one(tmp_path: Path) -> None:
    (tmp_path / "graph").mkdir()
    (tmp_path / "graph" / "words.txt").write_text("<eps> 0\nсто 1\nда 2\n", encoding="utf-8")
    loaded = LoadedModel(path=tmp_path, model=None, sample_rate=16000, load_seconds=0.0)
    assert loaded.missing_words(["сто", "да", "нет", "оператор"]) == ["нет", "оператор"]
    assert loaded.usable(["сто", "нет"]) == ["сто"]

"""The real Vosk plumbing with the one real model these machines have: Korean, from PyPI."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivr.speech_cli import speech_eval_command
from speech.audio import read_wav, resample
from speech.recognizer import recognizer_factory, transcribe
from speech.vocabulary import GRAMMAR_WORDS
from speech.vosk_local import MODELS, LoadedModel, VoskRecognizer
from tests.integration.vosk_audio import KOREAN_DIGITS, korean_model, speech_wav


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    return MODELS.get(korean_model())


def test_the_model_is_loaded_once_and_shared_between_threads(model: LoadedModel) -> None:
    seen: list[LoadedModel] = []
    threads = [
        threading.Thread(target=lambda: seen.append(MODELS.get(model.path))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(m is model for m in seen)
    assert model.sample_rate == 16000


def test_the_vocabulary_check_reports_every_russian_word_a_korean_model_lacks(
    model: LoadedModel, caplog: pytest.LogCaptureFixture
) -> None:
    assert model.missing_words(GRAMMAR_WORDS) == GRAMMAR_WORDS
    assert model.missing_words(KOREAN_DIGITS) == []
    with caplog.at_level(logging.WARNING, logger="meterline.speech"):
        assert model.usable([*GRAMMAR_WORDS, "일"]) == ["일"]
    n = len(GRAMMAR_WORDS)
    assert f"lacks {n} of {n + 1} grammar words" in caplog.text
    assert "сто" in caplog.text and "оператор" in caplog.text


def test_a_grammar_of_only_unknown_words_falls_back_to_free_recognition(
    model: LoadedModel, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="meterline.speech"):
        assert model.usable(GRAMMAR_WORDS) is None
    assert "knows none of the grammar words" in caplog.text


def test_grammar_mode_hears_only_grammar_words(model: LoadedModel, tmp_path: Path) -> None:
    pcm, rate = read_wav(speech_wav(tmp_path / "ko.wav"))
    recognizer = VoskRecognizer(model, grammar=KOREAN_DIGITS)
    results = transcribe(recognizer, resample(pcm, rate, model.sample_rate))
    recognizer.close()
    words = [w for r in results for w in r.text.split()]
    assert set(words) <= set(KOREAN_DIGITS)
    for r in results:
        assert 0.0 <= r.confidence <= 1.0
        assert [w.word for w in r.words] == r.text.split()
        assert all(w.start <= w.end for w in r.words)


def test_free_recognition_transcribes_speech(model: LoadedModel, tmp_path: Path) -> None:
    pcm, rate = read_wav(speech_wav(tmp_path / "ko.wav"))
    factory = recognizer_factory(model.path, None, None)
    assert factory is not None
    results = transcribe(factory(), resample(pcm, rate, model.sample_rate))
    assert any(r.text for r in results)


def test_several_recognizers_share_one_model_at_once(model: LoadedModel, tmp_path: Path) -> None:
    pcm, rate = read_wav(speech_wav(tmp_path / "ko.wav"))
    audio = resample(pcm, rate, model.sample_rate)
    texts: list[str] = []

    def run() -> None:
        results = transcribe(VoskRecognizer(model, grammar=KOREAN_DIGITS), audio)
        texts.append(" ".join(r.text for r in results))

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert len(texts) == 6
    # Not all equal: Kaldi dithers its input (random noise), so marginal audio may differ.
    assert {w for text in texts for w in text.split()} <= set(KOREAN_DIGITS)


def test_speech_eval_scores_a_folder(model: LoadedModel, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    speech_wav(data / "123.45_first.wav")
    speech_wav(data / "second.wav")
    (data / "second.txt").write_text("сто двадцать три", encoding="utf-8")
    speech_wav(data / "unlabelled.wav")
    result = CliRunner().invoke(
        speech_eval_command, ["--model", str(model.path), "--data", str(data), "-v"]
    )
    assert result.exit_code == 0, result.output
    assert "files: 2" in result.output
    assert "accuracy: 0.0%" in result.output  # a Korean model understands no Russian value
    assert "word error rate:" in result.output and "real-time factor:" in result.output
    assert "words the model lacks: " in result.output


def test_speech_check_lists_the_missing_grammar_words(model: LoadedModel) -> None:
    from ivr.speech_cli import speech_group

    result = CliRunner().invoke(speech_group, ["check", "--model", str(model.path)])
    assert result.exit_code == 1
    assert (
        f"{len(GRAMMAR_WORDS)} of {len(GRAMMAR_WORDS)} grammar words are missing" in result.output
    )
    assert "оператор" in result.output

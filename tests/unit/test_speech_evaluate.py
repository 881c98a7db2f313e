"""speech-eval's labels and word error count, without a model."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from speech.evaluate import Report, Scored, label_of, word_errors


@pytest.mark.parametrize(
    ("name", "sidecar", "value", "reference"),
    [
        ("123.45_ivanova.wav", None, "123.45", "сто двадцать три целых сорок пять сотых"),
        ("7.wav", None, "7", "семь"),
        ("12,5_x.wav", None, "12.5", "двенадцать целых пять десятых"),
        ("rec.wav", "456", "456", "четыреста пятьдесят шесть"),
        ("rec.wav", "ноль ноль четыре пять шесть", "456", "ноль ноль четыре пять шесть"),
        ("100_a.wav", "ну сто кубов", "100", "ну сто кубов"),
    ],
)
def test_labels_come_from_the_name_or_the_sidecar(
    tmp_path: Path, name: str, sidecar: str | None, value: str, reference: str
) -> None:
    wav = tmp_path / name
    wav.touch()
    if sidecar is not None:
        wav.with_suffix(".txt").write_text(sidecar + "\n", encoding="utf-8")
    label = label_of(wav)
    assert label is not None
    assert (label.value, label.reference) == (Decimal(value), reference)


@pytest.mark.parametrize("sidecar", [None, "сто двадцать три пять", ""])
def test_files_without_a_clear_label_are_skipped(tmp_path: Path, sidecar: str | None) -> None:
    wav = tmp_path / "recording.wav"
    wav.touch()
    if sidecar is not None:
        wav.with_suffix(".txt").write_text(sidecar, encoding="utf-8")
    assert label_of(wav) is None


@pytest.mark.parametrize(
    ("reference", "hypothesis", "errors"),
    [
        ("сто двадцать три", "сто двадцать три", 0),
        ("сто двадцать три", "сто двадцать", 1),
        ("сто двадцать три", "сто тридцать три", 1),
        ("сто двадцать три", "ну сто двадцать три", 1),
        ("два два два", "два два", 1),
        ("сто", "", 1),
        ("", "да", 1),
        ("Сто, двадцать!", "сто двадцать", 0),
    ],
)
def test_word_errors_count_edits(reference: str, hypothesis: str, errors: int) -> None:
    assert word_errors(reference, hypothesis) == errors


def test_the_report_totals() -> None:
    path = Path("x.wav")
    report = Report(
        items=[
            Scored(path, Decimal("1"), Decimal("1"), "один", 0, 1),
            Scored(path, Decimal("2"), None, "", 1, 1),
        ],
        audio_seconds=10.0,
        processing_seconds=0.5,
    )
    assert (report.accuracy, report.wer, report.rtf) == (0.5, 0.5, 0.05)
    assert Report().accuracy == 0.0 and Report().rtf == 0.0

"""`meterline prompts render`'s engine with the real espeak-ng and sox: 8 kHz files, made once."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import pytest

from ivr.agi.render import render_all
from ivr.agi.sounds import Piece

TTS = ("espeak-ng", "-v", "ru", "--stdout")
pytestmark = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("sox")), reason="needs espeak-ng and sox"
)


def test_each_piece_becomes_an_8_khz_file_named_for_its_text(tmp_path: Path) -> None:
    pieces = [Piece("сто"), Piece("Вы ввели")]
    summary = render_all(pieces, tmp_path, "wav", TTS)
    assert summary.rendered == 2
    for piece in pieces:
        with wave.open(str(tmp_path / f"{piece.name}.wav")) as sound:
            assert sound.getframerate() == 8000 and sound.getnchannels() == 1
            assert sound.getnframes() > 800  # at least a tenth of a second of speech


def test_rendering_again_replaces_only_what_changed(tmp_path: Path) -> None:
    render_all([Piece("сто"), Piece("двести")], tmp_path, "ulaw", TTS)
    kept = (tmp_path / f"{Piece('сто').name}.ulaw").stat().st_mtime_ns
    summary = render_all([Piece("сто"), Piece("триста")], tmp_path, "ulaw", TTS)
    assert (summary.rendered, summary.kept, summary.removed) == (1, 1, 1)
    assert (tmp_path / f"{Piece('сто').name}.ulaw").stat().st_mtime_ns == kept
    assert not (tmp_path / f"{Piece('двести').name}.ulaw").exists()


def test_a_recorded_prompt_is_converted_instead_of_spoken(tmp_path: Path) -> None:
    recording = tmp_path / "greeting.wav"
    subprocess.run(
        ["sox", "-n", "-r", "44100", str(recording), "synth", "0.5", "sine", "440"], check=True
    )
    piece = Piece("Здравствуйте!", audio=str(recording))
    render_all([piece], tmp_path / "out", "gsm", TTS)
    made = tmp_path / "out" / f"{piece.name}.gsm"
    assert made.stat().st_size == 33 * 25  # GSM: 33 bytes per 20 ms frame, 0.5 s

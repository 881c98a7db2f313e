"""Telephone audio: G.711 μ-law both ways, resampling in chunks, WAV files."""

from __future__ import annotations

import math
import random
import wave
from array import array
from pathlib import Path

import pytest

from speech.audio import (
    Resampler,
    duration,
    read_wav,
    resample,
    ulaw_decode,
    ulaw_encode,
    write_wav,
)


def pcm(samples: list[int]) -> bytes:
    return array("h", samples).tobytes()


def samples(data: bytes) -> list[int]:
    return array("h", data).tolist()


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xFF, 0), (0x7F, 0), (0x00, -32124), (0x80, 32124), (0xFE, 8), (0x7E, -8), (0xF0, 120)],
)
def test_it_decodes_g711_reference_values(code: int, value: int) -> None:
    assert samples(ulaw_decode(bytes([code]))) == [value]


def test_every_code_survives_decode_then_encode() -> None:
    codes = bytes(c for c in range(256) if c != 0x7F)  # 0x7F is "negative zero": it encodes as 0xFF
    assert ulaw_encode(ulaw_decode(codes)) == codes


def test_encoding_error_stays_within_the_segment_step() -> None:
    values = list(range(-32768, 32768, 37))
    decoded = samples(ulaw_decode(ulaw_encode(pcm(values))))
    for original, back in zip(values, decoded, strict=True):
        assert abs(original - back) <= max(abs(original) // 16, 8) + 4


def test_silence_encodes_as_0xff() -> None:
    assert ulaw_encode(bytes(320)) == b"\xff" * 160


def test_upsampling_doubles_and_interpolates() -> None:
    out = samples(resample(pcm([0, 100, 200, 300]), 8000, 16000))
    assert out[:7] == [0, 50, 100, 150, 200, 250, 300]


def test_resampling_in_chunks_equals_resampling_at_once() -> None:
    signal = pcm([int(10000 * math.sin(i / 7)) for i in range(8000)])
    for src, dst in ((8000, 16000), (16000, 8000), (22050, 8000), (8000, 11025)):
        whole = resample(signal, src, dst)
        stream = Resampler(src, dst)
        chunked = b"".join(stream.feed(signal[i : i + 322]) for i in range(0, len(signal), 322))
        assert chunked == whole
        assert abs(len(whole) // 2 - 8000 * dst / src) <= 2


def test_same_rate_is_unchanged() -> None:
    assert resample(pcm([1, 2, 3]), 8000, 8000) == pcm([1, 2, 3])


def test_odd_byte_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        resample(b"\x00\x01\x02", 8000, 16000)


def test_wav_files_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    data = pcm(list(range(-500, 500)))
    write_wav(path, data, 8000)
    assert read_wav(path) == (data, 8000)
    assert duration(data, 8000) == pytest.approx(0.125)


def test_stereo_wavs_are_mixed_down(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm([100, 300, -100, -300]))
    assert read_wav(path) == (pcm([200, -200]), 16000)


def test_8_bit_wavs_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "8bit.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(b"\x80" * 10)
    with pytest.raises(ValueError, match="16-bit"):
        read_wav(path)


def test_doubling_the_rate_keeps_every_sample_and_puts_midpoints_between() -> None:
    rng = random.Random(3)
    values = [rng.randint(-32768, 32767) for _ in range(1001)]
    expected = []
    for a, b in zip(values, values[1:], strict=False):
        expected += [a, (a + b) // 2]
    expected.append(values[-1])
    stream = Resampler(8000, 16000)
    data = pcm(values)
    chunked = b"".join(stream.feed(data[i : i + 160]) for i in range(0, len(data), 160))
    assert samples(chunked) == expected

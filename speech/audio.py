"""Telephone audio without `audioop` (gone in Python 3.13): G.711 μ-law, resampling, WAV files.

PCM here is always bytes of signed 16-bit little-endian mono samples.
"""

from __future__ import annotations

import operator
import sys
import wave
from array import array
from functools import cache
from itertools import repeat
from pathlib import Path
from typing import BinaryIO

_BIAS = 0x84
_LITTLE = sys.byteorder == "little"


def _ulaw_to_linear(code: int) -> int:
    code = ~code & 0xFF
    exponent = (code >> 4) & 0x07
    sample = (((code & 0x0F) << 3) + _BIAS) << exponent
    sample -= _BIAS
    return -sample if code & 0x80 else sample


def _linear_to_ulaw(sample: int) -> int:
    # The 14-bit G.711 reference (as in CCITT's g711.c and the old audioop), bit for bit.
    value = sample >> 2
    mask = 0x7F if value < 0 else 0xFF
    value = min(abs(value), 8159) + (_BIAS >> 2)
    segment = max(value.bit_length() - 6, 0)
    if segment >= 8:
        return 0x7F ^ mask
    return ((segment << 4) | ((value >> (segment + 1)) & 0x0F)) ^ mask


_DECODE: list[int] = [_ulaw_to_linear(c) for c in range(256)]


@cache
def _encode_table() -> bytes:
    """Indexed by the sample as an unsigned 16-bit number, so encoding is one lookup per
    sample; built on first use (65 536 entries: not for every process that imports us)."""
    return bytes(_linear_to_ulaw(s - 65536 if s >= 32768 else s) for s in range(65536))


def _to_bytes(samples: array[int]) -> bytes:
    if not _LITTLE:
        samples.byteswap()
    return samples.tobytes()


def _from_bytes(pcm: bytes) -> array[int]:
    if len(pcm) % 2:
        raise ValueError("16-bit PCM must have an even number of bytes")
    samples = array("h", pcm)
    if not _LITTLE:
        samples.byteswap()
    return samples


def ulaw_decode(data: bytes) -> bytes:
    """G.711 μ-law bytes (Twilio's media payload) to 16-bit PCM."""
    return _to_bytes(array("h", map(_DECODE.__getitem__, data)))


def ulaw_encode(pcm: bytes) -> bytes:
    """16-bit PCM to G.711 μ-law bytes."""
    unsigned = array("H", pcm)
    if not _LITTLE:
        unsigned.byteswap()
    return bytes(map(_encode_table().__getitem__, unsigned))


class Resampler:
    """Streaming linear-interpolation resampler: feed chunks, get chunks, no clicks between them.

    Linear interpolation is crude next to a polyphase filter, but telephone audio has nothing
    above 4 kHz to alias and the recognizer's features barely notice.
    """

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        if src_rate <= 0 or dst_rate <= 0:
            raise ValueError("sample rates must be positive")
        self.src_rate, self.dst_rate = src_rate, dst_rate
        # Positions are kept as whole multiples of 1/dst_rate input samples: no float drift,
        # so any chunking gives the same output as resampling the whole buffer at once.
        self._pos = 0  # position of the next output sample, from _prev, times dst_rate
        self._prev: int | None = None

    def feed(self, pcm: bytes) -> bytes:
        """Resample one chunk; state carries over to the next."""
        if self.src_rate == self.dst_rate:
            return pcm
        samples = _from_bytes(pcm)
        if not samples:
            return b""
        data = samples if self._prev is None else array("h", [self._prev]) + samples
        if self.dst_rate == 2 * self.src_rate:
            return self._double(data)
        out = array("h")
        last = len(data) - 1
        pos, step, unit = self._pos, self.src_rate, self.dst_rate
        end = last * unit
        while pos <= end:
            i, rest = divmod(pos, unit)
            a = data[i]
            out.append(a if rest == 0 else a + ((data[i + 1] - a) * rest) // unit)
            pos += step
        self._pos = pos - end
        self._prev = data[last]
        return _to_bytes(out)

    def _double(self, data: array[int]) -> bytes:
        # 8 kHz to 16 kHz, the hot path: C-level maps instead of a Python loop per sample
        # (8 ms per second of audio, held under the GIL, would add up over 50 calls).
        # Same output as the general loop: midpoints are floor((a + b) / 2) either way.
        last = len(data) - 1
        mids = array("h", map(operator.rshift, map(operator.add, data[:-1], data[1:]), repeat(1)))
        if self._pos == 0:  # the very first chunk starts on a sample
            out = array("h", bytes(2 * (2 * last + 1)))
            out[0::2], out[1::2] = data, mids
        else:  # later chunks start half-way after the previous chunk's last sample
            out = array("h", bytes(2 * (2 * last)))
            out[0::2], out[1::2] = mids, data[1:]
        self._pos = self.src_rate
        self._prev = data[last]
        return _to_bytes(out)


def resample(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    """Resample a whole buffer of 16-bit PCM."""
    return Resampler(src_rate, dst_rate).feed(pcm)


def read_wav(path: str | Path) -> tuple[bytes, int]:
    """A 16-bit WAV file as mono PCM and its sample rate (channels are averaged)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit samples, got {8 * w.getsampwidth()}-bit")
        channels, rate = w.getnchannels(), w.getframerate()
        pcm = w.readframes(w.getnframes())
    if channels > 1:
        samples = _from_bytes(pcm)
        mono = array(
            "h",
            (sum(samples[i : i + channels]) // channels for i in range(0, len(samples), channels)),
        )
        pcm = _to_bytes(mono)
    return pcm, rate


def write_wav(target: str | Path | BinaryIO, pcm: bytes, rate: int) -> None:
    """Write mono 16-bit PCM as a WAV file (a path or a file opened for binary writing)."""
    with wave.open(target if not isinstance(target, str | Path) else str(target), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def duration(pcm: bytes, rate: int) -> float:
    """Seconds of 16-bit mono PCM."""
    return len(pcm) / (2 * rate)

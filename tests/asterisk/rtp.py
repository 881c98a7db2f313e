"""Per-call pcaps of a caller's keys as RFC 4733 events, for SIPp's `play_pcap_audio`.

SIPp's stock DTMF pcaps are slices of one RTP stream: played twice, or out of order, their
sequence numbers and timestamps go backwards and Asterisk drops the digits as stale. So each
call gets its own stream: 20 ms of μ-law silence after 20 ms, and each key an event (marker on
its first packet, its end sent three times, as RFC 4733 §2.5.1.4 advises) with sequence numbers
and timestamps that only ever increase. Written by hand: the format is 24 + 16 bytes of header
and a few fixed-layout packet headers, not worth a dependency.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence
from pathlib import Path

RATE = 8000
FRAME = 160  # samples in 20 ms
EVENT_TYPE, AUDIO_TYPE = 101, 0
EVENT_CODES = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}
KEY_MS, GAP_MS = 160, 140  # how long a key is held, and the pause before the next


def key_schedule(answers: Sequence[tuple[float, str]]) -> list[tuple[int, str]]:
    """(start frame, key) for each key: each answer's keys from its start second, one by one."""
    schedule = []
    for start, keys in answers:
        frame = int(start * 1000) // 20
        for key in keys:
            schedule.append((frame, key))
            frame += (KEY_MS + GAP_MS) // 20
    return schedule


def write_pcap(path: Path, answers: Sequence[tuple[float, str]], seconds: float) -> None:
    """A pcap of `seconds` of a caller's RTP: silence, and the keys of each (start, keys)."""
    ssrc, seq, stamp = random.getrandbits(32), random.getrandbits(15), random.getrandbits(31)
    keys = dict(key_schedule(answers))
    held = KEY_MS // 20
    packets: list[tuple[int, bytes]] = []  # (time in µs, RTP packet)
    frame, total = 0, int(seconds * 50)
    while frame < total:
        if frame in keys:
            code, start = EVENT_CODES[keys[frame]], stamp
            for i in range(held + 3):  # the key held, then its end three times
                end = i >= held
                duration = FRAME * min(i + 1, held)
                payload = struct.pack("!BBH", code, (0x80 if end else 0) | 10, duration)
                packets.append((frame * 20000, _rtp(EVENT_TYPE, i == 0, seq, start, ssrc, payload)))
                seq = (seq + 1) & 0xFFFF
                frame += 1 if i < held else 0
            stamp += FRAME * held
            continue
        packets.append((frame * 20000, _rtp(AUDIO_TYPE, False, seq, stamp, ssrc, b"\xff" * FRAME)))
        seq, stamp, frame = (seq + 1) & 0xFFFF, stamp + FRAME, frame + 1
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet
        for micros, rtp in packets:
            frame_bytes = _ethernet_ipv4_udp(rtp)
            out.write(
                struct.pack(
                    "<IIII", micros // 10**6, micros % 10**6, len(frame_bytes), len(frame_bytes)
                )
            )
            out.write(frame_bytes)


def _rtp(kind: int, marker: bool, seq: int, stamp: int, ssrc: int, payload: bytes) -> bytes:
    header = struct.pack(
        "!BBHII", 0x80, (0x80 if marker else 0) | kind, seq, stamp & 0xFFFFFFFF, ssrc
    )
    return header + payload


def _ethernet_ipv4_udp(payload: bytes) -> bytes:
    """SIPp rewrites addresses and ports; these only need to be well-formed."""
    udp = struct.pack("!HHHH", 4000, 4000, 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        0,
        0x4000,
        64,
        17,
        0,
        bytes([127, 0, 0, 1]),
        bytes([127, 0, 0, 1]),
    )
    checksum = _checksum(ip)
    ip = ip[:10] + struct.pack("!H", checksum) + ip[12:]
    return b"\x00" * 6 + b"\x00" * 6 + b"\x08\x00" + ip + udp


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF

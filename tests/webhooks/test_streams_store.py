"""Utterance recordings on disk: one folder per call, never overwritten, purged after N days."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ivr.streams import store
from ivr.streams.store import maybe_purge, purge_old_audio


def recording(audio_dir: Path, name: str, days_old: float) -> Path:
    path = audio_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF")
    when = time.time() - days_old * 86400
    os.utime(path, (when, when))
    return path


def test_recordings_older_than_the_keep_days_are_deleted(tmp_path: Path) -> None:
    old = recording(tmp_path, "CAold/1.wav", days_old=91)
    recent = recording(tmp_path, "CAnew/1.wav", days_old=89)
    mixed_old = recording(tmp_path, "CAmixed/1.wav", days_old=100)
    mixed_new = recording(tmp_path, "CAmixed/2.wav", days_old=1)
    assert purge_old_audio(tmp_path, 90) == 2
    assert not old.exists() and not mixed_old.exists()
    assert recent.exists() and mixed_new.exists()
    assert not (tmp_path / "CAold").exists()  # an emptied call folder goes too


def test_purging_a_missing_folder_does_nothing(tmp_path: Path) -> None:
    assert purge_old_audio(tmp_path / "nothing-yet", 90) == 0


def test_streams_purge_at_most_once_an_hour(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(store, "purge_old_audio", lambda d, days: calls.append(d) or 0)
    monkeypatch.setattr(store, "_last_purge", {})
    maybe_purge(tmp_path, 90)
    maybe_purge(tmp_path, 90)
    assert calls == [tmp_path]
    store._last_purge[tmp_path] -= store.PURGE_EVERY_SECONDS + 1
    maybe_purge(tmp_path, 90)
    assert calls == [tmp_path, tmp_path]


def test_audio_of_a_call_sid_that_is_not_a_plain_name_is_not_saved(tmp_path: Path) -> None:
    assert store._save_audio(tmp_path, "../../etc", b"\x00\x00", 8000) is None
    assert list(tmp_path.iterdir()) == []


def test_recordings_of_a_call_are_numbered_and_never_overwritten(tmp_path: Path) -> None:
    names = [store._save_audio(tmp_path, "CA1", b"\x00\x00" * 80, 8000) for _ in range(3)]
    assert names == ["CA1/1.wav", "CA1/2.wav", "CA1/3.wav"]

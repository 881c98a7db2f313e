"""`meterline prompts render`: every sound file the Asterisk line plays, made once, 8 kHz.

A prompt with a recorded `audio` (a local file, file:// or http(s) URL) is converted; any other
piece is spoken by the TTS command (METERLINE_TTS_COMMAND: text on its standard input, WAV on
its standard output). `sox` resamples to 8 kHz mono in the chosen format. A `manifest.json`
beside the files remembers each file's text and source, so rendering again after a catalogue
edit replaces only what changed and removes what is no longer used.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from ivr.agi.sounds import Piece
from ivr.agi.vocabulary import text_pieces
from ivr.services import services
from storage.models import Account, Meter

# sox output options per Asterisk format (the file extension Asterisk looks for).
FORMATS = {
    "ulaw": ["-t", "ul", "-e", "u-law"],
    "gsm": ["-t", "gsm"],
    "wav": ["-t", "wav", "-e", "signed-integer", "-b", "16"],
}
MANIFEST = "manifest.json"


class RenderError(Exception):
    """A piece could not be made (the TTS command or sox failed, the audio is unreachable)."""


@dataclass(frozen=True)
class Summary:
    """What a render run did."""

    rendered: int
    kept: int
    removed: int


def render_all(
    pieces: Sequence[Piece], out: Path, fmt: str, tts: Sequence[str], jobs: int = 2
) -> Summary:
    """Make every piece's file in `out` (as NAME.FMT), re-making only changed ones."""
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o755)  # Asterisk runs as its own user
    old = _read_manifest(out)
    if old.get("format") != fmt:
        old = {"files": {}}
    wanted = {p.name: {"text": p.text, "source": _source(p, tts)} for p in pieces}
    todo = [
        p
        for p in pieces
        if old["files"].get(p.name) != wanted[p.name] or not (out / f"{p.name}.{fmt}").is_file()
    ]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(lambda p: _render_one(p, out / f"{p.name}.{fmt}", fmt, tts), todo))
    removed = 0
    for name in set(old["files"]) - set(wanted):
        (out / f"{name}.{fmt}").unlink(missing_ok=True)
        removed += 1
    manifest = {"format": fmt, "files": wanted}
    (out / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), "utf-8")
    return Summary(rendered=len(todo), kept=len(pieces) - len(todo), removed=removed)


def _source(piece: Piece, tts: Sequence[str]) -> str:
    return f"audio:{piece.audio}" if piece.audio else "tts:" + " ".join(tts)


def _read_manifest(out: Path) -> dict[str, Any]:
    try:
        data = json.loads((out / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return {"files": {}}
    return data if isinstance(data.get("files"), dict) else {"files": {}}


def _render_one(piece: Piece, target: Path, fmt: str, tts: Sequence[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="meterline-tts-") as tmp:
        source = Path(tmp) / "source"
        if piece.audio:
            _fetch(piece.audio, source)
        else:
            done = subprocess.run(
                list(tts), input=piece.text.encode("utf-8"), capture_output=True, timeout=60
            )
            if done.returncode != 0 or not done.stdout:
                raise RenderError(
                    f"{' '.join(tts)} failed on {piece.text!r}: {done.stderr[:200]!r}"
                )
            source.write_bytes(done.stdout)
        partial = target.with_suffix(".part")
        sox = ["sox", "-q", str(source), "-r", "8000", "-c", "1", *FORMATS[fmt], str(partial)]
        done = subprocess.run(sox, capture_output=True, timeout=60)
        if done.returncode != 0:
            raise RenderError(f"sox failed on {piece.text!r}: {done.stderr[:300]!r}")
        os.chmod(partial, 0o644)
        partial.replace(target)  # a half-written file is never played


def _fetch(audio: str, target: Path) -> None:
    """A recorded prompt: a local path, a file:// URL or an http(s) URL."""
    url = urllib.parse.urlparse(audio)
    try:
        if url.scheme in ("http", "https"):
            with urllib.request.urlopen(audio, timeout=30) as response:  # noqa: S310
                target.write_bytes(response.read())
        else:
            path = urllib.parse.unquote(url.path) if url.scheme == "file" else audio
            shutil.copyfile(path, target)
    except OSError as exc:
        raise RenderError(f"recorded prompt {audio!r}: {exc}") from None


@click.group("prompts")
def prompts_group() -> None:
    """The prompts as sound files, for Asterisk."""


@prompts_group.command("render")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(sorted(FORMATS)), default="ulaw", show_default=True
)
@with_appcontext
def render_command(out: Path, fmt: str) -> None:
    """Render every prompt and every word of a read-back to 8 kHz files in OUT."""
    svc = services()
    with svc.sessions() as session:
        addresses = list(session.scalars(select(Account.address).distinct()))
        places = list(session.scalars(select(Meter.location).distinct()))
    settings = svc.settings
    hours = [(t.hour, t.minute) for t in settings.operator_hours]
    pieces = text_pieces(svc.cache["catalogue"], addresses, places, hours)
    try:
        summary = render_all(pieces, out, fmt, settings.tts_command)
    except (RenderError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"{len(pieces)} sound files in {out} ({fmt}, 8 kHz): {summary.rendered} rendered, "
        f"{summary.kept} unchanged, {summary.removed} removed"
    )

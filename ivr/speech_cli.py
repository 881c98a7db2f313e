"""`meterline speech parse` and `meterline speech-eval`: the speech tools on the command line."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from speech.numbers import parse_answer, parse_number_detail


@click.group("speech")
def speech_group() -> None:
    """Offline speech: try the number parser, check a model."""


@speech_group.command("parse")
@click.argument("text", nargs=-1, required=True)
def speech_parse(text: tuple[str, ...]) -> None:
    """Print the value Russian TEXT names, or "not understood" (exit code 1)."""
    phrase = " ".join(text)
    parsed = parse_number_detail(phrase)
    if parsed is not None:
        click.echo(format(parsed.value, "f"))
        return
    answer = parse_answer(phrase)
    if answer is not None:
        click.echo(f"answer: {answer}")
        return
    click.echo("not understood")
    sys.exit(1)


@speech_group.command("check")
@click.option(
    "--model",
    "model_dir",
    envvar="METERLINE_VOSK_MODEL",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="A Vosk model directory (default: $METERLINE_VOSK_MODEL).",
)
def speech_check(model_dir: Path) -> None:
    """Load the model and list the grammar words it lacks (exit code 1 if any)."""
    from speech.vocabulary import GRAMMAR_WORDS
    from speech.vosk_local import MODELS

    loaded = MODELS.get(model_dir)
    click.echo(
        f"model {loaded.path}: loaded in {loaded.load_seconds:.1f} s, {loaded.sample_rate} Hz"
    )
    missing = loaded.missing_words(GRAMMAR_WORDS)
    if not missing:
        click.echo(f"all {len(GRAMMAR_WORDS)} grammar words are in its vocabulary")
        return
    click.echo(f"{len(missing)} of {len(GRAMMAR_WORDS)} grammar words are missing:")
    click.echo(" ".join(missing))
    sys.exit(1)


@click.command("speech-eval")
@click.option(
    "--model",
    "model_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="A Vosk model directory, e.g. vosk-model-small-ru-0.22.",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="WAV files named after their value (123.45_x.wav) or with a sidecar .txt.",
)
@click.option("--no-grammar", is_flag=True, help="Recognise freely, without the number grammar.")
@click.option(
    "--wideband", is_flag=True, help="Use the files as they are, not as heard by telephone."
)
@click.option("-v", "--verbose", is_flag=True, help="Print every file's result.")
def speech_eval_command(
    model_dir: Path, data_dir: Path, no_grammar: bool, wideband: bool, verbose: bool
) -> None:
    """Score exact-value accuracy, word error rate and real-time factor on labelled WAVs."""
    from speech.evaluate import evaluate

    report = evaluate(model_dir, data_dir, grammar=not no_grammar, phone=not wideband)
    if not report.items:
        click.echo(f"no labelled WAV files in {data_dir}", err=True)
        sys.exit(1)
    if verbose:
        for item in report.items:
            mark = "ok " if item.correct else "BAD"
            got = "-" if item.got is None else format(item.got, "f")
            click.echo(
                f"{mark} {item.path.name}: expected {item.expected}, got {got}  «{item.text}»"
            )
    if report.missing_words:
        click.echo(f"words the model lacks: {' '.join(report.missing_words)}")
    click.echo(f"files: {len(report.items)}")
    click.echo(f"accuracy: {report.accuracy:.1%}")
    click.echo(f"word error rate: {report.wer:.1%}")
    click.echo(f"real-time factor: {report.rtf:.3f}")

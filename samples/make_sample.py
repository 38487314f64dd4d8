"""Build emotag's bundled sample: a short "interview" with real (synthetic) speech and subtitles.

Usage: ``python samples/make_sample.py [OUT_DIR]`` (default ``samples/generated``). Writes
``interview.mp4`` (a 25 fps test-pattern video with the speech as AAC audio) and its sidecar
``interview.srt`` whose cue times are the measured positions of each spoken line.

The speech is produced by espeak-ng with per-line prosody (pitch, rate, loudness) chosen to suit each
line's emotion, so both of emotag's modalities have something to hear and read, and line 7 says glad words
("Oh, great. Another meeting.") in a low, hard voice to show the voice/words mismatch marker (the words
alone read as joy; sarcasm lives in the voice).
Everything is generated on the user's machine from the text below, so the sample carries no third-party
material: it is released under CC0 1.0 like this script's text.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

RATE = 22050  # espeak-ng's native output rate
GAP_S = 0.6

#: (text, espeak-ng arguments): pitch -p 0-99, speed -s words/min, amplitude -a 0-200.
LINES: list[tuple[str, list[str]]] = [
    ("Thanks for coming in today. Let's start with the project.", ["-p", "45", "-s", "160"]),
    (
        "We won the award! I can't believe it, this is the best day ever!",
        ["-p", "80", "-s", "190", "-a", "170"],
    ),
    ("But then the funding was cut, and I lost my whole team.", ["-p", "25", "-s", "115", "-a", "70"]),
    ("I miss them so much. Nothing has felt right since.", ["-p", "20", "-s", "105", "-a", "60"]),
    (
        "And the people who did it never even apologised! It's outrageous!",
        ["-p", "40", "-s", "200", "-a", "200"],
    ),
    ("Wait, what? You're telling me they want us back?", ["-p", "85", "-s", "175", "-a", "150"]),
    ("Oh, great. Another meeting. Just what I needed.", ["-p", "20", "-s", "150", "-a", "190"]),
    ("Honestly, the thought of going back there terrifies me.", ["-p", "70", "-s", "210", "-a", "90"]),
    ("The report is due on Friday at noon.", ["-p", "45", "-s", "160"]),
]


def _speak(text: str, args: list[str], path: Path) -> np.ndarray:
    subprocess.run(["espeak-ng", "-v", "en-us", *args, "-w", str(path), text], check=True)
    with wave.open(str(path)) as wav:
        if wav.getframerate() != RATE or wav.getsampwidth() != 2:
            raise RuntimeError(f"unexpected espeak-ng output format in {path}")
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)


def _srt_time(ms: int) -> str:
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def build(out_dir: Path) -> Path:
    """Write interview.mp4 and interview.srt into ``out_dir``; return the mp4's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pieces: list[np.ndarray] = [np.zeros(int(RATE * 0.5), dtype=np.int16)]
    cues: list[tuple[int, int, str]] = []
    pos = len(pieces[0])
    with tempfile.TemporaryDirectory() as tmp:
        for i, (text, args) in enumerate(LINES):
            speech = _speak(text, args, Path(tmp) / f"{i}.wav")
            cues.append((pos * 1000 // RATE, (pos + len(speech)) * 1000 // RATE, text))
            pieces += [speech, np.zeros(int(RATE * GAP_S), dtype=np.int16)]
            pos += len(speech) + int(RATE * GAP_S)
        audio = Path(tmp) / "speech.wav"
        with wave.open(str(audio), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(RATE)
            wav.writeframes(np.concatenate(pieces).tobytes())
        seconds = pos / RATE
        mp4 = out_dir / "interview.mp4"
        subprocess.run(
            [
                "ffmpeg", "-v", "error", "-y",
                "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate=25:duration={seconds:.3f}",
                "-i", str(audio),
                "-map", "0:v", "-map", "1:a",
                "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-b:a", "96k", "-shortest", str(mp4),
            ],
            check=True,
        )  # fmt: skip
    srt = out_dir / "interview.srt"
    srt.write_text(
        "".join(f"{n}\n{_srt_time(a)} --> {_srt_time(b)}\n{t}\n\n" for n, (a, b, t) in enumerate(cues, 1)),
        encoding="utf-8",
    )
    return mp4


if __name__ == "__main__":
    target = build(Path(sys.argv[1] if len(sys.argv) > 1 else "samples/generated"))
    print(f"sample written: {target} (+ {target.with_suffix('.srt').name})", file=sys.stderr)

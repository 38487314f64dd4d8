"""Wall time and peak memory of ``emotag tag`` on a long file, with sidecar subtitles and through offline ASR.

Usage: ``python bench/tag_long.py [--minutes 10] [--workdir DIR]``. Builds a long speech file with
espeak-ng + ffmpeg (``tests/mediagen.long_speech``: a few sentences looped, as AAC in an mp4 with a
test-pattern video) and its SRT, then runs the real CLI twice in a fresh process each time:

1. ``emotag tag long.mp4`` (the sidecar ``long.srt`` is found next to it);
2. ``emotag tag long.mp4 --asr faster-whisper`` with the sidecar hidden (the packaged tiny.en transcribes).

Prints wall seconds, peak RSS (the larger of the emotag process's own peak and that of its ffmpeg
children, from ``resource.getrusage``) and cue counts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import mediagen  # noqa: E402


def _run(args: list[str]) -> tuple[float, float, dict[str, object]]:
    """Run one emotag CLI call in a fresh child; return (wall s, peak RSS MiB, parsed JSON)."""
    code = (
        "import atexit, resource, sys\n"
        "def peak():\n"
        "    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "    print(f'PEAK_KIB {own} {kids}', file=sys.stderr)\n"
        "atexit.register(peak)\n"
        "from emotag.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"emotag failed ({proc.returncode}): {proc.stderr.strip()}")
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("PEAK_KIB"))
    own_kib, kids_kib = (int(x) for x in line.split()[1:])
    return wall, max(own_kib, kids_kib) / 1024, json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="emotag-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    wav, srt_path, cues = mediagen.long_speech(work / "long.wav", args.minutes)
    mp4 = mediagen.make_video(work / "long.mp4", wav, fps="5", size="64x48")
    srt_path.rename(work / "long.srt")
    print(f"media: {mp4} ({args.minutes:g} min, {len(cues)} cues in the sidecar SRT)")

    wall, peak, data = _run(["-q", "tag", str(mp4), "-o", "-"])
    print(f"sidecar subtitles : {wall:7.1f} s wall, peak RSS {peak:7.0f} MiB, {len(data['cues'])} cues")  # type: ignore[arg-type]

    (work / "long.srt").rename(work / "long.srt.hidden")
    wall, peak, data = _run(["-q", "tag", str(mp4), "-o", "-", "--asr", "faster-whisper"])
    print(f"offline ASR       : {wall:7.1f} s wall, peak RSS {peak:7.0f} MiB, {len(data['cues'])} cues")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()

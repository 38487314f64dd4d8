"""emotag: emotion-tagged subtitles and editor markers from media.

Public API::

    import emotag
    track = emotag.tag("interview.mp4")            # -> emotag.Track
    for tc in track:
        print(tc.cue.start_ms, tc.label, round(tc.confidence, 2), tc.cue.plain)
    emotag.export(track, "interview.emotag.srt")   # format from the suffix

Heavy modules (torch, transformers, whisper) load only when a model or ASR is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emotag.errors import EmotagError
from emotag.timeline import LABELS, Cue, Emotion, Media, TaggedCue, Track

__version__ = "0.1.0"

__all__ = [
    "LABELS",
    "Cue",
    "EmotagError",
    "Emotion",
    "Media",
    "TaggedCue",
    "Track",
    "__version__",
    "export",
    "load_track",
    "tag",
]

if TYPE_CHECKING:
    from emotag.exporters import export
    from emotag.pipeline import tag
    from emotag.trackfile import load_track


def __getattr__(name: str) -> Any:
    # Lazy so that `import emotag` (and `emotag --help`) stays light.
    if name == "tag":
        from emotag.pipeline import tag

        return tag
    if name == "export":
        from emotag.exporters import export

        return export
    if name == "load_track":
        from emotag.trackfile import load_track

        return load_track
    raise AttributeError(f"module 'emotag' has no attribute {name!r}")

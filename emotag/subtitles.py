"""Read subtitle files (SRT, WebVTT, ASS/SSA) into :class:`~emotag.timeline.Cue` tuples, as found in the wild.

Libraries do the parsing: pysrt for SubRip (it keeps the cue text byte for byte, so ``<i>``/``<font>`` markup
survives; pysubs2 would rewrite it into ASS overrides) and pysubs2 for WebVTT (``keep_html_tags=True``) and
ASS/SSA (override blocks such as ``{\\an8}`` are kept in the text; ``\\N`` becomes a newline).
charset-normalizer guesses legacy encodings.

Hand-written, because no library covers it:

* **Strict timing check.** pysrt and pysubs2 are lenient: a timing line like ``00:00:01.000 -> 00:00:02``
  makes them silently drop the cue (or merge it into the previous cue's text). Every SRT/WebVTT line that
  looks like a timing line is checked against the format's grammar first, and a bad one is reported as
  ``line N: malformed timing '...'``.
* **Encoding order.** BOM (UTF-32/UTF-16/UTF-8), then strict UTF-8, then charset-normalizer. On short
  Western-European text charset-normalizer's best guess is often cp1250 or cp1257 (measured: French/Spanish
  cp1252 lines came back as cp1257 with "chaos" 0.0 and cp1252 at 0.089), turning ``à`` into ``ŕ``; so
  cp1252 (the most common legacy subtitle encoding) wins whenever it is within 0.1 chaos of the best guess.
  Polish cp1250 and Russian cp1251 text leave cp1252 out of the candidates and keep their own guess.
  Nothing usable at all falls back to cp1252 with replacement characters and a warning.
* **Format from content.** ``WEBVTT`` header, ``[Script Info]``/``[Events]``/``Dialogue:``, or SRT timing
  lines decide the format; the suffix is only a tie-breaker. A ``.srt`` that is really WebVTT reads fine.
* **Wild-cue policy** (the same for every format): overlapping cues are kept; zero-length cues are kept and
  counted in a warning (the pipeline decides); cues out of order are sorted by start (stable) and renumbered;
  an end before its start is clamped to the start; cues with no text are dropped. Each fix adds one warning.
* **Speaker labels.** Where the format names no speaker, a label opening the cue text names one
  (``[SPEAKER_00]: `` as diarising transcribers write it, ``JOHN: ``, ``>> ANNA: ``, see
  :func:`emotag.timeline.speaker_label`) when the same label opens two or more cues (counted by
  :func:`emotag.timeline.speaker_key`: case and spacing ignored); the text stays as written, and
  :attr:`~emotag.timeline.Cue.spoken` is what the model reads.
* **Sidecar lookup** (:func:`find_sidecar`): ``name.srt``, ``name.<lang>.srt``, ``.vtt``, ``.ass``, ``.ssa``.
"""

from __future__ import annotations

import codecs
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from emotag.errors import SubtitleError
from emotag.timeline import Cue, plain_text, speaker_key, speaker_label

__all__ = [
    "SUBTITLE_SUFFIXES",
    "CueList",
    "decode_subtitle_bytes",
    "detect_format",
    "find_sidecar",
    "normalize_language",
    "read_cues",
    "read_cues_from_string",
]

#: Sidecar suffixes in order of preference.
SUBTITLE_SUFFIXES: tuple[str, ...] = (".srt", ".vtt", ".ass", ".ssa")

_SRT_TIME = r"(\d{1,3}):([0-5]?\d):([0-5]?\d)[,.](\d{1,3})"
_SRT_TIMING_RE = re.compile(rf"^\s*{_SRT_TIME}\s*-->\s*{_SRT_TIME}(\s+.*)?\s*$")
_VTT_TIME = r"(?:\d{1,3}:)?[0-5]?\d:[0-5]?\d\.\d{3}"
_VTT_TIMING_RE = re.compile(rf"^\s*{_VTT_TIME}\s*-->\s*{_VTT_TIME}(\s+.*)?\s*$")
# Meant as a timing line: has an arrow, or starts with a timestamp, an arrow-ish dash and another number.
_TIMING_LIKE_RE = re.compile(
    r"-->|^\s*\d{1,3}:\d{1,2}(?::\d{1,2})?(?:[,.:]\d+)?\s*(?:-+>?|=+>|[\u2013\u2014]>?)\s*\d"
)
_VOICE_RE = re.compile(r"<v(?:\.[^\s>]*)?\s+([^>]+)>")
_VOICE_TAG_RE = re.compile(r"</?v(?:[.\s][^>]*)?>")

# ISO 639-2 (B and T) codes whose first two letters are not the ISO 639-1 code, plus common names.
_LANG_ALIASES: dict[str, str] = {
    "eng": "en",
    "english": "en",
    "fre": "fr",
    "fra": "fr",
    "french": "fr",
    "ger": "de",
    "deu": "de",
    "german": "de",
    "spa": "es",
    "spanish": "es",
    "ita": "it",
    "italian": "it",
    "por": "pt",
    "portuguese": "pt",
    "dut": "nl",
    "nld": "nl",
    "dutch": "nl",
    "jpn": "ja",
    "japanese": "ja",
    "chi": "zh",
    "zho": "zh",
    "chinese": "zh",
    "kor": "ko",
    "korean": "ko",
    "rus": "ru",
    "russian": "ru",
    "swe": "sv",
    "swedish": "sv",
    "dan": "da",
    "danish": "da",
    "nor": "no",
    "nob": "nb",
    "fin": "fi",
    "pol": "pl",
    "polish": "pl",
    "cze": "cs",
    "ces": "cs",
    "gre": "el",
    "ell": "el",
    "tur": "tr",
    "ara": "ar",
    "heb": "he",
    "hin": "hi",
    "hun": "hu",
    "rum": "ro",
    "ron": "ro",
    "ukr": "uk",
    "vie": "vi",
    "tha": "th",
    "ind": "id",
    "may": "ms",
    "msa": "ms",
    "per": "fa",
    "fas": "fa",
    "cat": "ca",
    "hrv": "hr",
    "srp": "sr",
    "slo": "sk",
    "slk": "sk",
    "slv": "sl",
    "bul": "bg",
}


@dataclass(frozen=True, slots=True)
class CueList:
    """Cues read from one subtitle source, with what was fixed on the way.

    Attributes:
        cues: cues sorted by start and numbered from 1.
        warnings: one line per kind of fix (dropped empty cues, clamped ends, guessed encoding...).
        encoding: the text encoding used (``utf-8``, ``utf-8-sig``, ``utf-16-le``, ``cp1252``...).
        format: ``srt``, ``vtt``, ``ass`` or ``ssa``.
    """

    cues: tuple[Cue, ...]
    warnings: tuple[str, ...] = ()
    encoding: str = "utf-8"
    format: str = "srt"

    def __iter__(self) -> Iterator[Cue]:
        return iter(self.cues)

    def __len__(self) -> int:
        return len(self.cues)


# -------------------------------------------------------------------------------------------------- read


def read_cues(path: str | os.PathLike[str], *, encoding: str | None = None) -> CueList:
    """Read a subtitle file.

    Args:
        path: an SRT, WebVTT, ASS or SSA file (format detected from the content).
        encoding: force a text encoding; ``None`` detects it (BOM, UTF-8, charset-normalizer, cp1252).

    Returns:
        The :class:`CueList`.

    Raises:
        InputError: the path is missing, a directory or unreadable.
        SubtitleError: empty, binary, undecodable with the given encoding, unknown format, malformed timing,
            or no cues.
    """
    from emotag.media import check_readable

    p = check_readable(path, what="subtitle file")
    name = str(path)
    try:
        data = p.read_bytes()
    except OSError as exc:  # pragma: no cover - check_readable has opened it already
        raise SubtitleError(name, f"cannot be read ({exc.strerror or exc})", "check the file") from None
    text, used, warnings = decode_subtitle_bytes(data, name=name, encoding=encoding)
    return _read_text(text, name=name, fmt=None, suffix=p.suffix.lower(), encoding=used, warnings=warnings)


def read_cues_from_string(text: str, *, name: str, format: str | None = None) -> CueList:
    """Read subtitles held in a string (an embedded stream extracted by ffmpeg, a test fixture).

    Args:
        text: the subtitle file's text.
        name: how to name the source in errors (``movie.mkv#s:1``).
        format: ``srt``, ``vtt``, ``ass`` or ``ssa``; ``None`` detects it from the content.

    Returns:
        The :class:`CueList` (``encoding`` is ``utf-8``).

    Raises:
        SubtitleError: empty, unknown format, malformed timing, or no cues.
    """
    return _read_text(text.lstrip("\ufeff"), name=name, fmt=format, suffix="", encoding="utf-8", warnings=[])


def decode_subtitle_bytes(
    data: bytes, *, name: str, encoding: str | None = None
) -> tuple[str, str, list[str]]:
    """Decode a subtitle file's bytes: forced encoding, else BOM, strict UTF-8, charset-normalizer, cp1252.

    Args:
        data: the raw file.
        name: the file's name for errors.
        encoding: a forced encoding, or ``None`` to detect.

    Returns:
        ``(text, encoding_used, warnings)``; the BOM is not part of ``text``.

    Raises:
        SubtitleError: the file is empty, binary, or does not decode with the forced encoding.
    """
    if not data.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise SubtitleError(name, "is empty", "pass a subtitle file that has cues")
    warnings: list[str] = []
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise SubtitleError(name, f"unknown encoding {encoding!r}", "pass e.g. utf-8 or cp1252") from None
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise SubtitleError(
                name, f"is not valid {encoding} (byte {exc.start})", "pass the right --encoding, or omit it"
            ) from None
        used = encoding
    else:
        text, used, warnings = _detect_decode(data)
    text = text.lstrip("\ufeff")
    if _looks_binary(text):
        raise SubtitleError(
            name, "is not a text subtitle file (binary data)", "pass an .srt, .vtt or .ass file"
        )
    return text, used, warnings


def _detect_decode(data: bytes) -> tuple[str, str, list[str]]:
    for bom, enc in (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(enc.replace("-sig", "")), enc, []
            except UnicodeDecodeError:
                break  # a BOM followed by garbage: let the guesser have a go
    try:
        return data.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    results = from_bytes(data)
    best = results.best()
    if best is not None and best.encoding:
        chosen = str(best.encoding)
        tied = [r for r in results if r.chaos <= best.chaos + 0.1]
        if chosen != "cp1252" and (
            any(r.encoding == "cp1252" for r in tied) or _same_text(data, chosen, "cp1252")
        ):
            chosen = "cp1252"
        text = data.decode(chosen)
        used = _norm_encoding(chosen)
        return text, used, [f"encoding guessed as {used}; pass --encoding if accented letters look wrong"]
    return (
        data.decode("cp1252", errors="replace"),
        "cp1252",
        ["encoding unknown; decoded as cp1252 with replacement characters; pass --encoding"],
    )


def _same_text(data: bytes, a: str, b: str) -> bool:
    try:
        return data.decode(a) == data.decode(b)
    except UnicodeDecodeError:
        return False


def _norm_encoding(name: str) -> str:
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        return name
    return canonical.replace("_", "-")


def _looks_binary(text: str) -> bool:
    sample = text[:65536]
    if not sample:
        return False
    bad = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f\v")
    return "\x00" in sample or bad > max(2, len(sample) // 100)


# ------------------------------------------------------------------------------------------------ format


def detect_format(text: str, suffix: str = "") -> str | None:
    """Say which subtitle format ``text`` is in, from its content; the suffix only breaks ties.

    Args:
        text: decoded subtitle text.
        suffix: the file's suffix (``.srt``), lower-case, or ``""``.

    Returns:
        ``srt``, ``vtt``, ``ass``, ``ssa``, or ``None`` when it looks like none of them.
    """
    head = text.lstrip("\ufeff \t\r\n")
    if head.startswith("WEBVTT"):
        return "vtt"
    lowered = text[:20000].lower()
    if "[script info]" in lowered or "[events]" in lowered or re.search(r"^dialogue:", lowered, re.M):
        if "scripttype: v4.00+" in lowered or "[v4+ styles]" in lowered or suffix == ".ass":
            return "ass"
        return "ssa" if suffix == ".ssa" or "scripttype: v4.00" in lowered else "ass"
    for line in text.splitlines()[:2000]:
        if _SRT_TIMING_RE.match(line):
            return "srt"
        if "-->" in line or _TIMING_LIKE_RE.match(line):
            return "vtt" if suffix == ".vtt" else "srt"  # malformed timings: let the strict check report
    return None


def _read_text(
    text: str, *, name: str, fmt: str | None, suffix: str, encoding: str, warnings: list[str]
) -> CueList:
    if not text.strip():
        raise SubtitleError(name, "is empty", "pass a subtitle file that has cues")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    fmt = fmt or detect_format(text, suffix)
    if fmt is None:
        raise SubtitleError(
            name,
            "is not a subtitle file emotag reads (SRT, WebVTT, ASS/SSA)",
            "convert it to SRT (e.g. ffmpeg -i in.sub out.srt) and pass that",
        )
    if fmt == "srt":
        _check_timings(text, name, _SRT_TIMING_RE, "SRT")
        raw, notes = _parse_srt(text, name)
        warnings = warnings + notes
    elif fmt == "vtt":
        _check_timings(text, name, _VTT_TIMING_RE, "WebVTT")
        raw = _parse_pysubs2(text, name, "vtt")
    elif fmt in ("ass", "ssa"):
        raw = _parse_pysubs2(text, name, fmt)
    else:
        raise SubtitleError(name, f"unsupported subtitle format {fmt!r}", "use srt, vtt, ass or ssa")
    cues, fixes = _tidy(raw)
    cues = _label_speakers(cues)
    if not cues:
        raise SubtitleError(
            name, "has no cues with text", "check that it is a subtitle file with timed lines"
        )
    return CueList(tuple(cues), tuple(warnings + fixes), encoding, fmt)


def _check_timings(text: str, name: str, grammar: re.Pattern[str], fmt: str) -> None:
    for number, line in enumerate(text.split("\n"), 1):
        if _TIMING_LIKE_RE.search(line) and not grammar.match(line):
            shown = line.strip()
            if len(shown) > 60:
                shown = shown[:57] + "..."
            raise SubtitleError(
                name,
                f"line {number}: malformed timing {shown!r}",
                f"fix the timing line (HH:MM:SS{',' if fmt == 'SRT' else '.'}mmm --> HH:MM:SS"
                f"{',' if fmt == 'SRT' else '.'}mmm) or re-export the subtitles as {fmt}",
            )


_Raw = tuple[int, int, str, str | None]


def _parse_srt(text: str, name: str) -> tuple[list[_Raw], list[str]]:
    import pysrt

    # A blank line inside a cue's text splits it into a block with no timing line, which pysrt rejects;
    # the author meant one cue, so such a block is joined to the cue before it (a bare number is dropped).
    blocks: list[str] = []
    joined = dropped = 0
    for block in re.split(r"\n[ \t]*\n", text.strip("\n")):
        lines = block.strip("\n").split("\n")
        if any(_SRT_TIMING_RE.match(line) for line in lines[:2]):
            blocks.append(block.strip("\n"))
        elif blocks and block.strip() and not block.strip().isdigit():
            blocks[-1] += "\n" + block.strip("\n")
            joined += 1
        elif block.strip() and not block.strip().isdigit():
            dropped += 1
    try:
        items = pysrt.SubRipFile.from_string(
            "\n\n".join(blocks) + "\n", error_handling=pysrt.SubRipFile.ERROR_RAISE
        )
    except pysrt.Error as exc:
        raise SubtitleError(name, f"malformed SRT ({exc})", "re-export the subtitles as SRT") from None
    warnings = [f"{joined} text block(s) without a timing line joined to the cue before"] if joined else []
    if dropped:
        warnings.append(f"ignored {dropped} text block(s) before the first cue")
    return [(int(it.start.ordinal), int(it.end.ordinal), str(it.text), None) for it in items], warnings


def _parse_pysubs2(text: str, name: str, fmt: str) -> list[_Raw]:
    import pysubs2

    try:
        subs = pysubs2.SSAFile.from_string(text, format_=fmt, keep_html_tags=True)
    except Exception as exc:  # pysubs2 raises several unrelated types on bad input
        raise SubtitleError(
            name, f"malformed {fmt.upper()} ({exc})", f"re-export the subtitles as {fmt}"
        ) from None
    out: list[_Raw] = []
    for ev in subs:
        if ev.is_comment or ev.is_drawing:
            continue
        body = str(ev.text).replace("\\N", "\n").replace("\\n", "\n")
        speaker: str | None = str(ev.name).strip() or None
        if fmt == "vtt":
            voice = _VOICE_RE.search(body)
            if voice:
                speaker = voice.group(1).strip()
                body = _VOICE_TAG_RE.sub("", body)
        out.append((int(ev.start), int(ev.end), body, speaker))
    return out


def _tidy(raw: list[_Raw]) -> tuple[list[Cue], list[str]]:
    warnings: list[str] = []
    kept: list[_Raw] = []
    empty = clamped = zero = negative = 0
    for start, end, text, speaker in raw:
        text = text.strip("\n")
        if not plain_text(text):
            empty += 1
            continue
        if start < 0:
            negative += 1
            end, start = max(end, 0), 0
        if end < start:
            clamped += 1
            end = start
        if end == start:
            zero += 1
        kept.append((start, end, text, speaker))
    if empty:
        warnings.append(f"dropped {empty} cue(s) with no text")
    if negative:
        warnings.append(f"{negative} cue(s) started before 0; moved to 0")
    if clamped:
        warnings.append(f"{clamped} cue(s) ended before they started; end set to start")
    if zero:
        warnings.append(f"{zero} zero-length cue(s)")
    if any(kept[i][0] > kept[i + 1][0] for i in range(len(kept) - 1)):
        kept.sort(key=lambda c: c[0])  # stable: equal starts keep file order
        warnings.append("cues were out of order; sorted by start time and renumbered")
    cues = [Cue(i, s, e, t, sp) for i, (s, e, t, sp) in enumerate(kept, 1)]
    return cues, warnings


def _label_speakers(cues: list[Cue]) -> list[Cue]:
    """Name the speaker of cues that open with a speaker label (``[SPEAKER_00]: ``, ``JOHN: ``), where the
    format named none. Only labels that open two or more cues count, so a lone ``Listen: ...`` is left
    alone. Labels are counted by :func:`~emotag.timeline.speaker_key`, the key the model groups speakers by
    (``ANNA:`` and ``Anna:`` once each name both cues); the cue text and each label's spelling are kept as
    written (exports show them), :attr:`Cue.spoken` drops the label."""
    found: dict[int, tuple[str, str]] = {}  # cue index -> (label as written, its key)
    for i, cue in enumerate(cues):
        lab = speaker_label(cue.plain) if cue.speaker is None else None
        if lab is not None and (key := speaker_key(lab[0])) is not None:  # a label is never blank
            found[i] = (lab[0], key)
    counts = Counter(key for _, key in found.values())
    return [
        replace(cue, speaker=found[i][0]) if i in found and counts[found[i][1]] >= 2 else cue
        for i, cue in enumerate(cues)
    ]


# ------------------------------------------------------------------------------------------------ sidecar


def normalize_language(code: str | None) -> str | None:
    """``eng``/``en-US``/``English`` → ``en``; ``None``/``und`` → ``None``; unknown codes pass lower-cased."""
    if not code:
        return None
    c = code.strip().lower().replace("_", "-")
    if not c or c == "und":
        return None
    c = c.split("-")[0]
    return _LANG_ALIASES.get(c, c)


def find_sidecar(media_path: str | os.PathLike[str], *, lang: str | None = None) -> Path | None:
    """Find the subtitle file that sits next to a media file.

    Candidates are ``<stem>.srt``/``.vtt``/``.ass``/``.ssa`` (suffix case-insensitive) and
    ``<stem>.<tags>.<suffix>`` (``movie.en.srt``, ``movie.eng.forced.srt``). Preference: the exact name, then
    a file tagged with the wanted language (``lang``, default English: ``en``, ``eng``, ``en-US`` all match),
    then any other; ties go to SRT, then VTT, ASS, SSA, then name order. emotag's own outputs
    (``*.emotag.*``) are never picked.

    Args:
        media_path: the media file.
        lang: wanted language (any of ``en``, ``eng``, ``en-US``, ``English``).

    Returns:
        The sidecar's path, or ``None``.
    """
    media = Path(media_path)
    folder = media.parent
    stem = media.stem
    want = normalize_language(lang) or "en"
    try:
        entries = list(folder.iterdir())
    except OSError:
        return None
    ranked: list[tuple[int, int, str, Path]] = []
    for entry in entries:
        fname = entry.name
        suffix = Path(fname).suffix.lower()
        if suffix not in SUBTITLE_SUFFIXES or ".emotag." in fname.lower() or entry == media:
            continue
        if not fname.startswith(stem + "."):
            continue
        middle = fname[len(stem) + 1 : len(fname) - len(suffix)]
        if middle == "":
            rank = 0
        else:
            tags = {normalize_language(t) for t in re.split(r"[.\s_]", middle) if t}
            rank = 1 if want in tags else 2
        if not entry.is_file():
            continue
        ranked.append((rank, SUBTITLE_SUFFIXES.index(suffix), fname, entry))
    if not ranked:
        return None
    return min(ranked)[3]

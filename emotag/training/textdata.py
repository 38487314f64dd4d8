"""Readers for the text-emotion corpora in ``../shared/data``: GoEmotions (Ekman), MELD and EmoryNLP.

Why hand-written: the corpora are three small CSV/TSV files with their own quirks and no library reads
them into one label space; ``csv`` from the standard library is all that is needed. Every reader returns
plain :class:`TextRecord` values with labels already mapped onto :data:`emotag.timeline.LABELS`.

Decisions (measured or documented in the data READMEs):

* **GoEmotions multi-label rows** (~9 % of rows) are *skipped* when their Ekman labels disagree (e.g. joy +
  surprise); rows whose several fine labels map to one Ekman class are kept. A single "first label" would
  inject label noise in exactly the ambiguous cases. Valence targets come from the authors' sentiment
  grouping (``group/``: positive → +1, negative → -1, neutral → 0, ambiguous → unknown).
* **MELD** text is normalised (mojibake such as ``"â€™"`` repaired by re-decoding cp1252 → UTF-8, typographic
  quotes/dashes/ellipses folded to ASCII so MELD, EmoryNLP, GoEmotions and user subtitles tokenise alike).
  Sentiment gives the valence target. Context = previous utterances of the same dialogue, oldest first.
* **EmoryNLP** maps Joyful→joy, Mad→anger, Scared→fear, Sad→sadness, Neutral→neutral; Peaceful and Powerful
  have no Ekman twin and are dropped (``keep_unmapped=False``), never guessed. Context = previous
  utterances of the same scene.
* **Splits**: training uses GoEmotions train + MELD train minus a held-out 10 % of MELD train *dialogues*
  (:func:`split_dialogues`, seeded) + EmoryNLP train. That held-out part is the only data used for early
  stopping and temperature calibration; MELD dev, EmoryNLP test and GoEmotions test are for reporting only.
"""

from __future__ import annotations

import csv
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from emotag.errors import DataError
from emotag.timeline import LABELS

#: Label index of each Ekman name (LABELS order).
LABEL_INDEX: dict[str, int] = {name: i for i, name in enumerate(LABELS)}

#: EmoryNLP feeling-wheel labels → LABELS names (Peaceful / Powerful deliberately absent).
EMORYNLP_MAP: dict[str, str] = {
    "Joyful": "joy",
    "Mad": "anger",
    "Scared": "fear",
    "Sad": "sadness",
    "Neutral": "neutral",
}

#: MELD sentiment → valence target.
SENTIMENT_VALENCE: dict[str, float] = {"positive": 1.0, "negative": -1.0, "neutral": 0.0}

#: GoEmotions sentiment group names → valence target (``ambiguous`` has none).
GROUP_VALENCE: dict[str, float | None] = {
    "positive": 1.0,
    "negative": -1.0,
    "neutral": 0.0,
    "ambiguous": None,
}

_ASCII_FOLD = str.maketrans(
    {
        "\u2019": "'",
        "\u2018": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2014": " - ",
        "\u2013": "-",
        "\u2026": "...",
        "\u00a0": " ",
        "\x92": "'",
        "\x91": "'",
        "\x93": '"',
        "\x94": '"',
        "\x85": "...",
        "\x96": "-",
        "\x97": " - ",
    }
)


def _cp1252_chars(lo: int, hi: int) -> str:
    out = []
    for byte in range(lo, hi + 1):
        try:
            out.append(bytes([byte]).decode("cp1252"))
        except UnicodeDecodeError:
            out.append(chr(byte))  # undefined in cp1252: latin-1 passes it through
    return re.escape("".join(out))


# A UTF-8 lead byte (0xC2-0xF4) read as cp1252, followed by 1-3 continuation bytes (0x80-0xBF) read likewise.
_MOJIBAKE_RE = re.compile(f"[{_cp1252_chars(0xC2, 0xF4)}][{_cp1252_chars(0x80, 0xBF)}]{{1,3}}")
_SPACE_RE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class TextRecord:
    """One labelled utterance.

    Attributes:
        text: the normalised utterance.
        label: index into :data:`LABELS`, or ``-1`` for an unmapped label kept for inspection.
        valence: valence target in [-1, 1] when the corpus gives one (sentiment), else ``None``.
        dialogue: a corpus-unique dialogue/scene id (``"meld-train-12"``), or ``None`` for standalone text.
        context: previous utterances of the same dialogue, oldest first (empty for standalone text).
        source: corpus name (``"goemotions"``, ``"meld"``, ``"emorynlp"``).
    """

    text: str
    label: int
    valence: float | None = None
    dialogue: str | None = None
    context: tuple[str, ...] = field(default_factory=tuple)
    source: str = ""


def fix_mojibake(text: str) -> str:
    """Repair UTF-8 that was decoded as cp1252 (``"donâ€™t"`` → ``"don’t"``), run by run; else unchanged."""

    def repair(m: re.Match[str]) -> str:
        chunk = m.group(0)
        for codec in ("cp1252", "latin-1"):
            try:
                return chunk.encode(codec).decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                continue
        return chunk

    return _MOJIBAKE_RE.sub(repair, text)


def normalize_text(text: str) -> str:
    """The text normalisation used for training *and* inference: mojibake fixed, quotes folded, spaces."""
    text = fix_mojibake(text).translate(_ASCII_FOLD)
    return _SPACE_RE.sub(" ", text).strip()


def _open_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError(f"{path}: file not found; point --data at the shared data folder (../shared/data)")
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: unreadable CSV ({exc}); re-fetch the corpus") from exc


def _dialogue_records(
    items: list[tuple[str, int, str, int, float | None]], source: str, max_context: int
) -> list[TextRecord]:
    """Build records from ``(dialogue, position, text, label, valence)`` tuples, adding dialogue context.

    Context holds *all* previous utterances (up to ``max_context``), including ones whose label is dropped.
    """
    groups: dict[str, list[tuple[int, str, int, float | None]]] = {}
    for dialogue, pos, text, label, valence in items:
        groups.setdefault(dialogue, []).append((pos, text, label, valence))
    out: list[TextRecord] = []
    for dialogue, utts in groups.items():
        utts.sort(key=lambda u: u[0])
        history: list[str] = []
        for _pos, text, label, valence in utts:
            ctx = tuple(history[-max_context:]) if max_context > 0 else ()
            if label != -2:  # -2: dropped label (kept only as context for neighbours)
                out.append(TextRecord(text, label, valence, dialogue, ctx, source))
            history.append(text)
    return out


def read_goemotions(data_dir: Path, split: str) -> list[TextRecord]:
    """Read GoEmotions (Ekman mapping) ``split`` ∈ {train, dev, test}; multi-class rows skipped.

    Args:
        data_dir: the shared data folder (holding ``goemotions/``).
        split: ``"train"``, ``"dev"`` or ``"test"``.

    Returns:
        Standalone records (no dialogue, no context) with valence from the sentiment groups.
    """
    root = data_dir / "goemotions"
    ek_path = root / "ekman" / f"{split}.tsv"
    grp_path = root / "group" / f"{split}.tsv"
    ek_labels = _read_lines(root / "ekman" / "labels.txt")
    grp_labels = _read_lines(root / "group" / "labels.txt")
    group_by_id: dict[str, set[str]] = {}
    if grp_path.is_file():
        for row in _read_tsv(grp_path):
            group_by_id[row[2]] = {grp_labels[int(i)] for i in row[1].split(",") if i}
    out: list[TextRecord] = []
    for row in _read_tsv(ek_path):
        names = {ek_labels[int(i)] for i in row[1].split(",") if i}
        if len(names) != 1:
            continue
        (name,) = names
        if name not in LABEL_INDEX:
            raise DataError(f"{ek_path}: label {name!r} is not one of {', '.join(LABELS)}")
        valence: float | None = None
        groups = group_by_id.get(row[2], set())
        if len(groups) == 1:
            valence = GROUP_VALENCE.get(next(iter(groups)))
        text = normalize_text(row[0])
        if text:
            out.append(TextRecord(text, LABEL_INDEX[name], valence, None, (), "goemotions"))
    return out


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path}: file not found; point --data at the shared data folder (../shared/data)")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _read_tsv(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise DataError(f"{path}: file not found; point --data at the shared data folder (../shared/data)")
    rows: list[list[str]] = []
    with path.open(encoding="utf-8", newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if len(row) < 3:
                raise DataError(f"{path}:{lineno}: expected 3 tab-separated columns, got {len(row)}")
            rows.append(row)
    return rows


def read_meld(data_dir: Path, split: str, *, max_context: int = 8) -> list[TextRecord]:
    """Read MELD ``split`` ∈ {train, dev} (``meld/MELD/<split>_sent_emo.csv``) with dialogue context.

    Args:
        data_dir: the shared data folder.
        split: ``"train"`` or ``"dev"`` (the official test split is withheld).
        max_context: how many previous utterances to keep per record.
    """
    path = data_dir / "meld" / "MELD" / f"{split}_sent_emo.csv"
    items: list[tuple[str, int, str, int, float | None]] = []
    for row in _open_csv(path):
        try:
            emotion = row["Emotion"].strip().lower()
            sentiment = row["Sentiment"].strip().lower()
            dialogue = f"meld-{split}-{int(row['Dialogue_ID'])}"
            pos = int(row["Utterance_ID"])
            text = normalize_text(row["Utterance"])
        except (KeyError, ValueError) as exc:
            raise DataError(f"{path}: malformed row {row.get('Sr No.', '?')} ({exc})") from exc
        if emotion not in LABEL_INDEX:
            raise DataError(f"{path}: emotion {emotion!r} is not one of {', '.join(LABELS)}")
        items.append((dialogue, pos, text, LABEL_INDEX[emotion], SENTIMENT_VALENCE.get(sentiment)))
    return [r for r in _dialogue_records(items, "meld", max_context) if r.text]


def read_emorynlp(data_dir: Path, split: str, *, max_context: int = 8) -> list[TextRecord]:
    """Read EmoryNLP ``split`` ∈ {train, dev, test}; Peaceful/Powerful utterances dropped (kept as context).

    Args:
        data_dir: the shared data folder.
        split: ``"train"``, ``"dev"`` or ``"test"``.
        max_context: how many previous utterances to keep per record.
    """
    path = data_dir / "emorynlp" / f"emorynlp_{split}_final.csv"
    items: list[tuple[str, int, str, int, float | None]] = []
    for row in _open_csv(path):
        try:
            scene = f"emory-{split}-{int(row['Season'])}-{int(row['Episode'])}-{int(row['Scene_ID'])}"
            pos = int(row["Utterance_ID"])
            text = normalize_text(row["Utterance"])
            name = EMORYNLP_MAP.get(row["Emotion"].strip())
        except (KeyError, ValueError) as exc:
            raise DataError(f"{path}: malformed row ({exc})") from exc
        label = LABEL_INDEX[name] if name is not None else -2
        items.append((scene, pos, text, label, None))
    return [r for r in _dialogue_records(items, "emorynlp", max_context) if r.text]


def split_dialogues(
    records: Sequence[TextRecord], fraction: float, seed: int
) -> tuple[list[TextRecord], list[TextRecord]]:
    """Split records by dialogue id: ``fraction`` of the dialogues (seeded shuffle) go to the second list.

    Records without a dialogue id always stay in the first list.
    """
    dialogues = sorted({r.dialogue for r in records if r.dialogue is not None})
    rng = random.Random(seed)
    rng.shuffle(dialogues)
    held = set(dialogues[: max(1, round(len(dialogues) * fraction))]) if dialogues else set()
    keep = [r for r in records if r.dialogue not in held]
    out = [r for r in records if r.dialogue in held]
    return keep, out


@dataclass(frozen=True, slots=True)
class TextCorpora:
    """The text training / validation / report sets, as :func:`load_corpora` builds them."""

    train: list[TextRecord]
    val: list[TextRecord]
    reports: dict[str, list[TextRecord]]


def load_corpora(
    data_dir: Path,
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    max_context: int = 8,
    with_reports: bool = True,
) -> TextCorpora:
    """Load every split the text branch uses (see module docstring for the policy).

    Args:
        data_dir: the shared data folder.
        seed: seed of the held-out MELD-train dialogue draw.
        val_fraction: fraction of MELD train dialogues held out for early stopping / calibration.
        max_context: previous utterances kept per record.
        with_reports: also read the report-only sets (MELD dev, EmoryNLP test, GoEmotions test).

    Raises:
        DataError: a corpus file is missing or malformed.
    """
    meld_train, meld_val = split_dialogues(
        read_meld(data_dir, "train", max_context=max_context), val_fraction, seed
    )
    train = (
        read_goemotions(data_dir, "train")
        + meld_train
        + read_emorynlp(data_dir, "train", max_context=max_context)
    )
    train = [r for r in train if r.label >= 0]
    reports: dict[str, list[TextRecord]] = {}
    if with_reports:
        reports = {
            "meld_dev": read_meld(data_dir, "dev", max_context=max_context),
            "emorynlp_test": read_emorynlp(data_dir, "test", max_context=max_context),
            "goemotions_test": read_goemotions(data_dir, "test"),
        }
    return TextCorpora(train=train, val=meld_val, reports=reports)

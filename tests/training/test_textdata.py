"""Text corpus readers: label mapping, multi-label policy, mojibake repair, dialogue context, splits."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from emotag.errors import DataError
from emotag.timeline import LABELS
from emotag.training.textdata import (
    fix_mojibake,
    load_corpora,
    normalize_text,
    read_emorynlp,
    read_goemotions,
    read_meld,
    split_dialogues,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
EKMAN = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
GROUP = ["ambiguous", "negative", "neutral", "positive"]


def write_corpus(root: Path) -> Path:
    """A miniature copy of the three corpora, in their real file layouts."""
    for sub, labels in (("ekman", EKMAN), ("group", GROUP)):
        d = root / "goemotions" / sub
        d.mkdir(parents=True)
        (d / "labels.txt").write_text("\n".join(labels) + "\n")
    ek_rows = [
        ("I love this so much", "3", "c1"),
        ("This is disgusting and vile", "1", "c2"),
        ("Wow I did not expect that", "6", "c3"),
        ("Happy but shocked", "3,6", "c4"),  # joy + surprise: conflicting, skipped
        ("Great great", "3,3", "c5"),  # two fine labels, one Ekman class: kept
    ]
    grp_rows = [
        ("I love this so much", "3", "c1"),
        ("This is disgusting and vile", "1", "c2"),
        ("Wow I did not expect that", "0", "c3"),
        ("Happy but shocked", "0,3", "c4"),
        ("Great great", "3", "c5"),
    ]
    for split in ("train", "test"):
        (root / "goemotions" / "ekman" / f"{split}.tsv").write_text(
            "".join("\t".join(r) + "\n" for r in ek_rows)
        )
        (root / "goemotions" / "group" / f"{split}.tsv").write_text(
            "".join("\t".join(r) + "\n" for r in grp_rows)
        )
    meld = root / "meld" / "MELD"
    meld.mkdir(parents=True)
    header = [
        "Sr No.",
        "Utterance",
        "Speaker",
        "Emotion",
        "Sentiment",
        "Dialogue_ID",
        "Utterance_ID",
        "Season",
        "Episode",
        "StartTime",
        "EndTime",
    ]
    rows = []
    n = 0
    for dia in range(10):
        # written out of order on purpose: readers must sort by Utterance_ID
        for utt, (text, emo, sent) in reversed(
            list(
                enumerate(
                    [
                        ("Hi there.", "neutral", "neutral"),
                        ("I donâ€™t believe it!", "surprise", "positive"),
                        (f"I am so angry at you {dia}!", "anger", "negative"),
                    ]
                )
            )
        ):
            n += 1
            rows.append(
                [str(n), text, "A", emo, sent, str(dia), str(utt), "1", "1", "00:00:01,000", "00:00:02,000"]
            )
    for split in ("train", "dev"):
        with (meld / f"{split}_sent_emo.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(rows)
    em = root / "emorynlp"
    em.mkdir()
    eh = [
        "Utterance",
        "Speaker",
        "Emotion",
        "Scene_ID",
        "Utterance_ID",
        "Season",
        "Episode",
        "Start_Time",
        "End_Time",
    ]
    erows = [
        ["We did it!", "['A']", "Joyful", "1", "1", "1", "1", "0", "0"],
        ["What a calm day.", "['B']", "Peaceful", "1", "2", "1", "1", "0", "0"],
        ["Get away from me!", "['A']", "Mad", "1", "3", "1", "1", "0", "0"],
        ["I'm terrified.", "['B']", "Scared", "2", "1", "1", "1", "0", "0"],
        ["I feel strong.", "['B']", "Powerful", "2", "2", "1", "1", "0", "0"],
    ]
    for split in ("train", "dev", "test"):
        with (em / f"emorynlp_{split}_final.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(eh)
            w.writerows(erows)
    return root


def test_mojibake_and_normalisation():
    assert fix_mojibake("donâ€™t") == "don\u2019t"
    assert fix_mojibake("plain text") == "plain text"
    assert normalize_text("  donâ€™t \u201cgo\u201d\u2026 ") == 'don\'t "go"...'


def test_goemotions_multi_label_policy_and_valence(tmp_path):
    root = write_corpus(tmp_path)
    recs = read_goemotions(root, "train")
    texts = [r.text for r in recs]
    assert "Happy but shocked" not in texts  # conflicting Ekman labels skipped
    assert "Great great" in texts  # same Ekman class twice kept
    by_text = {r.text: r for r in recs}
    assert LABELS[by_text["I love this so much"].label] == "joy"
    assert LABELS[by_text["This is disgusting and vile"].label] == "disgust"
    assert by_text["I love this so much"].valence == 1.0
    assert by_text["This is disgusting and vile"].valence == -1.0
    assert by_text["Wow I did not expect that"].valence is None  # ambiguous group
    assert all(r.dialogue is None and r.context == () for r in recs)


def test_meld_context_order_and_mojibake(tmp_path):
    root = write_corpus(tmp_path)
    recs = [r for r in read_meld(root, "train") if r.dialogue == "meld-train-3"]
    assert [r.text for r in recs] == ["Hi there.", "I don't believe it!", "I am so angry at you 3!"]
    assert recs[0].context == ()
    assert recs[2].context == ("Hi there.", "I don't believe it!")
    assert [LABELS[r.label] for r in recs] == ["neutral", "surprise", "anger"]
    assert [r.valence for r in recs] == [0.0, 1.0, -1.0]
    short = read_meld(root, "train", max_context=1)
    assert all(len(r.context) <= 1 for r in short)


def test_emorynlp_mapping_drops_peaceful_powerful_but_keeps_them_as_context(tmp_path):
    root = write_corpus(tmp_path)
    recs = read_emorynlp(root, "train")
    assert [r.text for r in recs] == ["We did it!", "Get away from me!", "I'm terrified."]
    assert [LABELS[r.label] for r in recs] == ["joy", "anger", "fear"]
    assert recs[1].context == ("We did it!", "What a calm day.")
    assert recs[2].context == ()  # new scene


def test_split_by_dialogue_never_leaks(tmp_path):
    root = write_corpus(tmp_path)
    recs = read_meld(root, "train")
    keep, held = split_dialogues(recs, 0.2, seed=3)
    assert {r.dialogue for r in keep}.isdisjoint({r.dialogue for r in held})
    assert len({r.dialogue for r in held}) == 2 and len(keep) + len(held) == len(recs)
    assert split_dialogues(recs, 0.2, seed=3)[1] == held  # seeded


def test_load_corpora_policy(tmp_path):
    root = write_corpus(tmp_path)
    c = load_corpora(root, seed=0, val_fraction=0.1)
    assert {r.source for r in c.train} == {"goemotions", "meld", "emorynlp"}
    assert all(r.source == "meld" for r in c.val) and len({r.dialogue for r in c.val}) == 1
    assert set(c.reports) == {"meld_dev", "emorynlp_test", "goemotions_test"}
    assert all(0 <= r.label < len(LABELS) for r in c.train)


def test_missing_corpus_raises_data_error(tmp_path):
    with pytest.raises(DataError, match="--data"):
        read_meld(tmp_path, "train")


@pytest.mark.skipif(not (DATA / "meld").is_dir(), reason=f"shared data not found at {DATA}")
def test_real_corpora_sizes_and_heldout_dialogues():
    c = load_corpora(DATA, seed=0)
    meld_train = [r for r in c.train if r.source == "meld"]
    assert len(meld_train) + len(c.val) == 9989
    assert {r.dialogue for r in meld_train}.isdisjoint({r.dialogue for r in c.val})
    assert 0.07 < len(c.val) / 9989 < 0.13
    assert len(c.reports["meld_dev"]) == 1109
    go = [r for r in c.train if r.source == "goemotions"]
    assert 38000 < len(go) < 43410  # conflicting multi-label rows skipped
    assert not any("\u00e2\u20ac" in r.text for r in c.train + c.val)

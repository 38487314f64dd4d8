"""MultimodalModel: batching through each branch once, absent modalities, single-modality modes."""

from __future__ import annotations

import numpy as np
import pytest
from stubs import KeywordTextBranch, ToneAudioBranch, tone

from emotag.errors import ModelError
from emotag.fusion import FusionModel
from emotag.models.base import EmotionModel, Segment
from emotag.models.multimodal import MultimodalModel
from tests import mediagen


def make(modality: str = "both", **kw):
    tb, ab = KeywordTextBranch(), ToneAudioBranch()
    return (
        MultimodalModel(
            tb, ab, FusionModel.untrained(tb.embedding_dim, ab.embedding_dim), modality=modality, **kw
        ),
        tb,
        ab,
    )


def test_protocol_and_fusion_per_segment():
    model, tb, ab = make(batch_size=64)
    assert isinstance(model, EmotionModel) and model.name == "emotag-default-1"
    segs = [
        Segment("I am so happy", tone("joy")),  # both agree
        Segment("Kids are talking by the door", tone("anger")),  # neutral words: follow the voice
        Segment("I am furious", np.zeros(16000, np.float32)),  # silent audio: follow the words
        Segment("", tone("sadness")),  # no text
        Segment("I am scared", None),  # no audio
        Segment("I am scared", tone("fear", 0.1)),  # audio too short: counts as absent
        Segment("what a wonderful day", tone("anger")),  # clash: positive words, angry voice
    ]
    preds = model.predict(segs)
    assert tb.calls == 1 and ab.calls == 1  # one batch per branch
    assert [p.emotion.label for p in preds[:6]] == ["joy", "anger", "anger", "sadness", "fear", "fear"]
    assert preds[3].text is None and preds[3].audio is not None
    assert preds[4].audio is None and preds[5].audio is None and preds[4].text is not None
    assert preds[6].mismatched and preds[6].mismatch > 0.5
    assert not any(p.mismatched for p in preds[:6])
    for p in preds:
        assert sum(p.emotion.probs) == pytest.approx(1.0, abs=1e-5)
        assert -1 <= p.emotion.valence <= 1 and -1 <= p.emotion.arousal <= 1
    assert model.predict([]) == []


def test_batches_split_by_batch_size():
    model, tb, ab = make(batch_size=2)
    preds = model.predict([Segment("I am sad", tone("sadness")) for _ in range(5)])
    assert len(preds) == 5 and tb.calls == 3 and ab.calls == 3
    assert all(p.emotion.label == "sadness" for p in preds)


def test_single_modality_modes_return_the_branch_alone():
    text_model, tb, ab = make("text")
    preds = text_model.predict([Segment("I am so happy", tone("anger")), Segment("", tone("anger"))])
    assert ab.calls == 0
    assert preds[0].emotion.label == "joy" and preds[0].audio is None
    assert preds[0].emotion == preds[0].text
    assert max(preds[1].emotion.probs) == pytest.approx(1 / 7)  # nothing to go on: uniform
    audio_model = text_model.with_modality("audio")
    preds = audio_model.predict([Segment("I am so happy", tone("anger"))])
    assert preds[0].emotion.label == "anger" and preds[0].text is None


def test_bad_configuration_is_a_model_error():
    with pytest.raises(ModelError, match="modality"):
        make("video")
    with pytest.raises(ModelError, match="needs an audio branch"):
        MultimodalModel(KeywordTextBranch(), None, FusionModel.untrained(), modality="both")
    # a fusion trained for other embedding widths falls back to late fusion
    fm = FusionModel.untrained(999, 999)
    m = MultimodalModel(KeywordTextBranch(), ToneAudioBranch(), fm)
    assert m.method == "late"


def test_parallel_branches_give_the_same_predictions():
    segs = [
        Segment(t, tone(lb))
        for t, lb in [
            ("I am so happy", "joy"),
            ("I am furious", "sadness"),
            ("", "fear"),
            ("wow", "surprise"),
        ]
    ]
    par, _, _ = make(parallel_branches=True)
    seq, _, _ = make(parallel_branches=False)
    assert par.predict(segs) == seq.predict(segs)
    assert par.with_modality("both").parallel_branches is True


def _with_cnn_voice(**kw) -> MultimodalModel:
    """Keyword text branch + an untrained CNN audio branch (real prosody and evidence, per-file stats)."""
    import torch

    from emotag.models.audio import AudioBranch, AudioNetConfig, build_net

    torch.manual_seed(0)
    cfg = AudioNetConfig()
    p = cfg.n_prosody
    ab = AudioBranch([build_net(cfg)], cfg, np.zeros(p, np.float32), np.ones(p, np.float32))
    tb = KeywordTextBranch()
    return MultimodalModel(tb, ab, FusionModel.untrained(tb.embedding_dim, ab.embedding_dim), **kw)


def test_for_file_computes_each_cues_prosody_once_and_predicts_the_same(monkeypatch):
    """The file-statistics pass is reused as each cue's prosody (no second pass), with equal results."""
    import emotag.audiofeatures as af

    model = _with_cnn_voice(batch_size=4)
    names = ["joy", "anger", "sadness", "fear", "joy", "anger", "sadness"]
    segs = [Segment(f"line {i}", tone(lab, 1.0 + 0.1 * i)) for i, lab in enumerate(names)]
    segs.append(Segment("a long cue", np.tile(tone("joy", 3.0), 4)))  # 12 s: chunked, computed again
    calls: list[int] = []
    real = af.prosody_and_evidence
    monkeypatch.setattr(
        af, "prosody_and_evidence", lambda b, n, *a: calls.append(b.shape[0]) or real(b, n, *a)
    )
    bound = model.for_file(segs)
    assert sum(calls) == len(segs)  # the analysis pass
    calls.clear()
    reused = bound.predict(segs)
    assert sum(calls) == 2  # only the long cue's two chunks
    bound._analysis = {}  # type: ignore[attr-defined]
    fresh = bound.predict(segs)
    for a, b in zip(reused, fresh, strict=True):
        assert a.audio is not None and b.audio is not None
        assert np.allclose(a.audio.probs, b.audio.probs, atol=1e-4)
        assert np.allclose(a.emotion.probs, b.emotion.probs, atol=1e-4)
        assert a.audio.valence == pytest.approx(b.audio.valence, abs=1e-4)


def test_for_file_reads_voices_in_chunks_with_progress_and_the_same_statistics(monkeypatch):
    import emotag.models.multimodal as mm
    from emotag.models.base import bind_to_file

    model = _with_cnn_voice()
    names = ["joy", "anger", "sadness", "fear", "neutral"] * 3
    segs = [Segment(f"line {i}", tone(lab, 0.8 + 0.05 * i)) for i, lab in enumerate(names)]
    whole = model.for_file(segs)
    monkeypatch.setattr(mm, "ANALYSE_CHUNK", 4)  # a long file's cues, a few at a time
    seen: list[tuple[int, int]] = []
    chunked = bind_to_file(model, segs, lambda done, total: seen.append((done, total)))
    assert seen == [(0, 15), (4, 15), (8, 15), (12, 15), (15, 15)]
    joined = chunked._analysis[id(segs[0])][1]  # type: ignore[attr-defined]
    one_pass = whole._analysis[id(segs[0])][1]  # type: ignore[attr-defined]
    for field in ("prosody", "evidence", "lengths"):
        assert np.allclose(getattr(joined, field), getattr(one_pass, field), atol=1e-4), field
    for a, b in zip(chunked.predict(segs), whole.predict(segs), strict=True):
        assert np.allclose(a.emotion.probs, b.emotion.probs, atol=1e-5)


def test_bind_to_file_passes_progress_only_to_models_that_take_it():
    from emotag.models.base import bind_to_file

    class Plain:
        name = "plain"

        def predict(self, segments):
            return []

    class OldStyle(Plain):
        def for_file(self, segments):
            self.bound_with = len(segments)
            return self

    class NewStyle(Plain):
        def for_file(self, segments, progress=None):
            progress(len(segments), len(segments))
            return self

    segs = [Segment("a", None), Segment("b", None)]
    plain = Plain()
    assert bind_to_file(plain, segs, print) is plain
    old = OldStyle()
    assert bind_to_file(old, segs, lambda d, t: None) is old and old.bound_with == 2
    heard: list[tuple[int, int]] = []
    new = NewStyle()
    assert bind_to_file(new, segs, lambda d, t: heard.append((d, t))) is new and heard == [(2, 2)]


LINES = mediagen.SPEAKER_LINES[:6]


@pytest.fixture(scope="module")
def speakers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[np.ndarray]]:
    """espeak-ng voices: Ann (6 lines, low), Bob (4 lines, high and fast), and 3 lines of nobody named."""
    d = tmp_path_factory.mktemp("speakers")

    def say(who: str, lines: tuple[str, ...], **kw: object) -> list[np.ndarray]:
        return [mediagen.read_wav(mediagen.speak(t, d / f"{who}{i}.wav", **kw)) for i, t in enumerate(lines)]  # type: ignore[arg-type]

    return {
        "ann": say("ann", LINES, pitch=25),
        "bob": say("bob", LINES[:4], pitch=80, speed=190),
        "nobody": say("nobody", LINES[3:], pitch=50, amplitude=60),
    }


def _shrunk_reference(model: MultimodalModel, own: list[np.ndarray], everyone: list[np.ndarray]):
    """The audio branch's output for ``own`` read against their shrunk statistics, and against the file's."""
    from emotag.models.audio import shrink_stats

    ab = model.audio_branch
    file_stats = ab.stats_from(ab.analyse(everyone))  # type: ignore[union-attr]
    mine = ab.stats_from(ab.analyse(own))  # type: ignore[union-attr]
    assert file_stats is not None and mine is not None
    shrunk = ab.infer(own, file_stats=shrink_stats(mine, file_stats))  # type: ignore[union-attr,call-arg]
    return shrunk, ab.infer(own, file_stats=file_stats)  # type: ignore[union-attr,call-arg]


@pytest.fixture(scope="module")
def packaged_voice() -> MultimodalModel:
    """The packaged model's voice branch alone (the Whisper encoder and its trained heads)."""
    from emotag.models import load_model

    try:
        model = load_model(modality="audio")
    except Exception as exc:  # noqa: BLE001 - the packaged encoder is an optional install
        pytest.skip(f"packaged model unavailable: {exc}")
    assert isinstance(model, MultimodalModel)
    model.batch_size = 4
    return model


def test_named_speakers_are_read_against_their_own_voices_the_rest_against_the_file(speakers, packaged_voice):
    model = packaged_voice
    ann, bob, nobody = speakers["ann"], speakers["bob"], speakers["nobody"]
    waves = [ann[0], bob[0], ann[1], nobody[0], ann[2], bob[1], ann[3], nobody[1], ann[4], bob[2], ann[5]]
    waves += [bob[3], nobody[2]]
    who = ["Ann", "Bob", " ann ", None, "ANN", "Bob", "Ann", None, "Ann", "Bob", "Ann", "Bob", None]
    segs = [Segment(f"line {i}", w, speaker=s) for i, (w, s) in enumerate(zip(waves, who, strict=True))]
    preds = model.for_file(segs).predict(segs)  # speakers interleaved, batches of 4: answers in input order
    own, by_file = _shrunk_reference(model, ann, waves)
    ann_rows = [i for i, s in enumerate(who) if s and s.strip().lower() == "ann"]
    assert len(ann_rows) == len(ann)
    for k, i in enumerate(ann_rows):
        got = preds[i].audio
        assert got is not None
        assert np.allclose(got.probs, own.probs[k], atol=1e-6)  # case and spacing of the name ignored
        assert np.abs(np.subtract(got.probs, by_file.probs[k])).max() > 1e-3  # not the file's reading
    plain = model.for_file([Segment(s.text, s.audio) for s in segs]).predict(segs)
    for i, s in enumerate(who):
        a, b = preds[i].audio, plain[i].audio
        assert a is not None and b is not None
        gap = np.abs(np.subtract(a.probs, b.probs)).max()
        if s is None or s.strip() == "Bob":  # unnamed, or under the minimum of cues: the file's statistics
            assert gap < 1e-6
        else:
            assert gap > 1e-3


def test_a_file_of_one_named_speaker_reads_like_the_file(speakers, packaged_voice):
    model = packaged_voice
    segs = [Segment("", w, speaker="Ann") for w in speakers["ann"]]
    named = model.for_file(segs).predict(segs)
    plain = model.for_file([Segment("", s.audio) for s in segs]).predict(segs)
    for a, b in zip(named, plain, strict=True):  # own statistics are the file's: shrinking changes nothing
        assert np.allclose(a.emotion.probs, b.emotion.probs, atol=1e-6)


def test_rows_join_take_and_unsort_keep_every_field_and_dtype():
    from emotag.models.audio import VoiceAnalysis
    from emotag.models.branches import BranchOutput, concat_rows, take_rows, unsort_rows

    def out(rows: list[int]) -> BranchOutput:
        r = np.asarray(rows, np.float32)
        return BranchOutput(np.tile(r[:, None], (1, 7)), r, -r, np.tile(r[:, None], (1, 3)), r / 10)

    order = [3, 0, 4, 1, 2]  # the inputs were run in this order, in two parts
    back = unsort_rows([out(order[:2]), out(order[2:])], order)
    assert back.valence.tolist() == [0, 1, 2, 3, 4] and back.probs.shape == (5, 7)
    assert back.arousal.tolist() == [0, -1, -2, -3, -4] and back.embedding[:, 2].tolist() == [0, 1, 2, 3, 4]
    v = VoiceAnalysis(
        np.arange(8, dtype=np.float32).reshape(4, 2), np.ones(4, np.float32), np.arange(4) * 100
    )
    picked = take_rows(v, [2, 0])
    assert picked.prosody.tolist() == [[4, 5], [0, 1]] and picked.lengths.tolist() == [200, 0]
    assert picked.lengths.dtype == np.int64 and picked.prosody.dtype == np.float32
    assert concat_rows([picked]) is picked

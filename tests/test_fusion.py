"""emotag.fusion: evidence-gated fusion, mismatch, calibration scalars, safetensors round trip, and the
training code's torch mirror (emotag.training.fusion) on constructed pairs from stand-in branches."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from emotag.errors import ModelError
from emotag.fusion import FUSION_METHODS, FusionInput, FusionModel, mismatch_direction
from emotag.models.branches import BranchOutput
from emotag.timeline import LABEL_VALENCE_AROUSAL, LABELS

sys.path.insert(0, str(Path(__file__).parent / "models"))
from stubs import KEYWORDS, KeywordTextBranch, ToneAudioBranch, tone  # noqa: E402

K = len(LABELS)


def peaked(labels: list[str], p: float = 0.8, evidence: float = 0.9, dim: int = 4) -> BranchOutput:
    n = len(labels)
    probs = np.full((n, K), (1 - p) / (K - 1), np.float32)
    for i, lb in enumerate(labels):
        probs[i, LABELS.index(lb)] = p
    v = np.array([LABEL_VALENCE_AROUSAL[lb][0] for lb in labels], np.float32)
    a = np.array([LABEL_VALENCE_AROUSAL[lb][1] for lb in labels], np.float32)
    return BranchOutput(probs, v, a, np.ones((n, dim), np.float32), np.full(n, evidence, np.float32))


def uniform(n: int, dim: int = 4) -> BranchOutput:
    z = np.zeros(n, np.float32)
    return BranchOutput(np.full((n, K), 1 / K, np.float32), z, z, np.zeros((n, dim), np.float32), z)


def test_untrained_late_follows_the_modality_with_evidence():
    fm = FusionModel.untrained()
    labels = ["anger", "joy", "sadness", "fear"]
    # words carry nothing (uniform, evidence 0): fused label follows the voice
    out = fm.fuse(FusionInput.from_outputs(uniform(4), peaked(labels)))
    assert [LABELS[i] for i in out.probs.argmax(1)] == labels
    # voice carries nothing: follows the words
    out = fm.fuse(FusionInput.from_outputs(peaked(labels), uniform(4)))
    assert [LABELS[i] for i in out.probs.argmax(1)] == labels
    # zero evidence wins even over a confident distribution: a peaked but evidence-0 text is ignored
    out = fm.fuse(FusionInput.from_outputs(peaked(["joy"] * 4, p=0.99, evidence=0.0), peaked(labels, p=0.5)))
    assert [LABELS[i] for i in out.probs.argmax(1)] == labels
    np.testing.assert_allclose(out.probs.sum(1), 1.0, rtol=1e-5)


def test_absent_rows_and_valence_leans_on_evidence():
    fm = FusionModel.untrained()
    x = FusionInput.assemble(
        3, peaked(["joy"]), [0], peaked(["sadness", "anger"]), [1, 2], text_dim=4, audio_dim=4
    )
    assert x.text_present.tolist() == [True, False, False]
    assert x.audio_present.tolist() == [False, True, True]
    out = fm.fuse(x)
    assert [LABELS[i] for i in out.probs.argmax(1)] == ["joy", "sadness", "anger"]
    assert out.valence[0] > 0.5 and out.valence[1] < -0.5
    assert out.mismatch.tolist() == [0.0, 0.0, 0.0]  # never a mismatch with one modality
    assert out.direction.tolist() == [0, 0, 0]


def test_valence_follows_the_fused_label_as_far_as_va_prior_says(tmp_path):
    # words say joy with more confidence than the voice says sadness: the fused label is joy
    x = FusionInput.from_outputs(peaked(["joy"], p=0.95), peaked(["sadness"], p=0.6, evidence=1.0))
    old = FusionModel.untrained()
    assert "va.prior" not in old.params  # models from before the fit: the fixed small prior
    params = dict(old.params)
    params["va.alpha"] = np.array([0.05, 0.05], np.float32)  # valence leaning on the voice
    lean = FusionModel(params, "late")
    out = lean.fuse(x)
    assert LABELS[int(out.probs.argmax())] == "joy" and out.valence[0] < 0  # the incoherent case
    coherent = FusionModel(params | {"va.prior": np.array([3.0, 3.0], np.float32)}, "late")
    fixed = coherent.fuse(x)
    assert fixed.valence[0] > 0.2 and np.allclose(fixed.probs, out.probs)
    coherent.save(tmp_path / "f.safetensors")
    assert np.allclose(FusionModel.load(tmp_path / "f.safetensors").fuse(x).valence, fixed.valence)


def test_mismatch_fires_on_clashing_outputs_and_says_which_way():
    fm = FusionModel.untrained()
    text = peaked(["joy", "joy", "anger", "sadness", "neutral"])
    audio = peaked(["anger", "joy", "joy", "sadness", "anger"])
    out = fm.fuse(FusionInput.from_outputs(text, audio))
    assert out.mismatched.tolist() == [True, False, True, False, False]
    assert out.mismatch[0] > 0.5 > out.mismatch[1]
    assert mismatch_direction(int(out.direction[0])) == "positive words / negative voice"
    assert mismatch_direction(int(out.direction[2])) == "negative words / positive voice"
    # no evidence on one side: the same probabilities do not clash
    quiet = peaked(["anger"] * 5, evidence=0.0)
    assert not fm.fuse(FusionInput.from_outputs(text, quiet)).mismatched.any()


def test_mismatch_threshold_flags_the_most_clashes_within_the_false_flag_budget():
    from emotag.training.fusion import choose_threshold

    # 100 clashing pairs scored 0.30..0.99, 100 agreeing pairs 0.00..0.495 plus a tail of 20 high ones
    clash = np.linspace(0.3, 0.99, 100)
    agree = np.concatenate([np.linspace(0.0, 0.495, 80), np.linspace(0.5, 0.9, 20)])
    score = np.concatenate([clash, agree]).astype(np.float32)
    target = np.r_[np.ones(100), np.zeros(100)].astype(np.int64)
    thr = choose_threshold(score, target, target == 0, ratio=4.0, max_false=0.10)
    flag = score >= thr
    assert flag[100:].mean() <= 0.10 and flag[:100].mean() >= 4 * flag[100:].mean()
    # the lowest such threshold: one step lower breaks the budget
    lower = score >= thr - 0.01
    assert lower[100:].mean() > 0.10 or lower[:100].mean() < 4 * lower[100:].mean()
    # a looser budget flags more clashes
    loose = choose_threshold(score, target, target == 0, ratio=4.0, max_false=0.2)
    assert loose < thr and (score[:100] >= loose).mean() > flag[:100].mean()
    # no threshold within budget and ratio (identical scores): falls back to Youden's J
    same = np.full(200, 0.5, np.float32)
    assert 0.05 <= choose_threshold(same, target, target == 0) <= 0.95


def test_each_modalitys_bias_goes_with_its_evidence():
    """A late bias belongs to its modality: it moves nothing where that modality has no evidence."""
    from emotag.fusion import late_logits

    fm = FusionModel.untrained()
    push = np.array([3.0, 0, 0, 0, 0, 0, 0], np.float32)  # towards anger
    labels = ["joy", "sadness", "fear"]
    voice_only = FusionInput.from_outputs(peaked(labels, evidence=0.0), peaked(labels, p=0.6))
    p_text = fm.params | {"late.bias_t": push}
    np.testing.assert_allclose(late_logits(voice_only, p_text), late_logits(voice_only, fm.params), atol=1e-6)
    p_audio = fm.params | {"late.bias_a": push}
    assert [LABELS[i] for i in late_logits(voice_only, p_audio).argmax(1)] == ["anger"] * 3
    nothing = FusionInput.from_outputs(
        uniform(2), uniform(2)
    )  # neither says anything: uniform, whatever the biases
    logits = late_logits(nothing, fm.params | {"late.bias_t": push, "late.bias_a": push})
    np.testing.assert_allclose(logits, 0.0, atol=1e-6)


def test_first_format_files_with_one_shared_bias_still_load_and_apply_it(tmp_path):
    from safetensors.numpy import save_file

    from emotag.fusion import FORMAT

    fm = FusionModel.untrained()
    old = {k: v for k, v in fm.params.items() if not k.startswith("late.bias_")}
    old["late.bias"] = np.array([0, 0, 0, 0, 0, 0, 5.0], np.float32)  # a strong shared prior for neutral
    save_file(old, str(tmp_path / "v1.safetensors"), metadata={"format": "emotag-fusion-1", "method": "late"})
    back = FusionModel.load(tmp_path / "v1.safetensors")
    x = FusionInput.from_outputs(uniform(2), peaked(["joy", "anger"], p=0.6))
    assert [LABELS[i] for i in back.fuse(x).probs.argmax(1)] == [
        "neutral",
        "neutral",
    ]  # added whatever speaks
    fm.save(tmp_path / "v2.safetensors")
    assert FORMAT == "emotag-fusion-2" and FusionModel.load(tmp_path / "v2.safetensors").methods == ("late",)


def test_save_load_round_trip(tmp_path):
    fm = FusionModel.untrained(8, 4)
    path = tmp_path / "fusion.safetensors"
    fm.save(path)
    back = FusionModel.load(path)
    assert back.method == "late" and back.text_dim == 8 and back.methods == ("late",)
    x = FusionInput.from_outputs(peaked(["joy", "fear"]), peaked(["joy", "anger"]))
    np.testing.assert_allclose(back.fuse(x).probs, fm.fuse(x).probs)
    with pytest.raises(ModelError, match="not trained"):
        back.fuse(x, "hybrid")
    with pytest.raises(ModelError, match="unknown fusion method"):
        back.fuse(x, "median")
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match="cannot read"):
        FusionModel.load(tmp_path / "bad.safetensors")


# --------------------------------------------------------------------------- training on constructed pairs


def _items(n_text: int, n_audio: int, seed: int):
    from emotag.training.fusion import AudioItem, TextItem, nonspeech_audio

    rng = np.random.default_rng(seed)
    words: dict[str, list[str]] = {}
    for w, lb in KEYWORDS.items():
        words.setdefault(lb, []).append(w)
    texts = []
    for i in range(n_text):
        lb = LABELS[i % K]
        if lb == "neutral":
            texts.append(TextItem("the door is open", i % K, (), f"d{i}"))
        else:  # 40 % of lines also carry a misleading word: the text branch alone is unsure there
            w = str(rng.choice(words[lb]))
            if rng.random() < 0.4:
                other = str(rng.choice([k for k, v in KEYWORDS.items() if v != lb]))
                w = f"{w} and {other}" if rng.random() < 0.5 else f"{other} and {w}"
            texts.append(TextItem(f"I feel {w} now", i % K, (), f"d{i}"))
    audio = []
    for i in range(n_audio):
        lb = LABELS[i % K]
        wave = tone(lb, 0.5)
        if rng.random() < 0.4:  # 40 % also carry an equally loud wrong tone: the audio branch is unsure
            wave = wave + tone(LABELS[(i + 1 + rng.integers(K - 1)) % K], 0.5)
        audio.append(AudioItem(wave + rng.normal(0, 0.02, 8000).astype(np.float32), i % K, f"s{i % 3}"))
    audio += [AudioItem(w * 0.0, -1, "ns", "nonspeech") for w in nonspeech_audio(8, seed)]
    return texts, audio


@pytest.fixture(scope="module")
def trained():
    from emotag.training.fusion import (
        Cache,
        FusionTrainOptions,
        build_pairs,
        neutral_line_indices,
        run_audio,
        run_text,
        train_fusion_on_pairs,
    )

    tb, ab = KeywordTextBranch(), ToneAudioBranch()
    sides = []
    for seed in (1, 2):
        texts, audio = _items(140, 70, seed)
        pairs = build_pairs(texts, audio, neutral_idx=neutral_line_indices(texts), seed=seed)
        sides.append((Cache(run_text(tb, texts), run_audio(ab, audio)), pairs))
    opts = FusionTrainOptions(epochs=150, mlp_epochs=60)
    return train_fusion_on_pairs(
        sides[0][0], sides[0][1], sides[1][0], sides[1][1], seed=0, options=opts
    ), sides


def test_pairs_have_every_kind(trained):
    _, sides = trained
    pairs = sides[0][1]
    kinds = set(pairs.kind)
    assert {"same", "neutral_text", "nonspeech", "missing", "clash"} <= kinds
    clash = np.asarray(pairs.kind) == "clash"
    assert (pairs.label[clash] == -1).all() and (pairs.label[~clash] >= 0).all()
    assert set(pairs.clash_direction[clash].tolist()) == {-1, 1}


def test_trained_fusion_beats_each_branch_and_flags_clashes(trained):
    (model, report), _ = trained
    assert set(model.methods) == set(FUSION_METHODS)
    best = report.methods[report.chosen]
    assert report.chosen == max(report.methods, key=lambda m: report.methods[m]["accuracy"])
    # on same-label pairs the two imperfect stubs err independently: fusion must beat both
    assert best["accuracy_same"] > report.branches["text"]["accuracy_same"]
    assert best["accuracy_same"] > report.branches["audio"]["accuracy_same"]
    assert report.mismatch["flag_rate_clash"] >= 3 * report.mismatch["flag_rate_same"]
    assert 0.0 < model.threshold < 1.0
    assert all(t > 0 for t in report.temperatures.values())


def test_temperatures_fit_on_the_calibration_pairs_when_given(trained):
    """Calibration pairs that are harder than the validation pairs (here: half their labels wrong) give
    higher temperatures; choices and reported scores stay on the validation pairs."""
    from emotag.training.fusion import FusionTrainOptions, PairSet, merge_pairs, train_fusion_on_pairs

    (_, report), sides = trained
    (cache_f, fit), (cache_v, val) = sides
    rng = np.random.default_rng(0)
    lab = np.flatnonzero(val.label >= 0)
    noisy = val.label.copy()
    flip = rng.choice(lab, size=len(lab) // 2, replace=False)
    noisy[flip] = (noisy[flip] + 1 + rng.integers(0, K - 1, size=len(flip))) % K
    wrong = PairSet(val.text_idx, val.audio_idx, noisy, list(val.kind), val.clash_direction)
    cal = merge_pairs(val, wrong, 0, 0)
    opts = FusionTrainOptions(epochs=150, mlp_epochs=60)
    _, noisy_report = train_fusion_on_pairs(
        cache_f, fit, cache_v, val, seed=0, options=opts, calibration=(cache_v, cal)
    )
    for m, t in report.temperatures.items():
        assert noisy_report.temperatures[m] > 1.5 * t, (m, t, noisy_report.temperatures[m])
        assert noisy_report.methods[m]["accuracy"] == report.methods[m]["accuracy"]
    assert noisy_report.chosen == report.chosen
    assert noisy_report.methods[report.chosen]["ece"] > report.methods[report.chosen]["ece"]


def test_torch_training_mirror_matches_numpy_inference(trained, tmp_path):
    import torch

    from emotag.training.fusion import _early_t, _hybrid_t, _inputs_t, _late_t

    (model, _), sides = trained
    cache, pairs = sides[1]
    x = cache.inputs(pairs)
    xt = _inputs_t(x)
    pt = {k: torch.as_tensor(v) for k, v in model.params.items()}
    for method, fn in (
        ("late", lambda: _late_t(xt, pt, "late")),
        ("early", lambda: _early_t(xt, pt)),
        ("hybrid", lambda: _hybrid_t(xt, pt)),
    ):
        np.testing.assert_allclose(fn().detach().numpy(), model.logits(x, method), rtol=1e-4, atol=1e-4)
    model.save(tmp_path / "f.safetensors")
    back = FusionModel.load(tmp_path / "f.safetensors")
    assert back.method == model.method and back.info["trained"] is True
    np.testing.assert_allclose(back.fuse(x).probs, model.fuse(x).probs, rtol=1e-6)


def test_run_audio_reads_each_speaker_as_one_file():
    """Fusion sees voices as ``emotag tag`` scores them: each speaker's clips normalised over that speaker."""
    from emotag.training.fusion import AudioItem, run_audio

    class Recording(ToneAudioBranch):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[tuple[int, object]] = []

        def analyse(self, waveforms):
            return list(waveforms)

        def stats_from(self, analysis):
            return f"stats of {len(analysis)}"

        def infer(self, waveforms, file_stats=None, analysis=None):
            assert analysis is None or len(analysis) == len(waveforms)
            self.seen.append((len(waveforms), file_stats))
            return super().infer(waveforms)

    items = [AudioItem(tone(LABELS[i % K], 0.5), i % K, f"s{i % 2}") for i in range(6)]
    items.append(AudioItem(np.zeros(8000, np.float32), -1, "ns", "nonspeech"))
    branch = Recording()
    out = run_audio(branch, items)
    assert sorted(branch.seen, key=str) == sorted([(3, "stats of 3"), (3, "stats of 3"), (1, None)], key=str)
    plain = ToneAudioBranch().infer([it.wave for it in items])
    np.testing.assert_allclose(out.probs, plain.probs, atol=1e-6)  # input order kept


def test_voice_copies_add_augmented_clips_and_copies_of_their_pairs():
    from emotag.training.fusion import (
        Cache,
        build_pairs,
        neutral_line_indices,
        run_audio,
        run_text,
        with_voice_copies,
    )

    tb, ab = KeywordTextBranch(), ToneAudioBranch()
    texts, audio = _items(40, 14, 3)
    pairs = build_pairs(texts, audio, neutral_idx=neutral_line_indices(texts), seed=3)
    cache = Cache(run_text(tb, texts), run_audio(ab, audio))
    calls: list[list] = []

    def run(items):
        calls.append(list(items))
        return run_audio(ab, items)

    bigger, more = with_voice_copies(cache, pairs, audio, run, copies=2, seed=0)
    speech = [i for i, it in enumerate(audio) if it.label >= 0]
    assert len(calls) == 2 and all(len(c) == len(speech) for c in calls)
    for copy in calls:  # same speaker and label, another sound
        assert all(
            c.group == audio[i].group and c.label == audio[i].label for c, i in zip(copy, speech, strict=True)
        )
        assert any(
            c.wave.shape != audio[i].wave.shape or not np.allclose(c.wave, audio[i].wave)
            for c, i in zip(copy, speech, strict=True)
        )
    used = [j for j, a in enumerate(pairs.audio_idx) if a in speech]
    assert used and len(more) == len(pairs) + 2 * len(used)
    off = cache.audio.probs.shape[0]
    assert bigger.audio.probs.shape[0] == off + 2 * len(speech)
    first = slice(len(pairs), len(pairs) + len(used))
    np.testing.assert_array_equal(more.text_idx[first], pairs.text_idx[used])
    np.testing.assert_array_equal(more.label[first], pairs.label[used])
    np.testing.assert_array_equal(more.clash_direction[first], pairs.clash_direction[used])
    assert more.kind[first] == [pairs.kind[j] for j in used]
    np.testing.assert_array_equal(
        more.audio_idx[first], [off + speech.index(int(pairs.audio_idx[j])) for j in used]
    )
    np.testing.assert_allclose(bigger.audio.probs[off : off + len(speech)], run_audio(ab, calls[0]).probs)
    same_cache, same_pairs = with_voice_copies(cache, pairs, audio, run, copies=0, seed=0)
    assert same_cache is cache and same_pairs is pairs and len(calls) == 2

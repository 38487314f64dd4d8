"""Audio training data: speaker-independent splits, the user manifest, and augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emotag.errors import DataError
from emotag.training import augment
from emotag.training.audiodata import (
    Clip,
    load_clip,
    read_manifest,
    read_ravdess,
    speaker_folds,
    split_by_speaker,
    trim_silence,
)
from tests import mediagen

SR = 16000
DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"


def _fake_clips() -> list[Clip]:
    clips = []
    for a in range(1, 25):
        for lab in ("anger", "joy", "neutral"):
            clips.append(Clip(Path(f"a{a}_{lab}.wav"), lab, f"Actor_{a:02d}", "male" if a % 2 else "female"))
    return clips


def test_speaker_folds_partition_actors_and_balance_gender() -> None:
    clips = _fake_clips()
    folds = speaker_folds(clips, k=6, seed=3)
    flat = [s for f in folds for s in f]
    assert len(folds) == 6 and len(flat) == len(set(flat)) == 24
    for f in folds:
        genders = [int(s[-2:]) % 2 for s in f]
        assert sum(genders) == 2 and len(f) == 4  # 2 male + 2 female
    assert speaker_folds(clips, k=6, seed=3) == folds  # deterministic
    for f in folds:
        tr, te = split_by_speaker(clips, f)
        assert not {clips[i].speaker for i in tr} & {clips[i].speaker for i in te}
        assert len(tr) + len(te) == len(clips)


def test_ravdess_reader_and_actor_split() -> None:
    if not (DATA_DIR / "ravdess" / "labels.csv").is_file():
        pytest.skip(f"RAVDESS not found at {DATA_DIR}/ravdess (the shared data folder is missing)")
    clips = read_ravdess(DATA_DIR)
    assert len(clips) == 1440 and {c.label for c in clips} == {
        "anger",
        "disgust",
        "fear",
        "joy",
        "sadness",
        "surprise",
        "neutral",
    }
    assert sum(c.label == "neutral" for c in clips) == 288  # neutral + calm
    folds = speaker_folds(clips)
    seen: set[str] = set()
    for f in folds:
        assert not seen & set(f)
        seen |= set(f)
    assert len(seen) == 24
    x = load_clip(clips[0])
    assert x.dtype == np.float32 and 2 * SR < x.size < 6 * SR
    assert trim_silence(x).size < x.size


@pytest.mark.skipif(not mediagen.have_tools(), reason="needs ffmpeg and espeak-ng")
def test_user_manifest(tmp_path: Path) -> None:
    mediagen.speak("I am so angry with you.", tmp_path / "a.wav")
    mediagen.make_audio(tmp_path / "b.mp3", mediagen.speak("What a lovely day.", tmp_path / "b.wav"))
    (tmp_path / "m.csv").write_text(
        "audio,start,end,label,speaker\na.wav,0.1,0.9,ang,s1\nb.mp3,,,Happy,s2\nb.wav,,,boredom,s2\n,,,sad,s3\n"
    )
    clips = read_manifest(tmp_path / "m.csv")
    assert [c.label for c in clips] == ["anger", "joy"] and [c.speaker for c in clips] == ["s1", "s2"]
    a = load_clip(clips[0])
    assert abs(a.size - int(0.8 * SR)) <= 1
    assert load_clip(clips[1]).size > SR // 2  # mp3 decoded through ffmpeg
    (tmp_path / "bad.csv").write_text("path,emotion\nx.wav,sad\n")
    with pytest.raises(DataError, match="columns"):
        read_manifest(tmp_path / "bad.csv")
    with pytest.raises(DataError):
        load_clip(Clip(tmp_path / "missing.wav", "joy", "x"))


@pytest.mark.skipif(not mediagen.have_tools(), reason="needs ffmpeg and espeak-ng")
def test_user_manifest_is_read_like_an_eval_manifest(tmp_path: Path) -> None:
    """One reader for every manifest: any header case, semicolons, and times checked by line (a typo
    used to end `emotag train --audio-data` in an internal ValueError)."""
    mediagen.speak("I am so angry with you.", tmp_path / "a.wav")
    (tmp_path / "m.csv").write_text(
        "Audio;Start;End;Label;Speaker\na.wav;0.1;0.9;ANGRY;s1\na.wav;;;calm;s1\n"
    )
    clips = read_manifest(tmp_path / "m.csv")
    assert [(c.label, c.source, c.start, c.end) for c in clips] == [
        ("anger", "ANGRY", 0.1, 0.9),
        ("neutral", "calm", None, None),
    ]
    (tmp_path / "m.csv").write_text("audio,start,end,label\na.wav,soon,,angry\n")
    with pytest.raises(DataError, match=r"m.csv:2: start 'soon' is not a number of seconds"):
        read_manifest(tmp_path / "m.csv")
    (tmp_path / "m.csv").write_text("audio,start,end,label\na.wav,1.5,0.5,angry\n")
    with pytest.raises(DataError, match=r"m.csv:2: end 0.5 s is not after start 1.5 s"):
        read_manifest(tmp_path / "m.csv")
    with pytest.raises(DataError, match=r"a.wav: the clip from 60 s is outside the audio"):
        load_clip(Clip(tmp_path / "a.wav", "anger", "s1", start=60.0, end=61.0))


def test_augmentations_are_seeded_and_sane() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(2 * SR) / SR
    x = (0.3 * np.sin(2 * np.pi * 200 * t) * (t < 1.5)).astype(np.float32)
    pool = [x, x[::-1].copy(), 0.5 * x]
    a = augment.augment(x, np.random.default_rng(5), pool=pool)
    b = augment.augment(x, np.random.default_rng(5), pool=pool)
    assert np.array_equal(a, b) and a.dtype == np.float32 and np.isfinite(a).all()
    assert np.abs(augment.gain(x, rng)).max() <= 1.0
    n = augment.add_noise(x, rng, snr_db=(10, 10))
    snr = 10 * np.log10(np.mean(x**2) / np.mean((n - x) ** 2))
    assert abs(snr - 10) < 0.5
    assert augment.resample(x, 1.25).size == pytest.approx(x.size / 1.25, abs=2)
    ps = augment.pitch_shift(x, 3.0)
    assert abs(ps.size - x.size) < 0.05 * x.size
    spec = np.abs(np.fft.rfft(ps[:SR]))
    peak = np.fft.rfftfreq(SR, 1 / SR)[spec.argmax()]
    assert 225 < peak < 250  # 200 Hz up 3 semitones = 238 Hz
    assert augment.time_stretch(x, 1.5).size == pytest.approx(x.size / 1.5, rel=0.08)
    r = augment.reverb(x, rng)
    assert r.size == x.size and np.abs(r[int(1.6 * SR) :]).max() > 0  # tail rings into the silence
    c = augment.crop_and_pad(x, rng)
    assert SR // 2 < c.size < x.size + 1.3 * SR


@pytest.mark.skipif(not mediagen.have_tools(), reason="needs ffmpeg")
def test_real_codec_degradation_keeps_length() -> None:
    t = np.arange(SR) / SR
    x = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    for codec in ("mp3", "opus"):
        y = augment.degrade_real(x, np.random.default_rng(1), codec=codec)
        assert y.shape == x.shape and np.isfinite(y).all() and np.abs(y).max() > 0.01


@pytest.mark.skipif(not mediagen.have_tools(), reason="needs ffmpeg and espeak-ng")
def test_train_audio_on_a_user_manifest(tmp_path: Path) -> None:
    from emotag.models.audio import AudioBranch
    from emotag.training.audio import TrainConfig, train_audio

    lines = []
    for s, (pitch, speed) in enumerate([(20, 150), (50, 170), (80, 190)]):
        said = (("angry", "Get out of here now!"), ("sad", "I miss her so much."), ("neu", "It is noon."))
        for lab, text in said:
            name = f"s{s}_{lab}.wav"
            mediagen.speak(text, tmp_path / name, pitch=pitch, speed=speed)
            lines.append(f"{name},,,{lab},spk{s}")
    (tmp_path / "m.csv").write_text("audio,start,end,label,speaker\n" + "\n".join(lines) + "\n")
    out = tmp_path / "model"
    msgs: list[str] = []
    rep = train_audio(
        tmp_path,
        out,
        audio_data=tmp_path / "m.csv",
        progress=msgs.append,
        cfg=TrainConfig(n_variants=1, epochs=2, batch_size=4, mixup_p=1.0),  # every batch a mixup pair
    )
    assert rep["validation_speakers"] and not set(rep["validation_speakers"]) & set(rep["train_speakers"])
    assert any("epoch 2/2" in m for m in msgs)
    br = AudioBranch.from_dir(out)
    assert br.infer([mediagen.read_wav(tmp_path / "s0_sad.wav")]).probs.shape == (1, 7)
    (tmp_path / "one.csv").write_text("audio,label\ns0_sad.wav,sad\n")
    with pytest.raises(DataError, match="2 speakers"):
        one = TrainConfig(n_variants=1, epochs=1)
        train_audio(tmp_path, tmp_path / "m2", audio_data=tmp_path / "one.csv", cfg=one)

"""tag()/score()/segments(): the orchestration, on real generated media with a keyword model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import emotag
from emotag.errors import InputError, SubtitleError
from emotag.models.base import SAMPLE_RATE
from emotag.pipeline import MIN_AUDIO_MS, PAD_MS, TagOptions, score, segments, slice_audio
from emotag.timeline import Cue
from tests.conftest import KeywordModel


def test_tag_reads_sidecar_and_scores_every_cue(
    talk: Path, speech_media, keyword_model: KeywordModel
) -> None:
    _, cues = speech_media
    track = emotag.tag(talk, model=keyword_model)

    assert track.source.startswith("sidecar:")
    assert track.model == "keyword-test-model"
    assert [(tc.start_ms, tc.end_ms, tc.cue.text) for tc in track] == cues
    assert [tc.label for tc in track] == ["joy", "anger", "neutral"]
    assert track.media.fps is not None and track.media.has_video
    assert abs(track.media.duration_ms - (cues[-1][1] + 300)) < 150
    # every cue's audio slice holds that cue's speech (loud) with the padding around it
    for seg, (start, end, _) in zip(keyword_model.seen, cues, strict=True):
        assert seg.audio is not None
        assert abs(len(seg.audio) - (end - start + 2 * PAD_MS) * SAMPLE_RATE / 1000) <= 2
        assert float(np.sqrt(np.mean(seg.audio**2))) > 0.02
    # the joyful words with a lively voice are flagged as a mismatch by this model
    assert track.cues[0].mismatched and not track.cues[2].mismatched


def test_context_is_previous_cues_text(talk: Path, keyword_model: KeywordModel) -> None:
    emotag.tag(talk, model=keyword_model, context=1)
    contexts = [seg.context for seg in keyword_model.seen]
    assert contexts[0] == ()
    assert contexts[1] == ("I am so happy today, this is wonderful.",)
    assert contexts[2] == ("I hate this, get out of my house.",)


def test_explicit_subs_win_over_sidecar(tmp_path: Path, talk: Path, keyword_model: KeywordModel) -> None:
    other = tmp_path / "other.srt"
    other.write_text("1\n00:00:00,300 --> 00:00:01,000\nI miss you\n", encoding="utf-8")
    track = emotag.tag(talk, model=keyword_model, options=TagOptions(subs=str(other)))
    assert track.source.startswith("file:")
    assert [tc.label for tc in track] == ["sadness"]


def test_no_subtitles_and_no_asr_is_a_clear_error(tmp_path: Path, speech_media, keyword_model) -> None:
    src, _ = speech_media
    bare = tmp_path / "bare.mp4"
    bare.write_bytes(src.read_bytes())
    with pytest.raises(SubtitleError, match="bare.mp4"):
        emotag.tag(bare, model=keyword_model, asr="none")


@pytest.mark.parametrize("make", ["missing", "directory"])
def test_bad_input_paths(tmp_path: Path, make: str, keyword_model: KeywordModel) -> None:
    target = tmp_path / "x.mp4"
    if make == "directory":
        target.mkdir()
    with pytest.raises(InputError, match="x.mp4"):
        emotag.tag(target, model=keyword_model)
    assert keyword_model.seen == []


def test_unknown_option_is_a_type_error(talk: Path, keyword_model: KeywordModel) -> None:
    with pytest.raises(TypeError, match="bogus"):
        emotag.tag(talk, model=keyword_model, bogus=1)


def test_wild_cues_overlapping_zero_length_and_past_the_end(keyword_model: KeywordModel) -> None:
    audio = np.zeros(SAMPLE_RATE * 3, dtype=np.float32)
    audio[SAMPLE_RATE : 2 * SAMPLE_RATE] = 0.3  # one loud second
    cues = [
        Cue(1, 900, 2100, "first speaker, happy"),
        Cue(2, 1000, 2000, "second speaker overlaps"),
        Cue(3, 1500, 1500, "zero length"),
        Cue(4, 5000, 6000, "after the end of the audio"),
    ]
    tagged = list(score(cues, audio, keyword_model, batch_size=3))
    assert [tc.cue.index for tc in tagged] == [1, 2, 3, 4]
    segs = keyword_model.seen
    assert segs[0].audio is not None and segs[1].audio is not None
    assert segs[2].audio is not None and len(segs[2].audio) == MIN_AUDIO_MS * SAMPLE_RATE // 1000
    assert segs[3].audio is None and tagged[3].audio is None
    assert tagged[0].label == "joy" and tagged[1].label == "neutral"


def test_cues_after_the_end_of_the_audio_are_reported(
    tmp_path: Path, talk: Path, speech_media, keyword_model: KeywordModel
) -> None:
    """Subtitles of another cut (or shifted): the cues past the end are scored on words and named."""
    _, cues = speech_media
    other = tmp_path / "longer.srt"
    lines = [f"{i}\n00:00:0{i},000 --> 00:00:0{i},800\nI miss you\n" for i in range(1, 3)]
    lines += [
        "3\n00:01:30,000 --> 00:01:31,000\nwhat a wonderful day\n",
        "4\n00:01:00,000 --> 00:01:01,000\nbye\n",
    ]
    other.write_text("\n".join(lines), encoding="utf-8")
    track = emotag.tag(talk, model=keyword_model, options=TagOptions(subs=str(other)))
    assert [tc.audio is None for tc in track] == [False, False, True, True]
    assert track.media.duration_ms < 60_000
    assert track.warnings[0] == "cues were out of order; sorted by start time and renumbered"
    assert len(track.warnings) == 2 and track.warnings[1].startswith(
        "2 cue(s) start after the audio ends at 00:00:0"
    )
    assert "(first: cue 3 at 00:01:00,000) and were scored on their words alone" in track.warnings[1]
    assert not emotag.tag(talk, model=keyword_model).warnings  # its own sidecar fits


def test_segments_text_only_and_markup_stripped() -> None:
    cues = [Cue(1, 0, 1000, "<i>Hello</i> {\\an8}there"), Cue(2, 1000, 2000, "")]
    segs = segments(cues, None, context=2)
    assert segs[0].text == "Hello there" and segs[0].audio is None
    assert segs[1].context == ("Hello there",)


def test_slice_audio_clamps_to_the_file() -> None:
    audio = np.ones(SAMPLE_RATE, dtype=np.float32)
    piece = slice_audio(audio, 0, 900)
    assert piece is not None and len(piece) == SAMPLE_RATE  # start padding clamped at 0, end at the file end


class _FileBound(KeywordModel):
    """A keyword model that normalises per file: records what ``for_file`` was given."""

    def __init__(self) -> None:
        super().__init__()
        self.bound: list[list[str | None]] = []

    def for_file(self, segments):  # the EmotionModel extension the pipeline looks for
        self.bound.append([s.speaker for s in segments])
        return self


@pytest.mark.parametrize(
    ("group_by", "bound"),
    [("speaker", [["Ann", None, "Bob"]]), ("file", [[None, None, None]]), ("none", [])],
)
def test_voice_grouping_decides_what_the_model_is_bound_with(group_by: str, bound: list) -> None:
    audio = np.full(SAMPLE_RATE * 3, 0.2, dtype=np.float32)
    cues = [
        Cue(1, 0, 900, "hi", speaker="Ann"),
        Cue(2, 1000, 1900, "hello"),
        Cue(3, 2000, 2900, "hey", "Bob"),
    ]
    model = _FileBound()
    tagged = list(score(cues, audio, model, group_by=group_by))
    assert model.bound == bound  # "none": never bound to the file
    names = ["Ann", None, "Bob"] if group_by == "speaker" else [None, None, None]
    assert [s.speaker for s in model.seen] == names
    assert [tc.cue.speaker for tc in tagged] == ["Ann", None, "Bob"]  # the cues themselves keep their names


def test_unknown_voice_grouping_is_refused_before_any_work(
    tmp_path: Path, keyword_model: KeywordModel
) -> None:
    with pytest.raises(ValueError, match="voice grouping 'actor'"):
        list(score([Cue(1, 0, 900, "hi")], None, keyword_model, group_by="actor"))
    with pytest.raises(ValueError, match="speaker, file, none"):
        emotag.tag(tmp_path / "missing.mp4", model=keyword_model, group_by="actor")  # before the path check


def test_the_model_reads_the_words_without_the_speaker_label() -> None:
    cues = [
        Cue(1, 0, 900, "[SPEAKER_00]: <i>I hate</i> mondays", speaker="SPEAKER_00"),
        Cue(2, 1000, 1900, "JOHN: me too", speaker="Mary"),  # a label naming someone else stays
        Cue(3, 2000, 2900, "Note: no speaker"),
    ]
    segs = segments(cues, None, context=2)
    assert [s.text for s in segs] == ["I hate mondays", "JOHN: me too", "Note: no speaker"]
    assert segs[2].context == ("I hate mondays", "JOHN: me too")
    assert [s.speaker for s in segs] == ["SPEAKER_00", "Mary", None]
    assert [s.speaker for s in segments(cues, None, speakers=False)] == [None, None, None]

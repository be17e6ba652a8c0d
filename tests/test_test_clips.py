"""What counts as a test clip, as the reference counts it.

Undecodable and empty clips are in no denominator (the reference's decoder warns and moves on, and
it filters empty audio); a labelled clip the encoder failed on or made non-finite is scored as a
wrong answer. Audio is read under the reference's extensions in its order; m4a, which its rename
list misspells, is never read.
"""

from __future__ import annotations

import io
import json

import numpy as np
import soundfile as sf

from xares_llm.audio.decoding import AUDIO_EXTENSIONS
from xares_llm.audio.shards import Sample
from xares_llm.cache import FeatureSplit, SourceInfo
from xares_llm.cache.format import split_dir
from xares_llm.cache.writer import PartBuffer, write_part
from xares_llm.extract.decode import DecodedWindow, DropReason, add_sample, dropped
from xares_llm.tasks.data import NOT_CLIPS, read_targets
from xares_llm.tasks.schema import load_task

META = json.dumps({"text": "dog"})  # esc50 reads its test labels under `text`


def wav(seconds: float = 0.1) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(int(16000 * seconds), dtype=np.float32), 16000, format="WAV")
    return buffer.getvalue()


def test_undecodable_and_empty_clips_are_left_out_and_encoder_failures_score_as_wrong(tmp_path):
    assert set(NOT_CLIPS) <= {str(r) for r in DropReason}
    buffer = PartBuffer(dim=2, dtype="float32")
    buffer.add("kept", np.zeros((3, 2), dtype=np.float32), META, 4800)
    buffer.dropped = [
        dropped("broken", DropReason.UNDECODABLE, "cannot decode broken.flac", META),
        dropped("silent", DropReason.EMPTY, meta=META),
        dropped("m4a_only", DropReason.NO_AUDIO, "m4a audio"),
        dropped("failed", DropReason.ENCODER, "CUDA out of memory", META),
        dropped("nan", DropReason.NONFINITE, "frames with NaN", META),
    ]
    directory = split_dir(tmp_path, "enc", "esc50", "test")
    write_part(directory / "part-0.zarr", buffer, SourceInfo("0.tar", 1, "00", 0))
    split = read_targets(load_task("esc50"), FeatureSplit(tmp_path, "enc", "esc50", "test"), "test")
    assert [d.key for d in split.dropped] == ["failed", "nan"]  # scored as empty predictions
    assert split.counts.dropped == 5 and split.counts.dropped_scored == 2
    assert split.counts.left_out == {"undecodable": 1, "empty audio": 1, "no audio": 1}
    assert split.counts.to_dict()["left_out"] == split.counts.left_out  # what scores.json shows


def decoded(files: dict[str, bytes]) -> DecodedWindow:
    window = DecodedWindow(SourceInfo("0.tar", 1, "00", 0))
    add_sample(window, Sample("clip", {**files, "json": META.encode()}), ["text"])
    return window


def test_the_references_extensions_in_its_order_and_m4a_never():
    assert AUDIO_EXTENSIONS == ("flac", "mp3", "sox", "wav", "ogg", "wma", "opus")
    window = decoded({"m4a": b"\x00\x00\x00\x20ftypM4A "})
    assert window.keys == [] and window.dropped[0]["reason"] == "no audio"
    assert "m4a" in window.dropped[0]["detail"] and "never reads it" in window.dropped[0]["detail"]
    # mp3 comes before wav in the reference's list: a broken mp3 beside a good wav is undecodable
    window = decoded({"wav": wav(), "mp3": b"not an mp3"})
    assert window.keys == [] and window.dropped[0]["reason"] == "undecodable"
    assert "clip.mp3" in window.dropped[0]["detail"]
    for ext in ("wma", "sox"):  # the reference lists them; this soundfile cannot read them: said per clip
        window = decoded({ext: b"\x30\x26\xb2\x75 not readable here"})
        assert window.dropped[0]["reason"] == "undecodable" and f"clip.{ext}" in window.dropped[0]["detail"]
    assert decoded({"wav": wav(), "m4a": b"x"}).keys == ["clip"]
    empty = decoded({"wav": wav(0)})
    assert empty.keys == [] and empty.dropped[0]["reason"] == "empty audio"


def test_the_score_table_names_the_clips_in_no_denominator():
    from xares_llm.cli.render import scores_table
    from xares_llm.scoring.score import Scores, TaskScore

    score = TaskScore("esc50", "A", "accuracy", 0.5, 398, {}, 2, n_left_out={"undecodable": 2, "empty audio": 1})
    table = scores_table(Scores({"esc50": score}, {"A": 0.5}, 0.5))
    assert "in no denominator (as the reference): esc50 1 empty audio, 2 undecodable" in table.caption

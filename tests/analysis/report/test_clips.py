"""Audio examples: where a clip sits in its segment, its level, the bytes cut from the shard."""

import io
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from analysis import open_store
from analysis.report.assets import Assets
from analysis.report.clips import (
    _write_clip,
    clip_window,
    cut_clips,
    locate_examples,
    normalise_peak,
)
from shards.tarsafe import find_members
from sonotype import audio
from sonotype.config.report import ReportConfig
from tests.analysis.report.fake_out import FRAME_RATE, SAMPLE_RATE, FakeOut


def test_clip_window_takes_the_first_window_densest_in_the_sonotype():
    labels = np.array([0, 0, 1, 1, 1, 0, 1, 1, 1, 1])
    # 4-frame windows hold 2, 3, 3, 3, 3, 3, 4 frames of sonotype 1: the last one wins.
    assert clip_window(labels, 1, 10.0, 1.0, 4.0) == (6.0, 4.0)
    # Sonotype 0 is densest in the first window.
    assert clip_window(labels, 0, 10.0, 1.0, 4.0) == (0.0, 4.0)


def test_clip_window_without_labels_is_the_middle_and_short_segments_are_whole():
    assert clip_window(None, 0, 10.0, 1.0, 4.0) == (3.0, 4.0)
    assert clip_window(np.zeros(20), 0, 2.0, 10.0, 3.0) == (0.0, 2.0)


def test_normalise_peak_reaches_the_level_with_bounded_gain():
    clip = np.array([0.1, -0.05, 0.02], np.float32)
    louder = normalise_peak(clip, -1.0, 40.0)
    assert np.abs(louder).max() == pytest.approx(10 ** (-1 / 20), rel=1e-6)
    assert louder / louder[0] == pytest.approx(clip / clip[0])
    quiet = np.array([1e-4, -1e-4], np.float32)
    assert np.abs(normalise_peak(quiet, -1.0, 40.0)).max() == pytest.approx(1e-2)
    assert normalise_peak(clip, None, 40.0) is clip
    assert not normalise_peak(np.zeros(3, np.float32), -1.0, 40.0).any()


@pytest.fixture
def out_copy(fake_out: FakeOut, tmp_path: Path) -> Path:
    target = tmp_path / "out"
    shutil.copytree(fake_out.out, target)
    return target


def _source_samples(out: Path, shard: str, key: str) -> np.ndarray:
    with open(out / "shards" / shard, "rb") as handle:
        data = find_members(handle, shard, [f"{key}.flac"])[f"{key}.flac"]
    return audio.decode_bytes(data)[0]


def test_clips_are_cut_from_the_shards_where_the_sonotype_is(out_copy: Path):
    store = open_store(str(out_copy / "features.zarr"))
    labels = store.array("labels/default")[:]
    # Segment 0 holds blob 0 in its first second and blob 1 in its second one (fake_out).
    second_half = int(labels[15])
    assert int(labels[5]) != second_half
    config = ReportConfig(clip_s=1.0)
    examples = locate_examples(store, [(second_half, 0, 0.5, 0.1)], "default", config.clip_s)
    assert (examples[0].clip_start_s, examples[0].clip_s) == (1.0, 1.0)
    assets = Assets(str(out_copy / "report"))
    [done] = cut_clips(str(out_copy), examples, assets, config)
    assert done.problem is None
    assert done.audio_src.endswith(".flac")
    assert done.mime == "audio/flac"
    written, rate = audio.read(out_copy / "report" / done.audio_src)
    source = _source_samples(out_copy, done.shard, done.key)
    expected = normalise_peak(source[SAMPLE_RATE:], -1.0, config.clip_max_gain_db)
    assert rate == SAMPLE_RATE
    assert written[:, 0] == pytest.approx(expected, abs=2 / 32768)
    assert (done.image.width, done.image.height) == (240, 95)
    assert (out_copy / "report" / done.image.src).read_bytes()[:2] == b"\xff\xd8"  # JPEG


def test_wav_clips_are_16_bit(out_copy: Path):
    store = open_store(str(out_copy / "features.zarr"))
    config = ReportConfig(clip_format="wav", clip_peak_dbfs=None)
    examples = locate_examples(store, [(0, 4, 1.0, 0.1)], "default", config.clip_s)
    [done] = cut_clips(str(out_copy), examples, Assets(str(out_copy / "report")), config)
    data = (out_copy / "report" / done.audio_src).read_bytes()
    info = audio.probe_bytes(data)
    assert (info.format, info.subtype, done.mime) == ("WAV", "PCM_16", "audio/wav")
    source = _source_samples(out_copy, done.shard, done.key)
    assert audio.decode_bytes(data)[0] == pytest.approx(source, abs=1 / 32768)
    assert done.clip_s == pytest.approx(len(source) / SAMPLE_RATE)


def test_a_missing_shard_or_sample_is_a_problem_not_a_crash(out_copy: Path):
    store = open_store(str(out_copy / "features.zarr"))
    chosen = [(0, 0, 1.0, 0.1), (1, 9, 1.0, 0.1), (2, 10, 1.0, 0.1)]
    examples = locate_examples(store, chosen, "default", 1.0)
    (out_copy / "shards" / examples[0].shard).unlink()
    examples[2] = replace(examples[2], key="nokey")
    done = cut_clips(str(out_copy), examples, Assets(str(out_copy / "report")), ReportConfig())
    assert "not found" in done[0].problem
    assert done[0].audio_src is None
    assert done[1].problem is None
    assert done[2].problem == f"nokey.flac not in shard {examples[2].shard}"


def test_locate_examples_reads_rows_and_frames_of_the_store(fake_out: FakeOut):
    store = open_store(fake_out.store)
    examples = locate_examples(store, [(3, 47, 1.0, 0.2)], "default", 10.0)
    row = fake_out.segment_rows[47]
    assert (examples[0].key, examples[0].shard, examples[0].site) == (
        row["key"],
        row["shard"],
        row["site"],
    )
    assert examples[0].start_time == row["start_time"]
    assert (examples[0].clip_start_s, examples[0].clip_s) == (0.0, 20 / FRAME_RATE)


def test_an_empty_or_undecodable_sample_is_a_problem(out_copy: Path):
    store = open_store(str(out_copy / "features.zarr"))
    [example] = locate_examples(store, [(0, 4, 1.0, 0.1)], "default", 1.0)
    assets = Assets(str(out_copy / "report"))
    config = ReportConfig()
    before = sorted((out_copy / "report").rglob("*"))
    buffer = io.BytesIO()
    audio.write(buffer, np.zeros(0, np.float32), SAMPLE_RATE, "WAV")  # a valid, empty file
    empty = buffer.getvalue()
    broken = _write_clip(example, {example.key: empty}, None, assets, config)
    assert broken.problem == f"{example.key}: the sample holds no audio"
    garbage = _write_clip(example, {example.key: b"RIFF1234"}, None, assets, config)
    assert "not decodable audio" in garbage.problem
    assert garbage.audio_src is None
    assert sorted((out_copy / "report").rglob("*")) == before
    assert assets.n_files == {"img": 0, "audio": 0}

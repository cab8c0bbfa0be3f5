"""One task end to end without Dask: shard audio equals a one-shot resample, figures are right,
long files split into tasks give the same segments, bad files leave nothing behind."""

import io
from pathlib import Path

import numpy as np
import pytest
import soxr

from ingest.discover import discover
from ingest.plan import TaskSpec
from ingest.process import process_task
from ingest.scan import scan_file
from sonotype import audio
from sonotype.config.ingest import IngestConfig
from tests.audio_factory import AudioFactory, sine
from tests.ingest.helpers import read_shards, short_config

LSB = 1 / 32768


def _tasks(folder: Path, config: IngestConfig) -> list[TaskSpec]:
    found = [f for f in discover([str(folder)], config.discover) if f.ignore_reason is None]
    return [t for f in found for t in scan_file(f, config, {}, {}, redo=False).tasks]


def _run(folder: Path, out: Path, config: IngestConfig) -> list:
    return [process_task(task, config, str(out)) for task in _tasks(folder, config)]


def _quantised(samples: np.ndarray) -> np.ndarray:
    return audio.float_to_int16(samples).astype(np.float32) * LSB


def test_segments_hold_the_resampled_recording(audio_factory: AudioFactory, tmp_path: Path):
    source = 0.5 * sine(3.5, 48000, 440.0) + 0.2 * sine(3.5, 48000, 3000.0)
    audio_factory.write("S/20240101_000000.wav", source, 48000)
    config = short_config()
    [result] = _run(audio_factory.root, tmp_path / "out", config)
    assert (result.error, result.n_kept, result.n_dropped) == (None, 4, 0)
    samples = read_shards(tmp_path / "out")
    keys = sorted(samples)
    assert [k.rsplit("_", 2)[1:] for k in keys] == [["s0", f"{i:06d}"] for i in range(4)]
    stored = np.concatenate([samples[k][0] for k in keys])
    read_back, _ = audio.read(audio_factory.root / "S/20240101_000000.wav")
    expected = _quantised(soxr.resample(read_back[:, 0], 48000, 24000, quality="HQ"))
    assert len(stored) == len(expected) == 84000
    np.testing.assert_allclose(stored, expected, atol=1.01 * LSB)
    meta = samples[keys[3]][1]
    assert (meta["offset_s"], meta["duration_s"], meta["start_time"]) == (
        3.0,
        0.5,
        "2024-01-01T00:00:03Z",
    )
    assert meta["shard"] == f"S/{meta['recording_id']}.tar"


def test_figures_of_a_full_scale_sine(audio_factory: AudioFactory, tmp_path: Path):
    audio_factory.write("S/20240101_000000.wav", sine(2.0, 24000, 1000.0, 1.0), 24000, "FLOAT")
    _run(audio_factory.root, tmp_path / "out", short_config("quality.max_clipped_fraction=null"))
    for _, meta in read_shards(tmp_path / "out").values():
        assert meta["rms_dbfs"] == pytest.approx(-3.0103, abs=1e-3)
        assert meta["peak"] == pytest.approx(1.0, abs=1e-4)
        assert meta["dc_offset"] == pytest.approx(0.0, abs=1e-4)
        # A 1 kHz sine sampled at 24 kHz steps by 15°: only 90° and 270° reach
        # |x| ≥ 0.999, 2 samples in 24.
        assert meta["clipped_fraction"] == pytest.approx(1 / 12)
        assert meta["is_silent"] is False
        assert meta["has_nonfinite"] is False


def test_a_long_recording_split_into_tasks_gives_the_same_segments(
    audio_factory: AudioFactory, tmp_path: Path
):
    rng = np.random.default_rng(3)
    source = (0.2 * rng.standard_normal(44100 * 7)).astype(np.float32)
    audio_factory.write("S/20240101_000000.flac", source, 44100)
    whole = short_config()
    split = short_config("job.max_task_s=2.0")
    assert len(_tasks(audio_factory.root, whole)) == 1
    assert [(t.first_segment, t.stop_segment) for t in _tasks(audio_factory.root, split)] == [
        (0, 2),
        (2, 4),
        (4, 6),
        (6, None),
    ]
    _run(audio_factory.root, tmp_path / "whole", whole)
    _run(audio_factory.root, tmp_path / "split", split)
    one, parts = read_shards(tmp_path / "whole"), read_shards(tmp_path / "split")
    assert sorted(one) == sorted(parts)
    assert len(one) == 7
    for key in one:
        np.testing.assert_allclose(parts[key][0], one[key][0], atol=1.01 * LSB)
    shards = sorted(p.name for p in (tmp_path / "split" / "shards" / "S").iterdir())
    assert [name.rsplit("-", 1)[1] for name in shards] == [f"p00{i}.tar" for i in range(4)]


def test_each_channel_is_its_own_stream(audio_factory: AudioFactory, tmp_path: Path):
    audio_factory.tone("S/20240101_000000.wav", duration_s=2.0, sample_rate=24000, channels=2)
    _run(audio_factory.root, tmp_path / "out", short_config("channels.policy=each"))
    samples = read_shards(tmp_path / "out")
    by_stream = {
        meta["stream"]: (data, meta) for data, meta in samples.values() if meta["offset_s"] == 0.0
    }
    assert {s: m["channel"] for s, (_, m) in by_stream.items()} == {0: 0, 1: 1}
    # The factory's channel c is 440·(c+1) Hz: count zero crossings in 1 s.
    crossings = {s: np.count_nonzero(np.diff(np.signbit(d))) for s, (d, _) in by_stream.items()}
    assert crossings[0] == pytest.approx(880, abs=2)
    assert crossings[1] == pytest.approx(1760, abs=2)


def test_nan_and_inf_are_replaced_and_flagged(audio_factory: AudioFactory, tmp_path: Path):
    audio_factory.with_nan("S/20240101_000000.wav")  # NaN at 0.5 s, Inf at 1.0 s (16 kHz)
    _run(audio_factory.root, tmp_path / "out", short_config("quality.drop_nonfinite=false"))
    samples = read_shards(tmp_path / "out")
    flags = {m["offset_s"]: m["has_nonfinite"] for _, m in samples.values()}
    assert flags == {0.0: True, 1.0: True}
    for data, _ in samples.values():
        assert np.isfinite(data).all()
    first = next(d for d, m in samples.values() if m["offset_s"] == 0.0)
    # The 100 NaN samples at 0.5 s became zeros (6.25 ms, 150 output samples), so
    # the resampled signal is near zero there, away from the filter's edges.
    assert np.max(np.abs(first[12000 + 20 : 12000 + 130])) < 0.05


def test_dropped_segments_are_rows_but_not_samples(audio_factory: AudioFactory, tmp_path: Path):
    source = sine(3.0, 16000)
    source[16000:32000] = 0.0  # the middle second is a dropout
    audio_factory.write("S/20240101_000000.wav", source, 16000)
    [result] = _run(audio_factory.root, tmp_path / "out", short_config())
    assert (result.n_kept, result.n_dropped, result.drop_reasons) == (2, 1, {"silence": 1})
    dropped = [r for r in result.records if not r.kept]
    assert [(r.offset_s, r.drop_reason, r.shard, r.is_silent) for r in dropped] == [
        (1.0, "silence", None, True)
    ]
    assert {m["offset_s"] for _, m in read_shards(tmp_path / "out").values()} == {0.0, 2.0}


def test_the_tail_rule_pad_fills_with_zeros(audio_factory: AudioFactory, tmp_path: Path):
    audio_factory.write("S/20240101_000000.wav", sine(2.5, 24000), 24000)
    _run(audio_factory.root, tmp_path / "out", short_config("segment.tail=pad"))
    tail = next(d for d, m in read_shards(tmp_path / "out").values() if m["offset_s"] == 2.0)
    assert len(tail) == 24000
    assert np.abs(tail[:12000]).max() > 0.4
    assert not tail[12000:].any()


def test_a_file_failing_part_way_leaves_no_shard_and_no_rows(tmp_path: Path):
    folder = tmp_path / "audio" / "S"
    folder.mkdir(parents=True)
    data = folder / "x.flac"
    buffer = io.BytesIO()
    audio.write(buffer, sine(4.0, 16000), 16000, "FLAC")
    data.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    [result] = _run(tmp_path / "audio", tmp_path / "out", short_config())
    assert result.error is not None
    assert "x.flac" in result.error
    assert list((tmp_path / "out").rglob("*.tar")) == []
    assert list((tmp_path / "out").rglob("*.tmp-*")) == []
    assert result.records == []


@pytest.mark.parametrize(
    ("name", "subtype"),
    [
        ("a.wav", "PCM_16"),
        ("b.wav", "PCM_24"),
        ("c.wav", "FLOAT"),
        ("d.flac", "PCM_16"),
        ("e.ogg", None),
        ("f.mp3", None),
    ],
)
def test_every_supported_format_gives_its_segments(
    audio_factory: AudioFactory, tmp_path: Path, name: str, subtype: str | None
):
    source = sine(2.5, 32000, 440.0)  # amplitude 0.5
    if subtype is None:
        audio_factory.write(f"S/{name}", source, 32000)
    else:
        audio_factory.write(f"S/{name}", source, 32000, subtype)
    [result] = _run(audio_factory.root, tmp_path / "out", short_config())
    assert (result.error, result.n_kept) == (None, 3)
    stored = np.concatenate(
        [
            d
            for d, _ in sorted(
                read_shards(tmp_path / "out").values(), key=lambda s: s[1]["offset_s"]
            )
        ]
    )
    assert len(stored) == 60000
    # Lossy codecs shift and smear the tone a little; its level survives.
    assert np.sqrt(np.mean(stored[2400:-2400] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)

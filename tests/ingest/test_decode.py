"""Inspecting and reading recordings: each broken kind gives its reason; block reads are whole."""

import io
from pathlib import Path

import numpy as np
import pytest

from ingest.decode import inspect_recording, iter_source
from sonotype import audio
from sonotype.errors import AudioDecodeError
from tests.audio_factory import AudioFactory, sine


@pytest.mark.parametrize(
    ("maker", "reason"),
    [
        ("zero_bytes", r"empty file \(0 bytes\), expected an audio file"),
        ("not_audio", r"not readable as audio"),
        ("header_only", r"no audio samples \(header only\)"),
        (
            "truncated",
            r"truncated: the header declares 2\.000 s of audio, the file holds 0\.999 s",
        ),
    ],
)
def test_broken_files_are_refused_with_their_reason(
    audio_factory: AudioFactory, maker: str, reason: str
):
    path = getattr(audio_factory, maker)()
    with pytest.raises(AudioDecodeError, match=reason) as caught:
        inspect_recording(str(path), path.stat().st_size)
    assert str(path) in str(caught.value)


def test_a_flac_cut_short_fails_part_way_through_reading(tmp_path: Path):
    buffer = io.BytesIO()
    audio.write(buffer, sine(4.0, 16000), 16000, "FLAC")
    path = tmp_path / "cut.flac"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    info = inspect_recording(str(path), path.stat().st_size)
    assert info.frames == 64000
    with pytest.raises(AudioDecodeError, match=r"decoding failed part-way|truncated"):
        for _ in iter_source(str(path), info, 0, None, 4000):
            pass


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
def test_blockwise_frame_ranges_equal_the_whole_read(audio_factory: AudioFactory, subtype: str):
    path = audio_factory.tone("x.wav", 1.0, sample_rate=8000, channels=2, subtype=subtype)
    whole, _ = audio.read(path)
    info = inspect_recording(str(path), path.stat().st_size)
    blocks = list(iter_source(str(path), info, 1000, 7001, block_frames=777))
    assert all(len(b) <= 777 for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks), whole[1000:7001])
    rest = np.concatenate(list(iter_source(str(path), info, 7001, None, block_frames=500)))
    np.testing.assert_array_equal(rest, whole[7001:])


def test_float_files_pass_nonfinite_samples_through(audio_factory: AudioFactory):
    path = audio_factory.with_nan()
    info = inspect_recording(str(path), path.stat().st_size)
    data = np.concatenate(list(iter_source(str(path), info, 0, None, 4096)))
    assert np.isnan(data).sum() == 100
    assert np.isinf(data).sum() == 10

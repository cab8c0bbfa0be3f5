"""Crops: positions, gain normalisation (hand-computed levels), decoding a range only."""

import math
import random

import numpy as np
import pytest

from shards.crops import CropSpec, cut, fixed_offsets, normalise_gain, random_offsets
from sonotype import audio
from sonotype.errors import AudioDecodeError
from tests.audio_factory import sine


def _level_db(values: np.ndarray, kind: str) -> float:
    if kind == "peak":
        return 20 * math.log10(float(np.max(np.abs(values))))
    return 20 * math.log10(float(np.sqrt(np.mean(np.square(values, dtype=np.float64)))))


def test_random_offsets_stay_inside_the_segment_and_follow_the_rng():
    offsets = random_offsets(10_000, 2_000, 50, random.Random(1))
    assert all(0 <= o <= 8_000 for o in offsets)
    assert offsets == random_offsets(10_000, 2_000, 50, random.Random(1))
    assert len(set(offsets)) > 40
    assert random_offsets(1_500, 2_000, 3, random.Random(1)) == [0, 0, 0]


def test_fixed_offsets_are_centred_or_spread():
    assert fixed_offsets(10_000, 2_000, 1) == [4_000]
    assert fixed_offsets(10_000, 2_000, 3) == [0, 4_000, 8_000]
    assert fixed_offsets(1_000, 2_000, 2) == [0, 0]


def test_peak_normalisation_reaches_the_target_peak():
    crop = sine(0.5, 8000, 440.0, amplitude=0.1)  # peak -20 dBFS
    out = normalise_gain(crop, "peak", target_dbfs=-3.0, max_gain_db=30.0)
    assert _level_db(out, "peak") == pytest.approx(-3.0, abs=0.01)


def test_rms_normalisation_reaches_the_target_rms_without_exceeding_full_scale():
    crop = sine(0.5, 8000, 440.0, amplitude=0.1)  # RMS -23.01 dBFS, peak -20 dBFS
    out = normalise_gain(crop, "rms", target_dbfs=-13.0, max_gain_db=30.0)
    assert _level_db(out, "rms") == pytest.approx(-13.0, abs=0.01)
    # A full-scale sine has RMS -3.01 dBFS: asking for -1 dBFS would clip, so the peak stops at 0.
    loud = normalise_gain(crop, "rms", target_dbfs=-1.0, max_gain_db=30.0)
    assert _level_db(loud, "peak") == pytest.approx(0.0, abs=0.01)
    assert _level_db(loud, "rms") == pytest.approx(-3.01, abs=0.01)


def test_gain_is_capped_and_silence_left_alone():
    quiet = sine(0.5, 8000, 440.0, amplitude=0.001)  # peak -60 dBFS
    out = normalise_gain(quiet, "peak", target_dbfs=-1.0, max_gain_db=20.0)
    assert _level_db(out, "peak") == pytest.approx(-40.0, abs=0.01)
    zeros = np.zeros(100, np.float32)
    assert normalise_gain(zeros, "peak", -1.0, 30.0) is zeros
    assert normalise_gain(quiet, "none", -1.0, 30.0) is quiet


def test_cut_decodes_only_the_range_and_pads_short_segments():
    signal = sine(1.0, 8000, 300.0, amplitude=0.5)
    data = audio.encode_flac(signal, 8000)
    spec = CropSpec("k", data, {}, offset=1234, length=2000, target_dbfs=0.0)
    crop, _ = cut(spec, 2000, "none", 30.0)
    np.testing.assert_allclose(crop, signal[1234:3234], atol=1 / 32768)
    short = CropSpec("k", data, {}, offset=0, length=8000, target_dbfs=0.0)
    padded, _ = cut(short, 10_000, "none", 30.0)
    assert padded.shape == (10_000,)
    assert np.all(padded[8000:] == 0)


def test_cut_refuses_stereo_and_truncated_audio():
    stereo = audio.encode_flac(np.zeros((800, 2), np.float32), 8000)
    with pytest.raises(AudioDecodeError, match="2 channels"):
        cut(CropSpec("k", stereo, {}, 0, 400, 0.0), 400, "none", 30.0)
    whole = audio.encode_flac(sine(1.0, 8000) + 0.01, 8000)
    with pytest.raises(AudioDecodeError, match="k: not decodable audio"):
        cut(CropSpec("k", whole[: len(whole) // 2], {}, 6000, 2000, 0.0), 2000, "none", 30.0)


def test_cut_reports_the_gain_it_applied_so_the_recorded_level_can_be_recovered():
    signal = sine(1.0, 8000, 300.0, amplitude=0.05)
    spec = CropSpec("k", audio.encode_flac(signal, 8000), {}, 0, 8000, target_dbfs=-6.0)
    crop, gain_db = cut(spec, None, "peak", 40.0)
    recorded_peak_db = 20 * np.log10(np.abs(signal).max())
    assert gain_db == pytest.approx(-6.0 - recorded_peak_db, abs=0.01)
    np.testing.assert_allclose(crop * 10 ** (-gain_db / 20), signal, atol=1e-3)
    assert cut(spec, None, "none", 40.0)[1] == 0.0

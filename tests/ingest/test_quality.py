"""Quality figures against hand-computed values, and the keep/drop checks with their reasons."""

import numpy as np
import pytest

from ingest.quality import (
    CLIPPED,
    FLOOR_DBFS,
    NONFINITE,
    SILENCE,
    TOO_QUIET,
    SourceFigures,
    clipped_fraction,
    drop_reason,
    level_figures,
    longest_zero_run,
    replace_nonfinite,
    rms_dbfs,
    source_figures,
    zero_frames,
)
from sonotype.config.ingest import QualityConfig
from tests.audio_factory import sine


def test_full_scale_sine_is_minus_3_01_dbfs():
    assert rms_dbfs(sine(1.0, 24000, 1000.0, amplitude=1.0)) == pytest.approx(-3.0103, abs=1e-3)
    assert rms_dbfs(sine(1.0, 24000, 1000.0, amplitude=0.1)) == pytest.approx(-23.0103, abs=1e-3)


def test_silence_has_the_floor_level():
    assert rms_dbfs(np.zeros(100, np.float32)) == FLOOR_DBFS
    assert level_figures(np.zeros(0, np.float32)).rms_dbfs == FLOOR_DBFS


def test_peak_and_dc_offset():
    samples = sine(1.0, 24000, 1000.0, amplitude=0.5) + np.float32(0.1)
    levels = level_figures(samples)
    assert levels.peak == pytest.approx(0.6, abs=1e-6)
    assert levels.dc_offset == pytest.approx(0.1, abs=1e-6)


def test_clipped_fraction_counts_samples_at_or_beyond_the_level():
    samples = np.array([0.0, 0.5, 0.999, -1.0, 1.0, 0.9989, np.nan, -0.2], np.float32)
    assert clipped_fraction(samples, 0.999) == pytest.approx(3 / 8)
    stereo = np.array([[1.0, 0.0], [0.0, 0.0]], np.float32)
    assert clipped_fraction(stereo, 0.999) == pytest.approx(1 / 4)


def test_longest_zero_run_needs_every_channel_silent():
    mono = np.array([1, 0, 0, 1, 0, 0, 0, 0, 1], np.float32)
    assert longest_zero_run(mono) == 4
    assert longest_zero_run(np.ones(5, np.float32)) == 0
    stereo = np.array([[0, 0], [0, 1], [0, 0], [0, 0]], np.float32)
    assert longest_zero_run(stereo) == 2


def test_digital_silence_is_a_run_of_zeros_of_configured_length():
    config = QualityConfig(silence_min_run_s=0.1)
    samples = sine(1.0, 1000, 50.0)
    samples[200:299] = 0.0  # 99 ms: not yet a dropout
    assert not source_figures(samples, 1000, config, False).is_silent
    samples[200:300] = 0.0  # 100 ms
    assert source_figures(samples, 1000, config, False).is_silent


def test_nonfinite_samples_are_flagged_and_replaced_by_zero():
    block = np.array([[0.5, np.nan], [np.inf, -0.25], [-np.inf, 0.0]], np.float32)
    figures = source_figures(block, 1000, QualityConfig(), may_be_nonfinite=True)
    assert figures.has_nonfinite
    np.testing.assert_array_equal(replace_nonfinite(block), [[0.5, 0.0], [0.0, -0.25], [0.0, 0.0]])
    finite = np.ones((3, 2), np.float32)
    assert replace_nonfinite(finite) is finite
    assert not source_figures(finite, 1000, QualityConfig(), True).has_nonfinite


def test_each_check_gives_its_reason_and_precedence_is_fixed():
    config = QualityConfig(max_clipped_fraction=0.01, min_rms_dbfs=-60.0)
    clean = SourceFigures(0.0, False, False)
    loud = level_figures(sine(0.1, 24000, amplitude=0.5))
    quiet = level_figures(sine(0.1, 24000, amplitude=1e-4))
    assert drop_reason(clean, loud, config) is None
    assert drop_reason(SourceFigures(0.02, False, False), loud, config) == CLIPPED
    assert drop_reason(SourceFigures(0.005, False, False), loud, config) is None
    assert drop_reason(SourceFigures(0.0, True, False), loud, config) == SILENCE
    assert drop_reason(clean, quiet, config) == TOO_QUIET
    assert drop_reason(SourceFigures(0.5, True, True), quiet, config) == NONFINITE


def test_checks_can_be_switched_off():
    config = QualityConfig(
        drop_nonfinite=False, drop_silent=False, max_clipped_fraction=None, min_rms_dbfs=None
    )
    worst = SourceFigures(1.0, True, True)
    assert drop_reason(worst, level_figures(np.zeros(10, np.float32)), config) is None


def test_zero_frames_of_stereo_take_both_channels():
    stereo = np.array([[0, 0], [0, 1e-9], [-2, 0], [0, 0]], np.float32)
    np.testing.assert_array_equal(zero_frames(stereo), [True, False, False, True])
    np.testing.assert_array_equal(
        zero_frames(np.asfortranarray(stereo)), [True, False, False, True]
    )
    three = np.array([[0, 0, 0], [0, 0, 1]], np.float32)
    np.testing.assert_array_equal(zero_frames(three), [True, False])

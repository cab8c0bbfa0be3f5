"""Audio I/O helpers: exact integer round trips, blockwise reads, clipping, clear errors."""

import numpy as np
import pytest

from sonotype import audio
from sonotype.errors import AudioDecodeError
from tests.audio_factory import noise, sine


def test_full_scale_sine_rms_is_minus_3_dbfs():
    samples = sine(1.0, 48000, 1000.0, amplitude=1.0)
    rms_dbfs = 20 * np.log10(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    assert rms_dbfs == pytest.approx(-3.0103, abs=1e-3)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24"])
def test_flac_round_trip_is_exact_after_quantisation(subtype: str):
    samples = noise(0.5, 24000, amplitude=0.2)
    decoded, rate = audio.decode_bytes(audio.encode_flac(samples, 24000, subtype))
    assert rate == 24000
    step = 1 / 32768 if subtype == "PCM_16" else 1 / 8388608
    assert decoded.dtype == np.float32
    assert np.max(np.abs(decoded - samples)) <= step / 2 + 1e-9
    again, _ = audio.decode_bytes(audio.encode_flac(decoded, 24000, subtype))
    np.testing.assert_array_equal(again, decoded)


def test_float_to_int16_clips_instead_of_wrapping():
    values = np.array([1.5, 1.0, -1.0, -1.5, 0.5], np.float32)
    np.testing.assert_array_equal(
        audio.float_to_int16(values), [32767, 32767, -32768, -32768, 16384]
    )


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
def test_blockwise_read_equals_whole_read(audio_factory, subtype: str):
    path = audio_factory.tone(
        "t.wav", duration_s=1.3, sample_rate=16000, channels=2, subtype=subtype
    )
    whole, rate = audio.read(path)
    with audio.open_audio(path) as sound:
        blocks = list(audio.iter_blocks(sound, block_frames=3000))
    assert rate == 16000
    assert all(len(b) <= 3000 for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks), whole)
    with audio.open_audio(path) as sound:
        part = np.concatenate(list(audio.iter_blocks(sound, 1000, start=5000, stop=9000)))
    np.testing.assert_array_equal(part, whole[5000:9000])


def test_probe_reports_header_facts(audio_factory):
    path = audio_factory.tone("a.flac", duration_s=2.0, sample_rate=44100, channels=2)
    info = audio.probe(path)
    assert (info.sample_rate, info.channels, info.frames, info.format) == (44100, 2, 88200, "FLAC")
    assert info.duration_s == pytest.approx(2.0)


@pytest.mark.parametrize("maker", ["zero_bytes", "not_audio"])
def test_unreadable_files_raise_audio_decode_error_naming_the_file(audio_factory, maker: str):
    path = getattr(audio_factory, maker)()
    with pytest.raises(AudioDecodeError, match=path.name), audio.open_audio(path):
        pass


def test_header_only_file_opens_with_no_samples(audio_factory):
    path = audio_factory.header_only()
    assert audio.probe(path).frames == 0
    with audio.open_audio(path) as sound:
        assert list(audio.iter_blocks(sound, 1024)) == []


def test_undecodable_bytes_name_the_sample():
    with pytest.raises(AudioDecodeError, match="key_000001"):
        audio.decode_bytes(b"garbage" * 10, name="key_000001")


def test_a_decoded_range_equals_that_slice_of_the_whole_decode():
    signal = 0.5 * np.sin(np.arange(24000) * 0.05).astype(np.float32)
    data = audio.encode_flac(signal, 24000)
    whole, _ = audio.decode_bytes(data)
    np.testing.assert_array_equal(audio.decode_bytes_range(data, 12345, 7000), whole[12345:19345])
    assert audio.probe_bytes(data).frames == 24000
    with pytest.raises(AudioDecodeError, match="outside the 24000 frames"):
        audio.decode_bytes_range(data, 20000, 5000, name="k")


def test_a_range_of_a_truncated_flac_is_an_error_naming_the_sample():
    data = audio.encode_flac(0.5 * np.sin(np.arange(24000) * 0.05).astype(np.float32), 24000)
    with pytest.raises(AudioDecodeError, match="key_000002"):
        audio.decode_bytes_range(data[: len(data) // 3], 18000, 4000, name="key_000002")
    with pytest.raises(AudioDecodeError, match="key_000003"):
        audio.probe_bytes(b"garbage" * 10, name="key_000003")

"""Small synthetic audio files for tests: clean signals and every kind of broken file."""

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from sonotype import audio


def sine(
    duration_s: float, sample_rate: int, frequency_hz: float = 440.0, amplitude: float = 0.5
) -> np.ndarray:
    """float32 `[T]` sine starting at phase 0."""
    t = np.arange(round(duration_s * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency_hz * t)).astype(np.float32)


def chirp(duration_s: float, sample_rate: int, f0: float = 300.0, f1: float = 3000.0) -> np.ndarray:
    """float32 `[T]` linear sweep from f0 to f1 at amplitude 0.5."""
    n = round(duration_s * sample_rate)
    frequency = np.linspace(f0, f1, n)
    phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
    return (0.5 * np.sin(phase)).astype(np.float32)


def noise(duration_s: float, sample_rate: int, amplitude: float = 0.1, seed: int = 0) -> np.ndarray:
    """float32 `[T]` Gaussian noise with standard deviation `amplitude`."""
    rng = np.random.default_rng(seed)
    return (amplitude * rng.standard_normal(round(duration_s * sample_rate))).astype(np.float32)


class AudioFactory:
    """Writes audio files into a test's temporary folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(
        self,
        name: str,
        samples: np.ndarray,
        sample_rate: int,
        subtype: str = "PCM_16",
        format: str | None = None,
    ) -> Path:
        """Write float samples `[T]` or `[T, C]`; the format follows the extension."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        container = (
            format
            or {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "mp3": "MP3"}[
                path.suffix.lower().lstrip(".")
            ]
        )
        if container in ("OGG", "MP3"):
            sub = "VORBIS" if container == "OGG" else "MPEG_LAYER_III"
            sf.write(str(path), samples, sample_rate, format=container, subtype=sub)
        else:
            audio.write(path, samples, sample_rate, container, subtype)
        return path

    def tone(
        self,
        name: str,
        duration_s: float = 2.0,
        sample_rate: int = 48000,
        channels: int = 1,
        subtype: str = "PCM_16",
    ) -> Path:
        """A sine of 440 Hz (channel c gets 440·(c+1) Hz)."""
        columns = [sine(duration_s, sample_rate, 440.0 * (c + 1)) for c in range(channels)]
        samples = columns[0] if channels == 1 else np.stack(columns, axis=1)
        return self.write(name, samples, sample_rate, subtype)

    def zero_bytes(self, name: str = "empty.wav") -> Path:
        """A file of zero bytes."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        return path

    def not_audio(self, name: str = "notes.wav") -> Path:
        """Text with an audio extension."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("this is not audio\n" * 50)
        return path

    def truncated(self, name: str = "truncated.wav", keep_fraction: float = 0.5) -> Path:
        """A WAV whose data chunk was cut short (the header still claims the full length)."""
        buffer = io.BytesIO()
        audio.write(buffer, sine(2.0, 16000), 16000, "WAV", "PCM_16")
        data = buffer.getvalue()
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data[: int(len(data) * keep_fraction)])
        return path

    def header_only(self, name: str = "header_only.wav") -> Path:
        """A WAV header with no sample data."""
        buffer = io.BytesIO()
        audio.write(buffer, sine(1.0, 16000), 16000, "WAV", "PCM_16")
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buffer.getvalue()[:44])
        return path

    def with_nan(self, name: str = "nan.wav", sample_rate: int = 16000) -> Path:
        """A 32-bit float WAV holding a run of NaN and Inf samples."""
        samples = sine(2.0, sample_rate)
        samples[sample_rate // 2 : sample_rate // 2 + 100] = np.nan
        samples[sample_rate : sample_rate + 10] = np.inf
        return self.write(name, samples, sample_rate, subtype="FLOAT")

    def clipped(self, name: str = "clipped.wav", sample_rate: int = 16000) -> Path:
        """A sine driven far past full scale, so that many samples sit at ±1."""
        return self.write(name, np.clip(4 * sine(2.0, sample_rate), -1, 1), sample_rate)

    def silent(self, name: str = "silent.wav", sample_rate: int = 16000) -> Path:
        """Digital silence (all-zero samples)."""
        return self.write(name, np.zeros(2 * sample_rate, np.float32), sample_rate)


AudioFactoryFixture = Callable[[], AudioFactory]

"""Audio I/O on soundfile (libsndfile): probe, blockwise reads, writes, FLAC in memory.

This is the only module that calls soundfile. Integer PCM is read as int16/int32 and
scaled in numpy, which is several times faster than libsndfile's own float conversion.
Float samples are converted to integer PCM here too, with explicit clipping, because
libsndfile wraps out-of-range values around unless told otherwise.
"""

import contextlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

import numpy as np
import soundfile as sf

from sonotype.errors import AudioDecodeError
from sonotype.fsio import is_local, url_to_fs

AudioSource = str | Path | BinaryIO
"""A local path, an fsspec URL, or an open binary file object."""

_INT16_SUBTYPES = frozenset({"PCM_16", "PCM_S8", "PCM_U8", "ULAW", "ALAW", "DPCM_8", "DPCM_16"})
_INT32_SUBTYPES = frozenset({"PCM_24", "PCM_32", "DWVW_24", "ALAC_20", "ALAC_24", "ALAC_32"})
_SHORT_CHUNK = re.compile(r"^(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_INT16_SCALE = np.float32(1 / 32768)
_INT32_SCALE = np.float32(1 / 2147483648)


@dataclass(frozen=True)
class AudioInfo:
    """What an audio header says.

    Attributes:
        sample_rate: samples per second per channel.
        channels: number of channels.
        frames: samples per channel (libsndfile's count; may be an estimate for MP3).
        format: container, e.g. "WAV", "FLAC", "OGG", "MP3".
        subtype: sample encoding, e.g. "PCM_16", "FLOAT", "VORBIS".
    """

    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def native_dtype(subtype: str) -> str:
    """The numpy dtype that reads `subtype` without loss and without float conversion."""
    if subtype in _INT16_SUBTYPES:
        return "int16"
    if subtype in _INT32_SUBTYPES:
        return "int32"
    return "float32"


def to_float32(samples: np.ndarray) -> np.ndarray:
    """Scale int16/int32 PCM to float32 in [-1, 1); float input is returned as float32."""
    if samples.dtype in (np.int16, np.int32):
        scale = _INT16_SCALE if samples.dtype == np.int16 else _INT32_SCALE
        converted = samples.astype(np.float32)
        converted *= scale  # in place: one pass and one array fewer on every block read
        return converted
    return samples.astype(np.float32, copy=False)


def float_to_int16(samples: np.ndarray) -> np.ndarray:
    """Quantise float samples to int16 with rounding and clipping (no wrap-around)."""
    scaled = np.asarray(samples, dtype=np.float32) * np.float32(32768.0)
    # In place: this runs on every stored segment, and temporaries cost as much as the math.
    np.rint(scaled, out=scaled)
    np.clip(scaled, -32768, 32767, out=scaled)
    return scaled.astype(np.int16)


def float_to_int32(samples: np.ndarray) -> np.ndarray:
    """Quantise float samples to 24-bit precision held in int32 (libsndfile's PCM_24 layout)."""
    scaled = np.rint(np.asarray(samples, dtype=np.float64) * 8388608.0)
    return (np.clip(scaled, -8388608, 8388607).astype(np.int32)) << 8


def _describe(source: AudioSource) -> str:
    return str(source) if isinstance(source, str | Path) else getattr(source, "name", "<bytes>")


@contextlib.contextmanager
def open_audio(source: AudioSource) -> Iterator[sf.SoundFile]:
    """Open an audio file for reading from a path, an fsspec URL or a file object.

    Raises:
        AudioDecodeError: the file cannot be opened or its header is not audio.
    """
    name = _describe(source)
    with contextlib.ExitStack() as stack:
        handle: str | IO = source if not isinstance(source, str | Path) else str(source)
        if isinstance(source, str | Path) and not is_local(source):
            fs, path = url_to_fs(source)
            handle = stack.enter_context(fs.open(path, "rb"))
        try:
            sound = stack.enter_context(sf.SoundFile(handle))
        except (sf.LibsndfileError, RuntimeError, TypeError) as error:
            raise AudioDecodeError(f"{name}: not readable as audio ({error})") from error
        yield sound


def probe(source: AudioSource) -> AudioInfo:
    """Read the header of an audio file.

    Raises:
        AudioDecodeError: the file cannot be opened or its header is not audio.
    """
    with open_audio(source) as sound:
        return AudioInfo(
            sound.samplerate, sound.channels, sound.frames, sound.format, sound.subtype
        )


def missing_bytes(sound: sf.SoundFile) -> int:
    """Bytes of sample data the header declares beyond the end of the file (0: complete).

    libsndfile opens a truncated WAV or AIFF without error and shortens its frame count
    to what is there; only its header log keeps the declared size, as a line such as
    `data : 64000 (should be 31978)`.

    Args:
        sound: an open `soundfile.SoundFile` (see `open_audio`).
    """
    match = _SHORT_CHUNK.search(sound.extra_info)
    return max(0, int(match[1]) - int(match[2])) if match else 0


def iter_blocks(
    sound: sf.SoundFile, block_frames: int, start: int = 0, stop: int | None = None
) -> Iterator[np.ndarray]:
    """Read an open file in blocks of `block_frames`, as float32 `[n, channels]`.

    Integer PCM is read in its native width and scaled in numpy. Memory stays at one
    block whatever the file length.

    Args:
        sound: an open `soundfile.SoundFile` (see `open_audio`).
        block_frames: frames per block (the last block may be shorter).
        start: first frame to read.
        stop: frame to stop before (None: end of file).

    Yields:
        float32 arrays `[n, channels]`, n ≤ block_frames, n > 0.

    Raises:
        AudioDecodeError: libsndfile fails part-way through the file.
    """
    dtype = native_dtype(sound.subtype)
    if start:
        sound.seek(start)
    remaining = None if stop is None else max(stop - start, 0)
    while remaining is None or remaining > 0:
        want = block_frames if remaining is None else min(block_frames, remaining)
        try:
            block = sound.read(want, dtype=dtype, always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as error:
            raise AudioDecodeError(f"{sound.name}: decoding failed part-way ({error})") from error
        if len(block) == 0:
            return
        if remaining is not None:
            remaining -= len(block)
        yield to_float32(block)


def read(source: AudioSource) -> tuple[np.ndarray, int]:
    """Read a whole (small) file as float32 `[T, channels]` and its sample rate.

    Use `iter_blocks` for recordings of unknown length.

    Raises:
        AudioDecodeError: the file cannot be decoded.
    """
    with open_audio(source) as sound:
        blocks = list(iter_blocks(sound, block_frames=1 << 20))
        rate, channels = sound.samplerate, sound.channels
    data = np.concatenate(blocks) if blocks else np.zeros((0, channels), np.float32)
    return data, rate


def write(
    target: str | Path | BinaryIO,
    samples: np.ndarray,
    sample_rate: int,
    format: str,
    subtype: str = "PCM_16",
    comment: str | None = None,
) -> None:
    """Write float samples `[T]` or `[T, channels]` in [-1, 1] as an audio file.

    Integer subtypes are quantised here with clipping, so the bytes do not depend on
    libsndfile's float conversion settings.

    Args:
        target: a local path or a binary file object.
        samples: float samples.
        sample_rate: samples per second.
        format: container understood by libsndfile ("WAV", "FLAC", "OGG", ...).
        subtype: sample encoding ("PCM_16", "PCM_24", "FLOAT", ...).
        comment: optional text stored in the file's comment field.
    """
    if subtype == "PCM_16":
        data = float_to_int16(samples)
    elif subtype in ("PCM_24", "PCM_32"):
        data = float_to_int32(samples)
    else:
        data = np.asarray(samples, dtype=np.float32)
    handle = str(target) if isinstance(target, Path) else target
    with sf.SoundFile(
        handle,
        "w",
        samplerate=sample_rate,
        channels=1 if data.ndim == 1 else data.shape[1],
        format=format,
        subtype=subtype,
    ) as sound:
        if comment:
            sound.comment = comment
        sound.write(data)


def encode_flac(samples: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> bytes:
    """Encode float samples as FLAC in memory.

    Args:
        samples: float32 `[T]` (mono) or `[T, channels]`, in [-1, 1].
        sample_rate: samples per second.
        subtype: "PCM_16" or "PCM_24".

    Returns:
        The FLAC file as bytes.
    """
    buffer = io.BytesIO()
    write(buffer, samples, sample_rate, "FLAC", subtype)
    return buffer.getvalue()


def decode_bytes(data: bytes, name: str = "<bytes>") -> tuple[np.ndarray, int]:
    """Decode an in-memory audio file (FLAC, WAV, ...) to float32 and its rate.

    Args:
        data: the file's bytes.
        name: what to call the data in error messages (e.g. a shard sample key).

    Returns:
        float32 `[T]` for mono, `[T, channels]` otherwise, and the sample rate.

    Raises:
        AudioDecodeError: the bytes are not decodable audio.
    """
    try:
        with sf.SoundFile(io.BytesIO(data)) as sound:
            samples = sound.read(dtype=native_dtype(sound.subtype), always_2d=False)
            rate = sound.samplerate
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioDecodeError(f"{name}: not decodable audio ({error})") from error
    return to_float32(samples), rate


def probe_bytes(data: bytes, name: str = "<bytes>") -> AudioInfo:
    """Read the header of an in-memory audio file without decoding its samples.

    Args:
        data: the file's bytes.
        name: what to call the data in error messages (e.g. a shard sample key).

    Raises:
        AudioDecodeError: the bytes do not start with a readable audio header.
    """
    try:
        with sf.SoundFile(io.BytesIO(data)) as sound:
            return AudioInfo(
                sound.samplerate, sound.channels, sound.frames, sound.format, sound.subtype
            )
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioDecodeError(f"{name}: not decodable audio ({error})") from error


def decode_bytes_range(data: bytes, start: int, frames: int, name: str = "<bytes>") -> np.ndarray:
    """Decode `frames` samples from `start` of an in-memory audio file, and nothing else.

    libsndfile seeks inside the compressed stream (FLAC frames), so cutting a 3 s crop
    from a long segment decodes little more than those 3 s.

    Args:
        data: the file's bytes.
        start: first frame to decode.
        frames: number of frames wanted; `start + frames` must not pass the end.
        name: what to call the data in error messages.

    Returns:
        float32 `[frames]` for mono, `[frames, channels]` otherwise.

    Raises:
        AudioDecodeError: the bytes are not decodable, the range passes the end of the
            file, or the stream ends early (a truncated file).
    """
    try:
        with sf.SoundFile(io.BytesIO(data)) as sound:
            if start < 0 or frames < 0 or start + frames > sound.frames:
                raise AudioDecodeError(
                    f"{name}: frames [{start}, {start + frames}) are outside the "
                    f"{sound.frames} frames of the file"
                )
            if start:
                sound.seek(start)
            samples = sound.read(frames, dtype=native_dtype(sound.subtype), always_2d=False)
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioDecodeError(f"{name}: not decodable audio ({error})") from error
    if len(samples) != frames:
        raise AudioDecodeError(
            f"{name}: decoded {len(samples)} of {frames} frames from {start}; the file is truncated"
        )
    return to_float32(samples)

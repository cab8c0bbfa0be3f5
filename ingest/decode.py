"""Check a recording before any work is planned, then read a frame range of it block by block.

Every problem a file can have becomes an `AudioDecodeError` whose message names the
file and says in words what is wrong: empty, not audio, header only, truncated,
decoding failing part-way. Catalog rows carry that message as their `error`.
"""

from collections.abc import Iterator

import numpy as np

from sonotype import audio
from sonotype.audio import AudioInfo
from sonotype.errors import AudioDecodeError

_BYTES_PER_SAMPLE = {"PCM_S8": 1, "PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4}


def inspect_recording(url: str, size: int) -> AudioInfo:
    """Read a recording's header and check that it holds the samples the header declares.

    Args:
        url: local path or URL.
        size: the file's length in bytes.

    Returns:
        The header facts.

    Raises:
        AudioDecodeError: empty file, not audio, no samples, or truncated.
    """
    if size == 0:
        raise AudioDecodeError(f"{url}: empty file (0 bytes), expected an audio file")
    with audio.open_audio(url) as sound:
        info = AudioInfo(
            sound.samplerate, sound.channels, sound.frames, sound.format, sound.subtype
        )
        missing = audio.missing_bytes(sound)
    frame_bytes = _BYTES_PER_SAMPLE.get(info.subtype, 8) * max(info.channels, 1)
    if info.frames == 0:
        detail = f"; the header declares {missing} bytes of samples" if missing else ""
        raise AudioDecodeError(f"{url}: no audio samples (header only){detail}")
    if missing >= frame_bytes:
        declared_s = info.duration_s + missing / frame_bytes / info.sample_rate
        raise AudioDecodeError(
            f"{url}: truncated: the header declares {declared_s:.3f} s of audio, "
            f"the file holds {info.duration_s:.3f} s"
        )
    return info


def iter_source(
    url: str, info: AudioInfo, start: int, stop: int | None, block_frames: int
) -> Iterator[np.ndarray]:
    """Read frames `[start, stop)` of a recording as float32 blocks `[n, channels]`.

    Memory holds one block whatever the file length. Integer PCM is read natively and
    scaled in numpy (`audio.iter_blocks`). Non-finite samples are passed through.

    Args:
        url: local path or URL.
        info: the header facts from `inspect_recording`.
        start: first frame.
        stop: frame to stop before (None: the end of the file).
        block_frames: frames per block.

    Yields:
        float32 `[n, channels]` blocks, in order.

    Raises:
        AudioDecodeError: decoding fails, or ends before the frames the header declares.
    """
    expected = (info.frames if stop is None else min(stop, info.frames)) - start
    n_read = 0
    with audio.open_audio(url) as sound:
        for block in audio.iter_blocks(sound, block_frames, start, stop):
            n_read += len(block)
            yield block
    if n_read < expected:
        raise AudioDecodeError(
            f"{url}: truncated: decoding stopped at {(start + n_read) / info.sample_rate:.3f} s "
            f"of the {info.duration_s:.3f} s the header declares"
        )

"""The log-mel yardstick: what a plain spectrogram average gives over the same windows.

Each window's audio is read from the shards (the same resampled mono audio the
tokenizer saw), turned into a 64-band log-mel spectrogram (torchaudio
`MelSpectrogram`, 10 ms hop) and averaged over the window. Two forms are scored:

- `log-mel mean`: the averaged log-mel spectrum;
- `spectral shape`: the same with the window's mean level (over bands) removed, so
  that loud and quiet instances of one sound look alike.

Shards are read one at a time, only the members of the windows' segments, so memory
follows one shard, not the corpus.
"""

import numpy as np
import pandas as pd
import torch
import torchaudio

from shards.tarsafe import read_segment_audio
from sonotype import audio
from sonotype.errors import SonotypeError
from sonotype.fsio import join
from sonotype.progress import track

N_MELS = 64
HOP_S = 0.010
FLOOR = 1e-10
"""Added to mel power before the log, so that digital silence stays finite."""


def log_mel_windows(shards_dir: str, windows: pd.DataFrame, sample_rate: int) -> np.ndarray:
    """The mean log-mel spectrum of every window.

    Args:
        shards_dir: `OUT/shards` (the windows' `shard` is relative to it).
        windows: `evaluation.windows.window_table` rows.
        sample_rate: the shards' sample rate.

    Returns:
        float32 `[len(windows), N_MELS]`.

    Raises:
        SonotypeError: a window's segment is missing from its shard or not decodable.
    """
    hop = round(sample_rate * HOP_S)
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate, n_fft=4 * hop, hop_length=hop, n_mels=N_MELS
    )
    features = np.zeros((len(windows), N_MELS), np.float32)
    by_shard = windows.groupby("shard", sort=True).groups
    for shard in track(by_shard, len(by_shard), "shards", "log-mel yardstick"):
        rows = by_shard[shard]
        keys = set(windows.loc[rows, "key"])
        url = join(shards_dir, str(shard))
        decoded = decoded_segments(url, keys)
        missing = keys - decoded.keys()
        if missing:
            raise SonotypeError(f"{url}: segment(s) {', '.join(sorted(missing)[:3])} not found")
        for key, key_rows in windows.loc[rows].groupby("key").groups.items():
            # one spectrogram per segment; a window averages the frames centred in it
            log_mel = torch.log(mel(torch.from_numpy(decoded[key])) + FLOOR).numpy()
            for row in key_rows:
                first = -(-int(windows.at[row, "sample_start"]) // hop)
                stop = -(-int(windows.at[row, "sample_stop"]) // hop)
                features[windows.index.get_loc(row)] = log_mel[:, first:stop].mean(axis=1)
    return features


def decoded_segments(url: str, keys: set[str]) -> dict[str, np.ndarray]:
    """Decoded mono float32 audio of the samples `keys` of one shard."""
    try:
        members = read_segment_audio(url, keys)
    except OSError as error:
        raise SonotypeError(f"{url}: cannot read the shard ({error})") from error
    decoded = {}
    for key, data in members.items():
        samples, _ = audio.decode_bytes(data, f"{url}:{key}")
        mono = samples.mean(axis=1) if samples.ndim == 2 else samples
        decoded[key] = np.ascontiguousarray(mono, np.float32)
    return decoded


def spectral_shape(log_mel: np.ndarray) -> np.ndarray:
    """Log-mel spectra with each window's mean level (over bands) removed."""
    return log_mel - log_mel.mean(axis=1, keepdims=True)

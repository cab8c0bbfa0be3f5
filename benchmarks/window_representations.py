"""Other window representations from the same tokenizer, scored like `sonotype evaluate`.

    python -m benchmarks.window_representations benchmarks/work/q-cos/seed0 [...]

Each argument is a quality-harness seed folder (`example/ground_truth.csv`, `out/`
with its feature store and shards, `run/export/tokenizer.pt`). For the example's
one-second windows it scores, with the evaluation's own linear probe (grouped by
recording) and k-means (k = 8, standardised features):

- the default window representation (embedding mean and spread, recorded level);
- richer pooling of the same frames: adding the mean absolute frame-to-frame change,
  or 10/50/90 % quantiles instead of mean and spread;
- the encoder's other layers (the convolutions' output, the LSTM's, the latents before
  the quantizer's normalisation), pooled the same way: the audio is encoded again,
  segment by segment;
- a small context model over the store's frames (issue 15, part 6): a transformer
  over 5 s of standardised embeddings, trained by masked-token prediction (HuBERT's
  span masking, the tokens as targets) for `--steps` steps, and the same model
  untrained; its hidden states pooled per window.

Everything here is an experiment: nothing is written to the store.
"""

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from analysis import open_store
from evaluation.annotations import DEFAULT_RAVEN_LABEL, read_annotations
from evaluation.representation import window_representation
from evaluation.scores import kmeans_partition, partition_scores, probe_accuracy
from evaluation.windows import dominant_labels, window_table
from evaluation.yardstick import decoded_segments
from sonotype.contracts import EMBEDDINGS, TOKENS, OutputLayout
from sonotype.fsio import join, read_parquet
from training.tokenizer import load_tokenizer

K = 8
CONTEXT = 200
"""Frames the context model sees at once (5 s at 40 frames/s)."""


def labelled_windows(seed_dir: Path):
    """(store, the example's labelled one-second windows) of one harness seed."""
    layout = OutputLayout(str(seed_dir / "out"))
    store = open_store(layout.features)
    recordings = read_parquet(layout.recordings, ["recording_id", "path", "start_time"])
    truth = str(seed_dir / "example" / "ground_truth.csv")
    annotations = read_annotations([truth], recordings.to_pandas(), DEFAULT_RAVEN_LABEL)
    windows = window_table(store, set(annotations["recording_id"]), 1.0)
    windows["label"] = dominant_labels(windows, annotations, 0.5, None)
    return store, windows[windows["label"].notna()].reset_index(drop=True)


def pooled(frames: np.ndarray, windows: pd.DataFrame, statistic: Callable) -> np.ndarray:
    starts, stops = windows["frame_start"].to_numpy(), windows["frame_stop"].to_numpy()
    return np.stack([statistic(frames[a:b]) for a, b in zip(starts, stops, strict=True)])


def mean_and_spread(frames: np.ndarray) -> np.ndarray:
    return np.concatenate([frames.mean(axis=0), frames.std(axis=0)])


def encoder_layers(seed_dir: Path, windows: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each encoder layer's frames of the windows' segments, encoded segment by segment."""
    generator = load_tokenizer(seed_dir / "run" / "export" / "tokenizer.pt").generator.eval()
    encoder, hop = generator.encoder, generator.hop_length
    layers: dict[str, np.ndarray] = {}
    shards = str(seed_dir / "out" / "shards")
    for shard, rows in windows.groupby("shard").groups.items():
        audio = decoded_segments(join(shards, str(shard)), set(windows.loc[rows, "key"]))
        for key, key_rows in windows.loc[rows].groupby("key").groups.items():
            wave = audio[key] / max(float(np.abs(audio[key]).max()), 1e-9) * 0.5
            with torch.inference_mode():
                convolved = encoder.convolve(torch.from_numpy(wave)[None])
                recurrent, _ = encoder.recur(convolved)
                latents = encoder.project(recurrent)
            outputs = {"convolutions": convolved, "LSTM": recurrent, "latents": latents}
            for row in key_rows:
                first = -(-int(windows.at[row, "sample_start"]) // hop)
                stop = -(-int(windows.at[row, "sample_stop"]) // hop)
                index = windows.index.get_loc(row)
                for name, output in outputs.items():
                    frames = output[0, :, first:stop].T.numpy()
                    layer = layers.setdefault(name, np.zeros((len(windows), 2 * frames.shape[1])))
                    layer[index] = mean_and_spread(frames)
    return layers


class ContextModel(nn.Module):
    """A small transformer over frames; masked frames are replaced by a learnt vector."""

    def __init__(self, dim: int, codebook_size: int, width: int = 128, layers: int = 3):
        super().__init__()
        self.project = nn.Linear(dim, width)
        self.mask = nn.Parameter(torch.zeros(width))
        self.position = nn.Parameter(torch.randn(CONTEXT, width) * 0.02)
        layer = nn.TransformerEncoderLayer(width, 4, 2 * width, 0.1, batch_first=True)
        self.body = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.predict = nn.Linear(width, codebook_size)

    def forward(self, frames: torch.Tensor, masked: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.project(frames)
        if masked is not None:
            hidden = torch.where(masked.unsqueeze(-1), self.mask, hidden)
        return self.body(hidden + self.position[: hidden.shape[1]])


def context_states(
    frames: np.ndarray, tokens: np.ndarray, codebook_size: int, steps: int
) -> np.ndarray:
    """Hidden states of every frame after `steps` of masked-token prediction."""
    torch.manual_seed(0)
    data = torch.from_numpy((frames - frames.mean(0)) / (frames.std(0) + 1e-8)).float()
    targets = torch.from_numpy(tokens.astype(np.int64))
    model = ContextModel(data.shape[1], codebook_size)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    for _ in range(steps):
        starts = torch.randint(0, len(data) - CONTEXT, (32,))
        index = starts[:, None] + torch.arange(CONTEXT)
        span_starts = torch.rand(32, CONTEXT) < 0.065  # HuBERT: p = 0.065, spans of 10
        masked = torch.zeros(32, CONTEXT, dtype=torch.bool)
        for offset in range(10):
            masked[:, offset:] |= span_starts[:, : CONTEXT - offset]
        hidden = model(data[index], masked)
        loss = nn.functional.cross_entropy(model.predict(hidden[masked]), targets[index][masked])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    states = []
    with torch.inference_mode():
        for start in range(0, len(data), CONTEXT):
            block = data[start : start + CONTEXT]
            states.append(model(block[None])[0])
    return torch.cat(states).numpy()


def score(name: str, features: np.ndarray, windows: pd.DataFrame) -> dict:
    truth = windows["label"].astype(str).to_numpy()
    groups = windows["recording_id"].to_numpy()
    partition = kmeans_partition(features, K, 0)
    return {
        "representation": name,
        "probe": probe_accuracy(features, truth, groups, 0),
        **{key: partition_scores(truth, partition)[key] for key in ("nmi", "ari")},
    }


def score_seed(seed_dir: Path, steps: int) -> pd.DataFrame:
    store, windows = labelled_windows(seed_dir)
    default = window_representation(store, windows)
    level = default[:, -1:]
    frames = store.read(EMBEDDINGS, 0, store.n_frames).astype(np.float32)
    tokens = store.read(TOKENS, 0, store.n_frames)
    change = pooled(frames, windows, lambda f: np.abs(np.diff(f, axis=0)).mean(axis=0))
    quantiles = pooled(frames, windows, lambda f: np.percentile(f, [10, 50, 90], axis=0).ravel())
    candidates = {
        "default: embedding mean, spread, level": default,
        "default + mean frame-to-frame change": np.hstack([default, change]),
        "embedding quantiles 10/50/90 %, level": np.hstack([quantiles, level]),
    }
    for name, layer in encoder_layers(seed_dir, windows).items():
        candidates[f"encoder {name}: mean, spread, level"] = np.hstack([layer, level])
    rows = [score(name, features, windows) for name, features in candidates.items()]
    for trained in (0, steps):
        tick = time.perf_counter()
        states = context_states(frames, tokens, store.codebook_size, trained)
        seconds = time.perf_counter() - tick
        features = np.hstack([pooled(states, windows, mean_and_spread), level])
        label = f"context model, {trained} steps: mean, spread, level"
        rows.append({**score(label, features, windows), "train_s": seconds})
    return pd.DataFrame(rows).assign(seed=seed_dir.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("seeds", nargs="+", type=Path, help="quality-harness seed folders")
    parser.add_argument("--steps", type=int, default=600, help="context-model training steps")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    scores = pd.concat([score_seed(seed, args.steps) for seed in args.seeds])
    print(scores.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    summary = scores.groupby("representation", sort=False)[["nmi", "ari", "probe"]]
    table = summary.mean().join(summary.std().add_suffix("_sd"))
    print("\n| representation | NMI | ARI | probe |\n|---|---|---|---|")
    for name, row in table.iterrows():
        cells = [f"{row[m]:.3f} ± {row[m + '_sd']:.3f}" for m in ("nmi", "ari", "probe")]
        print(f"| {name} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

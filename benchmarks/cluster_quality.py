"""Clustering quality against the example corpus's ground truth: NMI and ARI.

The example writes `ground_truth.parquet`: the dominant source of every second of every
file (`path`, `site`, `file_start`, `offset_s`, `time` UTC, `dominant`, ...). A frame is
aligned to the second that contains it, `start_time + (frame - frame_start) / frame_rate`
floored to whole UTC seconds, at the same site; a segment to the majority of the
seconds it covers. Methods compared, each k-means with the same k and the default
normalisation (centred-l2) unless named:

- embeddings, frame level (`labels/bench-frame`), and with plain l2 (`bench-frame-l2`);
- embeddings, segment level, pooled (`labels/bench-segment`), and with plain l2;
- bag-of-tokens, segment level (`labels/bench-tokens`), and with plain l2;
- log-mel baseline: the mean log-mel spectrum (64 bands) of every ground-truth second,
  computed from the original files, clustered in memory with MiniBatchKMeans.

Running it writes those clusterings into the store (under OUT/clusters/bench-*).
"""

import logging

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.cluster import MiniBatchKMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from analysis import FeatureStore, cluster_features, open_store
from sonotype.config.cluster import ClusterConfig
from sonotype.errors import SonotypeError
from sonotype.fsio import join, read_parquet

logger = logging.getLogger(__name__)

N_MELS = 64


def ground_truth_seconds(path: str) -> pd.DataFrame:
    """The ground truth as `site`, `second` (UTC epoch seconds), `dominant`, `path`, `offset_s`."""
    table = read_parquet(path, ["path", "site", "time", "offset_s", "dominant"]).to_pandas()
    seconds = table["time"].astype("datetime64[ms, UTC]").astype("int64") // 1000
    return pd.DataFrame(
        {
            "site": table["site"].astype(str),
            "second": seconds.astype(np.int64),
            "dominant": table["dominant"].astype(str),
            "path": table["path"],
            "offset_s": table["offset_s"].astype(np.int64),
        }
    )


def _frame_seconds(store: FeatureStore, segments: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices of a batch of segments and the UTC epoch second each frame falls in."""
    n_frames = segments.column("n_frames").to_numpy().astype(np.int64)
    frame_start = segments.column("frame_start").to_numpy()
    start_ms = segments.column("start_time").cast(pa.int64()).to_numpy(zero_copy_only=False)
    owner = np.repeat(np.arange(len(n_frames)), n_frames)
    within = np.arange(len(owner)) - np.repeat(np.cumsum(n_frames) - n_frames, n_frames)
    ms = start_ms[owner] + within * 1000.0 / store.frame_rate
    return frame_start[owner] + within, np.floor(ms / 1000.0).astype(np.int64)


def align(store: FeatureStore, truth: pd.DataFrame, level: str) -> pd.DataFrame:
    """Ground-truth label of each frame or segment that falls in a ground-truth second.

    Args:
        store: the feature store.
        truth: `ground_truth_seconds` of the corpus.
        level: "frame" or "segment" (segment: the majority over its frames).

    Returns:
        Columns `index` (frame or segment) and `dominant`, one row per aligned unit.

    Raises:
        SonotypeError: nothing aligns (sites or times differ between store and truth).
    """
    lookup = truth.drop_duplicates(["site", "second"]).set_index(["site", "second"])["dominant"]
    columns = ["site", "start_time", "segment_index", "frame_start", "n_frames"]
    parts = []
    for segments in store.iter_segments(4096, columns):
        frames, seconds = _frame_seconds(store, segments)
        n_frames = segments.column("n_frames").to_numpy().astype(np.int64)
        sites = np.repeat(np.asarray(segments.column("site").to_pylist(), dtype=object), n_frames)
        keys = pd.MultiIndex.from_arrays([sites, seconds])
        dominant = lookup.reindex(keys).to_numpy()
        segment = np.repeat(segments.column("segment_index").to_numpy(), n_frames)
        parts.append(pd.DataFrame({"frame": frames, "segment": segment, "dominant": dominant}))
    frames = pd.concat(parts).dropna(subset=["dominant"]) if parts else pd.DataFrame()
    if frames.empty:
        raise SonotypeError(
            f"{store.url}: no frame falls in a ground-truth second; store sites "
            f"{sorted(set(store.read_segments(columns=['site']).column('site').to_pylist()))}, "
            f"truth sites {sorted(truth['site'].unique())}"
        )
    if level == "frame":
        return frames.rename(columns={"frame": "index"})[["index", "dominant"]].reset_index(
            drop=True
        )
    majority = frames.groupby("segment")["dominant"].agg(lambda values: values.mode().iloc[0])
    return pd.DataFrame({"index": majority.index.to_numpy(), "dominant": majority.to_numpy()})


def scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """NMI and ARI of predicted clusters against true classes (label names do not matter)."""
    return {
        "n": len(truth),
        "nmi": float(normalized_mutual_info_score(truth, predicted)),
        "ari": float(adjusted_rand_score(truth, predicted)),
    }


def logmel_per_second(example_root: str, truth: pd.DataFrame) -> np.ndarray:
    """Mean log-mel spectrum `[len(truth), N_MELS]` of every ground-truth second.

    Files are read whole, one at a time (the example's files are short), mixed to mono.
    `truth` must have a RangeIndex (as `ground_truth_seconds` gives): row i → features[i].
    """
    import torch
    import torchaudio

    from sonotype import audio

    features = np.zeros((len(truth), N_MELS), np.float32)
    for path, rows in truth.groupby("path").groups.items():
        samples, sample_rate = audio.read(join(example_root, str(path)))
        mono = samples.mean(axis=1) if samples.ndim == 2 else samples
        hop = sample_rate // 100
        mel = torchaudio.transforms.MelSpectrogram(
            sample_rate, n_fft=2048, hop_length=hop, n_mels=N_MELS
        )(torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32)))
        log_mel = torch.log(mel + 1e-10).numpy().T  # [time, N_MELS], 100 frames per second
        for row in rows:
            second = int(truth.at[row, "offset_s"])
            window = log_mel[second * 100 : (second + 1) * 100]
            features[row] = window.mean(axis=0) if len(window) else 0.0
    return features


def quality_table(
    store_url: str, ground_truth: str, example_root: str, k: int, workers: int = 2
) -> pd.DataFrame:
    """NMI/ARI of every method (see the module docstring) against the ground truth.

    Args:
        store_url: `OUT/features.zarr` encoded from the example corpus.
        ground_truth: the example's `ground_truth.parquet`.
        example_root: the example folder (the ground truth's paths are relative to it).
        k: number of clusters for every method.
        workers: labelling threads.

    Returns:
        One row per method: `method`, `unit`, `n`, `nmi`, `ari`.
    """
    store = open_store(store_url)
    truth = ground_truth_seconds(ground_truth)
    rows = []
    runs = [
        ("embeddings", "frame", "bench-frame", {"level": "frame"}),
        ("embeddings (pooled)", "segment", "bench-segment", {"level": "segment"}),
        ("bag-of-tokens", "segment", "bench-tokens", {"level": "segment", "feature": "tokens"}),
    ]
    runs += [
        (f"{method}, l2", unit, f"{name}-l2", {**settings, "normalise": "l2"})
        for method, unit, name, settings in runs
    ]
    for method, unit, name, settings in runs:
        config = ClusterConfig(k=k, k_selection=[], block_rows=4096, **settings)
        cluster_features(store_url, name=name, config=config, force=True, workers=workers)
        aligned = align(open_store(store_url), truth, unit)
        labels = store.array(f"labels/{name}")[:][aligned["index"].to_numpy()]
        rows.append({"method": method, "unit": unit, **scores(aligned["dominant"], labels)})
    features = logmel_per_second(example_root, truth)
    baseline = MiniBatchKMeans(k, n_init=3, random_state=0).fit_predict(features)
    rows.append(
        {"method": "log-mel baseline", "unit": "second", **scores(truth["dominant"], baseline)}
    )
    return pd.DataFrame(rows)

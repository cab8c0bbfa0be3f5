"""The windows that are scored, and the annotation's dominant label in each.

A window is a run of a segment's frames of a fixed length (1 s by default), laid from
the segment's start; a trailing part shorter than a window is not scored. The segment
unit is the same with one window per segment. Every window knows where it lies in its
recording (`start_s`, `end_s`), in the store (`frame_start`, `frame_stop`) and in its
shard sample (`sample_start`, `sample_stop`), so representation, yardstick and
annotation all describe exactly the same stretch of audio.
"""

import numpy as np
import pandas as pd

from analysis import FeatureStore
from sonotype.errors import SonotypeError

SEGMENT_COLUMNS = [
    "key",
    "recording_id",
    "site",
    "shard",
    "offset_s",
    "segment_index",
    "frame_start",
    "n_frames",
]
WINDOW = "window"
SEGMENT = "segment"


def window_table(
    store: FeatureStore, recording_ids: set[str], window_s: float | None, batch_rows: int = 8192
) -> pd.DataFrame:
    """The windows of the store's segments from `recording_ids`.

    Args:
        store: the feature store.
        recording_ids: recordings to cover (the annotated ones).
        window_s: window length in seconds; None for one window per segment.
        batch_rows: segment rows read at a time.

    Returns:
        One row per window, in store order: `recording_id`, `site`, `key`, `shard`,
        `segment_index`, `start_s`, `end_s`, `frame_start`, `frame_stop`,
        `sample_start`, `sample_stop`.

    Raises:
        SonotypeError: the window is shorter than one frame, or no segment of the
            store comes from the annotated recordings.
    """
    frames_per_window = None
    if window_s is not None:
        frames_per_window = round(window_s * store.frame_rate)
        if frames_per_window < 1:
            raise SonotypeError(
                f"window of {window_s} s is shorter than one frame (1/{store.frame_rate} s)"
            )
    parts = []
    for batch in store.iter_segments(batch_rows, SEGMENT_COLUMNS):
        segments = batch.to_pandas()
        segments = segments[segments["recording_id"].isin(recording_ids)]
        if not segments.empty:
            parts.append(_windows_of(segments, frames_per_window, store))
    if not parts:
        raise SonotypeError(
            f"{store.url}: no encoded segment comes from an annotated recording "
            f"({len(recording_ids)} annotated)"
        )
    return pd.concat(parts, ignore_index=True)


def _windows_of(
    segments: pd.DataFrame, frames_per_window: int | None, store: FeatureStore
) -> pd.DataFrame:
    n_frames = segments["n_frames"].to_numpy(np.int64)
    length = n_frames if frames_per_window is None else np.full_like(n_frames, frames_per_window)
    count = n_frames // length
    owner = np.repeat(np.arange(len(segments)), count)
    within = np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
    first = within * length[owner]
    last = first + length[owner]
    seconds_per_frame = 1.0 / store.frame_rate
    samples_per_frame = store.sample_rate / store.frame_rate
    offset = segments["offset_s"].to_numpy(float)[owner]
    table = pd.DataFrame(
        {
            column: segments[column].to_numpy()[owner]
            for column in ("recording_id", "site", "key", "shard", "segment_index")
        }
    )
    table["start_s"] = offset + first * seconds_per_frame
    table["end_s"] = offset + last * seconds_per_frame
    table["frame_start"] = segments["frame_start"].to_numpy(np.int64)[owner] + first
    table["frame_stop"] = table["frame_start"] + (last - first)
    table["sample_start"] = np.round(first * samples_per_frame).astype(np.int64)
    table["sample_stop"] = np.round(last * samples_per_frame).astype(np.int64)
    return table


def dominant_labels(
    windows: pd.DataFrame,
    annotations: pd.DataFrame,
    min_overlap: float = 0.5,
    fill: str | None = None,
) -> pd.Series:
    """The label covering most of each window.

    Args:
        windows: `window_table` rows.
        annotations: `recording_id`, `start_s`, `end_s`, `label` spans.
        min_overlap: share of the window the winning label must cover.
        fill: label of windows no label covers enough (None: such windows get NA and
            are not scored, as with sparse call annotations).

    Returns:
        One label (or NA) per window, aligned with `windows`.
    """
    labels = pd.Series(pd.NA, index=windows.index, dtype=object)
    spans_of = dict(tuple(annotations.groupby("recording_id", sort=False)))
    for recording_id, rows in windows.groupby("recording_id", sort=False).groups.items():
        spans = spans_of.get(recording_id)
        if spans is None:
            continue
        starts = windows.loc[rows, "start_s"].to_numpy()[:, None]
        ends = windows.loc[rows, "end_s"].to_numpy()[:, None]
        overlap = np.clip(
            np.minimum(ends, spans["end_s"].to_numpy()[None])
            - np.maximum(starts, spans["start_s"].to_numpy()[None]),
            0.0,
            None,
        )
        names, which = np.unique(spans["label"].to_numpy(), return_inverse=True)
        per_label = np.zeros((len(rows), len(names)))
        np.add.at(per_label.T, which, overlap.T)
        best = per_label.argmax(axis=1)
        covered = per_label[np.arange(len(rows)), best] >= min_overlap * (ends[:, 0] - starts[:, 0])
        labels.loc[rows[covered]] = names[best[covered]]
    if fill is not None:
        labels = labels.fillna(fill)
    return labels

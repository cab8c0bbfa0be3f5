"""Summary tables of a clustering: when and where each sonotype occurs, token usage, k selection.

Occurrence and token statistics are computed in one streaming pass over the segment
table, a batch of segments (about `block_rows` frames) at a time; memory follows the
size of the output tables (sites × dates × hours × k), not the number of frames. Every
frame has a time, `start_time + (frame - frame_start) / frame_rate`; dates and hours of
day are taken in the configured time zone.

Tables (Parquet):
- occurrence: `site`, `date` (date32), `hour` (int8, 0–23), `sonotype` (int32), `n`
  (frames or segments), `seconds`, `share` (of the labelled rows of that site, date
  and hour). Frame-level clusterings count frames, segment-level ones segments (at the
  time the segment starts). Unlabelled rows and rows of unknown time are left out.
- token_usage: `site`, `hour`, `token` (int32), `n` (frames); only tokens that occur.
- token_entropy: `site`, `hour`, `n_frames`, `n_tokens_used`, `entropy_bits`
  (Shannon entropy of the token distribution), `perplexity` (2 ** entropy_bits).
- k_selection: `k`, `inertia` (sum over the sample), `inertia_per_row`, `silhouette`,
  `n_rows`; k-means (scikit-learn `KMeans`) fitted on the reservoir sample.
"""

import logging

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from analysis.store import FRAME, FeatureStore
from sonotype.contracts import LABELS, TOKENS
from sonotype.progress import progress_bar

logger = logging.getLogger(__name__)

_KEYS = ["site", "date", "hour"]


def _local_times(milliseconds: np.ndarray, timezone: str) -> tuple[np.ndarray, np.ndarray]:
    """Local calendar date (datetime64[D]) and hour of day (int8) of UTC epoch milliseconds."""
    local = pd.to_datetime(milliseconds, unit="ms", utc=True).tz_convert(timezone)
    dates = local.tz_localize(None).normalize().to_numpy().astype("datetime64[D]")
    return dates, local.hour.to_numpy().astype(np.int8)


def _batch_frames(
    segments: pa.Table, frame_rate: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Per frame of a batch of consecutive segments: owning segment row and UTC ms time.

    Returns:
        owner `[m]` (row in `segments`), time_ms `[m]` (float, NaN when unknown),
        known `[m]` (time known), first frame, one past the last frame.
    """
    n_frames = segments.column("n_frames").to_numpy().astype(np.int64)
    frame_start = segments.column("frame_start").to_numpy()
    first = int(frame_start[0])
    stop = int(frame_start[-1] + n_frames[-1])
    owner = np.repeat(np.arange(len(n_frames)), n_frames)
    start_ms = _start_ms(segments)
    offset = np.arange(stop - first) - (frame_start[owner] - first)
    time_ms = start_ms[owner] + offset * (1000.0 / frame_rate)
    return owner, time_ms, np.isfinite(time_ms), first, stop


def _start_ms(segments: pa.Table) -> np.ndarray:
    """Segment start times as float UTC epoch milliseconds, NaN where unknown."""
    column = segments.column("start_time").cast(pa.int64())
    return column.to_numpy(zero_copy_only=False).astype(np.float64)


class _Accumulator:
    """Partial group counts of each batch, added up once at the end."""

    def __init__(self, keys: list[str]):
        self.keys = keys
        self.parts: list[pd.DataFrame] = []

    def add(self, frame: pd.DataFrame) -> None:
        if len(frame):
            self.parts.append(frame.groupby(self.keys, observed=True, sort=False).sum())

    def total(self, value_columns: list[str]) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame(columns=[*self.keys, *value_columns])
        return pd.concat(self.parts).groupby(self.keys, observed=True).sum().reset_index()


def compute_statistics(
    store: FeatureStore, labels_name: str, n_rows: int, timezone: str, block_rows: int
) -> dict[str, pa.Table]:
    """Occurrence of the sonotypes and token statistics, in one pass over the store.

    Args:
        store: the feature store.
        labels_name: the label array (`labels/<labels_name>`), frame or segment level.
        n_rows: rows of that level that are labelled (those past it are left out).
        timezone: IANA zone of dates and hours of day.
        block_rows: about how many frames to read at once.

    Returns:
        Tables "occurrence", "token_usage", "token_entropy" (see the module docstring).
    """
    level = store.labels_level(labels_name)
    frame_rate = store.frame_rate
    occurrence = _Accumulator(["sonotype", *_KEYS])
    tokens_acc = _Accumulator(["site", "hour", "token"])
    frames_per_segment = max(1, store.n_frames // max(1, store.n_segments))
    batch = max(1, block_rows // frames_per_segment)
    columns = ["site", "start_time", "duration_s", "segment_index", "frame_start", "n_frames"]
    with progress_bar(store.n_segments, "segments", "statistics", unit_scale=True) as bar:
        for segments in store.iter_segments(batch, columns):
            owner, time_ms, known, first, stop = _batch_frames(segments, frame_rate)
            sites = segments.column("site").to_pandas().fillna("").astype("category")
            dates, hours = _local_times(np.where(known, time_ms, 0), timezone)
            tokens = store.read(TOKENS, first, stop)
            tokens_acc.add(
                pd.DataFrame(
                    {
                        "site": sites.take(owner[known]).to_numpy(),
                        "hour": hours[known],
                        "token": tokens[known].astype(np.int32),
                        "n": np.ones(int(known.sum()), np.int64),
                    }
                )
            )
            if level == FRAME:
                stop_labelled = min(stop, n_rows)
                labels = np.full(stop - first, -1, np.int64)
                if stop_labelled > first:
                    labels[: stop_labelled - first] = store.read(
                        f"{LABELS}/{labels_name}", first, stop_labelled
                    )
                keep = known & (labels >= 0)
                rows = {
                    "site": sites.take(owner[keep]).to_numpy(),
                    "date": dates[keep],
                    "hour": hours[keep],
                    "sonotype": labels[keep].astype(np.int32),
                    "n": np.ones(int(keep.sum()), np.int64),
                    "seconds": np.zeros(int(keep.sum())),  # n / frame_rate, set at the end
                }
            else:
                rows = _segment_rows(store, labels_name, segments, sites, n_rows, timezone)
            occurrence.add(pd.DataFrame(rows))
            bar.update(segments.num_rows)
    table = occurrence.total(["n", "seconds"])
    if level == FRAME:
        table["seconds"] = table["n"] / frame_rate
    if len(table):
        table["share"] = table["n"] / table.groupby(_KEYS)["n"].transform("sum")
    else:
        table["share"] = pd.Series(dtype=np.float64)
    usage = tokens_acc.total(["n"])
    return {
        "occurrence": _occurrence_table(table),
        "token_usage": _token_usage_table(usage),
        "token_entropy": _token_entropy_table(usage),
    }


def _segment_rows(
    store: FeatureStore,
    labels_name: str,
    segments: pa.Table,
    sites: pd.Series,
    n_rows: int,
    timezone: str,
) -> dict[str, np.ndarray]:
    """Occurrence rows of a batch of segments for a segment-level clustering."""
    index = segments.column("segment_index").to_numpy()
    first, stop = int(index[0]), int(index[-1]) + 1
    labels = np.full(stop - first, -1, np.int64)
    if min(stop, n_rows) > first:
        labels[: min(stop, n_rows) - first] = store.read(
            f"{LABELS}/{labels_name}", first, min(stop, n_rows)
        )
    start_ms = _start_ms(segments)
    known = np.isfinite(start_ms)
    dates, hours = _local_times(np.where(known, start_ms, 0), timezone)
    keep = known & (labels >= 0)
    duration = segments.column("duration_s").to_numpy(zero_copy_only=False)
    return {
        "site": sites.to_numpy()[keep],
        "date": dates[keep],
        "hour": hours[keep],
        "sonotype": labels[keep].astype(np.int32),
        "n": np.ones(int(keep.sum()), np.int64),
        "seconds": np.nan_to_num(duration[keep].astype(np.float64)),
    }


def _occurrence_table(table: pd.DataFrame) -> pa.Table:
    table = table.sort_values([*_KEYS, "sonotype"], kind="stable")
    return pa.table(
        {
            "site": pa.array(table["site"].astype(str), pa.string()),
            "date": pa.array(table["date"].to_numpy().astype("datetime64[D]"), pa.date32()),
            "hour": pa.array(table["hour"].to_numpy().astype(np.int8), pa.int8()),
            "sonotype": pa.array(table["sonotype"].to_numpy().astype(np.int32), pa.int32()),
            "n": pa.array(table["n"].to_numpy().astype(np.int64), pa.int64()),
            "seconds": pa.array(table["seconds"].to_numpy().astype(np.float64), pa.float64()),
            "share": pa.array(table["share"].to_numpy().astype(np.float64), pa.float64()),
        }
    )


def _token_usage_table(usage: pd.DataFrame) -> pa.Table:
    usage = usage.sort_values(["site", "hour", "token"], kind="stable")
    return pa.table(
        {
            "site": pa.array(usage["site"].astype(str), pa.string()),
            "hour": pa.array(usage["hour"].to_numpy().astype(np.int8), pa.int8()),
            "token": pa.array(usage["token"].to_numpy().astype(np.int32), pa.int32()),
            "n": pa.array(usage["n"].to_numpy().astype(np.int64), pa.int64()),
        }
    )


def _token_entropy_table(usage: pd.DataFrame) -> pa.Table:
    if len(usage):
        totals = usage.groupby(["site", "hour"])["n"].transform("sum")
        p = usage["n"] / totals
        usage = usage.assign(plogp=-(p * np.log2(p)))
        grouped = usage.groupby(["site", "hour"], observed=True)
        table = pd.DataFrame(
            {
                "n_frames": grouped["n"].sum(),
                "n_tokens_used": grouped["token"].count(),
                "entropy_bits": grouped["plogp"].sum(),
            }
        ).reset_index()
    else:
        table = pd.DataFrame(columns=["site", "hour", "n_frames", "n_tokens_used", "entropy_bits"])
    entropy = table["entropy_bits"].to_numpy().astype(np.float64)
    return pa.table(
        {
            "site": pa.array(table["site"].astype(str), pa.string()),
            "hour": pa.array(table["hour"].to_numpy().astype(np.int8), pa.int8()),
            "n_frames": pa.array(table["n_frames"].to_numpy().astype(np.int64), pa.int64()),
            "n_tokens_used": pa.array(
                table["n_tokens_used"].to_numpy().astype(np.int64), pa.int64()
            ),
            "entropy_bits": pa.array(entropy, pa.float64()),
            "perplexity": pa.array(np.exp2(entropy), pa.float64()),
        }
    )


def k_selection_table(
    sample: np.ndarray, ks: list[int], silhouette_sample: int, random_state: int
) -> pa.Table:
    """Inertia and silhouette of k-means on a sample, for each k.

    Args:
        sample: float32 `[n, dim]` rows (the reservoir sample).
        ks: k values; those not below `n` are skipped.
        silhouette_sample: rows used for each silhouette score.
        random_state: seed of k-means and of the silhouette subsample.

    Returns:
        The k_selection table (see the module docstring), one row per k.
    """
    rows: dict[str, list] = {"k": [], "inertia": [], "inertia_per_row": [], "silhouette": []}
    usable = [k for k in ks if 2 <= k < len(sample)]
    with progress_bar(len(usable), "k", "k selection") as bar:
        for k in usable:
            model = KMeans(n_clusters=k, n_init=3, random_state=random_state).fit(sample)
            rows["k"].append(k)
            rows["inertia"].append(float(model.inertia_))
            rows["inertia_per_row"].append(float(model.inertia_) / len(sample))
            distinct = len(np.unique(model.labels_))
            rows["silhouette"].append(
                float(
                    silhouette_score(
                        sample,
                        model.labels_,
                        sample_size=min(silhouette_sample, len(sample)),
                        random_state=random_state,
                    )
                )
                if 2 <= distinct < len(sample)
                else float("nan")
            )
            bar.update(1)
    return pa.table(
        {
            "k": pa.array(rows["k"], pa.int32()),
            "inertia": pa.array(rows["inertia"], pa.float64()),
            "inertia_per_row": pa.array(rows["inertia_per_row"], pa.float64()),
            "silhouette": pa.array(rows["silhouette"], pa.float64()),
            "n_rows": pa.array([len(sample)] * len(rows["k"]), pa.int64()),
        }
    )

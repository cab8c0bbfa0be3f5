"""The data contracts between stages, written once: layout, Parquet schemas, shard keys, Zarr names.

Writers build tables against these schemas and readers check them with `check_table`;
no other module spells a column name or an array name as a string literal of its own.
See DESIGN.md, "Data contracts".
"""

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import pyarrow as pa

from sonotype.errors import SonotypeError
from sonotype.fsio import join

# --- Output layout -----------------------------------------------------------------


@dataclass(frozen=True)
class OutputLayout:
    """Where each stage writes under an output root `OUT/` (a path or an fsspec URL)."""

    root: str

    @property
    def catalog_dir(self) -> str:
        return join(self.root, "catalog")

    @property
    def recordings(self) -> str:
        """One row per input file (RECORDINGS_SCHEMA)."""
        return join(self.catalog_dir, "recordings.parquet")

    @property
    def segments(self) -> str:
        """One row per segment (SEGMENTS_SCHEMA)."""
        return join(self.catalog_dir, "segments.parquet")

    @property
    def shards_dir(self) -> str:
        """WebDataset `.tar` shards; `segments.shard` is relative to this directory."""
        return join(self.root, "shards")

    @property
    def features(self) -> str:
        """The Zarr v3 feature store."""
        return join(self.root, "features.zarr")

    @property
    def clusters_dir(self) -> str:
        return join(self.root, "clusters")

    def clusters(self, name: str) -> str:
        """One clustering (centroids, versions, summaries) under `clusters/<name>/`."""
        return join(self.clusters_dir, name)

    def evaluation(self, name: str) -> str:
        """`sonotype evaluate`'s results for clustering `name` (EVALUATION_SCORES_FILE, ...)."""
        return join(self.clusters(name), "evaluation")

    @property
    def report_dir(self) -> str:
        return join(self.root, "report")

    @property
    def report_index(self) -> str:
        return join(self.report_dir, "index.html")


EVALUATION_SCORES_FILE: Final = "scores.parquet"
"""One row per unit and method: `unit`, `method`, `k`, `n_windows`, `n_recordings`,
`n_labels`, `chance`, `nmi`, `ari`, `v_measure`, `purity`, `probe`."""
EVALUATION_WINDOWS_FILE: Final = "windows.parquet"
"""Each scored window: `recording_id`, `site`, `start_s`, `end_s`, `label`, `sonotype`."""


@dataclass(frozen=True)
class RunLayout:
    """What a training run directory `RUN_DIR/` holds (written by `sonotype train`)."""

    root: str

    @property
    def config(self) -> str:
        """The resolved training config."""
        return join(self.root, "config.yaml")

    @property
    def metrics(self) -> str:
        """Training and validation metrics, one JSON object per line (see METRIC_* below)."""
        return join(self.root, "metrics.jsonl")

    @property
    def metrics_csv(self) -> str:
        """The same metrics in long form: `step,split,metric,value`, one value per row."""
        return join(self.root, "metrics.csv")

    @property
    def checkpoints_dir(self) -> str:
        """Full training state for exact resume, `step-NNNNNNNN.pt`, last N kept."""
        return join(self.root, "checkpoints")

    def checkpoint(self, step: int) -> str:
        """The full-state checkpoint written after optimizer step `step`."""
        return join(self.checkpoints_dir, f"step-{step:08d}.pt")

    @property
    def export(self) -> str:
        """The slim inference export, loadable by `training.load_tokenizer`."""
        return join(self.root, "export", "tokenizer.pt")

    @property
    def tensorboard_dir(self) -> str:
        return join(self.root, "tensorboard")


METRIC_STEP: Final = "step"
"""Every metrics.jsonl record has the optimizer step it was logged at..."""
METRIC_SPLIT: Final = "split"
"""...and its split: "train" or "val". Other keys are metric names grouped by a prefix:
`loss/<term>` (generator and discriminator loss terms, `loss/total_g`, `loss/total_d`),
`codebook/<stat>` (`usage`, `perplexity`, `dead`), `val/<metric>` (validation metrics such
as `val/mel_distance`, `val/stft_distance`, `val/si_sdr`, `val/codebook_usage`),
`grad_norm/<model>`, `lr/<model>`, `speed/samples_per_s`, `memory/peak_mb`, and `time_s`
(seconds since the run started). Values are JSON numbers."""


def features_table_path(store: str) -> str:
    """The Parquet segment table that sits beside a feature store: `X.zarr` → `X.segments.parquet`.

    It lives beside the store, not inside it, so that the Zarr hierarchy holds only Zarr nodes.
    It is a directory of Parquet parts, one per append (`analysis.segment_table`); rows
    with `segment_index >= n_segments` belong to an unfinished append and are ignored.
    """
    return _store_base(store) + ".segments.parquet"


def features_config_path(store: str) -> str:
    """The encode settings a feature store was made with, beside it: `X.zarr` → `X.encode.yaml`.

    `sonotype encode` writes the resolved `EncodeConfig` there and refuses to append
    to the store with other output-shaping settings.
    """
    return _store_base(store) + ".encode.yaml"


def _store_base(store: str) -> str:
    base = store.rstrip("/")
    return base[: -len(".zarr")] if base.endswith(".zarr") else base


# --- Shard samples -----------------------------------------------------------------

AUDIO_EXTENSION: Final = "flac"
"""Each shard sample holds `KEY.flac`: mono audio at the configured rate (24 kHz default)."""
METADATA_EXTENSION: Final = "json"
"""...and `KEY.json`: the segment's row of SEGMENTS_SCHEMA, times as ISO-8601 UTC strings."""
SHARD_SUFFIX: Final = ".tar"

_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_SLUG_INVALID = re.compile(r"[^A-Za-z0-9-]+")


def is_valid_key(key: str) -> bool:
    """Keys are dot-free (webdataset splits names at the first dot) and slash-free."""
    return bool(_KEY_PATTERN.match(key))


def slug(text: str) -> str:
    """A key-safe form of free text (site names, file stems): runs of other characters → '-'."""
    cleaned = _SLUG_INVALID.sub("-", text).strip("-")
    return cleaned or "x"


def segment_key(recording_id: str, stream: int, index: int) -> str:
    """The shard key of segment `index` of stream `stream` of a recording.

    Deterministic: the same recording, stream and index always give the same key,
    so a re-run or a resumed run writes the same keys.

    Raises:
        SonotypeError: `recording_id` would make an invalid key.
    """
    key = f"{recording_id}_s{stream}_{index:06d}"
    if not is_valid_key(key):
        raise SonotypeError(f"recording_id {recording_id!r} gives an invalid shard key {key!r}")
    return key


# --- Parquet schemas ---------------------------------------------------------------

UTC_TIMESTAMP = pa.timestamp("ms", tz="UTC")

RECORDING_STATUS_OK: Final = "ok"
RECORDING_STATUS_FAILED: Final = "failed"
RECORDING_STATUS_IGNORED: Final = "ignored"
"""A side file (`._*` AppleDouble, `.TXT` logs) that was found and deliberately not read."""

RECORDINGS_SCHEMA = pa.schema(
    [
        pa.field("recording_id", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        pa.field("site", pa.string()),
        pa.field("start_time", UTC_TIMESTAMP),
        pa.field("time_source", pa.string()),
        pa.field("duration_s", pa.float64()),
        pa.field("sample_rate", pa.int32()),
        pa.field("channels", pa.int16()),
        pa.field("format", pa.string()),
        pa.field("subtype", pa.string()),
        pa.field("bytes", pa.int64()),
        pa.field("fingerprint", pa.string()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("error", pa.string()),
        pa.field("n_segments_kept", pa.int32()),
        pa.field("n_segments_dropped", pa.int32()),
    ]
)
"""`catalog/recordings.parquet`: one row per input file, `status` in ok/failed/ignored."""

SEGMENTS_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("recording_id", pa.string(), nullable=False),
        pa.field("site", pa.string()),
        pa.field("stream", pa.int16()),
        pa.field("channel", pa.int16()),
        pa.field("start_time", UTC_TIMESTAMP),
        pa.field("offset_s", pa.float64()),
        pa.field("duration_s", pa.float64()),
        pa.field("sample_rate", pa.int32()),
        pa.field("shard", pa.string()),
        pa.field("rms_dbfs", pa.float32()),
        pa.field("peak", pa.float32()),
        pa.field("clipped_fraction", pa.float32()),
        pa.field("is_silent", pa.bool_()),
        pa.field("has_nonfinite", pa.bool_()),
        pa.field("dc_offset", pa.float32()),
        pa.field("kept", pa.bool_()),
        pa.field("drop_reason", pa.string()),
        pa.field("checksum", pa.string()),
    ]
)
"""`catalog/segments.parquet`: one row per segment. `stream` numbers the channel streams
of a recording (0 for a mix); `channel` is the source channel, -1 for a mix; `shard` is
relative to `shards/` and null for dropped segments; `start_time` is the segment's own
start (recording start + offset); `checksum` is the BLAKE2b digest (8 bytes, hex) of the
sample's FLAC member, null for dropped segments and in catalogs written before it
existed (`OPTIONAL_SEGMENT_COLUMNS`)."""

OPTIONAL_SEGMENT_COLUMNS = ("checksum",)
"""Columns of SEGMENTS_SCHEMA that older catalogs and task parts lack (read as nulls)."""


class SegmentColumn(StrEnum):
    """The column names of SEGMENTS_SCHEMA, in order: what code reading a segment row uses.

    A segment row is a catalog row or the JSON member of a shard sample; members are
    plain strings, so `row[SegmentColumn.SITE]` works on both.
    """

    KEY = "key"
    RECORDING_ID = "recording_id"
    SITE = "site"
    STREAM = "stream"
    CHANNEL = "channel"
    START_TIME = "start_time"
    OFFSET_S = "offset_s"
    DURATION_S = "duration_s"
    SAMPLE_RATE = "sample_rate"
    SHARD = "shard"
    RMS_DBFS = "rms_dbfs"
    PEAK = "peak"
    CLIPPED_FRACTION = "clipped_fraction"
    IS_SILENT = "is_silent"
    HAS_NONFINITE = "has_nonfinite"
    DC_OFFSET = "dc_offset"
    KEPT = "kept"
    DROP_REASON = "drop_reason"
    CHECKSUM = "checksum"


FEATURE_SEGMENTS_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("recording_id", pa.string(), nullable=False),
        pa.field("site", pa.string()),
        pa.field("start_time", UTC_TIMESTAMP),
        pa.field("offset_s", pa.float64()),
        pa.field("duration_s", pa.float64()),
        pa.field("shard", pa.string()),
        pa.field("segment_index", pa.int64(), nullable=False),
        pa.field("frame_start", pa.int64(), nullable=False),
        pa.field("n_frames", pa.int32(), nullable=False),
        pa.field("checksum", pa.string()),
    ]
)
"""`X.segments.parquet` beside `X.zarr`: segment `segment_index` (its row in `pooled`)
owns frames `[frame_start, frame_start + n_frames)` of `tokens` and `embeddings`.
`checksum` is the digest of those rows as stored (`analysis.store_integrity`); null in
stores written before it existed, whose parts lack the column."""

FEATURE_SEGMENT_FILLED_COLUMNS = ("segment_index", "frame_start", "checksum")
"""Columns of FEATURE_SEGMENTS_SCHEMA the store fills in when appending rows."""

OPTIONAL_FEATURE_SEGMENT_COLUMNS = ("checksum",)
"""Columns of FEATURE_SEGMENTS_SCHEMA that older segment tables lack (read as nulls)."""


def check_table(table: pa.Table, schema: pa.Schema, where: str) -> None:
    """Check that `table` has every column of `schema` with the contract's type.

    Extra columns are allowed (a later version may add some).

    Args:
        table: the table read from disk.
        schema: the contract it must follow.
        where: the file or URL, for the message.

    Raises:
        SonotypeError: a column is missing or has another type (all problems listed).
    """
    problems = []
    for field in schema:
        if field.name not in table.column_names:
            problems.append(f"missing column {field.name!r} ({field.type})")
            continue
        found = table.schema.field(field.name).type
        if found != field.type:
            problems.append(f"column {field.name!r} is {found}, expected {field.type}")
    if problems:
        raise SonotypeError(f"{where}: does not follow the contract: " + "; ".join(problems))


def columns_to_read(
    columns: Sequence[str], present: Collection[str], optional: Collection[str]
) -> list[str]:
    """Which of `columns` to ask a file for: all but the `optional` ones it predates."""
    return [name for name in columns if name in present or name not in optional]


def with_optional_nulls(
    table: pa.Table, schema: pa.Schema, columns: Sequence[str], optional: Collection[str]
) -> pa.Table:
    """`table`'s `columns` in that order, each `optional` one it lacks (a file written
    before that column existed) added as nulls of `schema`'s type. Other missing
    columns stay missing, for `check_table` to name."""
    for name in columns:
        if name in optional and name not in table.column_names:
            field = schema.field(name)
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select([name for name in columns if name in table.column_names])


# --- Zarr feature store ------------------------------------------------------------

TOKENS: Final = "tokens"
"""int16 `[n_frames]`: codebook index of every frame."""
EMBEDDINGS: Final = "embeddings"
"""float16 `[n_frames, dim]`: pre-quantisation encoder output of every frame."""
POOLED: Final = "pooled"
"""float32 `[n_segments, dim]`: per-segment mean of `embeddings`."""
LOUDNESS: Final = "loudness"
"""float16 `[n_frames]`: RMS level (dBFS) of the recorded audio over each frame's hop,
before any gain normalisation; NaN where unknown. Stores written before it existed lack
it and are refused by encode (re-encode with --force)."""
LABELS: Final = "labels"
"""Group of sonotype labels, `labels/<name>`: one int per frame or per segment."""

ATTR_CHECKPOINT_HASH: Final = "checkpoint_sha256"
ATTR_MODEL_CONFIG: Final = "model_config"
ATTR_SAMPLE_RATE: Final = "sample_rate"
ATTR_FRAME_RATE: Final = "frame_rate"
ATTR_CODEBOOK_SIZE: Final = "codebook_size"
ATTR_SHARDS: Final = "shards"
"""Shards (relative to `shards/`) whose segments are all in the store."""
ATTR_N_FRAMES: Final = "n_frames"
"""Frames committed; array rows past this are an unfinished append and are ignored."""
ATTR_N_SEGMENTS: Final = "n_segments"
"""Segments committed (rows of `pooled` and of the segment table)."""
ATTR_EVERY_CHUNK_WRITTEN: Final = "every_chunk_written"
"""True in stores whose every chunk of committed rows is on storage, even one of fill
values (Zarr's `write_empty_chunks`); an absent chunk there is always damage."""
ATTR_REPAIRING: Final = "repairing"
"""Shards an encode began to write again in place and has not finished (absent: none).
Their rows count as damaged until a run completes them."""

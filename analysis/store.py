"""The Zarr v3 feature store: its layout, the `FeatureStore` handle, opening and creating.

Layout of `OUT/features.zarr` (names from `sonotype.contracts`):

| node | dtype | shape | dimension names | chunks |
|---|---|---|---|---|
| `tokens` | int16 | `[n_frames]` | `frame` | `frames_per_chunk` |
| `embeddings` | float16 | `[n_frames, dim]` | `frame`, `dim` | `frames_per_chunk × dim` |
| `loudness` | float16 | `[n_frames]` | `frame` | `frames_per_chunk` |
| `pooled` | float32 | `[n_segments, dim]` | `segment`, `dim` | `segments_per_chunk × dim` |
| `labels/<name>` | int16/int32 | `[n_frames]` or `[n_segments]` | `frame` or `segment` | as above |

Every array is compressed with Blosc zstd (level 3) after byte shuffle: shuffle groups
the high bytes of float16/int16 values, which is where the redundancy is. Frame arrays
share one chunk grid along frames (16384 frames by default: 16 MiB of float16
embeddings at dim 512 before compression), so a task that handles frames `[a, b)` on
chunk boundaries touches exactly one chunk of each array and two tasks never write
the same chunk. The `dimension_names` make the group readable by
`xarray.open_zarr(url, consolidated=False)` (`group="labels"` for the labels) and by
`dask.array.from_zarr(url, component=name)`.

Beside the store, `contracts.features_table_path(url)` (`X.segments.parquet`) is a
directory of Parquet parts following FEATURE_SEGMENTS_SCHEMA, one part per append
(`analysis.segment_table`).

The store's code is split by concept; other code imports every name from this module.

- `analysis.store` (here): `FeatureStore` with its reading side (committed lengths,
  `read`, `block_ranges`, `dask_array`, `read_segments`), `create_store`, `open_store`.
  A new store gets its attributes last, in one write; a group without them is a
  creation that was killed, and is created again.
- `analysis.store_append`: `FeatureStore.append` and its crash and commit protocol.
- `analysis.store_labels`: the `labels/<name>` arrays (`create_labels`, `write_labels`,
  `label_names`, their attributes).
- `analysis.store_integrity`: each segment's checksum, the missing-chunk check every
  reader runs (`require_intact`) and `verify_store`.
- `analysis.store_layout`: the names (`FRAME`, `SEGMENT`, `DIM`, `UNLABELLED`), chunk
  defaults, codec and `StoreIdentity` the others share (re-exported here), and the
  writing of a new store's empty group.

`FeatureStore` gets its appending and labelling methods from the mixins `StoreAppender`
and `LabelArrays` of those modules.
"""

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import dask.array as da
import numpy as np
import pyarrow as pa
import zarr

from analysis import segment_table
from analysis.store_append import StoreAppender
from analysis.store_labels import LabelArrays
from analysis.store_layout import (
    DEFAULT_FRAMES_PER_CHUNK,
    DEFAULT_SEGMENTS_PER_CHUNK,
    DIM,
    FRAME,
    SEGMENT,
    UNLABELLED,
    StoreIdentity,
    checked_level,
    create_group,
)
from sonotype import contracts
from sonotype.contracts import (
    ATTR_CHECKPOINT_HASH,
    ATTR_CODEBOOK_SIZE,
    ATTR_FRAME_RATE,
    ATTR_MODEL_CONFIG,
    ATTR_N_FRAMES,
    ATTR_N_SEGMENTS,
    ATTR_SAMPLE_RATE,
    ATTR_SHARDS,
    EMBEDDINGS,
    FEATURE_SEGMENTS_SCHEMA,
    LOUDNESS,
    POOLED,
    TOKENS,
)
from sonotype.errors import OutputConflictError, SonotypeError
from sonotype.fsio import exists, join

__all__ = [
    "DEFAULT_FRAMES_PER_CHUNK",
    "DEFAULT_SEGMENTS_PER_CHUNK",
    "DIM",
    "FRAME",
    "SEGMENT",
    "UNLABELLED",
    "FeatureStore",
    "StoreIdentity",
    "create_store",
    "is_unfinished",
    "open_store",
]

_IDENTITY_ATTRS = (ATTR_CHECKPOINT_HASH, ATTR_SAMPLE_RATE, ATTR_FRAME_RATE, ATTR_CODEBOOK_SIZE)


class FeatureStore(StoreAppender, LabelArrays):
    """A handle on a feature store: committed lengths, reads, appends and label arrays.

    Get one with `create_store` or `open_store`. Reads never go past the committed
    lengths `n_frames` / `n_segments`. The handle sees the attributes as they were when
    it was opened plus its own appends: open a new one to see another writer's commits.
    `append` comes from `StoreAppender`, the label methods from `LabelArrays`.
    """

    def __init__(self, url: str, group: zarr.Group):
        self.url = url
        self.group = group
        self._parts: tuple[int, list[tuple[int, str]]] | None = None

    # --- metadata ------------------------------------------------------------------

    def _attr(self, name: str) -> Any:
        attrs = self.group.attrs.asdict()
        if name not in attrs:
            raise SonotypeError(
                f"{self.url}: group attribute {name!r} missing; not a feature store"
            )
        return attrs[name]

    @property
    def n_frames(self) -> int:
        """Committed frames: rows `[0, n_frames)` of the frame arrays."""
        return int(self._attr(ATTR_N_FRAMES))

    @property
    def n_segments(self) -> int:
        """Committed segments: rows of `pooled` and of the segment table."""
        return int(self._attr(ATTR_N_SEGMENTS))

    @property
    def dim(self) -> int:
        return int(self.array(EMBEDDINGS).shape[1])

    @property
    def has_loudness(self) -> bool:
        """Whether the store keeps each frame's recorded level (stores from before it do not)."""
        return LOUDNESS in self.group

    @property
    def frame_rate(self) -> float:
        """Frames per second."""
        return float(self._attr(ATTR_FRAME_RATE))

    @property
    def sample_rate(self) -> int:
        return int(self._attr(ATTR_SAMPLE_RATE))

    @property
    def codebook_size(self) -> int:
        return int(self._attr(ATTR_CODEBOOK_SIZE))

    @property
    def checkpoint_sha256(self) -> str:
        return str(self._attr(ATTR_CHECKPOINT_HASH))

    @property
    def model_config(self) -> dict[str, Any]:
        return dict(self._attr(ATTR_MODEL_CONFIG))

    @property
    def shards(self) -> list[str]:
        """Shards (relative to `shards/`) whose segments are all committed."""
        return list(self._attr(ATTR_SHARDS))

    @property
    def table_url(self) -> str:
        """The segment table beside the store (a directory of Parquet parts)."""
        return contracts.features_table_path(self.url)

    def n_rows(self, level: str) -> int:
        """Committed rows at `level` ("frame" or "segment")."""
        return self.n_frames if checked_level(level) == FRAME else self.n_segments

    def chunk_rows(self, level: str) -> int:
        """Rows per Zarr chunk along the frame or segment axis."""
        name = EMBEDDINGS if checked_level(level) == FRAME else POOLED
        return int(self.array(name).chunks[0])

    def array(self, name: str) -> zarr.Array:
        """A Zarr array of the store by name (`tokens`, `embeddings`, `pooled`, `labels/x`).

        Raises:
            SonotypeError: the store has no such array.
        """
        try:
            node = self.group[name]
        except KeyError:
            raise SonotypeError(f"{self.url}: no array {name!r}") from None
        if not isinstance(node, zarr.Array):
            raise SonotypeError(f"{self.url}: {name!r} is a group, not an array")
        # Every chunk written, even one equal to the fill value: an absent chunk is then
        # always damage (`analysis.store_integrity.missing_chunks`), never a shortcut.
        return node.with_config({"write_empty_chunks": True})

    # --- reading -------------------------------------------------------------------

    def read(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows `[start, stop)` of an array, within its committed length.

        Args:
            name: `tokens`, `embeddings`, `pooled` or `labels/<name>`.
            start: first row.
            stop: one past the last row.

        Returns:
            The rows, in the array's dtype: `[stop - start]` or `[stop - start, dim]`.

        Raises:
            SonotypeError: the range leaves the committed rows.
        """
        array = self.array(name)
        level = array.metadata.dimension_names[0]
        committed = self.n_rows(level)
        if not 0 <= start <= stop <= committed:
            raise SonotypeError(
                f"{self.url}: rows [{start}, {stop}) of {name!r} requested; "
                f"committed rows are [0, {committed})"
            )
        return array[start:stop]

    def block_ranges(
        self, level: str, block_rows: int, start: int = 0, stop: int | None = None
    ) -> list[tuple[int, int]]:
        """Split committed rows `[start, stop)` into blocks on the chunk grid.

        Block edges fall on chunk boundaries (except `start` and `stop` themselves),
        so blocks never share a chunk when `start` is chunk-aligned.

        Args:
            level: "frame" or "segment".
            block_rows: wanted rows per block; rounded up to whole chunks.
            start: first row.
            stop: one past the last row (None: the committed length).

        Returns:
            `(start, stop)` pairs covering the range in order.
        """
        stop = self.n_rows(level) if stop is None else stop
        chunk = self.chunk_rows(level)
        step = max(1, -(-block_rows // chunk)) * chunk
        edges = [start, *range((start // step + 1) * step, stop, step), stop]
        return [(a, b) for a, b in itertools.pairwise(edges) if b > a]

    def dask_array(self, name: str) -> da.Array:
        """A Dask array of the committed rows of `name`, one Dask chunk per Zarr chunk."""
        array = self.array(name)
        committed = self.n_rows(array.metadata.dimension_names[0])
        return da.from_zarr(array)[:committed]

    def read_segments(
        self, start: int = 0, stop: int | None = None, columns: Sequence[str] | None = None
    ) -> pa.Table:
        """Rows of the segment table with `start <= segment_index < stop`, in order.

        Only the table parts overlapping the range are read, so memory follows the
        range asked for (and the append batch size), not the table size.

        Args:
            start: first segment.
            stop: one past the last segment (None: the committed length).
            columns: columns to read (None: all of FEATURE_SEGMENTS_SCHEMA).

        Returns:
            A table following FEATURE_SEGMENTS_SCHEMA (or its selected columns).

        Raises:
            SonotypeError: the table misses committed rows or breaks the contract.
        """
        stop = self.n_segments if stop is None else stop
        wanted = list(columns) if columns is not None else FEATURE_SEGMENTS_SCHEMA.names
        committed = self.n_segments
        if self._parts is None or self._parts[0] != committed:
            # Listed once per committed length: a long iteration does not list per batch.
            self._parts = (committed, segment_table.list_parts(self.table_url, committed))
        parts = self._parts[1]
        return segment_table.read_rows(self.table_url, parts, committed, start, stop, wanted)

    def iter_segments(
        self, batch_rows: int, columns: Sequence[str] | None = None
    ) -> Iterator[pa.Table]:
        """The committed segment table in batches of at most `batch_rows` rows, in order."""
        for start in range(0, self.n_segments, batch_rows):
            yield self.read_segments(start, min(start + batch_rows, self.n_segments), columns)


def create_store(
    url: str,
    identity: StoreIdentity,
    frames_per_chunk: int = DEFAULT_FRAMES_PER_CHUNK,
    segments_per_chunk: int = DEFAULT_SEGMENTS_PER_CHUNK,
    overwrite: bool = False,
) -> FeatureStore:
    """Create an empty feature store, or reopen one made from the same model.

    Reopening lets a killed encode resume: it appends the shards not yet in `shards`.

    Args:
        url: where the store goes (`OUT/features.zarr`; path or fsspec URL).
        identity: model and rates the features come from.
        frames_per_chunk: rows per chunk of the frame arrays.
        segments_per_chunk: rows per chunk of `pooled` (and segment labels).
        overwrite: replace an existing store made from another model.

    Returns:
        The store, empty or as committed before.

    Raises:
        OutputConflictError: `url` holds a store made from another model or dim.
        SonotypeError: invalid sizes.
    """
    if identity.dim < 1 or frames_per_chunk < 1 or segments_per_chunk < 1:
        raise SonotypeError(
            f"{url}: dim and chunk sizes must be positive, got dim={identity.dim}, "
            f"frames_per_chunk={frames_per_chunk}, segments_per_chunk={segments_per_chunk}"
        )
    if not 1 <= identity.codebook_size <= np.iinfo(np.int16).max + 1:
        raise SonotypeError(
            f"{url}: codebook_size must fit int16 tokens, got {identity.codebook_size}"
        )
    if exists(join(url, "zarr.json")) and not overwrite and not is_unfinished(url):
        store = open_store(url, mode="r+")
        found = {
            ATTR_CHECKPOINT_HASH: store.checkpoint_sha256,
            ATTR_SAMPLE_RATE: store.sample_rate,
            ATTR_FRAME_RATE: store.frame_rate,
            ATTR_CODEBOOK_SIZE: store.codebook_size,
            "dim": store.dim,
        }
        wanted = {
            ATTR_CHECKPOINT_HASH: identity.checkpoint_sha256,
            ATTR_SAMPLE_RATE: identity.sample_rate,
            ATTR_FRAME_RATE: identity.frame_rate,
            ATTR_CODEBOOK_SIZE: identity.codebook_size,
            "dim": identity.dim,
        }
        differing = [key for key in wanted if wanted[key] != found[key]]
        if differing:
            raise OutputConflictError(
                f"{url}: holds features of another model ({', '.join(differing)} differ: "
                f"found {[found[k] for k in differing]}, expected {[wanted[k] for k in differing]})"
            )
        return store
    group = create_group(url, identity, frames_per_chunk, segments_per_chunk)
    return FeatureStore(url, group)


def is_unfinished(url: str) -> bool:
    """Whether the group at `url` is a store whose creation was killed before it ended."""
    try:
        attrs = zarr.open_group(url, mode="r", zarr_format=3).attrs.asdict()
    except (ValueError, FileNotFoundError):
        return False  # not a Zarr group at all: open_store names the problem
    return not attrs


def open_store(url: str, mode: str = "r") -> FeatureStore:
    """Open an existing feature store.

    Args:
        url: the store (`OUT/features.zarr`).
        mode: "r" to read, "r+" to append or write labels.

    Raises:
        SonotypeError: no store there, or it misses arrays or attributes.
    """
    if not exists(join(url, "zarr.json")):
        raise SonotypeError(f"{url}: no feature store (expected a Zarr v3 group)")
    try:
        group = zarr.open_group(url, mode=mode, zarr_format=3)
    except (ValueError, FileNotFoundError) as error:
        raise SonotypeError(f"{url}: not a readable Zarr v3 group ({error})") from None
    store = FeatureStore(url, group)
    for name in (TOKENS, EMBEDDINGS, POOLED):
        store.array(name)
    for name in (*_IDENTITY_ATTRS, ATTR_N_FRAMES, ATTR_N_SEGMENTS, ATTR_SHARDS):
        store._attr(name)
    return store

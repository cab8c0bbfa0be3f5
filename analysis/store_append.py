"""Appending whole segments to a feature store and committing them (part of FeatureStore).

Crash and commit protocol of `FeatureStore.append` (one writer at a time):

1. read the committed lengths `n_frames`, `n_segments` from the group attributes;
2. resize every frame array (labels too, filled with -1 = unlabelled) to
   `n_frames + m` and every segment array to `n_segments + s`;
3. write the data regions `[n_frames, n_frames + m)` and `[n_segments, n_segments + s)`;
4. write the table part `part-<n_segments>.parquet` atomically, with each segment's
   checksum (`analysis.store_integrity`);
5. commit: one write of the group attributes sets `n_frames`, `n_segments` and `shards`.

An append of no segments (shards whose every segment was skipped) does step 5 only.
A crash before step 5 leaves rows past the committed lengths (and maybe a table part
starting at `n_segments`); readers ignore them, and the next append (a resumed encode
skips the shards listed in `shards`) overwrites them. Zarr writes each metadata and
chunk object whole (the local store renames a temporary file), so the commit, one
`Group.update_attributes` call, is atomic (`group.attrs.update` would not be: it writes
the group's `zarr.json` once per key).
"""

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analysis import segment_table
from analysis.store_integrity import segment_checksums
from analysis.store_layout import FRAME, SEGMENT
from sonotype.contracts import (
    ATTR_N_FRAMES,
    ATTR_N_SEGMENTS,
    ATTR_SHARDS,
    EMBEDDINGS,
    LABELS,
    LOUDNESS,
    POOLED,
    TOKENS,
)
from sonotype.errors import SonotypeError

logger = logging.getLogger(__name__)


class StoreAppender:
    """The writing side of `FeatureStore`: `append` and the steps of its protocol.

    A mixin of `FeatureStore`, split off to keep each module to one concept: it uses
    the handle's reading side (`url`, `group`, `dim`, `codebook_size`, the committed
    lengths, `shards`, `table_url`, `array`) and `label_names`, so that label arrays
    grow with the features.
    """

    def append(
        self,
        tokens: np.ndarray,
        embeddings: np.ndarray,
        segments: pa.Table | Mapping[str, Sequence],
        pooled: np.ndarray | None = None,
        shards: Sequence[str] = (),
        loudness: np.ndarray | None = None,
    ) -> None:
        """Append a batch of whole segments and commit it (see the module docstring).

        Append one shard (or a few) at a time: each call writes one table part, and
        `shards` are recorded in the same commit so that a resumed encode can skip them.

        Args:
            tokens: `[m]` codebook indices in `[0, codebook_size)` of the batch's frames.
            embeddings: `[m, dim]` frame embeddings (stored as float16).
            segments: `s` rows in frame order with the columns of FEATURE_SEGMENTS_SCHEMA
                except `segment_index` and `frame_start`, which are filled in; the
                `n_frames` column must add up to `m`.
            pooled: `[s, dim]` per-segment embeddings (None: the mean of each segment's
                frame embeddings, computed in float32).
            shards: shards whose segments are now all in the store.
            loudness: `[m]` recorded level of each frame, dBFS (None: unknown, NaN).

        Raises:
            SonotypeError: shapes, dtypes, ranges or columns do not fit the store.
        """
        table = segment_table.check_rows(segments, self.url)
        tokens, embeddings = self._check_frames(tokens, embeddings, table)
        if pooled is None:
            pooled = _segment_means(embeddings, table.column("n_frames").to_numpy())
        pooled = np.asarray(pooled, dtype=np.float32)
        if pooled.shape != (table.num_rows, self.dim):
            raise SonotypeError(
                f"{self.url}: pooled must be [{table.num_rows}, {self.dim}], got {pooled.shape}"
            )
        n_frames, n_segments = self.n_frames, self.n_segments
        m, s = len(tokens), table.num_rows
        if s == 0:  # shards whose every segment was skipped: only record them
            self._commit(n_frames, n_segments, shards)
            return
        self._resize(FRAME, n_frames + m)
        self._resize(SEGMENT, n_segments + s)
        stored_loudness = self._checked_loudness(loudness, m)
        self._write_rows(n_frames, n_segments, tokens, embeddings, stored_loudness, pooled)
        lengths = table.column("n_frames").to_numpy()
        starts = n_frames + np.concatenate([[0], np.cumsum(lengths)[:-1]])
        checksums = segment_checksums(tokens, embeddings, stored_loudness, pooled, lengths)
        table = (
            table.append_column(
                "segment_index", pa.array(np.arange(n_segments, n_segments + s), pa.int64())
            )
            .append_column("frame_start", pa.array(starts, pa.int64()))
            .append_column("checksum", pa.array(checksums, pa.string()))
        )
        segment_table.write_part(self.table_url, n_segments, table)
        self._commit(n_frames + m, n_segments + s, shards)

    def rewrite(
        self,
        committed: pa.Table,
        tokens: np.ndarray,
        embeddings: np.ndarray,
        segments: pa.Table,
        pooled: np.ndarray,
        loudness: np.ndarray | None = None,
    ) -> None:
        """Write a damaged shard's rows again in place, from a new encode of the shard.

        The rows keep their places (`segment_index`, `frame_start`), so labels and
        everything after them stay valid; only the data and the segments' checksums are
        written. The new encode must give the same segments with the same frame counts.

        Args:
            committed: the shard's committed segment rows (`segment_index`,
                `frame_start`, `n_frames`, `key`), consecutive, in order.
            tokens, embeddings, segments, pooled, loudness: the new encode, as for
                `append` (`pooled` required).

        Raises:
            SonotypeError: the new encode's segments or frame counts differ from the
                committed rows.
        """
        shard = committed.column("shard")[0].as_py()
        new = segment_table.check_rows(segments, self.url)
        for column in ("key", "n_frames"):
            if new.column(column).to_pylist() != committed.column(column).to_pylist():
                raise SonotypeError(
                    f"{self.url}: encoding {shard} again gives other segments ({column}) "
                    "than its stored rows; re-encode the store with --force"
                )
        lengths = committed.column("n_frames").to_numpy().astype(np.int64)
        first_segment = int(committed.column("segment_index")[0].as_py())
        first_frame = int(committed.column("frame_start")[0].as_py())
        rows = committed.column("segment_index").to_numpy()
        starts = committed.column("frame_start").to_numpy()
        if not (
            np.array_equal(rows, first_segment + np.arange(len(lengths)))
            and np.array_equal(starts, first_frame + np.cumsum(lengths) - lengths)
        ):
            raise SonotypeError(
                f"{self.url}: the rows of {shard} are not consecutive; it cannot be "
                "written again in place: re-encode the store with --force"
            )
        tokens, embeddings = self._check_frames(tokens, embeddings, committed)
        stored_loudness = self._checked_loudness(loudness, len(tokens))
        pooled = np.asarray(pooled, np.float32)
        self._write_rows(first_frame, first_segment, tokens, embeddings, stored_loudness, pooled)
        checksums = segment_checksums(tokens, embeddings, stored_loudness, pooled, lengths)
        indices = range(first_segment, first_segment + len(lengths))
        segment_table.replace_checksums(
            self.table_url,
            segment_table.list_parts(self.table_url, self.n_segments),
            dict(zip(indices, checksums, strict=True)),
        )

    def _commit(self, n_frames: int, n_segments: int, shards: Sequence[str]) -> None:
        """Step 5 of the protocol: lengths and shards in one write of the group attributes."""
        known = self.shards
        # One write of zarr.json: `attrs.update` would write it once per key (zarr's
        # Attributes is a MutableMapping), and a kill between those writes would commit
        # the lengths without the shards.
        self.group.update_attributes(
            {
                ATTR_N_FRAMES: n_frames,
                ATTR_N_SEGMENTS: n_segments,
                ATTR_SHARDS: known + [shard for shard in shards if shard not in known],
            }
        )
        logger.debug("%s: committed %d frames, %d segments", self.url, n_frames, n_segments)

    def _check_frames(
        self, tokens: np.ndarray, embeddings: np.ndarray, table: pa.Table
    ) -> tuple[np.ndarray, np.ndarray]:
        tokens = np.asarray(tokens)
        embeddings = np.asarray(embeddings)
        m = int(pc.sum(table.column("n_frames")).as_py() or 0)
        if tokens.shape != (m,) or embeddings.shape != (m, self.dim):
            raise SonotypeError(
                f"{self.url}: segment n_frames add up to {m}: expected tokens [{m}] and "
                f"embeddings [{m}, {self.dim}], got {tokens.shape} and {embeddings.shape}"
            )
        if pc.min(table.column("n_frames")).as_py() is not None and (
            pc.min(table.column("n_frames")).as_py() < 1
        ):
            raise SonotypeError(f"{self.url}: every segment needs at least one frame")
        if not np.issubdtype(tokens.dtype, np.integer):
            raise SonotypeError(f"{self.url}: tokens must be integers, got {tokens.dtype}")
        if m and (tokens.min() < 0 or tokens.max() >= self.codebook_size):
            raise SonotypeError(
                f"{self.url}: tokens must lie in [0, {self.codebook_size}), "
                f"found [{tokens.min()}, {tokens.max()}]"
            )
        stored = embeddings.astype(np.float16)
        if not np.isfinite(stored).all():
            raise SonotypeError(f"{self.url}: embeddings hold NaN/inf (or overflow float16)")
        return tokens.astype(np.int16), stored

    def _write_rows(
        self,
        first_frame: int,
        first_segment: int,
        tokens: np.ndarray,
        embeddings: np.ndarray,
        loudness: np.ndarray | None,
        pooled: np.ndarray,
    ) -> None:
        """Step 3's array writes: frames from `first_frame`, segments from `first_segment`."""
        stop_frame = first_frame + len(tokens)
        self.array(TOKENS)[first_frame:stop_frame] = tokens
        self.array(EMBEDDINGS)[first_frame:stop_frame] = embeddings
        if loudness is not None:
            self.array(LOUDNESS)[first_frame:stop_frame] = loudness
        self.array(POOLED)[first_segment : first_segment + len(pooled)] = pooled

    def _checked_loudness(self, loudness: np.ndarray | None, m: int) -> np.ndarray | None:
        """Loudness as stored (float16; NaN where unknown), None for a store without it."""
        if not self.has_loudness:
            return None
        if loudness is None:
            return np.full(m, np.nan, np.float16)
        loudness = np.asarray(loudness, np.float32)
        if loudness.shape != (m,):
            raise SonotypeError(f"{self.url}: loudness must be [{m}], got {loudness.shape}")
        return loudness.astype(np.float16)

    def _resize(self, level: str, length: int) -> None:
        """Set every array along `level` to `length` rows (labels follow the features)."""
        names = [TOKENS, EMBEDDINGS] if level == FRAME else [POOLED]
        if level == FRAME and self.has_loudness:
            names.append(LOUDNESS)
        names += [f"{LABELS}/{name}" for name in self.label_names(level)]
        for name in names:
            array = self.array(name)
            if array.shape[0] != length:
                array.resize((length, *array.shape[1:]))


def _segment_means(embeddings: np.ndarray, n_frames: np.ndarray) -> np.ndarray:
    """`[s, dim]` float32 mean of each segment's consecutive frames."""
    if len(n_frames) == 0:
        return np.zeros((0, embeddings.shape[1]), np.float32)
    starts = np.concatenate([[0], np.cumsum(n_frames)[:-1]])
    sums = np.add.reduceat(embeddings.astype(np.float32), starts, axis=0)
    return sums / n_frames[:, None].astype(np.float32)

"""Integrity of a feature store: every committed chunk present, every segment as written.

Zarr reads a chunk object that is not there as the array's fill value, so a deleted
chunk would come back as rows of zeros and be clustered without a word. Two checks
guard against that, of different cost:

- `missing_chunks` compares the chunk objects each data array should have for its
  committed rows with those on storage: one listing per array, no data read. Every
  command that reads the store runs it (`require_intact`). Stores are written with
  `write_empty_chunks` on (`FeatureStore.array`), so an absent chunk is always damage;
  in stores created before that (no `ATTR_EVERY_CHUNK_WRITTEN`) only the embeddings and
  pooled chunks are checked, the others may legitimately be absent.
- `verify_store` reads every committed row and recomputes each segment's checksum:
  BLAKE2b (8 bytes) over its tokens, embeddings and loudness rows and its pooled row, as
  stored, recorded by `append` in the segment table's `checksum` column. It finds
  altered bytes, unreadable chunks and missing table rows too. Segments of stores
  written before checksums existed are counted, not checked.

Damage is reported by shard, the unit `sonotype encode` re-encodes to repair it
(`find_damage`); chunks that no longer decode are deleted first (`discard_chunks`),
since writing part of a chunk reads it back.
"""

import hashlib
import itertools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sonotype.contracts import (
    ATTR_EVERY_CHUNK_WRITTEN,
    ATTR_REPAIRING,
    EMBEDDINGS,
    LOUDNESS,
    POOLED,
    TOKENS,
)
from sonotype.errors import DamagedStoreError, SonotypeError
from sonotype.fsio import join, url_to_fs
from sonotype.progress import track

if TYPE_CHECKING:
    from analysis.store import FeatureStore

logger = logging.getLogger(__name__)

DIGEST_BYTES = 8
VERIFY_BATCH_SEGMENTS = 256
"""Segments whose rows are read and checked at once."""
_SHOWN = 3
"""Problems named in a refusal's message; `sonotype features verify` lists them all."""


def segment_checksums(
    tokens: np.ndarray,
    embeddings: np.ndarray,
    loudness: np.ndarray | None,
    pooled: np.ndarray,
    n_frames: np.ndarray,
) -> list[str]:
    """The checksum of each of `len(n_frames)` consecutive segments' rows as stored.

    Args:
        tokens: int16 `[m]`.
        embeddings: float16 `[m, dim]`.
        loudness: float16 `[m]`, or None for a store without loudness.
        pooled: float32 `[s, dim]`.
        n_frames: `[s]` frames of each segment, adding up to m.

    Returns:
        s hexadecimal digests.
    """
    checksums = []
    starts = np.concatenate([[0], np.cumsum(n_frames)]).astype(np.int64)
    for index, (start, stop) in enumerate(itertools.pairwise(starts)):
        digest = hashlib.blake2b(digest_size=DIGEST_BYTES)
        digest.update(np.ascontiguousarray(tokens[start:stop]).data)
        digest.update(np.ascontiguousarray(embeddings[start:stop]).data)
        if loudness is not None:
            digest.update(np.ascontiguousarray(loudness[start:stop]).data)
        digest.update(np.ascontiguousarray(pooled[index]).data)
        checksums.append(digest.hexdigest())
    return checksums


@dataclass(frozen=True)
class Chunk:
    """A chunk object holding committed rows of a data array.

    Attributes:
        array: the array's name.
        key: the chunk's key inside the array (e.g. `c/3/0`).
        level: "frame" or "segment": the axis its rows run along.
        rows: the committed rows it holds, `(first, one past the last)`.
    """

    array: str
    key: str
    level: str
    rows: tuple[int, int]

    def describe(self) -> str:
        return f"{self.array}/{self.key} ({self.level}s {self.rows[0]}-{self.rows[1] - 1})"


def _committed_chunks(store: "FeatureStore", names: list[str]) -> Iterator[Chunk]:
    """Every chunk of the arrays `names` that holds committed rows."""
    for name in names:
        array = store.array(name)
        level = array.metadata.dimension_names[0]
        committed = store.n_rows(level)
        shape = (committed, *array.shape[1:])
        grid = [-(-size // chunk) for size, chunk in zip(shape, array.chunks, strict=True)]
        for coords in itertools.product(*(range(n) for n in grid)):
            first = coords[0] * array.chunks[0]
            rows = (first, min(first + array.chunks[0], committed))
            yield Chunk(name, array.metadata.encode_chunk_key(coords), level, rows)


def _checked_arrays(store: "FeatureStore") -> list[str]:
    """The data arrays whose every chunk must exist. Stores written before every chunk
    was (`ATTR_EVERY_CHUNK_WRITTEN`) may lack a token chunk of code 0 only or a loudness
    chunk of NaN only; their embeddings and pooled chunks are never all zeros."""
    if store.group.attrs.get(ATTR_EVERY_CHUNK_WRITTEN, False):
        return [TOKENS, EMBEDDINGS, *([LOUDNESS] if store.has_loudness else []), POOLED]
    return [EMBEDDINGS, POOLED]


def missing_chunks(store: "FeatureStore") -> list[Chunk]:
    """The chunks of committed rows that are not on storage (see the module docstring)."""
    missing = []
    for name in _checked_arrays(store):
        fs, root = url_to_fs(join(store.url, name))
        present = {path[len(root) :].lstrip("/") for path in fs.find(root)}
        missing += [c for c in _committed_chunks(store, [name]) if c.key not in present]
    return missing


def unreadable_chunks(
    store: "FeatureStore", frames: tuple[int, int], segments: tuple[int, int]
) -> list[Chunk]:
    """The chunks holding any of the committed `frames` or `segments` that are there but
    do not decode (truncated or overwritten bytes)."""
    wanted = {"frame": frames, "segment": segments}
    found = []
    for chunk in _committed_chunks(store, _checked_arrays(store)):
        first, stop = wanted[chunk.level]
        if chunk.rows[0] >= stop or chunk.rows[1] <= first:
            continue
        try:
            store.array(chunk.array)[chunk.rows[0] : chunk.rows[1]]
        except (ValueError, RuntimeError, OSError):
            found.append(chunk)
    return found


def discard_chunks(store: "FeatureStore", chunks: Iterable[Chunk]) -> None:
    """Delete chunk objects that no longer decode, so that rewriting their rows starts
    from the fill value instead of failing to read them back (a partial-chunk write
    reads the chunk first)."""
    for chunk in chunks:
        fs, path = url_to_fs(join(store.url, chunk.array, chunk.key))
        if fs.exists(path):
            fs.rm(path)


@dataclass
class StoreDamage:
    """What `verify_store` (or the cheap check of `find_damage`) found.

    Attributes:
        url: the store.
        problems: one line per problem found.
        shards: shards whose committed rows are damaged (re-encoding them repairs).
        unreadable: chunks that are there but do not decode (a repair deletes them first).
        n_segments: committed segments.
        n_checked: segments whose checksum was recomputed and compared.
        n_unchecked: segments without a checksum (written before checksums existed).
    """

    url: str
    problems: list[str] = field(default_factory=list)
    shards: set[str] = field(default_factory=set)
    unreadable: list[Chunk] = field(default_factory=list)
    n_segments: int = 0
    n_checked: int = 0
    n_unchecked: int = 0

    def describe(self) -> str:
        counts = f"{self.n_segments} segments, {self.n_checked} checked against their checksums" + (
            f", {self.n_unchecked} written without one" if self.n_unchecked else ""
        )
        if not self.problems:
            return f"{self.url}: no problems ({counts})"
        lines = [f"{self.url}: {len(self.problems)} problem(s) ({counts}):"]
        lines += [f"  {problem}" for problem in self.problems]
        lines.append(
            f"damaged shards ({len(self.shards)}): {', '.join(sorted(self.shards)) or 'none'}; "
            "`sonotype encode` re-encodes them in place"
        )
        return "\n".join(lines)


_ROW_COLUMNS = ["segment_index", "frame_start", "n_frames", "key", "shard"]
_TABLE_BATCH = 8192


def shards_of_chunks(store: "FeatureStore", chunks: list[Chunk]) -> set[str]:
    """Shards owning any committed row of `chunks` (one pass over the segment table)."""
    shards: set[str] = set()
    if not chunks:
        return shards
    for batch in store.iter_segments(_TABLE_BATCH, _ROW_COLUMNS):
        segment = batch.column("segment_index")
        frame = batch.column("frame_start")
        spans = {
            "segment": (segment, pc.add(segment, 1)),
            "frame": (frame, pc.add(frame, batch.column("n_frames"))),
        }
        for chunk in chunks:
            first, stop = spans[chunk.level]
            overlap = pc.and_(pc.less(first, chunk.rows[1]), pc.greater(stop, chunk.rows[0]))
            shards.update(batch.filter(overlap).column("shard").to_pylist())
    return shards


def committed_rows(store: "FeatureStore", shards: set[str]) -> dict[str, pa.Table]:
    """Each shard's committed segment rows (`segment_index`, `frame_start`, `n_frames`,
    `key`, `shard`), in order: where `FeatureStore.rewrite` puts a new encode."""
    found: dict[str, list[pa.Table]] = {}
    wanted = pa.array(sorted(shards), pa.string())
    for batch in store.iter_segments(_TABLE_BATCH, _ROW_COLUMNS):
        rows = batch.filter(pc.is_in(batch.column("shard"), wanted))
        for shard in set(rows.column("shard").to_pylist()):
            found.setdefault(shard, []).append(rows.filter(pc.equal(rows.column("shard"), shard)))
    return {shard: pa.concat_tables(tables) for shard, tables in found.items()}


def pending_repairs(store: "FeatureStore") -> set[str]:
    """Shards whose rewrite in place began and did not finish (a killed repair)."""
    return set(store.group.attrs.get(ATTR_REPAIRING, []))


def mark_repairing(store: "FeatureStore", shards: Iterable[str]) -> None:
    """Record the shards about to be written again in place (empty: the repair is done).

    A repair that rewrites one of several shards sharing a lost chunk recreates that
    chunk; killed then, the others' rows would read as zeros in a chunk that is there
    again. Marked first, they stay damaged until a run completes them.
    """
    shards = sorted(shards)
    if shards:
        store.group.update_attributes({ATTR_REPAIRING: shards})
    elif ATTR_REPAIRING in store.group.attrs:
        del store.group.attrs[ATTR_REPAIRING]


def find_damage(store: "FeatureStore", read_all: bool) -> StoreDamage:
    """What a repair must re-encode: the shards of an unfinished repair and under missing
    chunks (listings only), and with `read_all` all that `verify_store` finds."""
    damage = verify_store(store) if read_all else _listed_damage(store)
    for problem in damage.problems:
        logger.warning("%s: %s", store.url, problem)
    return damage


def _listed_damage(store: "FeatureStore") -> StoreDamage:
    """Unfinished repairs and missing chunks, found without reading any data."""
    damage = StoreDamage(store.url, n_segments=store.n_segments)
    for shard in sorted(pending_repairs(store)):
        damage.problems.append(f"{shard}: its repair was interrupted")
        damage.shards.add(shard)
    missing = missing_chunks(store)
    damage.problems += [f"missing chunk {chunk.describe()}" for chunk in missing]
    try:
        damage.shards |= shards_of_chunks(store, missing)
    except (SonotypeError, OSError, pa.ArrowException) as error:
        damage.problems.append(f"segment table unreadable, damaged shards unknown: {error}")
    return damage


def require_intact(store: "FeatureStore") -> None:
    """Refuse a store with missing chunks or an unfinished repair (listings only).

    Raises:
        DamagedStoreError: naming the first problems and the way to repair.
    """
    pending = pending_repairs(store)
    if pending:
        raise DamagedStoreError(
            f"{store.url}: a repair of shards {sorted(pending)} was interrupted; run "
            "`sonotype encode` again to finish it"
        )
    missing = missing_chunks(store)
    if not missing:
        return
    shown = "; ".join(chunk.describe() for chunk in missing[:_SHOWN])
    more = f" and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else ""
    raise DamagedStoreError(
        f"{store.url}: {len(missing)} chunk(s) of committed rows missing: {shown}{more}. "
        "They would read as zeros. Run `sonotype features verify` for the damaged shards, "
        "then `sonotype encode` to re-encode them"
    )


def verify_store(store: "FeatureStore") -> StoreDamage:
    """Check every committed chunk and every segment's checksum (see the module docstring)."""
    damage = _listed_damage(store)
    columns = ["segment_index", "frame_start", "n_frames", "shard", "key", "checksum"]
    batches = range(0, store.n_segments, VERIFY_BATCH_SEGMENTS)
    for start in track(batches, len(batches), "batches", "verifying features"):
        stop = min(start + VERIFY_BATCH_SEGMENTS, store.n_segments)
        try:
            rows = store.read_segments(start, stop, columns)
        except (SonotypeError, OSError, pa.ArrowException) as error:
            damage.problems.append(f"segment table rows {start}-{stop - 1}: {error}")
            continue
        _check_rows(store, rows, damage)
    return damage


def _check_rows(store: "FeatureStore", rows: pa.Table, damage: StoreDamage) -> None:
    """Compare one batch of segments' stored rows with their checksums."""
    expected = rows.column("checksum").to_pylist()
    shards = rows.column("shard").to_pylist()
    keys = rows.column("key").to_pylist()
    damage.n_unchecked += expected.count(None)
    if all(value is None for value in expected):
        return
    n_frames = rows.column("n_frames").to_numpy().astype(np.int64)
    first_frame = int(rows.column("frame_start")[0].as_py())
    stop_frame = first_frame + int(n_frames.sum())
    first_segment = int(rows.column("segment_index")[0].as_py())
    stop_segment = first_segment + rows.num_rows
    try:
        found = segment_checksums(
            store.read(TOKENS, first_frame, stop_frame),
            store.read(EMBEDDINGS, first_frame, stop_frame),
            store.read(LOUDNESS, first_frame, stop_frame) if store.has_loudness else None,
            store.read(POOLED, first_segment, stop_segment),
            n_frames,
        )
    except (ValueError, RuntimeError, OSError):
        # chunks that no longer decode: name them, and every shard with rows in them
        unreadable = unreadable_chunks(
            store, (first_frame, stop_frame), (first_segment, stop_segment)
        )
        damage.problems += [f"unreadable chunk {chunk.describe()}" for chunk in unreadable]
        damage.unreadable += unreadable
        damage.shards |= shards_of_chunks(store, unreadable)
        return
    for want, got, shard, key in zip(expected, found, shards, keys, strict=True):
        if want is None:
            continue
        damage.n_checked += 1
        if want != got:
            damage.problems.append(f"{shard}: {key}: stored rows differ from their checksum")
            damage.shards.add(shard)

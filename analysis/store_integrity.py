"""Integrity of a feature store: every committed chunk present, every segment as written.

Zarr reads a chunk object that is not there as the array's fill value, so a deleted
chunk would come back as rows of zeros and be clustered without a word. Two checks
guard against that, of different cost:

- `missing_chunks` compares the chunk objects each data array should have for its
  committed rows with those on storage: one listing per array, no data read. Every
  command that reads the store runs it (`require_intact`). Stores are written with
  `write_empty_chunks` on (`FeatureStore.array`), so an absent chunk is always damage.
- `verify_store` reads every committed row and recomputes each segment's checksum:
  BLAKE2b (8 bytes) over its tokens, embeddings and loudness rows and its pooled row, as
  stored, recorded by `append` in the segment table's `checksum` column. It finds
  altered bytes, unreadable chunks and missing table rows too. Segments of stores
  written before checksums existed are counted, not checked.

Damage is reported by shard, the unit `sonotype encode` re-encodes to repair it.
"""

import hashlib
import itertools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sonotype.contracts import ATTR_REPAIRING, EMBEDDINGS, LOUDNESS, POOLED, TOKENS
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
class MissingChunk:
    """A chunk object a data array should have for its committed rows.

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


def _data_arrays(store: "FeatureStore") -> list[str]:
    return [TOKENS, EMBEDDINGS, *([LOUDNESS] if store.has_loudness else []), POOLED]


def missing_chunks(store: "FeatureStore") -> list[MissingChunk]:
    """The chunks of the committed rows of `tokens`, `embeddings`, `loudness` and `pooled`
    that are not on storage (see the module docstring)."""
    missing = []
    for name in _data_arrays(store):
        array = store.array(name)
        level = array.metadata.dimension_names[0]
        committed = store.n_rows(level)
        if committed == 0:
            continue
        fs, root = url_to_fs(join(store.url, name))
        present = {path[len(root) :].lstrip("/") for path in fs.find(root)}
        shape = (committed, *array.shape[1:])
        grid = [-(-size // chunk) for size, chunk in zip(shape, array.chunks, strict=True)]
        for coords in itertools.product(*(range(n) for n in grid)):
            key = array.metadata.encode_chunk_key(coords)
            if key not in present:
                first = coords[0] * array.chunks[0]
                rows = (first, min(first + array.chunks[0], committed))
                missing.append(MissingChunk(name, key, level, rows))
    return missing


@dataclass
class StoreDamage:
    """What `verify_store` found.

    Attributes:
        url: the store.
        problems: one line per problem found.
        shards: shards whose committed rows are damaged (re-encoding them repairs).
        n_segments: committed segments.
        n_checked: segments whose checksum was recomputed and compared.
        n_unchecked: segments without a checksum (written before checksums existed).
    """

    url: str
    problems: list[str] = field(default_factory=list)
    shards: set[str] = field(default_factory=set)
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


def shards_of_rows(store: "FeatureStore", level: str, rows: tuple[int, int]) -> set[str]:
    """Shards owning any of the committed `rows` at `level` ("frame" or "segment")."""
    shards = set()
    for batch in store.iter_segments(_TABLE_BATCH, _ROW_COLUMNS):
        if level == "segment":
            first = batch.column("segment_index")
            stop = pc.add(first, 1)
        else:
            first = batch.column("frame_start")
            stop = pc.add(first, batch.column("n_frames"))
        overlap = pc.and_(pc.less(first, rows[1]), pc.greater(stop, rows[0]))
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


def damaged_shards(store: "FeatureStore", read_all: bool) -> set[str]:
    """Shards to re-encode: those under missing chunks or of an unfinished repair, and
    with `read_all` every shard `verify_store` finds damaged (every committed row read)."""
    shards = pending_repairs(store)
    if read_all:
        damage = verify_store(store)
        for problem in damage.problems:
            logger.warning("%s: %s", store.url, problem)
        return shards | damage.shards
    for chunk in missing_chunks(store):
        logger.warning("%s: missing chunk %s", store.url, chunk.describe())
        shards |= shards_of_rows(store, chunk.level, chunk.rows)
    return shards


def require_intact(store: "FeatureStore") -> None:
    """Refuse a store with missing chunks (cheap: listings only).

    Raises:
        DamagedStoreError: naming the first missing chunks and the way to repair.
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
    damage = StoreDamage(store.url, n_segments=store.n_segments)
    for shard in sorted(pending_repairs(store)):
        damage.problems.append(f"{shard}: its repair was interrupted")
        damage.shards.add(shard)
    for chunk in missing_chunks(store):
        damage.problems.append(f"missing chunk {chunk.describe()}")
        damage.shards |= shards_of_rows(store, chunk.level, chunk.rows)
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
    try:
        found = segment_checksums(
            store.read(TOKENS, first_frame, stop_frame),
            store.read(EMBEDDINGS, first_frame, stop_frame),
            store.read(LOUDNESS, first_frame, stop_frame) if store.has_loudness else None,
            store.read(POOLED, first_segment, first_segment + rows.num_rows),
            n_frames,
        )
    except (SonotypeError, OSError, ValueError, RuntimeError) as error:
        # a chunk that no longer decodes (truncated or overwritten bytes)
        damage.problems.append(f"frames {first_frame}-{stop_frame - 1} unreadable: {error}")
        damage.shards.update(shards)
        return
    for want, got, shard, key in zip(expected, found, shards, keys, strict=True):
        if want is None:
            continue
        damage.n_checked += 1
        if want != got:
            damage.problems.append(f"{shard}: {key}: stored rows differ from their checksum")
            damage.shards.add(shard)

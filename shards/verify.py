"""`sonotype shards verify`: every shard opens, every sample decodes, shards match the catalog.

Checks, each problem reported with its shard, key and what was wrong:
- the catalog: unique keys; kept segments name a shard, dropped ones do not; the two
  tables agree (each `ok` recording's segment count is its rows', no rows of a recording
  the recordings table does not list);
- the shard set: no shard missing from disk, none on disk that the catalog does not list;
- each shard: a readable tar of `KEY.flac` + `KEY.json` pairs, valid unique keys;
- each sample: its JSON is its catalog row (key, shard and every other field the two
  share, compared as the shard writer encodes them), its FLAC decodes to mono audio at
  the catalogued sample rate and duration, and its bytes have the catalogued checksum
  (catalogs written before checksums existed have none to compare);
- keys: a shard holds exactly the kept segments the catalog assigns to it.

The catalog is held in Arrow memory (a few hundred bytes per segment); only the rows of
the shard being read become Python objects; shards are read one sample at a time.
"""

import json
import logging
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shards.catalog import read_recordings, read_segments
from shards.tarsafe import TarSample, iter_samples
from shards.writer import audio_checksum, encode_metadata
from sonotype import audio
from sonotype.contracts import (
    AUDIO_EXTENSION,
    METADATA_EXTENSION,
    OPTIONAL_SEGMENT_COLUMNS,
    RECORDING_STATUS_OK,
    SHARD_SUFFIX,
    OutputLayout,
    is_valid_key,
)
from sonotype.contracts import SegmentColumn as Col
from sonotype.errors import AudioDecodeError, ShardFormatError
from sonotype.fsio import TEMP_MARKER, glob, is_local, join, url_to_fs
from sonotype.progress import progress_bar

logger = logging.getLogger(__name__)

_LISTED_KEYS = 5
"""Keys named in one problem line before the rest are summarised as a count."""


@dataclass
class VerifyReport:
    """What `verify_shards` found.

    Attributes:
        problems: one line per problem (`shards/NAME: KEY: what`); empty when all is well.
        n_shards: shards read.
        n_samples: samples read.
        n_segments: kept segments in the catalog.
    """

    problems: list[str] = field(default_factory=list)
    n_shards: int = 0
    n_samples: int = 0
    n_segments: int = 0

    def describe(self) -> str:
        """A one-line summary."""
        verdict = f"{len(self.problems)} problems" if self.problems else "no problems"
        return (
            f"{self.n_shards} shards, {self.n_samples} samples checked against "
            f"{self.n_segments} kept segments of the catalog: {verdict}"
        )


@dataclass(frozen=True)
class _Expected:
    """The catalog's kept segments of one shard (Arrow rows until the shard is read)."""

    table: pa.Table

    def rows_by_key(self) -> dict[str, dict]:
        """Key → the row as its sample's JSON member should hold it (decoded), in order."""
        return {row[Col.KEY]: json.loads(encode_metadata(row)) for row in self.table.to_pylist()}


def verify_shards(out: str) -> VerifyReport:
    """Check the shards of `OUT` against `OUT/catalog/segments.parquet`.

    Args:
        out: the output root written by ingest.

    Returns:
        The report; `problems` lists every problem found.

    Raises:
        SonotypeError: the catalog is missing or breaks the contract.
    """
    layout = OutputLayout(out)
    catalog = read_segments(out)
    report = VerifyReport()
    report.problems += _catalog_problems(catalog)
    report.problems += _recording_problems(read_recordings(out), catalog)
    kept = catalog.filter(
        pc.and_(pc.fill_null(catalog[Col.KEPT], False), pc.is_valid(catalog[Col.SHARD]))
    )
    report.n_segments = kept.num_rows
    expected = dict(_group_by_shard(kept))
    on_disk = shard_files(layout.shards_dir)
    for name in sorted(set(expected) - set(on_disk)):
        report.problems.append(
            f"shards/{name}: missing; the catalog lists {expected[name].table.num_rows} "
            "segments in it"
        )
    for name in sorted(set(on_disk) - set(expected)):
        report.problems.append(f"shards/{name}: not in the catalog (no kept segment names it)")
    with progress_bar(report.n_segments, unit="samples", desc="verify shards") as bar:
        for name in on_disk:
            n_read, problems = _verify_shard(
                join(layout.shards_dir, name), name, expected.get(name), bar.update
            )
            report.n_shards += 1
            report.n_samples += n_read
            report.problems += problems
    return report


def _recording_problems(recordings: pa.Table, catalog: pa.Table) -> list[str]:
    """The two catalog tables disagree: a recording's segment count is not its rows', or
    rows belong to a recording the recordings table does not list (a split commit)."""
    problems = []
    counts = catalog.group_by(Col.RECORDING_ID).aggregate([(Col.RECORDING_ID, "count")])
    found = dict(
        zip(
            counts[Col.RECORDING_ID].to_pylist(),
            counts[f"{Col.RECORDING_ID}_count"].to_pylist(),
            strict=True,
        )
    )
    for row in recordings.to_pylist():
        if row["status"] != RECORDING_STATUS_OK:
            continue
        expected = (row["n_segments_kept"] or 0) + (row["n_segments_dropped"] or 0)
        if found.get(row["recording_id"], 0) != expected:
            problems.append(
                f"catalog: recording {row['recording_id']}: recordings.parquet counts "
                f"{expected} segments, segments.parquet holds "
                f"{found.get(row['recording_id'], 0)}; run `sonotype ingest` again to repair"
            )
    unlisted = sorted(set(found) - set(recordings[Col.RECORDING_ID].to_pylist()))
    if unlisted:
        problems.append(
            f"catalog: segments of recordings that recordings.parquet does not list: "
            f"{_listed(unlisted)}; run `sonotype ingest` again to repair"
        )
    return problems


def _catalog_problems(catalog: pa.Table) -> list[str]:
    problems = []
    counts = catalog.group_by(Col.KEY).aggregate([(Col.KEY, "count")])
    repeated = counts.filter(pc.greater(counts[f"{Col.KEY}_count"], 1))
    for key, n in zip(
        repeated[Col.KEY].to_pylist(), repeated[f"{Col.KEY}_count"].to_pylist(), strict=True
    ):
        problems.append(f"catalog: key {key} appears {n} times")
    kept = pc.fill_null(catalog[Col.KEPT], False)
    has_shard = pc.is_valid(catalog[Col.SHARD])
    unplaced = catalog.filter(pc.and_(kept, pc.invert(has_shard)))[Col.KEY].to_pylist()
    if unplaced:
        problems.append(f"catalog: kept segments with no shard: {_listed(unplaced)}")
    placed = catalog.filter(pc.and_(pc.invert(kept), has_shard))[Col.KEY].to_pylist()
    if placed:
        problems.append(f"catalog: dropped segments that name a shard: {_listed(placed)}")
    return problems


def _group_by_shard(kept: pa.Table) -> Iterator[tuple[str, _Expected]]:
    """Kept rows grouped by shard, through a dictionary-encoded sort (no per-row Python)."""
    if kept.num_rows == 0:
        return
    encoded = pc.dictionary_encode(kept[Col.SHARD]).combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    names = encoded.dictionary.to_pylist()
    for rows in np.split(order, bounds):
        yield names[codes[rows[0]]], _Expected(kept.take(pa.array(rows)))


def shard_files(shards_dir: str) -> list[str]:
    """Complete shards under `shards_dir`, relative to it; unfinished writes are logged."""
    names = []
    for match in glob(join(shards_dir, "**", "*")):
        relative = _relative(match, shards_dir)
        if TEMP_MARKER in os.path.basename(relative):
            logger.warning("shards/%s: unfinished write left by a killed job", relative)
        elif relative.endswith(SHARD_SUFFIX):
            names.append(relative)
    return sorted(names)


def _relative(match: str, root: str) -> str:
    """`match` relative to `root` (glob gives absolute local paths, or full URLs)."""
    if is_local(root):
        return os.path.relpath(match, os.path.abspath(root)).replace(os.sep, "/")
    prefix = root.rstrip("/") + "/"
    return match[len(prefix) :] if match.startswith(prefix) else match


def _verify_shard(
    url: str, name: str, expected: _Expected | None, advance: Callable[[int], object]
) -> tuple[int, list[str]]:
    """Read one shard; returns the samples read and the problems found.

    A shard the catalog does not list (`expected` None) is still read and decoded, but
    its keys are not compared: that it is uncatalogued is already one problem.
    """
    problems: list[str] = []
    # One shard's rows become Python objects at a time, while it is read.
    wanted = expected.rows_by_key() if expected else {}
    seen: set[str] = set()
    n_read = 0
    fs, path = url_to_fs(url)
    try:
        with fs.open(path, "rb") as handle:
            for sample in iter_samples(handle, f"shards/{name}"):
                n_read += 1
                advance(1)
                where = f"shards/{name}: {sample.key}"
                if sample.key in seen:
                    problems.append(f"{where}: key appears twice in the shard")
                    continue
                seen.add(sample.key)
                row = wanted.get(sample.key)
                if expected is not None and row is None:
                    problems.append(f"{where}: not a kept segment of this shard in the catalog")
                problems += [
                    f"{where}: {p}"
                    for p in _sample_problems(sample, name if expected else None, row)
                ]
    except ShardFormatError as error:
        problems.append(str(error))
    except OSError as error:
        problems.append(f"shards/{name}: cannot be read ({error})")
    missing = [key for key in wanted if key not in seen]
    if missing:
        problems.append(
            f"shards/{name}: {len(missing)} catalogued segments missing: {_listed(missing)}"
        )
    return n_read, problems


def _sample_problems(sample: TarSample, shard: str | None, row: dict | None) -> list[str]:
    """Problems of one sample of `shard` (None: a shard the catalog does not list), whose
    catalog row is `row` (None: not catalogued in this shard)."""
    problems = []
    if not is_valid_key(sample.key):
        problems.append("invalid key (dot-free, no slashes)")
    if sample.duplicates:
        problems.append(f"repeated members: {sorted(sample.duplicates)}")
    extra = sorted(set(sample.members) - {AUDIO_EXTENSION, METADATA_EXTENSION})
    if extra:
        problems.append(f"unexpected members: {extra}")
    not_files = sorted(e for e, m in sample.members.items() if not m.is_file)
    if not_files:
        problems.append(f"members that are not regular files: {not_files}")
    text = sample.members.get(METADATA_EXTENSION)
    if text is None or text.data is None:
        problems.append(f"no readable .{METADATA_EXTENSION} member")
    else:
        # An uncatalogued shard's samples cannot name it: it is one problem already.
        problems += _metadata_problems(text.data, sample.key, shard, row)
    flac = sample.members.get(AUDIO_EXTENSION)
    if flac is None or flac.data is None:
        problems.append(f"no readable .{AUDIO_EXTENSION} member")
    else:
        rate = row[Col.SAMPLE_RATE] if row else None
        duration = row[Col.DURATION_S] if row else None
        audio_problems = _audio_problems(flac.data, sample.key, rate, duration)
        problems += audio_problems
        expected = row.get(Col.CHECKSUM) if row else None
        # audio that no longer decodes is one problem already
        if not audio_problems and expected is not None and audio_checksum(flac.data) != expected:
            problems.append("FLAC bytes differ from the catalog's checksum (altered in place)")
    return problems


def _metadata_problems(
    data: bytes, key: str, shard: str | None, catalogued: dict | None
) -> list[str]:
    try:
        row = json.loads(data)
    except ValueError as error:
        return [f"metadata is not JSON ({error})"]
    if not isinstance(row, dict):
        return [f"metadata is a JSON {type(row).__name__}, expected an object (the segment row)"]
    problems = []
    if row.get(Col.KEY) != key:
        problems.append(f"metadata key is {row.get(Col.KEY)!r}, expected {key!r}")
    if shard is not None and row.get(Col.SHARD) != shard:
        problems.append(f"metadata shard is {row.get(Col.SHARD)!r}, expected {shard!r}")
    if catalogued is not None and not problems:
        differing = [
            f"{name} {row[name]!r} (catalogued {catalogued[name]!r})"
            for name in sorted(row.keys() & catalogued.keys())
            if not _same_value(row[name], catalogued[name])
            # a catalog from before a column existed has nothing to compare it with
            and not (name in OPTIONAL_SEGMENT_COLUMNS and catalogued[name] is None)
        ]
        if differing:
            problems.append("metadata differs from the catalog: " + ", ".join(differing))
    return problems


def _same_value(stored: object, catalogued: object) -> bool:
    """Equal, numbers to float32 precision (float32 columns are written as the shortest
    decimal of their value, the catalog gives the float64 nearest it)."""
    if isinstance(stored, int | float) and isinstance(catalogued, int | float):
        return math.isclose(stored, catalogued, rel_tol=1e-6, abs_tol=1e-12)
    return stored == catalogued


def _audio_problems(
    data: bytes, key: str, sample_rate: int | None, duration_s: float | None
) -> list[str]:
    try:
        samples, rate = audio.decode_bytes(data, name=key)
        info = audio.probe_bytes(data, name=key)
    except AudioDecodeError as error:
        return [f"FLAC does not decode ({error})"]
    problems = []
    if samples.ndim != 1:
        problems.append(f"{samples.shape[1]} channels, expected mono")
    if len(samples) != info.frames:
        problems.append(f"decodes to {len(samples)} samples, its header says {info.frames}")
    if sample_rate is not None and rate != sample_rate:
        problems.append(f"sample rate {rate} Hz, catalogued {sample_rate} Hz")
    if duration_s is not None and abs(len(samples) - duration_s * rate) > 1:
        problems.append(
            f"{len(samples)} samples ({len(samples) / rate:.3f} s), catalogued {duration_s:.3f} s"
        )
    return problems


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:_LISTED_KEYS])
    more = len(keys) - _LISTED_KEYS
    return shown + (f" and {more} more" if more > 0 else "")

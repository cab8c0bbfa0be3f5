"""The shard index: which shards to read and how many selected samples each holds.

The reader needs the counts before reading, to give every rank the same number of
batches. They come from `catalog/segments.parquet` (read in record batches) or, for a
bare glob or list of URLs, from a scan of the shards' JSON members (the FLAC members
are skipped unread).
"""

import hashlib
import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import braceexpand

from shards.catalog import iter_segments
from shards.plan import derive_seed
from shards.select import SegmentFilter
from shards.tarsafe import iter_samples
from sonotype.contracts import METADATA_EXTENSION, OutputLayout
from sonotype.contracts import SegmentColumn as Col
from sonotype.errors import ShardFormatError, SonotypeError
from sonotype.fsio import glob, join, url_to_fs
from sonotype.progress import track

logger = logging.getLogger(__name__)

_GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class ShardIndex:
    """Shards and their selected-sample counts.

    Attributes:
        urls: shard paths or URLs, in a stable order.
        counts: selected samples of each shard (same order).
        sample_rate: the rate every selected sample has, Hz.
    """

    urls: tuple[str, ...]
    counts: tuple[int, ...]
    sample_rate: int

    @property
    def n_samples(self) -> int:
        return sum(self.counts)

    def fingerprint(self) -> str:
        """A digest of the index: a saved reader position only fits the same index."""
        text = json.dumps([self.urls, self.counts, self.sample_rate]).encode("utf-8")
        return hashlib.sha256(text).hexdigest()[:16]

    def hold_out(self, n_shards: int, seed: int = 0) -> tuple["ShardIndex", "ShardIndex"]:
        """Split off `n_shards` shards, chosen by a seeded draw, e.g. for validation.

        Whole shards are held out, so held-out segments never share a shard (and, as
        ingest fills shards recording by recording, rarely a recording) with training.

        Args:
            n_shards: shards to hold out, at least 1 and fewer than the index has.
            seed: seeds the choice (the same seed always holds out the same shards).

        Returns:
            (the rest, the held-out shards), each in the index's order.

        Raises:
            SonotypeError: `n_shards` leaves one side empty.
        """
        if not 0 < n_shards < len(self.urls):
            raise SonotypeError(
                f"cannot hold out {n_shards} of {len(self.urls)} shards; "
                f"expected 1 to {len(self.urls) - 1}"
            )
        chosen = set(random.Random(derive_seed(seed, "hold-out")).sample(self.urls, n_shards))
        return self._only(lambda url: url not in chosen), self._only(lambda url: url in chosen)

    def _only(self, keep: Callable[[str], bool]) -> "ShardIndex":
        pairs = [(u, c) for u, c in zip(self.urls, self.counts, strict=True) if keep(u)]
        return ShardIndex(tuple(u for u, _ in pairs), tuple(c for _, c in pairs), self.sample_rate)

    @classmethod
    def from_catalog(cls, out: str, segment_filter: SegmentFilter) -> "ShardIndex":
        """Shards of `OUT/shards/` with the segments `segment_filter` takes, per the catalog.

        Args:
            out: the output root written by ingest.
            segment_filter: which segments to take.

        Raises:
            SonotypeError: the catalog is missing or breaks the contract, no segment is
                selected, or the selected segments have several sample rates.
        """
        columns = sorted({*segment_filter.columns, Col.SHARD, Col.SAMPLE_RATE})
        counts: Counter[str] = Counter()
        rates: set[int] = set()
        for batch in iter_segments(out, columns):
            for row in batch.to_pylist():
                if row[Col.SHARD] is not None and segment_filter.passes(row):
                    counts[row[Col.SHARD]] += 1
                    rates.add(row[Col.SAMPLE_RATE])
        where = OutputLayout(out).segments
        shards_dir = OutputLayout(out).shards_dir
        names = sorted(counts)
        return cls._checked(
            [join(shards_dir, name) for name in names],
            [counts[name] for name in names],
            rates,
            where,
        )

    @classmethod
    def from_urls(cls, urls: str | Sequence[str], segment_filter: SegmentFilter) -> "ShardIndex":
        """Shards named by a glob, a brace pattern (`shard-{000..009}.tar`) or a list of URLs.

        Each shard's JSON members are read once to count the samples the filter takes.
        A shard that cannot be read is logged and left out.

        Args:
            urls: a pattern or URLs (local paths or fsspec URLs).
            segment_filter: which segments to take.

        Raises:
            SonotypeError: the pattern matches nothing, no segment is selected, or the
                selected segments have several sample rates.
        """
        names = expand_urls(urls)
        counts: list[int] = []
        rates: set[int] = set()
        for url in track(names, total=len(names), unit="shards", desc="count samples"):
            try:
                count, shard_rates = _scan(url, segment_filter)
            except (ShardFormatError, OSError) as error:
                logger.warning("%s: left out of the reader's index (%s)", url, error)
                count, shard_rates = 0, set()
            counts.append(count)
            rates |= shard_rates
        kept = [(u, c) for u, c in zip(names, counts, strict=True) if c > 0]
        return cls._checked([u for u, _ in kept], [c for _, c in kept], rates, str(urls))

    @classmethod
    def _checked(
        cls, urls: list[str], counts: list[int], rates: set[int], where: str
    ) -> "ShardIndex":
        if not urls:
            raise SonotypeError(f"{where}: no segment is selected by the reader's filters")
        if len(rates) != 1:
            raise SonotypeError(
                f"{where}: the selected segments have sample rates {sorted(rates)}; "
                "the reader needs one rate (filter by site or re-ingest at one rate)"
            )
        return cls(tuple(urls), tuple(counts), rates.pop())


def expand_urls(urls: str | Sequence[str]) -> list[str]:
    """Expand brace patterns and globs into a sorted list of shard URLs.

    Raises:
        SonotypeError: nothing matches.
    """
    patterns = [urls] if isinstance(urls, str) else list(urls)
    found: list[str] = []
    for pattern in patterns:
        for name in braceexpand.braceexpand(pattern):
            found.extend(glob(name) if _GLOB_CHARACTERS & set(name) else [name])
    if not found:
        raise SonotypeError(f"{urls}: matches no shard")
    return sorted(dict.fromkeys(found))


def _scan(url: str, segment_filter: SegmentFilter) -> tuple[int, set[int]]:
    """Count the samples of one shard that `segment_filter` takes, from JSON members only."""
    fs, path = url_to_fs(url)
    count, rates = 0, set()
    with fs.open(path, "rb") as handle:
        for sample in iter_samples(handle, url, wanted=_is_metadata):
            member = sample.members.get(METADATA_EXTENSION)
            if member is None or member.data is None:
                continue
            try:
                row = json.loads(member.data)
                taken = isinstance(row, dict) and segment_filter.passes(row)
            except ValueError:
                continue
            if taken:
                count += 1
                rates.add(row.get(Col.SAMPLE_RATE))
    return count, rates


def _is_metadata(name: str) -> bool:
    return name.lower().endswith("." + METADATA_EXTENSION)

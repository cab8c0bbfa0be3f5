"""Shard index: counts from the catalog and from a scan of the shards agree."""

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from shards.catalog import write_segments
from shards.index import ShardIndex, expand_urls
from shards.select import SegmentFilter
from sonotype.contracts import SEGMENTS_SCHEMA, OutputLayout
from sonotype.errors import SonotypeError
from tests.shards.fake_ingest import START, write_fake_out


def test_catalog_counts_selected_kept_segments_per_shard(tmp_path: Path):
    fake = write_fake_out(tmp_path / "out", (5, 1, 9, 3), row_changes={0: {"is_silent": True}})
    index = ShardIndex.from_catalog(fake.out, SegmentFilter())
    assert index.counts == (4, 1, 9, 3)
    assert index.sample_rate == 8000
    assert [Path(u).name for u in index.urls] == fake.shards
    site_a = ShardIndex.from_catalog(fake.out, SegmentFilter(sites=frozenset({"A"})))
    # Sites alternate A, B from segment 0, which is silent; shard 1 holds segment 5 (B) only.
    assert site_a.counts == (2, 5, 1)
    assert [Path(u).name for u in site_a.urls] == [fake.shards[0], fake.shards[2], fake.shards[3]]


def test_a_scan_of_the_shards_gives_the_catalog_counts(tmp_path: Path):
    fake = write_fake_out(tmp_path / "out", (5, 1, 9, 3))
    late = SegmentFilter(start_time=START + dt.timedelta(hours=3))
    shards = OutputLayout(fake.out).shards_dir
    for segment_filter in (SegmentFilter(), late, SegmentFilter(sites=frozenset({"B"}))):
        from_catalog = ShardIndex.from_catalog(fake.out, segment_filter)
        scanned = ShardIndex.from_urls(f"{shards}/*.tar", segment_filter)
        assert scanned == from_catalog
    braces = ShardIndex.from_urls(f"{shards}/shard-{{000000..000001}}.tar", SegmentFilter())
    assert braces.counts == (5, 1)


def test_nothing_selected_or_several_rates_are_errors(tmp_path: Path):
    fake = write_fake_out(tmp_path / "out", (2, 2))
    with pytest.raises(SonotypeError, match="no segment is selected"):
        ShardIndex.from_catalog(fake.out, SegmentFilter(sites=frozenset({"nowhere"})))
    rows = [dict(r, sample_rate=16000) if i == 0 else r for i, r in enumerate(fake.rows)]
    write_segments(pa.Table.from_pylist(rows, schema=SEGMENTS_SCHEMA), fake.out)
    with pytest.raises(SonotypeError, match=r"sample rates \[8000, 16000\]"):
        ShardIndex.from_catalog(fake.out, SegmentFilter())
    with pytest.raises(SonotypeError, match="matches no shard"):
        expand_urls(str(tmp_path / "none" / "*.tar"))


def test_fingerprint_changes_with_counts():
    a = ShardIndex(("x.tar",), (3,), 24000)
    assert a.fingerprint() == ShardIndex(("x.tar",), (3,), 24000).fingerprint()
    assert a.fingerprint() != ShardIndex(("x.tar",), (4,), 24000).fingerprint()


def test_hold_out_splits_whole_shards_by_seed():
    index = ShardIndex(("a", "b", "c", "d", "e"), (1, 2, 3, 4, 5), 24000)
    rest, held = index.hold_out(2, seed=7)
    assert sorted(rest.urls + held.urls) == list(index.urls)
    assert len(held.urls) == 2
    assert rest.n_samples + held.n_samples == 15
    assert dict(zip(held.urls, held.counts, strict=True)) == {
        u: c for u, c in zip(index.urls, index.counts, strict=True) if u in held.urls
    }
    assert index.hold_out(2, seed=7) == (rest, held)
    assert {index.hold_out(2, seed=s)[1].urls for s in range(10)} != {held.urls}
    with pytest.raises(SonotypeError, match="cannot hold out 5 of 5 shards"):
        index.hold_out(5)

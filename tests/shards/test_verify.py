"""verify: a clean output passes; each kind of problem is found and named precisely."""

import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import webdataset as wds

from shards.catalog import iter_segments, read_segments, write_recordings, write_segments
from shards.verify import verify_shards
from shards.writer import encode_metadata
from sonotype import audio
from sonotype.cli.main import main
from sonotype.contracts import RECORDINGS_SCHEMA, SEGMENTS_SCHEMA
from tests.shards.fake_ingest import FakeOut, recordings_of, write_fake_out


def _rewrite(fake: FakeOut, shard: str, change: Callable[[list[dict]], list[dict]]) -> None:
    """Rewrite a shard: `change` gets its samples (key, flac, json) and returns those to write."""
    path = fake.shard_path(shard)
    samples = [
        {k: v for k, v in sample.items() if k == "__key__" or not k.startswith("__")}
        for sample in wds.WebDataset(str(path), shardshuffle=False)
    ]
    with wds.TarWriter(str(path)) as writer:
        for sample in change(samples):
            writer.write(sample)


def test_a_clean_output_has_no_problems(tmp_path: Path):
    fake = write_fake_out(tmp_path / "out", (5, 1, 9, 3))
    report = verify_shards(fake.out)
    assert report.problems == []
    assert (report.n_shards, report.n_samples, report.n_segments) == (4, 18, 18)
    assert report.describe() == (
        "4 shards, 18 samples checked against 18 kept segments of the catalog: no problems"
    )
    assert main(["shards", "verify", fake.out]) == 0


def test_every_kind_of_problem_is_listed_with_shard_and_key(tmp_path: Path, capsys):
    fake = write_fake_out(tmp_path / "out", (4, 2, 3, 2, 2))
    s0, s1, s2, s3, s4 = fake.shards
    k0, k1, k2, k3 = fake.keys[s0], fake.keys[s1], fake.keys[s2], fake.keys[s3]
    shutil.copy(fake.shard_path(s2), fake.shard_path("stray.tar"))

    def break_shard_0(samples: list[dict]) -> list[dict]:
        a, b, c, d = samples
        return [
            dict(a, flac=b"not audio at all" * 8),
            dict(b, json=b"{broken"),
            c,
            dict(d, json=encode_metadata(fake.row(c["__key__"]))),
            dict(c),  # c again, not next to the first c
            dict(d, flac=d["flac"], flac2=d["flac"], __key__="odd.name"),
        ]

    def other_shard(samples: list[dict]) -> list[dict]:
        return [
            dict(s, json=encode_metadata({**fake.row(s["__key__"]), "shard": "x"})) for s in samples
        ]

    _rewrite(fake, s0, break_shard_0)
    _rewrite(fake, s1, lambda samples: samples[:1])
    _rewrite(fake, s2, lambda samples: [other_shard(samples)[0], *samples[1:]])
    data = fake.shard_path(s3).read_bytes()
    second_flac = data.find(b"fLaC", data.find(b"fLaC") + 1)
    fake.shard_path(s3).write_bytes(data[: second_flac + 100])
    fake.shard_path(s4).unlink()
    rows = [dict(r) for r in fake.rows]
    rows.append(dict(rows[0]))
    for row in rows:
        if row["key"] == k2[1]:
            row["sample_rate"] = 16000
        if row["key"] == k2[2]:
            row["duration_s"] = 2.0
    write_segments(pa.Table.from_pylist(rows, schema=SEGMENTS_SCHEMA), fake.out)

    report = verify_shards(fake.out)
    expected = [
        f"catalog: key {k0[0]} appears 2 times",
        "catalog: recording rec0000: recordings.parquet counts 1 segments, segments.parquet "
        "holds 2",
        f"shards/{s4}: missing; the catalog lists 2 segments in it",
        "shards/stray.tar: not in the catalog (no kept segment names it)",
        f"shards/{s0}: {k0[0]}: FLAC does not decode ({k0[0]}: not decodable audio",
        f"shards/{s0}: {k0[1]}: metadata is not JSON (",
        f"shards/{s0}: {k0[3]}: metadata key is '{k0[2]}', expected '{k0[3]}'",
        f"shards/{s0}: {k0[2]}: key appears twice in the shard",
        f"shards/{s0}: odd: not a kept segment of this shard in the catalog",
        f"shards/{s0}: odd: unexpected members: ['name.flac', 'name.flac2', 'name.json']",
        f"shards/{s0}: odd: no readable .json member",
        f"shards/{s0}: odd: no readable .flac member",
        f"shards/{s1}: 1 catalogued segments missing: {k1[1]}",
        f"shards/{s2}: {k2[0]}: metadata shard is 'x', expected '{s2}'",
        f"shards/{s2}: {k2[1]}: sample rate 8000 Hz, catalogued 16000 Hz",
        f"shards/{s2}: {k2[1]}: metadata differs from the catalog: sample_rate 8000 "
        "(catalogued 16000)",
        f"shards/{s2}: {k2[2]}: 8000 samples (1.000 s), catalogued 2.000 s",
        f"shards/{s2}: {k2[2]}: metadata differs from the catalog: duration_s 1.0 (catalogued 2.0)",
        f"shards/{s3}: unreadable tar after member '{k3[0]}.json'",
        f"shards/{s3}: 1 catalogued segments missing: {k3[1]}",
    ]
    unmatched = [p for p in report.problems if not any(p.startswith(e) for e in expected)]
    unfound = [e for e in expected if not any(p.startswith(e) for p in report.problems)]
    assert (unmatched, unfound) == ([], [])
    assert len(report.problems) == len(expected)
    # Samples: 6 + 1 + 3 + 1 (before the cut) + 3 (stray); segments: 13 + the repeated row.
    assert (report.n_shards, report.n_samples, report.n_segments) == (5, 14, 14)

    assert main(["shards", "verify", fake.out]) == 1
    assert f"{k0[0]}: FLAC does not decode" in capsys.readouterr().err


def test_a_field_edited_inside_a_shard_is_found(tmp_path: Path):
    # Issue 16, failure 5: a site edited inside a shard passed.
    fake = write_fake_out(tmp_path / "out", (3,))
    [shard] = fake.shards
    key = fake.keys[shard][1]
    site = fake.row(key)["site"]

    def edit_site(samples: list[dict]) -> list[dict]:
        return [
            dict(s, json=encode_metadata({**fake.row(key), "site": "ELSEWHERE"}))
            if s["__key__"] == key
            else s
            for s in samples
        ]

    _rewrite(fake, shard, edit_site)
    assert verify_shards(fake.out).problems == [
        f"shards/{shard}: {key}: metadata differs from the catalog: site 'ELSEWHERE' "
        f"(catalogued {site!r})"
    ]


def test_catalog_tables_that_disagree_are_found(tmp_path: Path):
    # Issue 16, failure 4: a kill between the two catalog writes left segment rows of
    # recordings the recordings table does not list, and verify said "no problems".
    fake = write_fake_out(tmp_path / "out", (3, 2))
    recordings = recordings_of(fake.rows)
    listed = recordings.filter(pc.not_equal(recordings["recording_id"], "rec0001"))
    counts = listed.to_pylist()
    counts[0]["n_segments_kept"] = 5
    write_recordings(pa.Table.from_pylist(counts, schema=RECORDINGS_SCHEMA), fake.out)
    assert verify_shards(fake.out).problems == [
        "catalog: recording rec0000: recordings.parquet counts 5 segments, segments.parquet "
        "holds 1; run `sonotype ingest` again to repair",
        "catalog: segments of recordings that recordings.parquet does not list: rec0001; "
        "run `sonotype ingest` again to repair",
    ]


def test_audio_altered_in_place_is_found_by_its_checksum(tmp_path: Path):
    fake = write_fake_out(tmp_path / "out", (3,))
    [shard] = fake.shards
    key = fake.keys[shard][1]

    def quieter(samples: list[dict]) -> list[dict]:
        # still valid FLAC of the catalogued rate and length: only the bytes tell
        audio_data, rate = audio.decode_bytes(samples[1]["flac"], name=key)
        samples[1] = dict(samples[1], flac=audio.encode_flac(audio_data * 0.5, rate))
        return samples

    _rewrite(fake, shard, quieter)
    assert verify_shards(fake.out).problems == [
        f"shards/{shard}: {key}: FLAC bytes differ from the catalog's checksum (altered in place)"
    ]


def test_a_catalog_written_before_checksums_reads_and_verifies(tmp_path: Path):
    fake = write_fake_out(tmp_path / "out", (2, 2))
    path = tmp_path / "out" / "catalog" / "segments.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["checksum"]), path)
    assert read_segments(fake.out).column("checksum").null_count == 6
    batches = list(iter_segments(fake.out, ["key", "checksum"], batch_rows=3))
    assert [batch.num_rows for batch in batches] == [3, 3]
    assert verify_shards(fake.out).problems == []

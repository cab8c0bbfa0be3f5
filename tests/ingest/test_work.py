"""Work parts: names back to recordings, outputs removed by recording, leftovers cleaned."""

from pathlib import Path

from ingest import work
from ingest.plan import shard_name, task_prefix


def test_task_and_shard_names_lead_back_to_their_recording():
    rid = "SAUT-LAVILETTE_20240315T084500Z_0123abcd"
    name = f"{task_prefix(rid, '1234:abcdef')}p002of003"
    assert work.recording_of_task(name) == rid
    for part, n_parts in ((0, 1), (2, 3)):
        assert (
            work.recording_of_shard(f"/o/shards/{shard_name('SAUT LAVILETTE', rid, part, n_parts)}")
            == rid
        )


def test_outputs_are_removed_for_the_named_recordings_only(tmp_path: Path):
    out = str(tmp_path)
    keep, drop = "A_notime_11111111", "A_notime_22222222"
    for rid in (keep, drop):
        for part in range(2):
            shard = tmp_path / "shards" / shard_name("A", rid, part, 2)
            shard.parent.mkdir(parents=True, exist_ok=True)
            shard.write_bytes(b"tar")
        work.write_task_part(out, f"{task_prefix(rid, 'fp')}p000of002", [])
    work.remove_outputs(out, {drop})
    assert sorted(p.name for p in (tmp_path / "shards" / "A").iterdir()) == [
        f"{keep}-p000.tar",
        f"{keep}-p001.tar",
    ]
    assert [work.recording_of_task(n) for n in work.finished_tasks(out)] == [keep]


def test_unfinished_writes_are_removed(tmp_path: Path):
    (tmp_path / "S").mkdir()
    (tmp_path / "S" / "x.tar.tmp-0123456789ab").write_bytes(b"partial")
    (tmp_path / "S" / "y.tar").write_bytes(b"whole")
    assert work.remove_temporaries(str(tmp_path)) == 1
    assert [p.name for p in (tmp_path / "S").iterdir()] == ["y.tar"]

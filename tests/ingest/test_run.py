"""The whole stage on Dask: the example corpus, bad files, --strict, re-runs, new files, resume."""

import dataclasses
import datetime as dt
import errno
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from dask.distributed import LocalCluster

import ingest
import sonotype.dask_cluster
from ingest import work
from sonotype.cli.main import main
from sonotype.config.ingest import IngestConfig
from sonotype.config.load import CONFIGS_DIR, load_config
from sonotype.contracts import RECORDINGS_SCHEMA, SEGMENTS_SCHEMA, is_valid_key
from sonotype.errors import OutputConflictError, SonotypeError
from sonotype.example import ExampleSummary
from sonotype.fsio import TEMP_MARKER
from sonotype.output_lock import output_lock
from tests.audio_factory import AudioFactory, noise, sine
from tests.ingest.helpers import catalog_rows, read_shards, short_config


def _ingest(inputs: list[Path], out: Path, config: IngestConfig, scheduler: str, **kwargs):
    return ingest.run_ingest(
        [str(p) for p in inputs], str(out), config, scheduler=scheduler, **kwargs
    )


def _shard_times(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in (out / "shards").rglob("*.tar")}


def test_the_example_corpus(small_example: ExampleSummary, dask_scheduler: str, tmp_path: Path):
    config = load_config(IngestConfig, CONFIGS_DIR / "ingest.yaml")
    summary = _ingest([Path(small_example.root)], tmp_path, config, dask_scheduler)
    assert (summary.n_ok, summary.n_failed, summary.n_processed) == (12, 0, 12)
    recordings = catalog_rows(tmp_path, "recordings")
    assert pq.read_schema(tmp_path / "catalog/recordings.parquet").names == RECORDINGS_SCHEMA.names
    ok = {
        Path(r["path"]).relative_to(small_example.root).as_posix(): r
        for r in recordings
        if r["status"] == "ok"
    }
    assert set(ok) == set(small_example.audio_files)
    # Start times: AudioMoth names are UTC, Song Meter names local (America/Cayenne).
    truth = pq.read_table(small_example.ground_truth).to_pylist()
    file_starts = {row["path"]: row["file_start"] for row in truth}
    for relative, row in ok.items():
        assert row["start_time"] == file_starts[relative]
        assert row["site"] == relative.split("/")[0]
        assert row["time_source"] == ("audiomoth" if row["site"] == "PARACOU" else "songmeter")
        assert row["duration_s"] == 20.0
    ignored = {
        Path(r["path"]).relative_to(small_example.root).as_posix(): r["error"]
        for r in recordings
        if r["status"] == "ignored"
    }
    assert summary.n_ignored == len(ignored) == 9
    assert ignored["ground_truth.csv"].startswith("side file: .csv is not an audio")
    assert ignored["PARACOU/2024/CONFIG.TXT"].startswith("side file: .TXT is not an audio")
    apple_double = "PARACOU/2024/._20240315_084500.WAV"
    assert ignored[apple_double] == "side file: its name matches the ignore pattern '._*'"
    segments = catalog_rows(tmp_path, "segments")
    assert pq.read_schema(tmp_path / "catalog/segments.parquet").names == SEGMENTS_SCHEMA.names
    assert len(segments) == 24
    assert all(is_valid_key(s["key"]) for s in segments)
    # The dropout file (digital silence at 5–8.4 s) loses its first segment.
    dropout = ok["PARACOU/2024/20240315_211500.WAV"]["recording_id"]
    assert [
        (s["offset_s"], s["kept"], s["drop_reason"])
        for s in segments
        if s["recording_id"] == dropout
    ] == [(0.0, False, "silence"), (10.0, True, None)]
    stored = read_shards(tmp_path)
    assert set(stored) == {s["key"] for s in segments if s["kept"]}
    for segment in segments:
        assert (segment["shard"] is None) == (not segment["kept"])
        assert segment["start_time"] == next(
            r["start_time"] for r in ok.values() if r["recording_id"] == segment["recording_id"]
        ) + dt.timedelta(seconds=segment["offset_s"])


def test_bad_files_fail_with_their_reason_and_the_run_goes_on(
    audio_factory: AudioFactory, dask_scheduler: str, tmp_path: Path
):
    audio_factory.tone("S/20240101_000000.wav", duration_s=2.0, sample_rate=16000)
    for maker in ("zero_bytes", "not_audio", "truncated", "header_only"):
        getattr(audio_factory, maker)(f"S/{maker}.wav")
    summary = _ingest([audio_factory.root], tmp_path / "out", short_config(), dask_scheduler)
    assert (summary.n_ok, summary.n_failed) == (1, 4)
    errors = {
        Path(r["path"]).stem: r["error"]
        for r in catalog_rows(tmp_path / "out", "recordings")
        if r["status"] == "failed"
    }
    assert "empty file (0 bytes)" in errors["zero_bytes"]
    assert "not readable as audio" in errors["not_audio"]
    assert (
        "truncated: the header declares 2.000 s of audio, the file holds 0.999 s"
        in (errors["truncated"])
    )
    assert "no audio samples (header only)" in errors["header_only"]
    assert len(read_shards(tmp_path / "out")) == 2
    text = summary.describe()
    assert "recordings: 1 ok, 4 failed" in text
    assert "truncated.wav: " in text


def test_strict_turns_failures_into_exit_1(
    audio_factory: AudioFactory, dask_scheduler: str, tmp_path: Path
):
    audio_factory.tone("S/20240101_000000.wav", duration_s=1.0, sample_rate=16000)
    audio_factory.not_audio("S/broken.wav")
    args = [
        "ingest",
        str(audio_factory.root),
        "--scheduler",
        dask_scheduler,
        "-q",
        "--set",
        "segment.length_s=1.0",
    ]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b"), "--strict"]) == 1
    # A re-run skips the failed file but still reports it under --strict.
    assert main([*args, "--out", str(tmp_path / "b"), "--strict"]) == 1


def test_a_rerun_skips_finished_recordings_and_a_new_year_adds_only_its_shards(
    audio_factory: AudioFactory, dask_scheduler: str, tmp_path: Path
):
    audio_factory.write("S/2024/20240101_000000.wav", sine(2.0, 16000), 16000)
    audio_factory.write("S/2024/20240102_000000.wav", noise(2.0, 16000), 16000)
    out, config = tmp_path / "out", short_config()
    first = _ingest([audio_factory.root], out, config, dask_scheduler)
    assert (first.n_processed, first.n_skipped) == (2, 0)
    shards, catalog = _shard_times(out), (out / "catalog/segments.parquet").stat().st_mtime_ns

    again = _ingest([audio_factory.root], out, config, dask_scheduler)
    assert (again.n_processed, again.n_skipped, again.n_ok) == (0, 2, 2)
    assert _shard_times(out) == shards
    assert (out / "catalog/segments.parquet").stat().st_mtime_ns == catalog

    audio_factory.write("S/2025/20250101_000000.wav", sine(3.0, 16000, 880.0), 16000)
    new_year = _ingest([audio_factory.root], out, config, dask_scheduler)
    assert (new_year.n_processed, new_year.n_skipped) == (1, 2)
    after = _shard_times(out)
    assert {k: v for k, v in after.items() if k in shards} == shards
    assert [k for k in after if k not in shards] == [
        next(k for k in after if "20250101T000000Z" in k)
    ]
    assert len(catalog_rows(out, "recordings")) == 3
    assert len(catalog_rows(out, "segments")) == 7


def test_task_parts_are_gathered_into_row_groups_of_bounded_size(
    audio_factory: AudioFactory, dask_scheduler: str, tmp_path: Path, monkeypatch
):
    # Three files of 2, 2 and 3 one-second segments: three tasks, three task parts.
    for day, seconds in ((1, 2.0), (2, 2.0), (3, 3.0)):
        audio_factory.write(f"S/2024/2024010{day}_000000.wav", noise(seconds, 16000), 16000)
    monkeypatch.setattr("ingest.consolidate._BATCH_ROWS", 4)
    out = tmp_path / "out"
    _ingest([audio_factory.root], out, short_config(), dask_scheduler)
    catalog = pq.ParquetFile(out / "catalog/segments.parquet").metadata
    sizes = [catalog.row_group(i).num_rows for i in range(catalog.num_row_groups)]
    assert sizes == [4, 3]  # not one row group per task: [2, 2, 3]
    keys = [row["key"] for row in catalog_rows(out, "segments")]
    assert keys == sorted(keys)
    assert len(set(keys)) == 7


def test_a_changed_file_is_redone_and_replaces_its_segments(
    audio_factory: AudioFactory, dask_scheduler: str, tmp_path: Path
):
    path = audio_factory.write("S/20240101_000000.wav", sine(3.0, 16000), 16000)
    out, config = tmp_path / "out", short_config()
    _ingest([audio_factory.root], out, config, dask_scheduler)
    audio_factory.write(path.relative_to(audio_factory.root).as_posix(), sine(2.0, 16000), 16000)
    summary = _ingest([audio_factory.root], out, config, dask_scheduler)
    assert summary.n_processed == 1
    assert [s["offset_s"] for s in catalog_rows(out, "segments")] == [0.0, 1.0]
    assert len(read_shards(out)) == 2


def test_one_and_two_workers_give_the_same_catalogs_and_shards(
    audio_factory: AudioFactory, dask_scheduler: str, tmp_path: Path
):
    for day in range(1, 5):
        audio_factory.write(f"S/2024010{day}_000000.wav", noise(2.5, 22050, seed=day), 22050)
    config = short_config("job.max_task_s=1.0")
    outputs = {1: tmp_path / "w1", 2: tmp_path / "w2"}
    # One worker: the local cluster run_ingest starts itself; two: the shared cluster.
    ingest.run_ingest([str(audio_factory.root)], str(outputs[1]), config, workers=1)
    _ingest([audio_factory.root], outputs[2], config, dask_scheduler)
    for name in ("recordings", "segments"):
        assert catalog_rows(outputs[1], name) == catalog_rows(outputs[2], name)
    shards = sorted(p.relative_to(outputs[1]) for p in outputs[1].rglob("*.tar"))
    assert len(shards) == 4 * 3
    for shard in shards:
        assert (outputs[1] / shard).read_bytes() == (outputs[2] / shard).read_bytes()


def test_settings_that_shape_the_output_are_refused_unless_forced(
    audio_factory: AudioFactory, dask_scheduler: str, tmp_path: Path
):
    audio_factory.tone("S/20240101_000000.wav", duration_s=2.0, sample_rate=16000)
    out = tmp_path / "out"
    _ingest([audio_factory.root], out, short_config(), dask_scheduler)
    other = short_config("segment.length_s=0.5", "resample.sample_rate=16000")
    with pytest.raises(OutputConflictError, match=r"resample\.sample_rate, segment\.length_s"):
        _ingest([audio_factory.root], out, other, dask_scheduler)
    # Settings that do not shape the output are fine.
    _ingest([audio_factory.root], out, short_config("job.block_s=1.0"), dask_scheduler)
    summary = _ingest([audio_factory.root], out, other, dask_scheduler, force=True)
    assert summary.n_processed == 1
    rates = {s["sample_rate"] for s in catalog_rows(out, "segments")}
    assert rates == {16000}
    assert len(catalog_rows(out, "segments")) == 4


def _exploding_task(task, config, out):
    raise RuntimeError("boom")


def test_a_task_that_keeps_raising_is_recorded_and_retried_by_the_next_run(
    audio_factory: AudioFactory, dask_scheduler: str, tmp_path: Path, monkeypatch
):
    audio_factory.tone("S/20240101_000000.wav", duration_s=1.0, sample_rate=16000)
    out, config = tmp_path / "out", short_config("job.retries=1")
    monkeypatch.setattr(ingest.job, "process_task", _exploding_task)
    summary = _ingest([audio_factory.root], out, config, dask_scheduler)
    assert summary.n_failed == 1
    [row] = catalog_rows(out, "recordings")
    assert row["error"] == "task error after 1 retries: RuntimeError: boom"
    monkeypatch.undo()
    summary = _ingest([audio_factory.root], out, config, dask_scheduler)
    assert (summary.n_processed, summary.n_ok) == (1, 1)


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path: Path, monkeypatch, audio_factory):
    audio_factory.tone("S/20240101_000000.wav", duration_s=1.0, sample_rate=16000)
    monkeypatch.setattr(sonotype.dask_cluster, "_CONNECT_TIMEOUT_S", 1)
    with pytest.raises(
        SonotypeError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"
    ):
        _ingest([audio_factory.root], tmp_path / "out", short_config(), "tcp://127.0.0.1:9")


def _killed_states(out: Path) -> dict[str, Callable[[], None]]:
    """Ways a killed run can leave `out`, each applied to a finished output whose task
    parts were kept."""

    def no_catalogs() -> None:
        for name in ("recordings", "segments"):
            (out / f"catalog/{name}.parquet").unlink()

    def mid_run() -> None:
        # Killed with some tasks done: no catalogs, the last task neither written nor
        # recorded.
        no_catalogs()
        last = sorted(work.finished_tasks(str(out)).values())[-1]
        [shard] = {row.shard for row in work.read_task_part(last) if row.shard}
        (out / "shards" / shard).unlink()
        Path(last).unlink()

    def between_shard_and_rows() -> None:
        # One task's shard was renamed into place, its rows not yet written; another
        # task's shard was being written.
        no_catalogs()
        Path(sorted(work.finished_tasks(str(out)).values())[0]).unlink()
        (out / "shards" / "S" / "x.tar.tmp-0123456789ab").write_bytes(b"partial")

    def after_catalogs_before_cleanup() -> None:
        # Catalogs written, the task parts they came from still on disk.
        pass

    return {
        "mid_run": mid_run,
        "between_shard_and_rows": between_shard_and_rows,
        "after_catalogs_before_cleanup": after_catalogs_before_cleanup,
    }


@pytest.mark.parametrize(
    "state", ["mid_run", "between_shard_and_rows", "after_catalogs_before_cleanup"]
)
@pytest.mark.faults
def test_a_run_resumed_from_a_killed_state_ends_like_an_uninterrupted_one(
    audio_factory: AudioFactory, dask_scheduler: str, tmp_path: Path, monkeypatch, state: str
):
    for day in (1, 2):
        audio_factory.write(f"S/2024010{day}_000000.wav", noise(2.5, 44100, seed=day), 44100)
    config = short_config("job.max_task_s=1.0")
    reference = tmp_path / "reference"
    _ingest([audio_factory.root], reference, config, dask_scheduler)

    out = tmp_path / "out"
    # Keep the work parts, as a run killed between writing catalogs and cleaning up would.
    monkeypatch.setattr(work, "remove", lambda urls: None)
    _ingest([audio_factory.root], out, config, dask_scheduler)
    monkeypatch.undo()
    _killed_states(out)[state]()
    summary = _ingest([audio_factory.root], out, config, dask_scheduler)
    assert summary.n_failed == 0

    for name in ("recordings", "segments"):
        assert catalog_rows(out, name) == catalog_rows(reference, name)
    assert sorted(_shard_times(out)) == sorted(_shard_times(reference))
    assert work.finished_tasks(str(out)) == {}
    assert list(out.rglob("*.tmp-*")) == []
    resumed, uninterrupted = read_shards(out), read_shards(reference)
    assert sorted(resumed) == sorted(uninterrupted)
    for key, (samples, meta) in uninterrupted.items():
        np.testing.assert_array_equal(resumed[key][0], samples)
        assert resumed[key][1] == meta


def test_run_summary_counts_drop_reasons(audio_factory: AudioFactory, dask_scheduler, tmp_path):
    source = sine(3.0, 16000)
    source[16000:32000] = 0.0
    audio_factory.write("S/20240101_000000.wav", source, 16000)
    summary = _ingest([audio_factory.root], tmp_path / "out", short_config(), dask_scheduler)
    assert (summary.n_segments_kept, summary.n_segments_dropped) == (2, 1)
    assert summary.drop_reasons == {"silence": 1}
    assert "reasons: silence 1" in summary.describe()
    [row] = catalog_rows(tmp_path / "out", "recordings")
    assert (row["n_segments_kept"], row["n_segments_dropped"]) == (2, 1)


def test_records_mirror_the_contract():
    from ingest.records import RecordingRecord, SegmentRecord

    assert [f.name for f in dataclasses.fields(RecordingRecord)] == RECORDINGS_SCHEMA.names
    assert [f.name for f in dataclasses.fields(SegmentRecord)] == SEGMENTS_SCHEMA.names


def test_the_same_recording_through_two_inputs_is_ingested_once(
    audio_factory: AudioFactory, dask_scheduler: str, tmp_path: Path
):
    audio_factory.write("card/S/20240101_000000.wav", sine(1.0, 16000), 16000)
    audio_factory.write("backup/S/20240101_000000.wav", sine(1.0, 16000), 16000)
    roots = [audio_factory.root / "backup", audio_factory.root / "card"]
    summary = _ingest(roots, tmp_path / "out", short_config(), dask_scheduler)
    assert (summary.n_ok, summary.n_processed) == (1, 1)
    rows = {Path(r["path"]).parts[-3]: r for r in catalog_rows(tmp_path / "out", "recordings")}
    assert rows["backup"]["status"] == "ok"
    assert rows["card"]["status"] == "ignored"
    assert rows["card"]["error"].startswith(f"duplicate of {roots[0] / 'S/20240101_000000.wav'}")
    assert rows["card"]["recording_id"].startswith(rows["backup"]["recording_id"] + "-")
    assert len(catalog_rows(tmp_path / "out", "segments")) == 1


@pytest.mark.faults
def test_a_second_ingest_into_the_same_output_is_refused_and_touches_nothing(
    audio_factory: AudioFactory, dask_scheduler: str, tmp_path: Path, capsys
):
    # Issue 16, failure 1: the second run deleted the first's temporary files at start-up.
    audio_factory.tone("S/20240101_000000.wav", duration_s=1.0, sample_rate=16000)
    out = tmp_path / "out"
    unfinished = out / "shards" / "S" / f"part.tar{TEMP_MARKER}0123"
    unfinished.parent.mkdir(parents=True)
    unfinished.write_bytes(b"the first run is writing this")
    args = ["ingest", str(audio_factory.root), "--out", str(out), "--scheduler", dask_scheduler]
    with output_lock(out, "ingest"):
        assert main([*args, "-q"]) == 2
        assert unfinished.exists()
        assert not (out / "catalog").exists()
    assert f"is being written by sonotype ingest (pid {os.getpid()}" in capsys.readouterr().err
    assert main([*args, "-q"]) == 0
    assert len(catalog_rows(out, "recordings")) == 1
    assert not unfinished.exists()  # the next run that holds the lock cleans up


@pytest.mark.faults
def test_unfinished_catalog_writes_are_removed_by_the_next_run(
    audio_factory: AudioFactory, dask_scheduler: str, tmp_path: Path
):
    # Issue 16, failure 4: catalog/*.parquet.tmp-* files were never cleaned.
    audio_factory.tone("S/20240101_000000.wav", duration_s=1.0, sample_rate=16000)
    out = tmp_path / "out"
    _ingest([audio_factory.root], out, short_config(), dask_scheduler)
    left = out / "catalog" / f"segments.parquet{TEMP_MARKER}4567"
    left.write_bytes(b"half a parquet file")
    _ingest([audio_factory.root], out, short_config(), dask_scheduler)
    assert not left.exists()


@pytest.mark.faults
def test_a_full_disk_stops_the_run_and_fails_no_recording(
    audio_factory: AudioFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    # Issue 16, failure 6: a full disk was recorded as input failures (Errno 28), exit 0.
    for day in (1, 2):
        audio_factory.tone(f"S/2024010{day}_000000.wav", duration_s=1.0, sample_rate=16000)
    out = tmp_path / "out"

    def disk_full(task, config, out_root):
        raise OSError(errno.ENOSPC, "No space left on device", f"{out_root}/shards/x.tar")

    monkeypatch.setattr("ingest.job.process_task", disk_full)
    args = ["-q", "ingest", str(audio_factory.root), "--out", str(out), "--workers", "1"]
    # Threads in this process: the workers run the patched task.
    with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster:
        scheduler = ["--scheduler", cluster.scheduler_address]
        assert main([*args[:-2], *scheduler]) == 2
    message = capsys.readouterr().err
    assert "cannot write: No space left on device" in message
    assert "were not marked failed" in message
    assert not (out / "catalog" / "recordings.parquet").exists()
    monkeypatch.undo()
    assert main(args) == 0
    assert [r["status"] for r in catalog_rows(out, "recordings")] == ["ok", "ok"]

"""One writer per output: refusal naming the owner, takeover of dead or silent owners."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from sonotype.errors import OutputLockedError, SonotypeError
from sonotype.output_lock import lock_path, output_lock

pytestmark = pytest.mark.faults


def _foreign_lock(path, *, host: str, pid: int, age_s: float = 0.0) -> None:
    """A lock file as another run would have left it, its heartbeat `age_s` old."""
    owner = {
        "stage": "ingest",
        "host": host,
        "pid": pid,
        "started": time.time() - age_s,
        "command": "sonotype ingest in --out out",
        "token": "other",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(owner))
    then = time.time() - age_s
    os.utime(path, (then, then))


def _take_and_release(directory, stage: str, **kwargs) -> None:
    with output_lock(directory, stage, **kwargs):
        pass


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_second_run_is_refused_with_the_owner_named(tmp_path):
    with output_lock(tmp_path, "ingest"), pytest.raises(OutputLockedError) as refused:
        _take_and_release(tmp_path, "ingest")
    message = str(refused.value)
    assert f"pid {os.getpid()} on {socket.gethostname()}" in message
    assert "sonotype ingest" in message
    assert str(lock_path(tmp_path, "ingest")) in message


def test_the_lock_is_released_and_other_stages_do_not_collide(tmp_path):
    with (
        output_lock(tmp_path, "ingest"),
        output_lock(tmp_path, "report"),
        output_lock(tmp_path, "encode", "features.zarr"),
    ):
        assert lock_path(tmp_path, "encode", "features.zarr").exists()
    assert not list(tmp_path.glob(".sonotype-*"))
    with output_lock(tmp_path, "ingest"):
        pass


def test_a_lock_left_by_a_dead_process_here_is_taken_over(tmp_path, caplog):
    path = lock_path(tmp_path, "ingest")
    dead = _dead_pid()
    _foreign_lock(path, host=socket.gethostname(), pid=dead)
    with caplog.at_level("WARNING"), output_lock(tmp_path, "ingest"):
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert f"pid {dead} no longer runs" in caplog.text
    assert not path.exists()


def test_another_hosts_lock_holds_while_its_heartbeat_is_fresh(tmp_path, caplog):
    path = lock_path(tmp_path, "ingest")
    _foreign_lock(path, host="node-17", pid=1, age_s=5)
    with pytest.raises(OutputLockedError, match="pid 1 on node-17"):
        _take_and_release(tmp_path, "ingest", stale_after_s=60)
    _foreign_lock(path, host="node-17", pid=1, age_s=120)
    with caplog.at_level("WARNING"), output_lock(tmp_path, "ingest", stale_after_s=60):
        assert json.loads(path.read_text())["host"] == socket.gethostname()
    assert "no heartbeat for 120 s" in caplog.text


def test_a_live_pid_whose_heartbeat_stopped_is_gone(tmp_path):
    # The pid may have been reused by an unrelated process: the heartbeat decides.
    path = lock_path(tmp_path, "ingest")
    _foreign_lock(path, host=socket.gethostname(), pid=os.getppid(), age_s=300)
    with output_lock(tmp_path, "ingest", stale_after_s=60):
        assert json.loads(path.read_text())["pid"] == os.getpid()


def test_the_heartbeat_refreshes_the_lock_file(tmp_path):
    path = lock_path(tmp_path, "ingest")
    with output_lock(tmp_path, "ingest", heartbeat_s=0.05):
        os.utime(path, (0, 0))
        deadline = time.time() + 5
        while path.stat().st_mtime == 0 and time.time() < deadline:
            time.sleep(0.02)
        assert path.stat().st_mtime > time.time() - 5


def test_a_run_never_removes_a_lock_that_is_no_longer_its_own(tmp_path):
    path = lock_path(tmp_path, "ingest")
    with output_lock(tmp_path, "ingest"):
        _foreign_lock(path, host="node-2", pid=9)  # taken over while this run stalled
    assert json.loads(path.read_text())["host"] == "node-2"


def test_an_unreadable_old_lock_file_is_taken_over(tmp_path):
    path = lock_path(tmp_path, "cluster", "default")
    path.write_text("{not json")
    os.utime(path, (time.time() - 60, time.time() - 60))
    with output_lock(tmp_path, "cluster", "default"):
        assert json.loads(path.read_text())["stage"] == "cluster"


def test_an_output_that_is_a_file_is_a_clear_error(tmp_path):
    target = tmp_path / "out"
    target.write_text("not a folder")
    with pytest.raises(SonotypeError, match="is a file; expected a folder"):
        _take_and_release(target, "ingest")


def test_object_storage_is_not_locked_and_says_so(caplog):
    with caplog.at_level("WARNING"), output_lock("memory://bucket/out", "ingest"):
        pass
    assert "one writer at a time is not enforced" in caplog.text

"""One writer per output: a lock file that names its owner and carries a heartbeat.

Every stage that writes takes the lock of its output before touching anything. The
lock file sits beside what it guards, never inside something the stage may delete and
rebuild: ingest `OUT/.sonotype-ingest.lock`, encode `OUT/.sonotype-encode-features.zarr.lock`
(beside the store), cluster `clusters/.sonotype-cluster-NAME.lock`, report
`OUT/.sonotype-report.lock`. The lock is a file created with O_CREAT | O_EXCL, which is atomic on
local disks and on NFS v3+ and other shared POSIX file systems, so no byte-range
locking service is needed. It holds the owner (host, pid, start time, command) and
its modification time is refreshed every `heartbeat_s` while the run lives.

A second run refuses with a message that names the owner. A lock is taken over, with
a WARNING, when its owner is gone: a pid that no longer exists on this host, or a
heartbeat older than `stale_after_s` (the pid of another host cannot be checked, and
one here may have been reused). Taking over renames the stale file aside first, so of
two runs that find the same stale lock only one wins.

Object storage (s3://, gs://, ...) has neither exclusive creation nor renames: there the
lock is not enforced, and the run says so once with a WARNING.
"""

import contextlib
import json
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from sonotype.errors import OutputLockedError, SonotypeError
from sonotype.fsio import is_local

logger = logging.getLogger(__name__)

HEARTBEAT_S = 10.0
STALE_AFTER_S = 120.0
# A lock file younger than this may still be being written by its creator.
_UNREADABLE_GRACE_S = 5.0


@dataclass(frozen=True)
class LockOwner:
    """Who holds a lock (what the lock file holds, as JSON)."""

    stage: str
    host: str
    pid: int
    started: float
    command: str
    token: str

    def describe(self, heartbeat_age_s: float) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return (
            f"sonotype {self.stage} (pid {self.pid} on {self.host}, started {started}, "
            f"last heartbeat {heartbeat_age_s:.0f} s ago: {self.command})"
        )


def lock_path(directory: str | Path, stage: str, guarded: str | None = None) -> Path:
    """The lock file of `stage` in `directory` (for the output `guarded` in it, if given)."""
    name = stage if guarded is None else f"{stage}-{guarded}"
    return Path(directory) / f".sonotype-{name}.lock"


@contextlib.contextmanager
def output_lock(
    directory: str | Path,
    stage: str,
    guarded: str | None = None,
    *,
    heartbeat_s: float = HEARTBEAT_S,
    stale_after_s: float = STALE_AFTER_S,
) -> Iterator[None]:
    """Hold the lock of `stage` in `directory` (created if missing) for the block.

    Args:
        directory: where the lock file lives: the output, or the folder holding it (a
            local path or a URL).
        stage: "ingest", "encode", "cluster" or "report".
        guarded: the name of the output in `directory` the lock guards (a store, a
            clustering), when the lock cannot live inside it.
        heartbeat_s: seconds between refreshes of the lock file's modification time.
        stale_after_s: a lock of another host whose heartbeat is older is taken over.

    Raises:
        OutputLockedError: another live run holds the lock.
        SonotypeError: the folder is a file or cannot be written.
    """
    if not is_local(directory):
        logger.warning(
            "%s is not on a file system: one writer at a time is not enforced there; do not "
            "start two sonotype %s runs on it",
            directory,
            stage,
        )
        yield
        return
    path = lock_path(str(directory).removeprefix("file://"), stage, guarded)
    output = path.parent if guarded is None else path.parent / guarded
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        owner = _acquire(path, output, stage, stale_after_s)
    except (FileExistsError, NotADirectoryError):
        raise SonotypeError(f"{path.parent}: is a file; expected a folder") from None
    except OSError as error:
        raise SonotypeError(
            f"{path.parent}: cannot write there ({error.strerror}); sonotype {stage} needs a "
            "writable output folder"
        ) from None
    stop = threading.Event()
    beat = threading.Thread(
        target=_heartbeat, args=(path, owner, heartbeat_s, stop), daemon=True, name="lock"
    )
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join()
        _release(path, owner)


def _acquire(path: Path, output: Path, stage: str, stale_after_s: float) -> LockOwner:
    owner = LockOwner(
        stage=stage,
        host=socket.gethostname(),
        pid=os.getpid(),
        started=time.time(),
        command=" ".join(Path(sys.argv[0]).name.split() + sys.argv[1:])[:300],
        token=uuid.uuid4().hex,
    )
    while True:
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            _take_over_if_stale(path, output, stale_after_s)
            continue
        with os.fdopen(descriptor, "w") as file:
            json.dump(asdict(owner), file)
        logger.debug("took %s", path)
        return owner


def _take_over_if_stale(path: Path, output: Path, stale_after_s: float) -> None:
    """Remove the lock at `path` if its owner is gone; raise if it lives."""
    try:
        text = path.read_text()
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return  # released meanwhile: try again
    holder = _parse(text)
    if holder is None:
        if age < _UNREADABLE_GRACE_S:
            time.sleep(0.1)  # its creator is still writing it
            return
        reason = "an unreadable lock file"
    else:
        reason = _why_gone(holder, age, stale_after_s)
        if reason is None:
            raise OutputLockedError(
                f"{output} is being written by {holder.describe(age)}; wait for it to "
                f"finish. If that run is gone, delete {path}"
            )
    aside = path.with_name(f"{path.name}.stale-{uuid.uuid4().hex}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return  # another run took it over first
    if aside.read_text() != text:
        # Another run took the stale lock over and wrote its own between our read and our
        # rename: put that one back (link fails if a third run holds the name by now).
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
        aside.unlink()
        return
    aside.unlink()
    what = "its owner" if holder is None else holder.describe(age)
    logger.warning("%s: taking over the lock of %s (%s)", output, what, reason)


def _why_gone(holder: LockOwner, age: float, stale_after_s: float) -> str | None:
    """Why the holder is gone, or None if it may still be running."""
    here = holder.host == socket.gethostname()
    if here and holder.pid != os.getpid() and not _pid_alive(holder.pid):
        return f"pid {holder.pid} no longer runs"
    # A live owner refreshes the file every few seconds: one that stopped doing so is
    # gone even if its pid exists (on another host, or reused by another process here).
    if age > stale_after_s:
        return f"no heartbeat for {age:.0f} s (limit {stale_after_s:.0f} s)"
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True


def _parse(text: str) -> LockOwner | None:
    try:
        return LockOwner(**json.loads(text))
    except (ValueError, TypeError):
        return None


def _heartbeat(path: Path, owner: LockOwner, every_s: float, stop: threading.Event) -> None:
    while not stop.wait(every_s):
        try:
            os.utime(path)
        except FileNotFoundError:
            logger.warning("%s: the lock file was removed while this run held it", path)
            return


def _release(path: Path, owner: LockOwner) -> None:
    """Remove the lock file if it is still this run's."""
    try:
        holder = _parse(path.read_text())
    except FileNotFoundError:
        return
    if holder is not None and holder.token == owner.token:
        path.unlink(missing_ok=True)

"""The Dask side of ingest: a client (local cluster or an existing scheduler) and the task map.

`process_task` knows nothing of Dask; this module submits one future per task, retries
failures, turns a task that still fails into a result that says why, and advances a
progress bar as futures complete, in whatever order they do.
"""

import contextlib
import logging
import os
from collections.abc import Callable, Iterator

import dask
from dask.distributed import Client, LocalCluster, as_completed

from ingest.plan import TaskSpec
from ingest.process import TaskResult, process_task
from sonotype.config.ingest import IngestConfig
from sonotype.errors import SonotypeError
from sonotype.progress import progress_bar

logger = logging.getLogger(__name__)

TASK_ERROR_PREFIX = "task error"
"""Start of the `error` of a recording whose task raised or lost its worker after every
retry. Unlike a bad file, such a failure is tried again by the next run."""

_CONNECT_TIMEOUT_S = 30
WORKER_SETTINGS = {
    # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also turns off glibc's
    # adaptive mmap threshold: every block-sized array is then mapped and unmapped
    # afresh. Memory stays bounded by the block size, not by trimming.
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    # The statistical profiler (for the dashboard) samples the task's stack every 10 ms.
    "distributed.worker.profile.enabled": False,
}
"""Settings of the local cluster's workers; together worth ~35% of ingest's CPU time
(measured with benchmarks/ingest.py's corpus, one worker, 1150 → 1770 s of audio per
CPU second)."""


@contextlib.contextmanager
def _quiet_dask_logs() -> Iterator[None]:
    """Keep Dask's INFO chatter (cluster start, workers joining) out of a normal run's log.

    distributed sets its logger to INFO when imported, after the CLI configured logging;
    with `-v` (DEBUG) it is left as it is.
    """
    dask_logger = logging.getLogger("distributed")
    previous = dask_logger.level
    if not logger.isEnabledFor(logging.DEBUG):
        dask_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        dask_logger.setLevel(previous)


@contextlib.contextmanager
def dask_client(workers: int | None, scheduler: str | None) -> Iterator[Client]:
    """A Dask client: connected to `scheduler`, or to a new local cluster that ends with the block.

    The local cluster runs `workers` single-threaded processes: the work is numpy and
    libsndfile calls, and processes keep one file's decoder off another's core. Its
    workers run with `WORKER_SETTINGS`; workers of a cluster of your own are faster
    with the same two settings.

    Args:
        workers: processes of the local cluster (None: one per core).
        scheduler: address of a running scheduler, e.g. "tcp://head:8786".

    Yields:
        The client.

    Raises:
        SonotypeError: the scheduler cannot be reached.
    """
    with _quiet_dask_logs():
        if scheduler is not None:
            with _connect(scheduler) as client:
                yield client
            return
        n_workers = workers or os.cpu_count() or 1
        with (
            dask.config.set(WORKER_SETTINGS),
            LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
            ) as cluster,
            Client(cluster) as client,
        ):
            logger.info("local Dask cluster: %d worker process(es)", n_workers)
            yield client


@contextlib.contextmanager
def _connect(scheduler: str) -> Iterator[Client]:
    """A client of a running scheduler.

    Raises:
        SonotypeError: the scheduler cannot be reached.
    """
    try:
        client = Client(scheduler, timeout=_CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as error:
        raise SonotypeError(
            f"cannot reach the Dask scheduler at {scheduler} ({error}); "
            "check the address or run without --scheduler for a local cluster"
        ) from error
    with client:
        yield client


def run_tasks(
    client: Client,
    tasks: list[TaskSpec],
    config: IngestConfig,
    out: str,
    on_result: Callable[[TaskSpec, TaskResult], None],
) -> None:
    """Run `process_task` on every task, calling `on_result` as each completes.

    A task that raises (a bug, or a worker lost) is retried `job.retries` times; if it
    still fails, `on_result` receives a result whose error starts with TASK_ERROR_PREFIX.

    Args:
        client: where to run.
        tasks: the tasks, longest first for a balanced finish.
        config: the ingest settings.
        out: the output root.
        on_result: called in the client process with each task and its result.
    """
    futures = {
        client.submit(
            process_task,
            task,
            config,
            out,
            key=f"ingest-{task.name}",
            retries=config.job.retries,
            pure=False,
        ): task
        for task in tasks
    }
    # The bar counts files; a task of a file cut into n tasks advances it by 1/n.
    n_files = sum(1 / t.n_parts for t in tasks)
    total = round(n_files) if abs(n_files - round(n_files)) < 1e-9 else n_files
    with progress_bar(total, "files", "ingest") as bar:
        for future in as_completed(futures):
            task = futures.pop(future)
            if future.status == "error":
                error = future.exception()
                result = TaskResult(
                    task.name,
                    task.recording_id,
                    f"{TASK_ERROR_PREFIX} after {config.job.retries} retries: "
                    f"{type(error).__name__}: {error}",
                )
                logger.error("%s: %s", task.url, result.error)
            else:
                result = future.result()
            future.release()
            on_result(task, result)
            bar.update(1 / task.n_parts)

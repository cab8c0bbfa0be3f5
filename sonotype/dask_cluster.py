"""The Dask client of the stages that run on Dask: a local cluster, or an existing scheduler.

Ingest and encode run one single-threaded worker process per core (`--workers N`), or
use a cluster of the lab's own (`--scheduler ADDRESS`: SLURM, Kubernetes).
"""

import contextlib
import logging
import os
from collections.abc import Iterator

import dask
from dask.distributed import Client, LocalCluster

from sonotype.errors import SonotypeError

logger = logging.getLogger(__name__)

_CONNECT_TIMEOUT_S = 30
WORKER_SETTINGS = {
    # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also turns off glibc's
    # adaptive mmap threshold: every block-sized array (ingest) or encoder activation
    # (encode: tens of MB, layer after layer) is then mapped, page-faulted and unmapped
    # afresh. Memory stays bounded by the block or batch size, not by trimming.
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    # The statistical profiler (for the dashboard) samples the task's stack every 10 ms.
    "distributed.worker.profile.enabled": False,
}
"""Settings of the local cluster's workers; together worth ~35% of ingest's CPU time
(measured with benchmarks/ingest.py's corpus, one worker, 1150 → 1770 s of audio per
CPU second) and ~30% of encode's time with the 40 tokens/s model (benchmarks/encode.py,
one worker)."""


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

    The local cluster runs `workers` single-threaded processes: the work is numpy,
    libsndfile and torch calls, and processes keep one task's work off another's core.
    Its workers run with `WORKER_SETTINGS`; workers of a cluster of your own are faster
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

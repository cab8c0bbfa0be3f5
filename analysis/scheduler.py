"""Where parallel analysis work runs: a Dask distributed cluster, or local threads.

`--scheduler ADDRESS` connects a `distributed.Client` to a running scheduler (SLURM,
Kubernetes). Without it the tasks run on Dask's threaded scheduler with `workers`
threads: labelling is BLAS distance computations and Blosc decompression, which both
release the GIL, so threads use the cores without copying centroids or store handles
into worker processes. Each task reads one block and returns a small summary, so
memory is `workers × block` whatever the number of tasks.
"""

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import dask
from dask.callbacks import Callback
from dask.delayed import Delayed

from sonotype.progress import progress_bar

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def dask_client(scheduler: str | None) -> Iterator[Any]:
    """A `distributed.Client` connected to `scheduler`, or None to use local threads.

    Args:
        scheduler: address of a running Dask scheduler (`tcp://head:8786`), or None.

    Yields:
        The client (closed on exit) or None.
    """
    if scheduler is None:
        yield None
        return
    from distributed import Client

    client = Client(scheduler)
    logger.info("using the Dask scheduler at %s (%s)", scheduler, client.dashboard_link)
    try:
        yield client
    finally:
        client.close()


class _TaskProgress(Callback):
    """Advances a progress bar when one of the watched task keys finishes."""

    def __init__(self, bar: Any, keys: set):
        super().__init__()
        self._bar = bar
        self._keys = keys

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        if key in self._keys:
            self._bar.update(1)


def run_tasks(
    tasks: Sequence[Delayed], client: Any, workers: int, desc: str, unit: str = "chunks"
) -> list[Any]:
    """Compute delayed tasks on the client or on local threads, with a progress bar.

    Args:
        tasks: independent `dask.delayed` results.
        client: a `distributed.Client`, or None for the threaded scheduler.
        workers: threads of the threaded scheduler.
        desc: label of the progress bar.
        unit: what one task is.

    Returns:
        The task results, in the order of `tasks`.
    """
    if not tasks:
        return []
    with progress_bar(len(tasks), unit, desc) as bar:
        if client is not None:
            from distributed import as_completed

            futures = client.compute(list(tasks))
            for _ in as_completed(futures):
                bar.update(1)
            return client.gather(futures)
        with _TaskProgress(bar, {task.key for task in tasks}):
            return list(dask.compute(*tasks, scheduler="threads", num_workers=max(1, workers)))

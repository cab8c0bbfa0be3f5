"""The Dask side of ingest: the task map (the client comes from `sonotype.dask_cluster`).

`process_task` knows nothing of Dask; this module submits one future per task, retries
failures, turns a task that still fails into a result that says why, and advances a
progress bar as futures complete, in whatever order they do.
"""

import logging
from collections.abc import Callable

from dask.distributed import Client, as_completed

from ingest.plan import TaskSpec
from ingest.process import TaskResult, process_task
from sonotype.config.ingest import IngestConfig
from sonotype.errors import output_environment_error
from sonotype.progress import progress_bar

logger = logging.getLogger(__name__)

TASK_ERROR_PREFIX = "task error"
"""Start of the `error` of a recording whose task raised or lost its worker after every
retry. Unlike a bad file, such a failure is tried again by the next run."""


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

    Raises:
        OutputEnvironmentError: a task or `on_result` could not write the output (full
            disk, quota, read-only, no permission): the run stops, and the recordings of
            unfinished tasks stay un-attempted rather than failed.
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
                stop = output_environment_error(error, out)
                if stop is not None:
                    raise stop from error
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
            try:
                on_result(task, result)
            except OSError as error:
                stop = output_environment_error(error, out)
                if stop is None:
                    raise
                raise stop from error
            bar.update(1 / task.n_parts)

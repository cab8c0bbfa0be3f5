"""The Dask side: workers stay light and start with ingest's settings."""

import os
import subprocess
import sys

from ingest.job import dask_client


def test_worker_code_imports_neither_torch_nor_webdataset_nor_pandas():
    code = (
        "import sys; import ingest.process; "
        "print(','.join(m for m in ('torch', 'webdataset', 'pandas') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def _worker_settings() -> tuple[str | None, bool]:
    import dask

    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), dask.config.get(
        "distributed.worker.profile.enabled"
    )


def test_local_workers_run_without_malloc_trimming_or_the_profiler():
    with dask_client(workers=1, scheduler=None) as client:
        settings = list(client.run(_worker_settings).values())
    assert settings == [(None, False)]

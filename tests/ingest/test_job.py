"""The Dask side: workers stay light."""

import subprocess
import sys


def test_worker_code_imports_neither_torch_nor_webdataset_nor_pandas():
    code = (
        "import sys; import ingest.process; "
        "print(','.join(m for m in ('torch', 'webdataset', 'pandas') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""

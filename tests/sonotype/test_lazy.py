"""Lazy package attributes: imported on first use, listed by dir(), unknown names refused."""

import subprocess
import sys

import pytest

from sonotype.lazy import lazy_attributes


def _fresh_modules(code: str) -> set[str]:
    """Modules loaded by a fresh interpreter after running `code`."""
    script = f"import sys\n{code}\nprint(' '.join(sys.modules))"
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert output.returncode == 0, output.stderr
    return set(output.stdout.split())


def test_a_package_imports_a_home_only_when_its_name_is_used():
    assert "ingest.run" not in _fresh_modules("import ingest.process")
    assert "ingest.run" in _fresh_modules("import ingest\ningest.run_ingest")
    assert "shards.reader" not in _fresh_modules("import shards.writer")


def test_names_resolve_to_their_home_and_show_in_dir():
    import ingest
    import ingest.process

    assert ingest.process_task is ingest.process.process_task
    assert {"process_task", "run_ingest", "TaskResult", "IngestSummary"} <= set(dir(ingest))


def test_an_unknown_name_is_an_attribute_error_naming_the_package():
    getattr_, _ = lazy_attributes("ingest", {"x": "ingest.process"})
    with pytest.raises(AttributeError, match="module 'ingest' has no attribute 'nothing'"):
        getattr_("nothing")

"""Import direction between packages (STYLE §2), checked on the source with `ast`."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "shards", "training", "analysis", "evaluation")


def _imports(package: str) -> dict[Path, set[str]]:
    found: dict[Path, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[path] = names
    return found


@pytest.mark.parametrize("package", ["ingest", "analysis", "sonotype"])
def test_torch_free_packages_do_not_import_torch(package: str):
    offenders = [
        str(p) for p, names in _imports(package).items() if {"torch", "torchaudio"} & names
    ]
    assert offenders == []


def test_shared_package_imports_stages_only_from_the_cli():
    offenders = [
        str(path)
        for path, names in _imports("sonotype").items()
        if set(STAGES) & names and "cli" not in path.relative_to(ROOT).parts
    ]
    assert offenders == []


def test_analysis_does_not_import_training():
    assert [str(p) for p, names in _imports("analysis").items() if "training" in names] == []


@pytest.mark.parametrize("stage", ["ingest", "shards", "training", "analysis"])
def test_no_stage_imports_the_evaluation(stage: str):
    # the evaluation reads every stage's output; the report finds its scores by file
    assert [str(p) for p, names in _imports(stage).items() if "evaluation" in names] == []


@pytest.mark.parametrize("package", ["sonotype", *STAGES])
def test_generic_package_names_resolve_to_this_repository(package: str):
    module = __import__(package)
    assert Path(module.__file__).resolve().parent == ROOT / package

"""Fault injection on a real file system: a full disk and a read-only output, each stage.

Every scenario asserts the same three things: the run stops with exit 2 and one line
naming the cause, nothing committed before is lost or marked failed, and the same
command re-run once the fault is gone ends as an uninterrupted run.
"""

from pathlib import Path

import numpy as np
import pytest

from analysis import load_clustering
from sonotype.cli.main import main
from tests.audio_factory import AudioFactory, noise
from tests.faults.conftest import SmallFileSystem
from tests.ingest.helpers import catalog_rows
from tests.training.encode_helpers import save_tiny_tokenizer, snapshot, write_out

pytestmark = pytest.mark.faults


def _recordings(audio_factory: AudioFactory) -> Path:
    for day in range(1, 7):
        audio_factory.write(f"S/2024010{day}_000000.wav", noise(3.0, 24000, seed=day), 24000)
    return audio_factory.root


def _ingest(root: Path, out: Path) -> int:
    return main(["-q", "ingest", str(root), "--out", str(out), "--workers", "1"])


def _one_error_line(capsys: pytest.CaptureFixture, cause: str) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert cause in lines[0]
    return lines[0]


@pytest.mark.parametrize("fault", ["full", "read_only"])
def test_ingest_stops_on_the_output_and_a_rerun_completes(
    audio_factory: AudioFactory, small_fs: SmallFileSystem, tmp_path: Path, capsys, fault: str
):
    root = _recordings(audio_factory)
    reference = tmp_path / "reference"
    assert _ingest(root, reference) == 0
    capsys.readouterr()
    out = small_fs.root / "out"
    if fault == "full":
        small_fs.resize("160k")  # room for the first shards, not for all six
        cause = "No space left on device"
    else:
        out.mkdir()
        small_fs.read_only()
        cause = "Read-only file system"
    assert _ingest(root, out) == 2
    _one_error_line(capsys, cause)
    if (out / "catalog" / "recordings.parquet").exists():
        assert {row["status"] for row in catalog_rows(out, "recordings")} == {"ok"}

    small_fs.read_only(False)
    small_fs.resize("64m")
    assert _ingest(root, out) == 0
    for name in ("recordings", "segments"):
        assert catalog_rows(out, name) == catalog_rows(reference, name)


@pytest.mark.parametrize("fault", ["full", "read_only"])
def test_encode_and_cluster_stop_on_the_output_and_a_rerun_completes(
    small_fs: SmallFileSystem, tmp_path: Path, capsys, fault: str
):
    checkpoint = save_tiny_tokenizer(tmp_path / "tokenizer.pt")
    fake = write_out(tmp_path / "out", (3, 2, 4))
    reference = tmp_path / "reference.zarr"
    encode = ["-q", "encode", "--checkpoint", str(checkpoint), "--shards", fake.out]
    assert main([*encode, "--out", str(reference), "--workers", "0"]) == 0
    store = small_fs.root / "features.zarr"
    cluster = ["-q", "cluster", "--features", str(store), "--k", "2", "--workers", "1"]
    if fault == "full":
        # the store's metadata and the first shard fit, not every shard
        small_fs.resize("24k")
        cause = "No space left on device"
    else:
        small_fs.read_only()
        cause = "Read-only file system"
    assert main([*encode, "--out", str(store), "--workers", "0"]) == 2
    _one_error_line(capsys, cause)

    small_fs.read_only(False)
    small_fs.resize("64m")
    assert main([*encode, "--out", str(store), "--workers", "0"]) == 0
    snapshot(str(store)).assert_equal(snapshot(str(reference)))

    if fault == "read_only":
        small_fs.read_only()
    else:
        # fill the disk to the last block: the clustering cannot be written
        ballast = small_fs.root / "ballast"
        with ballast.open("wb") as handle:
            try:
                while True:
                    handle.write(np.zeros(1 << 16, np.uint8).tobytes())
            except OSError:
                pass
    assert main(cluster) == 2
    _one_error_line(capsys, cause)
    small_fs.read_only(False)
    if fault == "full":
        (small_fs.root / "ballast").unlink()
    assert main(cluster) == 0
    assert load_clustering(str(small_fs.root / "clusters" / "default")).k == 2

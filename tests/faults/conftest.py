"""A small file system of its own for the fault tests: full and read-only outputs for real.

Mounting needs root (CAP_SYS_ADMIN); elsewhere the tests that need it are skipped with
the reason, as the fault suite's specification allows.
"""

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class SmallFileSystem:
    """A tmpfs mounted at `root`, resizable and switchable to read-only."""

    root: Path

    def remount(self, options: str) -> None:
        subprocess.run(
            ["mount", "-o", f"remount,{options}", str(self.root)], check=True, capture_output=True
        )

    def resize(self, size: str) -> None:
        self.remount(f"size={size}")

    def read_only(self, on: bool = True) -> None:
        self.remount("ro" if on else "rw")


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[SmallFileSystem]:
    root = tmp_path / "fs"
    root.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(root)],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"cannot mount a small file system here (needs root): {error}")
    try:
        yield SmallFileSystem(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False, capture_output=True)

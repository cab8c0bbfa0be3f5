"""Run a command and measure it: wall time, CPU time and peak memory of its whole process tree.

Shared by the benchmarks. Memory is sampled with psutil every `interval_s`: the peak of
the summed RSS of the process and all its descendants (Dask workers, ffmpeg children),
and the peak RSS of the largest single process. CPU time is the user + system time of
every descendant reaped during the run (`RUSAGE_CHILDREN`).
"""

import os
import resource
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

MIB = 1 << 20


@dataclass(frozen=True)
class Measurement:
    """What one command cost.

    Attributes:
        wall_s: elapsed seconds.
        cpu_s: user + system CPU seconds of the command and its descendants.
        peak_tree_rss: largest sampled sum of RSS over the process tree, in bytes.
        peak_process_rss: largest sampled RSS of a single process of the tree, in bytes.
        returncode: the command's exit status.
    """

    wall_s: float
    cpu_s: float
    peak_tree_rss: int
    peak_process_rss: int
    returncode: int


def _tree_rss(root: psutil.Process) -> tuple[int, int]:
    """(sum, max) of RSS over `root` and its descendants; vanished processes count 0."""
    total = largest = 0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    for process in processes:
        try:
            rss = process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
        total += rss
        largest = max(largest, rss)
    return total, largest


def run_measured(
    command: Sequence[str],
    *,
    cwd: str | Path | None = None,
    env: dict[str, str] | None = None,
    stdin_data: bytes | None = None,
    interval_s: float = 0.05,
) -> Measurement:
    """Run `command` to completion and measure it.

    Args:
        command: program and arguments.
        cwd: working directory.
        env: environment (None: inherit).
        stdin_data: bytes fed to the command's standard input.
        interval_s: memory sampling period.

    Returns:
        The measurement; stdout and stderr are discarded unless the command fails.

    Raises:
        RuntimeError: the command exits with a non-zero status (its output is included).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        list(command),
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    if stdin_data is not None:
        process.stdin.write(stdin_data)
        process.stdin.close()
    watched = psutil.Process(process.pid)
    peak_tree = peak_process = 0
    output = bytearray()
    os.set_blocking(process.stdout.fileno(), False)
    while process.poll() is None:
        total, largest = _tree_rss(watched)
        peak_tree, peak_process = max(peak_tree, total), max(peak_process, largest)
        output += process.stdout.read() or b""
        time.sleep(interval_s)
    wall_s = time.perf_counter() - started
    output += process.stdout.read() or b""
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if process.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited with {process.returncode}:\n"
            + output.decode(errors="replace")[-4000:]
        )
    return Measurement(wall_s, cpu_s, peak_tree, peak_process, process.returncode)

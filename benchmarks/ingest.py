"""Ingest throughput side by side with ffmpeg on the same files and cores, and memory on long files.

    python -m benchmarks.ingest                      # one worker per core, 3 repeats
    python -m benchmarks.ingest --workers 2 --repeats 3 --long-hours 0.25 1 2 --write-results

Throughput: `sonotype ingest` (decode, channel mix, soxr resampling to 24 kHz, 10 s
segments, quality checks, FLAC encoding, WebDataset shards, catalogs) against ffmpeg
converting the same files to 24 kHz mono FLAC, one ffmpeg process per file, N at a time,
on the same N cores, on two synthetic corpora (`sonotype example`): the default one
(120 s files) and one of 10 min files. Both tools are timed end to end as a user runs
them (process and cluster start included); the best of `--repeats` alternating runs is
kept, since the machine may be shared. Memory: `sonotype ingest` on single noise files
of growing length, read as one task (`job.max_task_s` raised) so that a worker streams
the whole file.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.measure import MIB, Measurement, run_measured
from sonotype.config.example import ExampleConfig
from sonotype.config.load import load_config
from sonotype.example import write_example

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "work" / "ingest"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
FFMPEG = "/usr/bin/ffmpeg"
SECTION = "## Ingest"


_TEN_MINUTES = ["file_s=600", "days_per_year=1", "sessions=['05:45', '14:30']"]
CORPORA = {
    "120 s files": ("example-120-s-files", [], 1),
    "120 s files x8": ("example-120-s-files", [], 8),
    "10 min files": ("example-10-min-files", _TEN_MINUTES, 1),
    "10 min files x16": ("example-10-min-files", _TEN_MINUTES, 16),
}
"""Corpora to measure on: the folder under benchmarks/work/ingest, overrides of the
default example config, and how many copies of its files (hard links under other
years). The copied corpora (13 and 32 hours) stand for an archive, where start-up
costs weigh as little as they do on years of recordings; the others show them."""


@dataclass(frozen=True)
class Throughput:
    """One tool on a corpus."""

    name: str
    measurement: Measurement
    audio_s: float
    cores: int

    @property
    def per_core(self) -> float:
        """Seconds of audio per wall second per core."""
        return self.audio_s / self.measurement.wall_s / self.cores

    @property
    def per_cpu_second(self) -> float:
        """Seconds of audio per CPU second (less sensitive to other load on the machine)."""
        return self.audio_s / self.measurement.cpu_s


def _sonotype(inputs: Path, out: Path, workers: int, *overrides: str) -> list[str]:
    sets = [item for override in overrides for item in ("--set", override)]
    return [
        sys.executable, "-m", "sonotype", "-q", "ingest", str(inputs),
        "--out", str(out), "--workers", str(workers), *sets,
    ]  # fmt: skip


def _ffmpeg_batch(out: Path, workers: int) -> list[str]:
    """xargs runs one ffmpeg per file (names on stdin, NUL-separated), `workers` at a time."""
    script = (
        f'exec {FFMPEG} -nostdin -v error -y -threads 1 -i "$1" '
        '-ac 1 -ar 24000 -c:a flac "$0/$(basename "$1").flac"'
    )
    return ["xargs", "-0", "-P", str(workers), "-n", "1", "sh", "-c", script, str(out)]


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@dataclass(frozen=True)
class Comparison:
    """sonotype and ffmpeg on one corpus."""

    corpus: str
    n_files: int
    rerun: Measurement
    ours: Throughput
    theirs: Throughput


def _replicate(corpus: Path, relatives: list[str], copies: int) -> tuple[Path, list[Path]]:
    """Hard links of a corpus's audio files, `copies` times, each under years shifted by 10."""
    target = corpus.with_name(f"{corpus.name}-x{copies}")
    paths = []
    for copy in range(copies):
        for relative in relatives:
            site, year, name = relative.split("/")
            shifted = str(int(year) + 10 * copy)
            path = target / site / shifted / name.replace(year, shifted, 1)
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                os.link(corpus / relative, path)
            paths.append(path)
    return target, paths


def compare(
    name: str, folder: str, overrides: list[str], copies: int, workers: int, repeats: int
) -> Comparison:
    """Best-of-`repeats` throughput of sonotype and ffmpeg on one example corpus."""
    generated = WORK / folder
    config = load_config(ExampleConfig, None, overrides)
    summary = write_example(config, str(generated), workers=workers)
    if copies == 1:
        corpus, files = generated, [generated / relative for relative in summary.audio_files]
    else:
        corpus, files = _replicate(generated, summary.audio_files, copies)
    names = b"\0".join(str(f).encode() for f in files)
    env = {**os.environ, "SONOTYPE_PROGRESS": "0"}
    ours: list[Measurement] = []
    theirs: list[Measurement] = []
    for _ in range(repeats):
        out = _fresh(WORK / "out-sonotype")
        shutil.rmtree(out)
        ours.append(run_measured(_sonotype(corpus, out, workers), cwd=ROOT, env=env))
        flac = _fresh(WORK / "out-ffmpeg")
        theirs.append(run_measured(_ffmpeg_batch(flac, workers), stdin_data=names))
    best_ours = min(ours, key=lambda m: m.wall_s)
    best_theirs = min(theirs, key=lambda m: m.wall_s)
    # The same command again on the finished output: every recording is skipped.
    rerun = run_measured(_sonotype(corpus, WORK / "out-sonotype", workers), cwd=ROOT, env=env)
    return Comparison(
        name,
        len(files),
        rerun,
        Throughput("sonotype ingest", best_ours, summary.audio_s * copies, workers),
        Throughput("ffmpeg → 24 kHz mono FLAC", best_theirs, summary.audio_s * copies, workers),
    )


@dataclass(frozen=True)
class FormatCost:
    """CPU seconds per second of audio of one source format, start-up excluded."""

    source: str
    audio_s: float
    ours_cpu_s: float
    ffmpeg_cpu_s: float


def per_format(folder: str = "example-10-min-files") -> list[FormatCost]:
    """`process_task` in this process against ffmpeg, per site (one source format each).

    This isolates the per-file work from start-up: Python and Dask for sonotype, process
    start for ffmpeg (about 40 ms per file, still included for ffmpeg).
    """
    from ingest.discover import discover
    from ingest.process import process_task
    from ingest.scan import scan_file
    from sonotype.config.ingest import IngestConfig

    config = IngestConfig()
    corpus = WORK / folder
    found = [f for f in discover([str(corpus)], config.discover) if f.ignore_reason is None]
    costs = []
    for site in sorted({f.relative.split("/")[0] for f in found}):
        files = [f for f in found if f.relative.startswith(site + "/")]
        tasks = [t for f in files for t in scan_file(f, config, {}, {}, redo=False).tasks]
        out = _fresh(WORK / "out-per-format")
        process_task(tasks[0], config, str(WORK / "out-warm-up"))  # imports, caches
        started = time.process_time()
        for task in tasks:
            process_task(task, config, str(out))
        ours = time.process_time() - started
        flac = _fresh(WORK / "out-ffmpeg")
        names = b"\0".join(f.url.encode() for f in files)
        theirs = run_measured(_ffmpeg_batch(flac, 1), stdin_data=names).cpu_s
        info = tasks[0].info
        source = f"{info.sample_rate / 1000:g} kHz {info.channels} ch {info.format} {info.subtype}"
        costs.append(FormatCost(source, sum(t.info.duration_s for t in tasks), ours, theirs))
    return costs


def _noise_file(hours: float) -> Path:
    """A 48 kHz mono 16-bit WAV of noise lasting `hours` (made once, by ffmpeg)."""
    path = WORK / "long" / f"SITE/{hours:g}h/20240101_000000.wav"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        source = f"anoisesrc=duration={hours * 3600:g}:sample_rate=48000:amplitude=0.1:seed=1"
        subprocess.run(
            [FFMPEG, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source,
             "-ac", "1", "-c:a", "pcm_s16le", str(path)],
            check=True,
        )  # fmt: skip
    return path


def long_files(hours: list[float]) -> list[tuple[float, Measurement]]:
    """Peak memory of one worker streaming single files of each length as one task."""
    env = {**os.environ, "SONOTYPE_PROGRESS": "0"}
    results = []
    for length in hours:
        folder = _noise_file(length).parent
        out = WORK / "out-long"
        shutil.rmtree(out, ignore_errors=True)
        command = _sonotype(folder, out, 1, "job.max_task_s=1000000")
        results.append((length, run_measured(command, cwd=ROOT, env=env)))
        shutil.rmtree(out)
    return results


def import_floor() -> Measurement:
    """Memory of a process that only imported what an ingest worker imports."""
    code = "import ingest.process, time; time.sleep(1.0)"
    return run_measured([sys.executable, "-c", code], cwd=ROOT)


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def report(
    comparisons: list[Comparison],
    formats: list[FormatCost],
    long: list[tuple[float, Measurement]],
    floor: Measurement,
    command: str,
) -> str:
    """The results as the Markdown section of RESULTS.md."""
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    cores = comparisons[0].ours.cores
    lines = [
        SECTION,
        "",
        f"Machine: {os.cpu_count()} cores ({_cpu_model()}), {memory_gib:.0f} GiB, no GPU; "
        "shared with other work while measured, so wall times are the best of the repeats "
        "and CPU-seconds are shown too.",
        "",
        f"Command: `{command}`",
        "",
        "Corpora: the synthetic example deployment (`sonotype example`: 48 kHz mono WAV, "
        "44.1 kHz stereo WAV, 44.1 kHz mono FLAC in equal parts). ffmpeg: one `ffmpeg "
        f"-threads 1 -ac 1 -ar 24000 -c:a flac` per file, {cores} at a time. sonotype: "
        f"`sonotype ingest --workers {cores}` with the default config (Dask local cluster "
        "start, scan, soxr HQ resampling, QC, 10 s segments, FLAC, shards and catalogs all "
        "included).",
        "",
        "| corpus | tool | wall s | × realtime per core | × realtime per CPU-s | CPU s "
        "| peak RSS, tree | peak RSS, one process |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for comparison in comparisons:
        hours = comparison.ours.audio_s / 3600
        label = f"{comparison.corpus} ({comparison.n_files} files, {hours:.2f} h)"
        for tool in (comparison.ours, comparison.theirs):
            m = tool.measurement
            lines.append(
                f"| {label} | {tool.name} | {m.wall_s:.2f} | {tool.per_core:.0f} "
                f"| {tool.per_cpu_second:.0f} | {m.cpu_s:.2f} | {m.peak_tree_rss / MIB:.0f} MiB "
                f"| {m.peak_process_rss / MIB:.0f} MiB |"
            )
    lines.append("")
    for comparison in comparisons:
        ours, theirs = comparison.ours, comparison.theirs
        wall_ratio = ours.per_core / theirs.per_core
        cpu_ratio = ours.per_cpu_second / theirs.per_cpu_second
        rerun_s = comparison.rerun.wall_s
        lines.append(
            f"- {comparison.corpus}: sonotype / ffmpeg **{wall_ratio:.2f}** per core (wall), "
            f"{cpu_ratio:.2f} per CPU-second; the same ingest run again with nothing new took "
            f"{rerun_s:.2f} s ({rerun_s / ours.measurement.wall_s:.0%} of the first run)."
        )
    lines += [
        "",
        "Per source format, start-up excluded (`process_task` in one process against one "
        "ffmpeg per file, CPU time; 10 min files):",
        "",
        "| source | × realtime per CPU-s, sonotype | × realtime per CPU-s, ffmpeg | ratio |",
        "|---|---|---|---|",
    ]
    for cost in formats:
        ours, theirs = cost.audio_s / cost.ours_cpu_s, cost.audio_s / cost.ffmpeg_cpu_s
        lines.append(f"| {cost.source} | {ours:.0f} | {theirs:.0f} | {ours / theirs:.2f} |")
    lines += [
        "",
        "Memory on long files (48 kHz mono noise, one worker streaming the whole file as one "
        "task, 4 s blocks):",
        "",
        "| file | wall s | × realtime | peak RSS, one process | peak RSS, tree |",
        "|---|---|---|---|---|",
    ]
    for hours, m in long:
        lines.append(
            f"| {hours:g} h | {m.wall_s:.1f} | {hours * 3600 / m.wall_s:.0f} | "
            f"{m.peak_process_rss / MIB:.0f} MiB | {m.peak_tree_rss / MIB:.0f} MiB |"
        )
    lines += [
        "",
        f"A process that has only imported what a worker imports holds "
        f"{floor.peak_process_rss / MIB:.0f} MiB.",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str, path: Path = RESULTS) -> None:
    """Replace (or add) the `## Ingest` section of RESULTS.md, leaving other sections alone."""
    existing = path.read_text() if path.exists() else "# Benchmark results\n\n"
    start = existing.find(SECTION + "\n")
    if start < 0:
        updated = existing.rstrip("\n") + "\n\n" + text
    else:
        following = existing.find("\n## ", start + len(SECTION))
        end = len(existing) if following < 0 else following + 1
        updated = existing[:start] + text + ("\n" + existing[end:] if following >= 0 else "")
    path.write_text(updated.rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest", description=__doc__)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--long-hours", type=float, nargs="*", default=[0.25, 1.0, 2.0])
    parser.add_argument("--write-results", action="store_true", help="update RESULTS.md")
    args = parser.parse_args(argv)
    comparisons = [
        compare(name, folder, overrides, copies, args.workers, args.repeats)
        for name, (folder, overrides, copies) in CORPORA.items()
    ]
    formats = per_format()
    long = long_files(args.long_hours)
    floor = import_floor()
    command = "python -m benchmarks.ingest " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report(comparisons, formats, long, floor, command.strip())
    print(text)
    if args.write_results:
        write_section(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

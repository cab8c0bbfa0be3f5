"""Shards reader benchmark: sonotype's reader against a reference-style loader, side by side.

    python -m benchmarks.shards_reader             # full run (~10 min on 2 cores)
    python -m benchmarks.shards_reader --quick     # fewer crops, for a smoke test

Recordings: two sets of the same total length, 48 kHz mono 16-bit WAV (AudioMoth
style), synthesised block by block: six 10-minute files and one 60-minute file.
Shards: made from each set by `ingest.run_ingest` (24 kHz mono FLAC, 10 s segments);
while ingest is not available, by a fallback in this harness that does the same steps
with `ShardWriter` (the table says which was used).

Loaders, each in its own process so that memory is measured alone, with 1 and 2
DataLoader workers:
- sonotype: `ShardLoader` in training mode, 3 s crops, 4 crops per segment, batches of 16;
- reference: what many audio training scripts do per item: read the whole original
  file with soundfile, resample the whole file to 24 kHz (soxr, which is faster and
  leaner than torchaudio's resample, so the baseline is a generous one), keep one
  random 3 s crop; batches of 4 (its cost per crop does not depend on the batch size).

Figures: crops per second and seconds of audio per second (wall clock, from the first
request, worker start-up included); times real time per CPU core (audio seconds over
the CPU seconds the loader's processes used: stable on a busy machine); peak memory of
the loader's process tree (main process and workers), as summed USS (private pages, a
lower bound) and summed RSS (shared library pages counted in every process, an upper
bound). Each case runs in a fresh process, several times; the best run by crops/s is
kept.

The harness stays in one file (a little over 400 lines) so that data, measurement and
driver read top to bottom with the figures they produce.
"""

import argparse
import contextlib
import datetime as dt
import itertools
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import psutil
import soundfile as sf

WORK = Path(__file__).resolve().parent / "work" / "shards_reader"
SOURCE_RATE = 48000
TARGET_RATE = 24000
CROP_S = 3.0
SEGMENT_S = 10.0
SETS = {"10min": (6, 10), "60min": (1, 60)}  # files, minutes each: one hour per set

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Case:
    loader: str  # "sonotype" or "reference"
    recordings: str  # a key of SETS
    workers: int
    n_crops: int


@dataclass
class Result:
    case: Case
    crops_per_s: float
    audio_s_per_s: float
    cpu_s: float
    realtime_per_cpu_core: float
    peak_rss_mb: float
    peak_uss_mb: float
    timed_crops: int
    timed_s: float


# --- data ----------------------------------------------------------------------------


def write_recording(path: Path, minutes: int, seed: int) -> None:
    """A synthetic field recording written block by block: noise floor plus tonal calls."""
    rng = np.random.default_rng(seed)
    block = 10 * SOURCE_RATE
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(block) / SOURCE_RATE
    with sf.SoundFile(path, "w", SOURCE_RATE, 1, format="WAV", subtype="PCM_16") as sound:
        for _ in range(minutes * 6):
            samples = 0.02 * rng.standard_normal(block)
            for _ in range(rng.integers(1, 6)):
                start, length = rng.uniform(0, 9), rng.uniform(0.1, 1.0)
                f0, f1 = rng.uniform(800, 6000, size=2)
                inside = (t >= start) & (t < start + length)
                phase = 2 * np.pi * (f0 + (f1 - f0) * (t - start) / (2 * length)) * (t - start)
                samples += inside * rng.uniform(0.05, 0.4) * np.sin(phase)
            sound.write(np.clip(samples, -1, 1).astype(np.float32))


def prepare_recordings(root: Path) -> dict[str, list[Path]]:
    """Both recording sets (written once, reused on later runs)."""
    sets = {}
    start = dt.datetime(2024, 3, 15, 5, 0)
    for name, (n_files, minutes) in SETS.items():
        files = []
        for i in range(n_files):
            when = start + dt.timedelta(minutes=minutes * i)
            path = root / name / f"BENCH{name}" / "2024" / f"{when:%Y%m%d_%H%M%S}.WAV"
            if not path.exists():
                logger.info("writing %s (%d min)", path, minutes)
                write_recording(path, minutes, seed=1000 * minutes + i)
            files.append(path)
        sets[name] = files
    return sets


def prepare_shards(recordings: dict[str, list[Path]], root: Path) -> str:
    """Shards of each set under `root/<set>/`; returns how they were made."""
    try:
        from ingest import run_ingest
        from sonotype.config.ingest import IngestConfig
    except ImportError:
        run_ingest = None
    how = "ingest.run_ingest" if run_ingest else "fallback: harness ShardWriter (ingest pending)"
    for name, files in recordings.items():
        out = root / name
        marker = out / "made_by.txt"
        if marker.exists() and marker.read_text() == how:
            continue
        # Shards made the other way (or half made) are made again, so the table never
        # credits ingest with fallback shards or the reverse.
        shutil.rmtree(out, ignore_errors=True)
        logger.info("making shards of %s with %s", name, how)
        if run_ingest is not None:
            run_ingest([str(files[0].parents[2])], str(out), IngestConfig(), workers=2)
        else:
            _fallback_shards(files, str(out))
        marker.write_text(how)
    return how


def _fallback_shards(files: list[Path], out: str) -> None:
    """Ingest's steps in brief: blockwise decode, streaming resample, 10 s segments, FLAC."""
    import pyarrow as pa
    import soxr

    from shards.catalog import write_segments
    from shards.writer import ShardWriter
    from sonotype import audio
    from sonotype.contracts import SEGMENTS_SCHEMA, OutputLayout, segment_key
    from sonotype.contracts import SegmentColumn as Col

    rows = []
    segment = int(SEGMENT_S * TARGET_RATE)
    for file in files:
        recording = f"{file.parent.parent.name}-{file.stem}"
        start = dt.datetime.strptime(file.stem, "%Y%m%d_%H%M%S").replace(tzinfo=dt.UTC)
        shard = f"{recording}.tar"
        stream = soxr.ResampleStream(SOURCE_RATE, TARGET_RATE, 1, dtype="float32")
        pending, index = np.zeros(0, np.float32), 0
        with (
            ShardWriter(f"{OutputLayout(out).shards_dir}/{shard}") as writer,
            audio.open_audio(file) as sound,
        ):
            blocks = audio.iter_blocks(sound, SOURCE_RATE * 10)
            for block in [*blocks, None]:
                last = block is None
                mono = np.zeros(0, np.float32) if last else block[:, 0]
                chunk = stream.resample_chunk(mono, last)
                pending = np.concatenate([pending, chunk])
                while len(pending) >= segment:
                    samples, pending = pending[:segment], pending[segment:]
                    key = segment_key(recording, 0, index)
                    row = {name: None for name in SEGMENTS_SCHEMA.names}
                    row.update(
                        {
                            Col.KEY: key,
                            Col.RECORDING_ID: recording,
                            Col.SITE: file.parent.parent.name,
                            Col.STREAM: 0,
                            Col.CHANNEL: -1,
                            Col.START_TIME: start + dt.timedelta(seconds=index * SEGMENT_S),
                            Col.OFFSET_S: index * SEGMENT_S,
                            Col.DURATION_S: SEGMENT_S,
                            Col.SAMPLE_RATE: TARGET_RATE,
                            Col.SHARD: shard,
                            Col.PEAK: float(np.max(np.abs(samples))),
                            Col.IS_SILENT: False,
                            Col.HAS_NONFINITE: False,
                            Col.KEPT: True,
                        }
                    )
                    rows.append({str(k): v for k, v in row.items()})
                    writer.write(key, audio.encode_flac(samples, TARGET_RATE), rows[-1])
                    index += 1
    write_segments(pa.Table.from_pylist(rows, schema=SEGMENTS_SCHEMA), out)


# --- measurement (in a child process per case) -----------------------------------------


class PeakMemory:
    """Polls the memory of this process and its children, keeping the peaks of the sums.

    RSS (every 50 ms) counts the pages forked workers share (torch's libraries) once per
    process, so its sum is an upper bound; USS (every 250 ms: reading smaps costs a few
    ms) counts only pages private to each process, a lower bound that other programs
    on the machine cannot change. The thread's own CPU time is kept, to be subtracted.
    """

    def __init__(self, interval_s: float = 0.05, uss_every: int = 5) -> None:
        self.interval_s, self.uss_every = interval_s, uss_every
        self.peak_rss = self.peak_uss = 0
        self.cpu_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        me = psutil.Process()
        for tick in itertools.count():
            if self._stop.is_set():
                break
            rss = uss = 0
            for process in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    if tick % self.uss_every == 0:
                        full = process.memory_full_info()
                        rss, uss = rss + full.rss, uss + full.uss
                    else:
                        rss += process.memory_info().rss
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_uss = max(self.peak_uss, uss)
            time.sleep(self.interval_s)
        self.cpu_s = time.thread_time()

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (user + system)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _sonotype_batches(case: Case):
    from shards.reader import ShardLoader
    from sonotype.config.reader import ReaderConfig

    config = ReaderConfig(
        crop_s=CROP_S, crops_per_segment=4, batch_size=16, num_workers=case.workers
    )
    loader = ShardLoader.from_catalog(str(WORK / "shards" / case.recordings), config)
    while True:
        for batch in loader:
            yield batch.wav


def _reference_batches(case: Case):
    import torch

    files = sorted((WORK / "recordings" / case.recordings).rglob("*.WAV"))
    loader = torch.utils.data.DataLoader(
        _ReferenceDataset(files), batch_size=4, num_workers=case.workers
    )
    yield from loader


class _ReferenceDataset:
    """The reference-style loader: whole file read, whole file resampled, one crop kept."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files

    def __len__(self) -> int:
        return 10**9

    def __getitem__(self, index: int):
        import soxr
        import torch

        rng = np.random.default_rng(index)
        path = self.files[rng.integers(len(self.files))]
        samples, rate = sf.read(path, dtype="float32", always_2d=True)
        resampled = soxr.resample(samples.mean(axis=1), rate, TARGET_RATE)
        crop = int(CROP_S * TARGET_RATE)
        start = rng.integers(0, len(resampled) - crop + 1)
        return torch.from_numpy(np.ascontiguousarray(resampled[start : start + crop]))


def measure(case: Case) -> Result:
    """Time `case.n_crops` crops from the first request, worker start-up included.

    Wall-clock figures count everything (prefetching would flatter the slow loader if
    the first batch were left out). CPU time covers the loader's processes over the
    same span, workers included once they have ended, minus the memory poller's: it
    gives the speed per core whatever else the machine is doing.
    """
    import torch  # both loaders use it: imported before the clocks start

    del torch
    with PeakMemory() as memory:
        make = _sonotype_batches if case.loader == "sonotype" else _reference_batches
        cpu_began, began, crops = cpu_seconds(), time.perf_counter(), 0
        batches = make(case)
        while crops < case.n_crops:
            wav = next(batches)
            crops += wav.shape[0]
        elapsed = time.perf_counter() - began
        batches.close()  # joins the DataLoader workers, so their CPU time is counted
        cpu = cpu_seconds() - cpu_began
    cpu -= memory.cpu_s
    audio_s = crops * wav.shape[1] / TARGET_RATE
    return Result(
        case=case,
        crops_per_s=crops / elapsed,
        audio_s_per_s=audio_s / elapsed,
        cpu_s=cpu,
        realtime_per_cpu_core=audio_s / cpu,
        peak_rss_mb=memory.peak_rss / 2**20,
        peak_uss_mb=memory.peak_uss / 2**20,
        timed_crops=crops,
        timed_s=elapsed,
    )


# --- driver ------------------------------------------------------------------------------


def run_case_in_child(case: Case) -> Result:
    command = [sys.executable, "-m", "benchmarks.shards_reader", "--case", json.dumps(asdict(case))]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    data = json.loads(done.stdout.strip().splitlines()[-1])
    data["case"] = Case(**data["case"])
    return Result(**data)


def table(results: list[Result], how: str, repeats: dict[str, int]) -> str:
    """The results as a Markdown table, with the sonotype / reference ratios."""
    lines = [
        "| loader | recordings | workers | crops/s | audio s/s | × realtime per CPU core "
        "| peak memory MB: USS – RSS | timed crops (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.case.loader} | {r.case.recordings} | {r.case.workers} | {r.crops_per_s:.1f} "
            f"| {r.audio_s_per_s:.0f} | {r.realtime_per_cpu_core:.0f} "
            f"| {r.peak_uss_mb:.0f} – {r.peak_rss_mb:.0f} | {r.timed_crops} ({r.timed_s:.1f}) |"
        )
    lines += [
        "",
        f"shards made by: {how}; best of {repeats} runs by crops/s, peak memory the "
        "largest over the runs",
    ]
    for recordings in SETS:
        for workers in (1, 2):
            pair = {
                r.case.loader: r
                for r in results
                if r.case.recordings == recordings and r.case.workers == workers
            }
            if len(pair) == 2:
                wall = pair["sonotype"].crops_per_s / pair["reference"].crops_per_s
                per_cpu = (
                    pair["sonotype"].realtime_per_cpu_core / pair["reference"].realtime_per_cpu_core
                )
                lines.append(
                    f"{recordings}, {workers} workers: sonotype / reference {wall:.0f}x "
                    f"(crops/s), {per_cpu:.0f}x (per CPU core)"
                )
    return "\n".join(lines)


def best_of(case: Case, repeats: int) -> Result:
    """The run with the most crops/s, carrying the largest memory peaks of all runs."""
    runs = [run_case_in_child(case) for _ in range(repeats)]
    best = max(runs, key=lambda r: r.crops_per_s)
    best.peak_rss_mb = max(r.peak_rss_mb for r in runs)
    best.peak_uss_mb = max(r.peak_uss_mb for r in runs)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer crops (a smoke test)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        result = measure(Case(**json.loads(args.case)))
        data = asdict(result)
        sys.stdout.write(json.dumps(data) + "\n")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    recordings = prepare_recordings(WORK / "recordings")
    how = prepare_shards(recordings, WORK / "shards")
    sonotype_crops = 800 if args.quick else 6000
    reference_crops = {"10min": 8 if args.quick else 40, "60min": 4 if args.quick else 12}
    repeats = {"sonotype": 1 if args.quick else 3, "reference": 1 if args.quick else 2}
    results = []
    for name in SETS:
        for workers in (1, 2):
            for loader, n in (("sonotype", sonotype_crops), ("reference", reference_crops[name])):
                case = Case(loader, name, workers, n)
                logger.info("measuring %s", case)
                results.append(best_of(case, repeats[loader]))
                logger.info("%s", results[-1])
    text = table(results, how, repeats)
    print(text)
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    (WORK / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=1))
    (WORK / "results.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("SONOTYPE_PROGRESS", "0")
    sys.exit(main())

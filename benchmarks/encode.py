"""Encode throughput on CPU, and the share of time spent outside the model.

    python -m benchmarks.encode                  # tiny and 40 tokens/s models, 3 cases each
    python -m benchmarks.encode --quick          # a smoke run on a few minutes of audio

Corpus: the synthetic example deployment with 10 min files (3 sites, 2 years, 2
sessions: 2 hours), ingested with the default ingest config (24 kHz, 10 s segments, one
shard per file), made once under benchmarks/work/encode/. Models: the `tiny` preset and
the published 40 tokens/s size (`wavtokenizer-40`, 512-d), random weights with the
codebook initialised from encoder outputs of noise (so the nearest-code search is as
costly as a trained model's), saved as sonotype checkpoints.

Each case runs `training.encode_features` into a new store: in this process with one
torch thread, reading in the same thread (one core) or in a second one (`read_ahead`,
as the single-device path runs by default), or on a local Dask cluster of
single-threaded workers:

- frames/s: frames appended per second from the first shard started to the last
  appended (process and cluster start excluded; model loading on the workers included);
- model: seconds inside `Tokenizer.encode_with_embeddings` (device transfers included),
  over the encoding processes' time (`workers × encode seconds`);
- read+decode: the rest of the per-shard work (tar reading, FLAC decoding, gain,
  batching, float16 conversion), same denominator;
- append: the client's `FeatureStore.append` seconds (Zarr and Parquet writes) over the
  encode seconds; in-process it is part of the same timeline, on Dask it overlaps the
  workers;
- between shards: the encoding processes' time in no shard: in-process, the appends and
  the loop; on Dask, the workers loading the model, waiting for a task or at the end for
  the last shard of another worker, and sending results;
- outside: `1 - model share`: everything that is not the model;
- model CPU ms/frame: CPU time of the model calls' thread per frame (the model's whole
  CPU cost with one torch thread): the same in every case, whatever the wall clock did;
- CPU while in model: that CPU time over the model calls' wall time; below 100% the
  processes waited for a core (other jobs on a shared machine, or more workers than
  free cores).

The 40 tokens/s model encodes the recordings of 2024 only (6 shards, an hour), to keep
the run short; the tiny model encodes everything (12 shards).
"""

import argparse
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "work" / "encode"
_CORPUS_OVERRIDES = ["file_s=600", "days_per_year=1", "sessions=['05:45', '14:30']"]
_QUICK_OVERRIDES = ["file_s=120", "days_per_year=1", "sessions=['05:45']", "years=[2024]"]
_SUBSET = {"end_time": "2025-01-01T00:00:00Z"}


@dataclass(frozen=True)
class Case:
    """One measurement: a model, where it runs, and which segments."""

    model: str
    workers: int
    """0: in this process (one torch thread); N: a local Dask cluster of N workers."""
    subset: bool
    read_ahead: int = 0
    """In this process: batches decoded ahead by a second thread (0: one thread does all)."""


@dataclass(frozen=True)
class Figures:
    """What one case measured."""

    case: Case
    audio_s: float
    n_frames: int
    wall_s: float
    encode_s: float
    model_share: float
    read_share: float
    append_share: float
    between_share: float
    model_cpu_s: float

    @property
    def frames_per_s(self) -> float:
        return self.n_frames / self.encode_s

    @property
    def model_cpu_ms_per_frame(self) -> float:
        return 1000 * self.model_cpu_s / self.n_frames

    @property
    def cpu_got(self) -> float:
        """Share of the encoding processes' wall time their model calls had a CPU."""
        return self.model_cpu_s / (self.model_share * self.budget_s)

    @property
    def budget_s(self) -> float:
        return max(self.case.workers, 1) * self.encode_s

    @property
    def outside_share(self) -> float:
        return 1.0 - self.model_share


def prepare_corpus(quick: bool) -> str:
    """The ingested example corpus (made once); returns its output root."""
    from ingest import run_ingest
    from sonotype.config.example import ExampleConfig
    from sonotype.config.ingest import IngestConfig
    from sonotype.config.load import load_config
    from sonotype.contracts import OutputLayout
    from sonotype.example import write_example

    name = "quick" if quick else "10-min-files"
    recordings, out = WORK / name / "recordings", WORK / name / "out"
    if not Path(OutputLayout(str(out)).segments).exists():
        shutil.rmtree(WORK / name, ignore_errors=True)
        overrides = _QUICK_OVERRIDES if quick else _CORPUS_OVERRIDES
        write_example(load_config(ExampleConfig, None, overrides), str(recordings), workers=2)
        run_ingest([str(recordings)], str(out), IngestConfig(), workers=2)
    return str(out)


def prepare_model(name: str) -> Path:
    """A checkpoint of preset `name`: seeded random weights, codebook from encoder outputs."""
    from sonotype.config.load import CONFIGS_DIR, load_config
    from sonotype.config.model import ModelConfig
    from training import build_generator, save_tokenizer

    path = WORK / f"{name}.pt"
    if path.exists():
        return path
    config = load_config(ModelConfig, CONFIGS_DIR / "model" / f"{name}.yaml")
    torch.manual_seed(0)
    generator = build_generator(config).eval()
    size = config.quantizer.codebook_size
    with torch.inference_mode():
        noise = 0.3 * torch.randn(4, size * generator.hop_length // 4 + 1)
        latents = generator.encoder(noise)  # [4, D, >= K / 4]
    vectors = latents.transpose(1, 2).reshape(-1, latents.shape[1])[:size]
    generator.quantizer.initialize(vectors.clone(), torch.ones(size))
    WORK.mkdir(parents=True, exist_ok=True)
    save_tokenizer(path, config, generator)
    return path


def measure(case: Case, out: str) -> Figures:
    """Encode into a fresh store and read the summary's timings."""
    from sonotype.config.encode import EncodeConfig
    from training import encode_features

    store = WORK / "stores" / f"{case.model}-{case.workers}-{case.read_ahead}.zarr"
    shutil.rmtree(store, ignore_errors=True)
    shutil.rmtree(str(store).removesuffix(".zarr") + ".segments.parquet", ignore_errors=True)
    config = EncodeConfig(filters=_SUBSET if case.subset else {}, read_ahead=case.read_ahead)
    started = time.perf_counter()
    summary = encode_features(
        prepare_model(case.model), out, store=str(store), config=config, workers=case.workers
    )
    wall_s = time.perf_counter() - started
    budget = summary.workers * summary.encode_s
    return Figures(
        case,
        summary.audio_s,
        summary.n_frames,
        wall_s,
        summary.encode_s,
        summary.model_s / budget,
        (summary.task_s - summary.model_s) / budget,
        summary.append_s / summary.encode_s,
        1.0 - summary.task_s / budget,
        summary.model_cpu_s,
    )


def table(rows: list[Figures]) -> str:
    lines = [
        "| model | where | audio s | frames | wall s | encode s | frames/s | × real time "
        "| model | read+decode | between shards | append (client) | outside the model "
        "| model CPU ms/frame | CPU while in model |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.case.workers:
            where = f"Dask, {r.case.workers} workers"
        elif r.case.read_ahead:
            where = f"this process, reading {r.case.read_ahead} batches ahead in a thread"
        else:
            where = "this process, 1 thread"
        lines.append(
            f"| {r.case.model} | {where} | {r.audio_s:.0f} | {r.n_frames} | {r.wall_s:.1f} "
            f"| {r.encode_s:.1f} | {r.frames_per_s:.0f} | {r.audio_s / r.encode_s:.0f} "
            f"| {100 * r.model_share:.1f}% | {100 * r.read_share:.1f}% "
            f"| {100 * r.between_share:.1f}% | {100 * r.append_share:.1f}% "
            f"| **{100 * r.outside_share:.1f}%** | {r.model_cpu_ms_per_frame:.3f} "
            f"| {100 * r.cpu_got:.0f}% |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few minutes of audio only")
    parser.add_argument("--workers", type=int, default=2, help="Dask workers of the Dask cases")
    parser.add_argument(
        "--models", nargs="+", default=["tiny", "wavtokenizer-40"], help="model presets"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("SONOTYPE_PROGRESS", "0")
    torch.set_num_threads(1)  # the in-process cases: one core, as one Dask worker has
    out = prepare_corpus(args.quick)
    rows = []
    for model in args.models:
        subset = model != "tiny" and not args.quick
        cases = [
            Case(model, 0, subset),
            Case(model, 0, subset, 2),
            Case(model, args.workers, subset),
        ]
        for case in cases:
            rows.append(measure(case, out))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    print(f"\nload average at the end: {os.getloadavg()}\n")
    print(table(rows))


if __name__ == "__main__":
    main(sys.argv[1:])

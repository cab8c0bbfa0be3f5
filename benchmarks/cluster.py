"""Clustering benchmark: peak RSS at N and 4N frames, streaming vs in-memory k-means.

    python -m benchmarks.cluster                      # N = 250k frames, dim 64, k 16
    python -m benchmarks.cluster --frames 50000       # quicker

The first form writes two synthetic feature stores (Gaussian blobs, float16, through
`analysis.store`) under benchmarks/work/cluster/ and runs each measurement in its own
process so that peak RSS (`ru_maxrss`) belongs to that measurement alone:

- `sonotype cluster` (fit + labels + statistics) on N and on 4N frames: RSS must stay flat;
- `StreamingKMeans.fit` on N frames vs scikit-learn `MiniBatchKMeans.fit` (n_init=3, as
  StreamingKMeans's default; and `KMeans`)
  on the same N frames held in memory: time, frames/s, and inertia over all N frames.

Clustering quality is measured by `benchmarks/quality.py` (`sonotype evaluate` over
several example seeds).
"""

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

WORK = Path(__file__).resolve().parent / "work" / "cluster"
DIM = 64
FRAMES_PER_SEGMENT = 400
APPEND_FRAMES = 50_000


def _write_store(url: str, n_frames: int, k: int, dim: int, seed: int = 0) -> None:
    """A store of `n_frames` frames from k overlapping Gaussian blobs, appended in batches."""
    from analysis.store import StoreIdentity, create_store

    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.0, (k, dim)).astype(np.float32) * 2.0
    store = create_store(
        url,
        StoreIdentity(dim, 40.0, 24000, 4096, "0" * 64, {"name": "benchmark"}),
        overwrite=True,
    )
    start = dt.datetime(2024, 3, 15, tzinfo=dt.UTC)
    written = 0
    while written < n_frames:
        m = min(APPEND_FRAMES, n_frames - written)
        n_segments = -(-m // FRAMES_PER_SEGMENT)
        sizes = np.full(n_segments, FRAMES_PER_SEGMENT)
        sizes[-1] = m - FRAMES_PER_SEGMENT * (n_segments - 1)
        blobs = np.repeat(rng.integers(0, k, n_segments), sizes)
        embeddings = centres[blobs] + rng.normal(0, 1.0, (m, dim)).astype(np.float32)
        first = written // FRAMES_PER_SEGMENT
        times = [start + dt.timedelta(seconds=10 * (first + i)) for i in range(n_segments)]
        segments = {
            "key": [f"s{first + i:08d}" for i in range(n_segments)],
            "recording_id": [f"r{(first + i) // 36:06d}" for i in range(n_segments)],
            "site": ["A" if (first + i) % 2 else "B" for i in range(n_segments)],
            "start_time": pa.array(times, pa.timestamp("ms", tz="UTC")),
            "offset_s": [10.0 * ((first + i) % 36) for i in range(n_segments)],
            "duration_s": [10.0] * n_segments,
            "shard": [f"b{written // APPEND_FRAMES:05d}.tar"] * n_segments,
            "n_frames": pa.array(sizes, pa.int32()),
        }
        tokens = (blobs * 64 + rng.integers(0, 64, m)).astype(np.int16)
        store.append(tokens, embeddings, segments, shards=[segments["shard"][0]])
        written += m


def _config(k: int):
    from sonotype.config.cluster import ClusterConfig

    return ClusterConfig(k=k, normalise="none", passes=2, k_selection=[], timezone="UTC")


def _peak_rss_mib() -> float:
    """Peak RSS of this process (Linux VmHWM).

    Not `ru_maxrss`: Linux keeps that across execve, so a child would report its
    parent's peak (the parent that wrote the stores) instead of its own.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def _all_rows(url: str) -> np.ndarray:
    from analysis.features import FeatureSpec

    view = FeatureSpec(url, "frame", "embeddings", "none").open()
    return view.read(0, view.n_rows)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child(mode: str, url: str, k: int, workers: int) -> dict:
    """One measurement, run in a fresh process; returns figures as a dict.

    `seconds` is wall time, `cpu_seconds` the CPU time of all threads over the same span
    (steadier than wall time on a shared machine).
    """
    from analysis.kmeans import assign

    if mode == "pipeline":
        from analysis import cluster_features

        shutil.rmtree(Path(url).parent / "clusters", ignore_errors=True)
        started, cpu = time.perf_counter(), _cpu_seconds()
        summary = cluster_features(url, name="bench", config=_config(k), workers=workers)
        return {
            "seconds": time.perf_counter() - started,
            "cpu_seconds": _cpu_seconds() - cpu,
            "n_frames": summary.n_rows,
        }
    if mode == "stream":
        from analysis import FeatureSpec, StreamingKMeans

        config = _config(k)
        view = FeatureSpec(url, "frame", "embeddings", "none").open()
        started, cpu = time.perf_counter(), _cpu_seconds()
        model = StreamingKMeans(
            k,
            batch_size=config.batch_size,
            block_rows=config.block_rows,
            passes=config.passes,
            reservoir_size=config.reservoir_size,
            n_init=config.n_init,
            random_state=0,
        ).fit(view)
        seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
        centres = model.cluster_centers_
    else:
        from sklearn.cluster import KMeans, MiniBatchKMeans

        rows = _all_rows(url)
        started, cpu = time.perf_counter(), _cpu_seconds()
        if mode == "minibatch":
            estimator = MiniBatchKMeans(k, batch_size=4096, n_init=3, random_state=0)
        else:
            estimator = KMeans(k, n_init=1, random_state=0)
        centres = estimator.fit(rows).cluster_centers_
        seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    rows = _all_rows(url)
    inertia = float(assign(rows, centres)[1].sum())
    return {"seconds": seconds, "cpu_seconds": cpu, "inertia": inertia, "n_frames": len(rows)}


def _run_child(mode: str, url: str, k: int, workers: int, repeat: int) -> dict:
    """Run one measurement `repeat` times, each in a fresh process.

    The machine is shared, so the least time of the repeats is reported (the run least
    disturbed by other load), and the largest peak RSS.
    """
    command = [sys.executable, "-m", "benchmarks.cluster", "--child", mode, "--store", url]
    command += ["--k", str(k), "--workers", str(workers)]
    env = {**os.environ, "SONOTYPE_PROGRESS": "0"}
    runs = []
    for _ in range(repeat):
        output = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
        runs.append(json.loads(output.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda run: run["seconds"])
    return {
        **best,
        "rss_mib": max(run["rss_mib"] for run in runs),
        "all_seconds": [run["seconds"] for run in runs],
    }


def run_performance(n_frames: int, k: int, workers: int, repeat: int) -> dict:
    """Write the N and 4N stores, measure each mode in its own process; return the figures."""
    results: dict = {"n_frames": n_frames, "k": k, "dim": DIM, "workers": workers}
    stores = {}
    for factor in (1, 4):
        url = str(WORK / f"n{factor}" / "features.zarr")
        if not Path(url).exists() or _committed(url) != factor * n_frames:
            _write_store(url, factor * n_frames, k, DIM)
        stores[factor] = url
    for factor, url in stores.items():
        results[f"pipeline_{factor}n"] = _run_child("pipeline", url, k, workers, repeat)
    for mode in ("stream", "minibatch", "kmeans"):
        results[mode] = _run_child(mode, stores[1], k, workers, repeat)
    # The in-memory baseline at 4N, for contrast with the flat streaming RSS.
    results["minibatch_4n"] = _run_child("minibatch", stores[4], k, workers, 1)
    return results


def _committed(url: str) -> int:
    from analysis.store import open_store

    return open_store(url).n_frames


def _report(results: dict) -> str:
    n = results["n_frames"]
    lines = [
        f"N = {n} frames, dim {results['dim']}, k {results['k']}, workers {results['workers']}; "
        "seconds: least of the repeats",
        "",
        "| run | frames | wall s | CPU s | frames/CPU-s | peak RSS MiB | inertia / in-memory |",
        "|---|---|---|---|---|---|---|",
    ]
    reference = results["minibatch"]["inertia"]
    for key, label in (
        ("pipeline_1n", "sonotype cluster (fit+labels+stats), N"),
        ("pipeline_4n", "sonotype cluster (fit+labels+stats), 4N"),
        ("stream", "StreamingKMeans.fit (2 passes + reservoir), N"),
        ("minibatch", "in-memory MiniBatchKMeans.fit, N"),
        ("kmeans", "in-memory KMeans.fit (Lloyd), N"),
        ("minibatch_4n", "in-memory MiniBatchKMeans.fit, 4N (one run)"),
    ):
        row = results[key]
        ratio = f"{row['inertia'] / reference:.4f}" if key in ("stream", "kmeans") else "-"
        lines.append(
            f"| {label} | {row['n_frames']} | {row['seconds']:.1f} | {row['cpu_seconds']:.1f} | "
            f"{row['n_frames'] / row['cpu_seconds']:,.0f} | {row['rss_mib']:.0f} | {ratio} |"
        )
    rss = results["pipeline_4n"]["rss_mib"] / results["pipeline_1n"]["rss_mib"]
    speed = results["minibatch"]["cpu_seconds"] / results["stream"]["cpu_seconds"]
    lines += [
        "",
        f"peak RSS 4N / N: {rss:.2f}; streaming fit CPU-throughput / in-memory MiniBatchKMeans: "
        f"{speed:.2f}; inertia streaming / in-memory MiniBatchKMeans: "
        f"{results['stream']['inertia'] / reference:.4f}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=250_000, help="N")
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement")
    parser.add_argument("--child", choices=["pipeline", "stream", "minibatch", "kmeans"])
    parser.add_argument("--store")
    args = parser.parse_args(argv)
    if args.child:
        figures = _child(args.child, args.store, args.k, args.workers)
        figures["rss_mib"] = _peak_rss_mib()
        print(json.dumps(figures))
        return 0
    results = run_performance(args.frames, args.k, args.workers, args.repeat)
    print(_report(results))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

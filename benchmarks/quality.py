"""Sonotype quality over several example seeds: `sonotype evaluate` beside the yardstick.

    python -m benchmarks.quality                         # seeds 0 1 2, the demo's recipe
    python -m benchmarks.quality --seeds 0 1 2 3 --demo-set train_steps=900

For every seed: `sonotype demo` on the example written with that seed (year 1 fitted,
year 2 added with `cluster --update`: the clustering `default`), then alternative
clusterings of the same store, each scored with `sonotype evaluate` against the
example's `ground_truth.csv`:

- `default`: whatever the demo's recipe makes (fit on year 1, update with year 2);
- `onefit`: the same settings fitted once on both years (the update's reference);
- `frame`, `window-centred`, `window-standard`, `window-no-loudness`, `segment`: the
  levels, normalisations and window features, fitted once on both years.

Each evaluation also scores the log-mel yardstick (mean log-mel and spectral shape) on
the same windows. Printed: mean ± standard deviation over seeds of NMI, ARI and the
probe per unit and method, the update's NMI relative to one fit, and for each
clustering the largest share of one sonotype's frames lying in segments' first
windows (near 1: a sonotype made of segment edges; about 1/10 is no edge effect for
10 s segments). Everything is kept under --work; `--rescore` skips the demo and the
clusterings and only evaluates again.
"""

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

WORK = Path(__file__).resolve().parent / "work" / "quality"
K = 8
VARIANTS: dict[str, list[str]] = {
    "onefit": [],  # the default clustering's own settings (filled in per run)
    "frame": ["--level", "frame", "--set", "normalise=centred-l2"],
    "window-centred": ["--level", "window", "--set", "normalise=centred-l2"],
    "window-standard": ["--level", "window", "--set", "normalise=standard"],
    "window-no-loudness": [
        "--level",
        "window",
        "--set",
        "normalise=standard",
        "--set",
        "loudness=false",
    ],
    "segment": ["--level", "segment", "--set", "normalise=centred-l2"],
}


def _sonotype(*argv: str) -> None:
    command = [sys.executable, "-m", "sonotype", *argv, "-q"]
    subprocess.run(command, check=True)


def edge_share(features: str, name: str) -> float:
    """The largest share of one sonotype's frames that lie in segments' first windows
    (NaN for a segment-level clustering, whose unit is the whole segment)."""
    from analysis import open_store

    store = open_store(features)
    if store.labels_level(name) == "segment":
        return float("nan")
    labels = store.read(f"labels/{name}", 0, store.n_frames)
    window = round(store.frame_rate)
    at_edge = np.zeros(store.n_frames, bool)
    for first in store.read_segments(columns=["frame_start"]).column("frame_start").to_numpy():
        at_edge[first : first + window] = True
    return max(float(at_edge[labels == j].mean()) for j in np.unique(labels[labels >= 0]))


def run_seed(work: Path, seed: int, demo_settings: list[str], rescore: bool) -> pd.DataFrame:
    """Demo, alternative clusterings and evaluations of one example seed."""
    root = work / f"seed{seed}"
    settings = ["--set", f"example_overrides=[seed={seed}]"]
    for setting in demo_settings:
        settings += ["--set", setting]
    features = str(root / "out" / "features.zarr")
    if not rescore:
        _sonotype("demo", "--out", str(root), *settings)
        default_config = str(root / "out" / "clusters" / "default" / "config.yaml")
        for name, arguments in VARIANTS.items():
            extra = ["--config", default_config] if name == "onefit" else [*arguments]
            extra += [] if name == "onefit" else ["--k", str(K)]
            _sonotype("cluster", "--features", features, "--name", name, "--force", *extra)
    frames = []
    annotations = str(root / "example" / "ground_truth.csv")
    names = ["default", *VARIANTS]
    _sonotype("evaluate", str(root / "out"), "--name", *names, "--annotations", annotations)
    for name in names:
        scores = pd.read_parquet(root / "out" / "clusters" / name / "evaluation" / "scores.parquet")
        scores["clustering"] = name
        scores["seed"] = seed
        scores["edge_share"] = edge_share(features, name)
        frames.append(scores)
    return pd.concat(frames, ignore_index=True)


def summarise(scores: pd.DataFrame) -> str:
    """Mean ± sd over seeds per unit and method (the yardstick once per unit)."""
    scores = scores.reset_index(drop=True)
    is_ours = scores["method"].str.startswith("sonotypes")
    scores.loc[is_ours, "method"] = "sonotypes: " + scores.loc[is_ours, "clustering"]
    # the yardstick does not depend on the clustering: keep one copy per seed
    scores = scores[is_ours | (scores["clustering"] == "default")]
    grouped = scores.groupby(["unit", "method"], sort=False)[["nmi", "ari", "probe"]]
    mean, spread = grouped.mean(), grouped.std()
    lines = [
        f"seeds: {sorted(int(s) for s in scores['seed'].unique())}, k = {int(scores['k'].iloc[0])}",
        "",
        "| unit | method | NMI | ARI | probe |",
        "|---|---|---|---|---|",
    ]
    for (unit, method), row in mean.iterrows():
        sd = spread.loc[(unit, method)]
        cells = " | ".join(f"{row[c]:.3f} ± {sd[c]:.3f}" for c in ("nmi", "ari", "probe"))
        lines.append(f"| {unit} | {method} | {cells} |")
    window = scores[(scores["unit"] == "window") & is_ours.loc[scores.index]]
    edges = window.groupby("clustering", sort=False)["edge_share"].max()
    lines += [
        "",
        "largest share of one sonotype's frames in segments' first windows (max over seeds): "
        + ", ".join(f"{name} {share:.2f}" for name, share in edges.items()),
    ]
    by_seed = window.pivot_table(index="seed", columns="clustering", values="nmi")
    if {"default", "onefit"} <= set(by_seed.columns):
        ratio = by_seed["default"] / by_seed["onefit"]
        lines += [
            "",
            "year 1 then --update, NMI relative to one fit on both years (per window): "
            + ", ".join(f"{value:.2f}" for value in ratio),
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument(
        "--demo-set", action="append", default=[], metavar="KEY=VALUE", help="demo setting"
    )
    parser.add_argument(
        "--rescore", action="store_true", help="only evaluate the clusterings already there"
    )
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    scores = pd.concat(
        [run_seed(args.work, seed, args.demo_set, args.rescore) for seed in args.seeds],
        ignore_index=True,
    )
    scores.to_csv(args.work / "scores.csv", index=False)
    print(summarise(scores))
    return 0


if __name__ == "__main__":
    sys.exit(main())

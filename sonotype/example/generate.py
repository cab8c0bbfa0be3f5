"""Write the example deployment: audio files, recorder side files and the ground truth."""

import datetime as dt
import io
import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from sonotype import audio
from sonotype.config.example import ExampleConfig
from sonotype.config.load import dump_config, read_yaml, save_config
from sonotype.contracts import UTC_TIMESTAMP
from sonotype.errors import OutputConflictError
from sonotype.example.deployment import PlannedFile, plan_deployment
from sonotype.example.soundscape import SILENCE, SOURCES, dominant_per_second, synthesize
from sonotype.fsio import exists, join, write_bytes_atomic, write_parquet_atomic, write_text_atomic
from sonotype.progress import progress_bar

logger = logging.getLogger(__name__)

GROUND_TRUTH_FILE = "ground_truth.parquet"
ANNOTATIONS_FILE = "ground_truth.csv"
"""The ground truth as annotations for `sonotype evaluate`: runs of one dominant source."""
CONFIG_FILE = "example.yaml"

_DROPOUT_FRACTION = (0.25, 0.42)
"""Part of the dropout file (as fractions of its length) written as digital silence."""


@dataclass(frozen=True)
class ExampleSummary:
    """What `write_example` wrote."""

    root: str
    audio_files: list[str]
    audio_s: float
    ground_truth: str
    reused: bool


def _defect_roles(plan: list[PlannedFile]) -> dict[int, str]:
    """Deterministic choice of the file with a dropout and the file with a clipping storm."""
    roles = {min(1, len(plan) - 1): "dropout"}
    last_site = plan[-1].site_index
    afternoon = [
        i
        for i, planned in enumerate(plan)
        if planned.site_index == last_site and 12 <= planned.local_start.hour < 18
    ]
    storm = afternoon[0] if afternoon else len(plan) - 1
    roles.setdefault(storm, "storm")
    return roles


def _render(
    config: ExampleConfig, planned: PlannedFile, role: str | None, out: str
) -> tuple[list[str], np.ndarray]:
    """Synthesise one recording and write it under `out`; return per-second labels and levels."""
    site = planned.site
    rng = np.random.default_rng(list(planned.seed))
    n = config.file_s * site.sample_rate
    middle = planned.local_start + dt.timedelta(seconds=config.file_s / 2)
    hour = middle.hour + middle.minute / 60 + middle.second / 3600
    components = synthesize(rng, hour, n, site.sample_rate, heavy_rain=role == "storm")
    labels, levels = dominant_per_second(components, site.sample_rate)
    mix = np.sum([components[name] for name in SOURCES], axis=0, dtype=np.float32)
    if role == "dropout":
        first, last = (int(f * config.file_s) for f in _DROPOUT_FRACTION)
        mix[first * site.sample_rate : last * site.sample_rate] = 0.0
        labels[first:last] = [SILENCE] * (last - first)
    if site.channels == 2:
        # The second microphone hears the same scene ~1 ms later, a little quieter,
        # with its own self-noise.
        delay = int(0.001 * site.sample_rate)
        second = np.zeros_like(mix)
        second[delay:] = 0.8 * mix[:-delay]
        second += 0.003 * rng.standard_normal(n).astype(np.float32)
        if role == "dropout":
            second[first * site.sample_rate : last * site.sample_rate] = 0.0
        samples = np.stack([mix, second], axis=1)
    else:
        samples = mix
    comment = None
    if site.recorder == "audiomoth":
        comment = (
            f"Recorded at {planned.utc_start.strftime('%H:%M:%S %d/%m/%Y')} (UTC) by AudioMoth "
            f"24F31904{planned.site_index:08X} at medium gain while battery was 4.1V."
        )
    buffer = io.BytesIO()
    audio.write(buffer, samples, site.sample_rate, site.format, site.subtype, comment)
    write_bytes_atomic(join(out, planned.relative_path), buffer.getvalue())
    return labels, levels


def _side_files(config: ExampleConfig, plan: list[PlannedFile]) -> dict[str, bytes]:
    """Files recorders and computers leave beside the audio, which ingest must skip."""
    files: dict[str, bytes] = {}
    for planned in plan:
        folder = planned.relative_path.rsplit("/", 1)[0]
        site = planned.site
        if site.recorder == "audiomoth":
            files[f"{folder}/CONFIG.TXT"] = (
                f"Device ID                       : 24F31904{planned.site_index:08X}\n"
                "Firmware                        : AudioMoth-Firmware-Basic (1.8.1)\n"
                "Time zone                       : UTC\n"
                f"Sample rate (Hz)                : {site.sample_rate}\n"
                "Gain                            : Medium\n"
                f"Recording duration (s)          : {config.file_s}\n"
            ).encode()
        else:
            files[f"{folder}/{site.name}_Summary.txt"] = (
                "DATE,TIME,LAT,,LON,,POWER(V),TEMP(C),#FILES,MIC0 TYPE,MIC1 TYPE\n"
                f"{planned.local_start:%Y-%b-%d},{planned.local_start:%H:%M:%S},"
                "4.08,N,52.92,W,5.1,24.5,1,STD,STD\n"
            ).encode()
    first = plan[0].relative_path.rsplit("/", 1)
    # macOS leaves AppleDouble companions ("._NAME") when copying to exFAT cards.
    apple_double = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(4096 - 24)
    files[f"{first[0]}/._{first[1]}"] = apple_double
    return files


def _ground_truth_table(rows: list[tuple[PlannedFile, list[str], np.ndarray]]) -> pa.Table:
    columns: dict[str, list] = {
        "path": [],
        "site": [],
        "file_start": [],
        "offset_s": [],
        "time": [],
        "local_hour": [],
        "dominant": [],
    }
    levels = []
    for planned, labels, per_second in rows:
        for second, label in enumerate(labels):
            local = planned.local_start + dt.timedelta(seconds=second)
            columns["path"].append(planned.relative_path)
            columns["site"].append(planned.site.name)
            columns["file_start"].append(planned.utc_start)
            columns["offset_s"].append(second)
            columns["time"].append(planned.utc_start + dt.timedelta(seconds=second))
            columns["local_hour"].append(local.hour + local.minute / 60 + local.second / 3600)
            columns["dominant"].append(label)
        levels.append(per_second)
    stacked = np.concatenate(levels)
    arrays = {
        "path": pa.array(columns["path"], pa.string()),
        "site": pa.array(columns["site"], pa.string()),
        "file_start": pa.array(columns["file_start"], UTC_TIMESTAMP),
        "offset_s": pa.array(columns["offset_s"], pa.int32()),
        "time": pa.array(columns["time"], UTC_TIMESTAMP),
        "local_hour": pa.array(columns["local_hour"], pa.float32()),
        "dominant": pa.array(columns["dominant"], pa.string()),
    }
    for index, name in enumerate(SOURCES):
        arrays[f"level_dbfs_{name}"] = pa.array(stacked[:, index], pa.float32())
    return pa.table(arrays)


def _annotations_csv(truth: pa.Table) -> str:
    """One CSV row (`path`, `start_s`, `end_s`, `label`) per run of seconds with one source."""
    paths = truth.column("path").to_pylist()
    offsets = truth.column("offset_s").to_pylist()
    labels = truth.column("dominant").to_pylist()
    lines = ["path,start_s,end_s,label"]
    start = 0
    for row in range(1, len(paths) + 1):
        run_ends = (
            row == len(paths)
            or paths[row] != paths[start]
            or labels[row] != labels[start]
            or offsets[row] != offsets[row - 1] + 1
        )
        if run_ends:
            end = offsets[row - 1] + 1
            lines.append(f"{paths[start]},{offsets[start]},{end},{labels[start]}")
            start = row
    return "\n".join(lines) + "\n"


def write_example(
    config: ExampleConfig, out: str, force: bool = False, workers: int = 1
) -> ExampleSummary:
    """Write the example deployment under `out`.

    Re-running with the same config finds the finished corpus and does nothing; the
    same config always gives the same bytes.

    Args:
        config: what to generate.
        out: output folder (path or fsspec URL).
        force: overwrite a corpus made with a different config.
        workers: processes rendering files in parallel (the bytes do not depend on it).

    Returns:
        A summary with the audio files written (paths relative to `out`).

    Raises:
        OutputConflictError: `out` holds an example made with another config.
    """
    plan = plan_deployment(config)
    audio_files = [planned.relative_path for planned in plan]
    audio_s = float(len(plan) * config.file_s)
    config_url = join(out, CONFIG_FILE)
    ground_truth = join(out, GROUND_TRUTH_FILE)
    if exists(config_url) and not force:
        previous = read_yaml(config_url)
        current = config.model_dump(mode="json")
        differing = sorted(
            k for k in current.keys() | previous.keys() if current.get(k) != previous.get(k)
        )
        if differing:
            raise OutputConflictError(
                f"{out}: holds an example made with different settings ({', '.join(differing)}); "
                "use another folder or --force"
            )
        if exists(ground_truth) and exists(join(out, ANNOTATIONS_FILE)):
            logger.info("example already complete in %s", out)
            return ExampleSummary(out, audio_files, audio_s, ground_truth, reused=True)

    roles = _defect_roles(plan) if config.defects else {}
    with (
        ProcessPoolExecutor(max_workers=max(1, workers)) as pool,
        progress_bar(len(plan), "files", "example") as bar,
    ):
        # Each file has its own seed, so the order in which workers finish is irrelevant.
        futures = [
            pool.submit(_render, config, planned, roles.get(index), out)
            for index, planned in enumerate(plan)
        ]
        for future in futures:
            future.add_done_callback(lambda _: bar.update(1))
        rows = [(planned, *future.result()) for planned, future in zip(plan, futures, strict=True)]
    if config.side_files:
        for relative, data in _side_files(config, plan).items():
            write_bytes_atomic(join(out, relative), data)
    truth = _ground_truth_table(rows)
    write_parquet_atomic(truth, ground_truth)
    write_text_atomic(join(out, ANNOTATIONS_FILE), _annotations_csv(truth))
    save_config(config, config_url, "sonotype example")
    write_text_atomic(join(out, "README.txt"), _readme(config, len(plan)))
    logger.info("wrote %d files (%.1f min of audio) to %s", len(plan), audio_s / 60, out)
    return ExampleSummary(out, audio_files, audio_s, ground_truth, reused=False)


def _readme(config: ExampleConfig, n_files: int) -> str:
    return (
        "Synthetic example deployment written by `sonotype example` (seeded, reproducible).\n"
        f"{n_files} files of {config.file_s} s; sites: "
        + ", ".join(
            f"{s.name} ({s.recorder}, {s.sample_rate} Hz, {s.channels} ch, {s.format})"
            for s in config.sites
        )
        + f".\nAudioMoth names are UTC; Song Meter names are local time ({config.timezone}).\n"
        f"{GROUND_TRUTH_FILE}: the dominant source of every second.\n"
        "Config:\n" + dump_config(config)
    )

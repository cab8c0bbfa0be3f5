"""Audio examples cut from the shards: a short clip per example segment, and its spectrogram.

The feature store's segment table names each segment's shard and key; the shard is
opened once for all its examples and only their `KEY.flac` members are read
(`shards.tarsafe.find_members`, which seeks over the rest). A clip is `clip_s`
seconds of the segment: for frame-level clusterings the window holding the most
frames of the sonotype, for segment-level ones the middle of the segment; a segment
shorter than that is used whole. Clips are peak-normalised (bounded gain) so that
quiet sounds can be heard, and written as 16-bit FLAC or WAV.

A missing shard or an undecodable sample never stops the report: that example gets
a `problem` in words and no audio.
"""

import datetime as dt
import io
import logging
from collections import defaultdict
from dataclasses import dataclass, replace

import numpy as np

from analysis.report.assets import Assets, Image
from analysis.report.plots import spectrogram_jpeg
from analysis.store import FRAME, FeatureStore
from shards.tarsafe import read_segment_audio
from sonotype import audio
from sonotype.config.report import ReportConfig
from sonotype.contracts import AUDIO_EXTENSION, LABELS, OutputLayout
from sonotype.errors import AudioDecodeError, ShardFormatError
from sonotype.fsio import exists, join
from sonotype.progress import progress_bar

logger = logging.getLogger(__name__)

_MIME = {"flac": "audio/flac", "wav": "audio/wav"}


@dataclass(frozen=True)
class Example:
    """One audio example of a sonotype.

    Attributes:
        sonotype: the sonotype.
        segment_index: the segment's row in the store.
        key: the segment's shard key.
        shard: its shard, relative to `shards/`.
        site: recording site.
        start_time: UTC start of the segment (None if unknown).
        share: share of the segment's frames with this sonotype (1 for segment level).
        distance: mean distance to the centroid.
        clip_start_s: where the clip starts in the segment, s.
        clip_s: clip length, s.
        audio_src: the clip's URL relative to the page (None when it could not be cut).
        mime: the clip's MIME type.
        image: its spectrogram thumbnail (None when it could not be cut).
        problem: why there is no clip, in words.
    """

    sonotype: int
    segment_index: int
    key: str
    shard: str | None
    site: str | None
    start_time: dt.datetime | None
    share: float
    distance: float
    clip_start_s: float
    clip_s: float
    audio_src: str | None = None
    mime: str = ""
    image: Image | None = None
    problem: str | None = None


def clip_window(
    labels: np.ndarray | None, sonotype: int, duration_s: float, frame_rate: float, clip_s: float
) -> tuple[float, float]:
    """Where the clip of a segment starts and how long it is.

    Args:
        labels: the segment's frame labels (frame-level clusterings), or None.
        sonotype: the sonotype the clip shows.
        duration_s: the segment's length, s.
        frame_rate: frames per second.
        clip_s: wanted clip length, s.

    Returns:
        (start, length) in seconds: the first window of `clip_s` holding the most
        frames of `sonotype`, the middle `clip_s` without labels, or the whole segment
        when it is not longer than `clip_s`.
    """
    if duration_s <= clip_s:
        return 0.0, duration_s
    if labels is None:
        return (duration_s - clip_s) / 2, clip_s
    width = max(1, round(clip_s * frame_rate))
    if width >= len(labels):
        return 0.0, min(duration_s, len(labels) / frame_rate)
    inside = np.concatenate([[0], np.cumsum(labels == sonotype)])
    start = int(np.argmax(inside[width:] - inside[:-width]))
    return min(start / frame_rate, duration_s - clip_s), clip_s


def normalise_peak(samples: np.ndarray, peak_dbfs: float | None, max_gain_db: float) -> np.ndarray:
    """Scale a clip so its peak is at `peak_dbfs`, amplifying by at most `max_gain_db`."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak_dbfs is None or peak == 0.0:
        return samples
    gain = min(10 ** (peak_dbfs / 20) / peak, 10 ** (max_gain_db / 20))
    return (samples * gain).astype(np.float32)


def locate_examples(
    store: FeatureStore,
    chosen: list[tuple[int, int, float, float]],
    labels_name: str,
    clip_s: float,
) -> list[Example]:
    """Look up the chosen segments in the store's segment table and place their clips.

    Args:
        store: the feature store.
        chosen: (sonotype, segment index, share, distance) per example.
        labels_name: the clustering's label array (frame level: picks the window).
        clip_s: wanted clip length, s.
    """
    is_frame = store.labels_level(labels_name) == FRAME if chosen else False
    examples = []
    for sonotype, segment, share, distance in chosen:
        row = store.read_segments(segment, segment + 1).to_pylist()[0]
        duration_s = float(row["duration_s"] or row["n_frames"] / store.frame_rate)
        labels = None
        if is_frame:
            first = int(row["frame_start"])
            labels = store.read(f"{LABELS}/{labels_name}", first, first + int(row["n_frames"]))
        start_s, length_s = clip_window(labels, sonotype, duration_s, store.frame_rate, clip_s)
        examples.append(
            Example(
                sonotype=sonotype,
                segment_index=segment,
                key=row["key"],
                shard=row["shard"],
                site=row["site"],
                start_time=row["start_time"],
                share=share,
                distance=distance,
                clip_start_s=start_s,
                clip_s=length_s,
            )
        )
    return examples


def _cut(data: bytes, example: Example, config: ReportConfig) -> tuple[np.ndarray, int]:
    """The example's clip, mono and normalised, and its rate.

    Raises:
        AudioDecodeError: the sample is not decodable or holds no audio.
    """
    info = audio.probe_bytes(data, example.key)
    if info.frames < 1:
        raise AudioDecodeError(f"{example.key}: the sample holds no audio")
    start = min(round(example.clip_start_s * info.sample_rate), max(0, info.frames - 1))
    frames = min(round(example.clip_s * info.sample_rate), info.frames - start)
    samples = audio.decode_bytes_range(data, start, frames, example.key)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    return normalise_peak(samples, config.clip_peak_dbfs, config.clip_max_gain_db), info.sample_rate


def cut_clips(
    out: str, examples: list[Example], assets: Assets, config: ReportConfig
) -> list[Example]:
    """Cut, write and draw every example's clip, reading each shard once.

    Args:
        out: the output root whose `shards/` holds the segments.
        examples: from `locate_examples`.
        assets: where the clips and thumbnails go.
        config: clip length, format and level.

    Returns:
        The examples, in the same order, with `audio_src` and `image` or a `problem`.
    """
    shards_dir = OutputLayout(out).shards_dir
    by_shard: dict[str | None, list[int]] = defaultdict(list)
    for position, example in enumerate(examples):
        by_shard[example.shard].append(position)
    done = list(examples)
    with progress_bar(len(examples), "examples", "report: audio examples") as bar:
        for shard, positions in sorted(by_shard.items(), key=lambda item: str(item[0])):
            url = join(shards_dir, shard) if shard else ""
            members: dict[str, bytes] = {}
            problem = None
            if not shard:
                problem = "the segment table names no shard for this segment"
            elif not exists(url):
                problem = f"shard {url} not found"
            else:
                try:
                    members = read_segment_audio(url, {examples[p].key for p in positions})
                except (ShardFormatError, OSError) as error:
                    problem = str(error)
            for position in positions:
                done[position] = _write_clip(examples[position], members, problem, assets, config)
                bar.update(1)
    for example in done:
        if example.problem:
            logger.warning(
                "sonotype %d example %s: %s", example.sonotype, example.key, example.problem
            )
    return done


def _write_clip(
    example: Example,
    members: dict[str, bytes],
    problem: str | None,
    assets: Assets,
    config: ReportConfig,
) -> Example:
    if problem is not None:
        return replace(example, problem=problem)
    data = members.get(example.key)
    if data is None:
        return replace(
            example, problem=f"{example.key}.{AUDIO_EXTENSION} not in shard {example.shard}"
        )
    try:
        samples, sample_rate = _cut(data, example, config)
    except AudioDecodeError as error:
        return replace(example, problem=str(error))
    buffer = io.BytesIO()
    audio.write(buffer, samples, sample_rate, config.clip_format.upper(), "PCM_16")
    name = f"s{example.sonotype:04d}-{example.segment_index}"
    src = assets.audio(f"{name}.{config.clip_format}", buffer.getvalue())
    jpeg, width, height = spectrogram_jpeg(samples, sample_rate)
    image = assets.image(f"{name}.jpg", jpeg, width, height)
    return replace(
        example,
        audio_src=src,
        mime=_MIME[config.clip_format],
        image=image,
        clip_s=len(samples) / sample_rate,
    )

"""Cut a recording into tasks: the whole file, or time ranges of a long one aligned to segments.

Task boundaries depend only on the header, the settings and `job.max_task_s`, so a
re-run plans the same tasks and can skip those a killed run had finished.
"""

import datetime as dt
import hashlib
import math
from dataclasses import dataclass

from ingest.resample import RateGrid
from ingest.segment import SegmentGrid
from sonotype.audio import AudioInfo
from sonotype.config.ingest import IngestConfig, SegmentConfig
from sonotype.contracts import SHARD_SUFFIX, slug


@dataclass(frozen=True)
class TaskSpec:
    """One unit of Dask work: segments `[first_segment, stop_segment)` of one recording.

    Attributes:
        recording_id: the recording's id.
        url: where to read it.
        site: its site.
        start_time: its start in UTC, or None.
        fingerprint: its fingerprint when planned.
        info: its header.
        part: this task's number within the recording.
        n_parts: the recording's number of tasks.
        first_segment: index of the first segment.
        stop_segment: index to stop before; None for the last task, which reads to the end.
        shard: the shard it writes, relative to `OUT/shards/`.
    """

    recording_id: str
    url: str
    site: str
    start_time: dt.datetime | None
    fingerprint: str
    info: AudioInfo
    part: int
    n_parts: int
    first_segment: int
    stop_segment: int | None
    shard: str

    @property
    def name(self) -> str:
        """A file-name-safe name, unique per recording, fingerprint and task plan."""
        prefix = task_prefix(self.recording_id, self.fingerprint)
        return f"{prefix}p{self.part:03d}of{self.n_parts:03d}"

    @property
    def audio_s(self) -> float:
        """Roughly how much source audio this task reads (for progress)."""
        return self.info.duration_s / self.n_parts


def task_prefix(recording_id: str, fingerprint: str) -> str:
    """The start of the names of a recording's tasks for one version (fingerprint) of its file."""
    digest = hashlib.blake2b(fingerprint.encode(), digest_size=4).hexdigest()
    return f"{recording_id}-{digest}-"


def segment_grid(config: SegmentConfig, sample_rate: int) -> SegmentGrid:
    """The segment windows of the settings, in samples at `sample_rate`."""
    return SegmentGrid(
        length=round(config.length_s * sample_rate),
        hop=round(config.step_s * sample_rate),
        tail=config.tail,
        min_tail=round(config.min_tail_s * sample_rate),
    )


def shard_name(site: str, recording_id: str, part: int, n_parts: int) -> str:
    """`<site>/<recording_id>[-pNNN].tar`, relative to `OUT/shards/`."""
    suffix = f"-p{part:03d}" if n_parts > 1 else ""
    return f"{slug(site)}/{recording_id}{suffix}{SHARD_SUFFIX}"


def plan_tasks(
    recording_id: str,
    url: str,
    site: str,
    start_time: dt.datetime | None,
    fingerprint: str,
    info: AudioInfo,
    config: IngestConfig,
) -> list[TaskSpec]:
    """The tasks of one recording: one per `job.max_task_s` of audio, at least one.

    Args:
        recording_id: the recording's id.
        url: where to read it.
        site: its site.
        start_time: its start in UTC, or None.
        fingerprint: its fingerprint.
        info: its header (rate and frame count decide the number of segments).
        config: segment settings, output rate and `job.max_task_s`.

    Returns:
        Tasks in order; every one but the last ends on a segment boundary.
    """
    out_rate = config.resample.sample_rate
    grid = segment_grid(config.segment, out_rate)
    n_samples = RateGrid(info.sample_rate, out_rate).n_output(info.frames)
    per_task = max(1, math.floor(config.job.max_task_s / config.segment.step_s))
    n_parts = max(1, math.ceil(grid.n_segments(n_samples) / per_task))
    return [
        TaskSpec(
            recording_id=recording_id,
            url=url,
            site=site,
            start_time=start_time,
            fingerprint=fingerprint,
            info=info,
            part=part,
            n_parts=n_parts,
            first_segment=part * per_task,
            stop_segment=(part + 1) * per_task if part < n_parts - 1 else None,
            shard=shard_name(site, recording_id, part, n_parts),
        )
        for part in range(n_parts)
    ]

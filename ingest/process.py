"""One task: stream a time range of a recording through channels, resampling, segmentation,
quality checks and FLAC encoding into its shard. Knows nothing of Dask.

Memory per task is a few blocks and a segment per stream, whatever the file length:
blocks of `job.block_s` are read, mixed, resampled and cut into windows as they come.
"""

import contextlib
import dataclasses
import datetime as dt
from collections import Counter
from dataclasses import dataclass
from types import TracebackType

import numpy as np

from ingest.channels import Stream, plan_streams, to_streams
from ingest.decode import iter_source
from ingest.meter import SourceMeter
from ingest.plan import TaskSpec, segment_grid
from ingest.quality import (
    SourceFigures,
    drop_reason,
    level_figures,
    replace_nonfinite,
)
from ingest.records import SegmentRecord, as_row
from ingest.resample import RateGrid, StreamResampler
from ingest.segment import WindowCutter
from shards.writer import ShardWriter, audio_checksum
from sonotype import audio
from sonotype.config.ingest import IngestConfig
from sonotype.contracts import OutputLayout, segment_key
from sonotype.errors import AudioDecodeError
from sonotype.fsio import join


@dataclass(frozen=True)
class TaskResult:
    """What a task did.

    Attributes:
        name: the task's name (`TaskSpec.name`).
        recording_id: its recording.
        error: why the recording could not be read, in words; None on success.
        records: the catalog rows of its segments, kept and dropped (empty on error).
    """

    name: str
    recording_id: str
    error: str | None
    records: list[SegmentRecord] = dataclasses.field(default_factory=list)

    @property
    def drop_reasons(self) -> Counter[str]:
        """Dropped segments per reason."""
        return Counter(r.drop_reason for r in self.records if r.drop_reason is not None)

    @property
    def n_dropped(self) -> int:
        """Segments dropped by the quality checks."""
        return sum(1 for r in self.records if not r.kept)

    @property
    def n_kept(self) -> int:
        """Segments written to the shard."""
        return len(self.records) - self.n_dropped


class _LazyShard:
    """A ShardWriter opened at the first sample, so a task that keeps nothing writes no shard."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._stack = contextlib.ExitStack()
        self._writer: ShardWriter | None = None

    def write(self, key: str, flac: bytes, row: dict) -> None:
        if self._writer is None:
            self._writer = self._stack.enter_context(ShardWriter(self._url))
        self._writer.write(key, flac, row)

    def __enter__(self) -> "_LazyShard":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        return self._stack.__exit__(exc_type, exc, traceback)


class _SegmentSink:
    """Turns windows of every stream into catalog rows and shard samples."""

    def __init__(
        self, task: TaskSpec, streams: list[Stream], config: IngestConfig, shard: _LazyShard
    ) -> None:
        self._task = task
        self._streams = streams
        self._config = config
        self._shard = shard
        self.records: list[SegmentRecord] = []

    def add(self, index: int, start: int, window: np.ndarray, sources: list[SourceFigures]) -> None:
        """Segment `index` of every stream.

        Args:
            index: the segment index within the recording.
            start: its first output sample.
            window: float32 `[n, streams]` at the output rate.
            sources: the source figures of each stream.
        """
        task, config = self._task, self._config
        rate = config.resample.sample_rate
        offset_s = start / rate
        start_time = task.start_time + dt.timedelta(seconds=offset_s) if task.start_time else None
        for stream, source in zip(self._streams, sources, strict=True):
            samples = np.ascontiguousarray(window[:, stream.index])
            levels = level_figures(samples)
            reason = drop_reason(source, levels, config.quality)
            key = segment_key(task.recording_id, stream.index, index)
            flac = None
            if reason is None:
                flac = audio.encode_flac(samples, rate, config.shards.flac_subtype)
            record = SegmentRecord(
                key=key,
                recording_id=task.recording_id,
                site=task.site,
                stream=stream.index,
                channel=stream.channel,
                start_time=start_time,
                offset_s=offset_s,
                duration_s=len(samples) / rate,
                sample_rate=rate,
                shard=task.shard if reason is None else None,
                rms_dbfs=levels.rms_dbfs,
                peak=levels.peak,
                clipped_fraction=source.clipped_fraction,
                is_silent=source.is_silent,
                has_nonfinite=source.has_nonfinite,
                dc_offset=levels.dc_offset,
                kept=reason is None,
                drop_reason=reason,
                checksum=None if flac is None else audio_checksum(flac),
            )
            self.records.append(record)
            if flac is not None:
                self._shard.write(key, flac, as_row(record))


def _cut(task: TaskSpec, config: IngestConfig, sink: _SegmentSink) -> None:
    """Stream the task's frames through the pipeline into `sink`.

    Raises:
        AudioDecodeError: the file cannot be decoded, or holds fewer frames than declared.
    """
    info = task.info
    out_rate = config.resample.sample_rate
    grid = segment_grid(config.segment, out_rate)
    rates = RateGrid(info.sample_rate, out_rate)
    streams = plan_streams(info.channels, config.channels)
    first_output = grid.bounds(task.first_segment)[0]
    source_start, output_start = rates.stream_start(first_output)
    source_stop = (
        None
        if task.stop_segment is None
        else rates.stream_stop(grid.bounds(task.stop_segment - 1)[1], info.frames)
    )

    def source_bounds(index: int) -> tuple[int, int]:
        start, stop = grid.bounds(index)
        return rates.to_input(start), rates.to_input(stop)

    outputs = WindowCutter(grid.bounds, task.first_segment, task.stop_segment, output_start)
    may_be_nonfinite = audio.native_dtype(info.subtype) == "float32"
    meter = SourceMeter(
        source_bounds,
        task.first_segment,
        task.stop_segment,
        source_start,
        streams,
        config.quality,
        info.sample_rate,
        may_be_nonfinite,
    )
    resampler = StreamResampler(info.sample_rate, out_rate, len(streams), config.resample.quality)
    measured: dict[int, list[SourceFigures]] = {}

    def emit(index: int, window: np.ndarray) -> None:
        # A window's source frames end before its resampled samples do (soxr's delay),
        # except at the very end, where soxr rounds the output length up.
        figures = measured.pop(index, None) or meter.figures_so_far(index)
        sink.add(index, grid.bounds(index)[0], window, figures)

    block_frames = max(1, round(config.job.block_s * info.sample_rate))
    for block in iter_source(task.url, info, source_start, source_stop, block_frames):
        measured.update(meter.push(block))
        clean = replace_nonfinite(block) if may_be_nonfinite else block
        for index, window in outputs.push(resampler.push(to_streams(clean, streams))):
            emit(index, window)
        if outputs.done:
            return
    flushed = resampler.push(np.zeros((0, len(streams)), np.float32), last=True)
    for index, window in outputs.push(flushed):
        emit(index, window)
    if task.stop_segment is not None:
        return
    tail = grid.tail_bounds(outputs.end)
    if tail is None:
        return
    window = outputs.rest(tail[0])
    if grid.tail == "pad":
        padding = np.zeros((grid.length - len(window), len(streams)), np.float32)
        window = np.concatenate([window, padding])
    sink.add(outputs.next_index, tail[0], window, meter.figures_so_far(outputs.next_index))


def process_task(task: TaskSpec, config: IngestConfig, out: str) -> TaskResult:
    """Process one task: write its shard under `out` and return its segment rows.

    The caller persists the rows (`ingest.work.write_task_part`), which marks the task
    done; the shard is complete before then. A file that cannot be decoded is not an
    exception: the result carries the reason and no shard is left. Bugs still raise.

    Args:
        task: what to read and which segments to make.
        config: the ingest settings.
        out: the output root.

    Returns:
        The task's segment rows, or its error in words.
    """
    shard_url = join(OutputLayout(out).shards_dir, task.shard)
    try:
        with _LazyShard(shard_url) as shard:
            streams = plan_streams(task.info.channels, config.channels)
            sink = _SegmentSink(task, streams, config, shard)
            _cut(task, config, sink)
    except AudioDecodeError as error:
        return TaskResult(task.name, task.recording_id, str(error))
    return TaskResult(task.name, task.recording_id, None, sink.records)

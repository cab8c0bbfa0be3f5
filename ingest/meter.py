"""Source figures of every segment window, accumulated block by block as the source streams by.

Clipping, digital silence and NaN/Inf are facts about the source samples, so they are
measured before resampling. Rather than assembling each segment's source samples (a
copy of every window), each block is measured where it overlaps a window and the counts
are added up per window: clipped samples, non-finite samples, and runs of exact zeros,
which are carried across block edges. Zero runs are looked for on every k-th frame
first, so ordinary audio costs little more than the clipping check.
"""

from dataclasses import dataclass, field

import numpy as np

from ingest.channels import Stream, source_of
from ingest.quality import (
    SourceFigures,
    count_clipped,
    count_nonfinite,
    longest_zero_run,
    zero_frames,
)
from ingest.segment import Bounds
from sonotype.config.ingest import QualityConfig


def _leading_zeros(samples: np.ndarray, stride: int) -> int:
    """How many frames at the start of `samples` are exactly zero, looking at every
    `stride`-th frame first so that ordinary audio costs a handful of comparisons."""
    sparse = zero_frames(samples[::stride])
    bound = len(samples) if sparse.all() else int(np.argmax(~sparse)) * stride + 1
    head = zero_frames(samples[:bound])
    return bound if head.all() else int(np.argmax(~head))


@dataclass
class _Tally:
    """Running counts of one stream in one window."""

    n_samples: int = 0
    n_clipped: int = 0
    n_nonfinite: int = 0
    run: int = 0  # exact-zero frames at the end of what was seen so far
    has_silence: bool = False

    def add(self, samples: np.ndarray, level: float, check_nonfinite: bool, min_run: int) -> None:
        self.n_samples += samples.size
        self.n_clipped += count_clipped(samples, level)
        if check_nonfinite:
            self.n_nonfinite += count_nonfinite(samples)
        if len(samples):
            self._add_zero_runs(samples, min_run)

    def _add_zero_runs(self, samples: np.ndarray, min_run: int) -> None:
        # A run of at least min_run zeros holds two neighbouring multiples of `stride`,
        # so looking at every stride-th frame finds every candidate run inside the slice.
        stride = max(1, min_run // 2)
        lead = _leading_zeros(samples, stride)
        if lead == len(samples):
            self.run += lead
            self.has_silence |= self.run >= min_run
            return
        self.has_silence |= self.run + lead >= min_run  # the run the last slice ended with
        sparse = zero_frames(samples[::stride])
        if not self.has_silence and np.any(sparse[:-1] & sparse[1:]):
            self.has_silence = longest_zero_run(samples) >= min_run
        self.run = _leading_zeros(samples[::-1], stride)

    def figures(self) -> SourceFigures:
        return SourceFigures(
            clipped_fraction=self.n_clipped / self.n_samples if self.n_samples else 0.0,
            is_silent=self.has_silence,
            has_nonfinite=self.n_nonfinite > 0,
        )


@dataclass
class _Window:
    start: int
    stop: int
    tallies: list[_Tally] = field(default_factory=list)


class SourceMeter:
    """Measures the source samples of windows `[first, stop)` from blocks pushed in order.

    Args:
        bounds: window index → (start, stop) in source frames.
        first: index of the first window.
        stop: index to stop before (None: until the stream ends).
        origin: source frame of the first block's first sample.
        streams: the streams whose source channels are measured.
        config: clip level and digital-silence run length.
        sample_rate: source samples per second.
        may_be_nonfinite: the source holds floats, which may be NaN or Inf.
    """

    def __init__(
        self,
        bounds: Bounds,
        first: int,
        stop: int | None,
        origin: int,
        streams: list[Stream],
        config: QualityConfig,
        sample_rate: int,
        may_be_nonfinite: bool,
    ) -> None:
        self._bounds = bounds
        self._next_open = first
        self._stop = stop
        self._position = origin
        self._streams = streams
        self._level = config.clip_level
        self._min_run = max(1, round(config.silence_min_run_s * sample_rate))
        self._check_nonfinite = may_be_nonfinite
        self._open: dict[int, _Window] = {}

    def push(self, block: np.ndarray) -> list[tuple[int, list[SourceFigures]]]:
        """Measure the next block `[n, channels]`.

        Returns:
            (index, figures per stream) of the windows this block completes, in order.
        """
        begin, end = self._position, self._position + len(block)
        self._position = end
        while self._stop is None or self._next_open < self._stop:
            start, stop = self._bounds(self._next_open)
            if start >= end:
                break
            self._open[self._next_open] = _Window(start, stop, [_Tally() for _ in self._streams])
            self._next_open += 1
        completed = []
        for index in sorted(self._open):
            window = self._open[index]
            lo, hi = max(window.start, begin) - begin, min(window.stop, end) - begin
            if lo < hi:
                part = block[lo:hi]
                for stream, tally in zip(self._streams, window.tallies, strict=True):
                    tally.add(
                        source_of(part, stream), self._level, self._check_nonfinite, self._min_run
                    )
            if window.stop <= end:
                completed.append((index, self._figures(self._open.pop(index))))
        return completed

    def figures_so_far(self, index: int) -> list[SourceFigures]:
        """Figures of window `index` from the samples seen (a window the stream ended inside)."""
        window = self._open.pop(index, None)
        if window is None:
            return [_Tally().figures() for _ in self._streams]
        return self._figures(window)

    def _figures(self, window: _Window) -> list[SourceFigures]:
        return [tally.figures() for tally in window.tallies]

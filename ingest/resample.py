"""Streaming resampling with soxr, continuous across blocks and across the time ranges of a file.

`soxr.ResampleStream` keeps its filter state between chunks, so a stream fed block by
block gives the same samples as resampling the whole signal at once. A task that starts
inside a file starts its stream a little earlier (`preroll_s`) on a frame where the
input and output sample grids coincide; once the filter has filled, its output matches
the stream of the whole file, and the pre-roll samples are cut away by the segmenter.
"""

import math
from dataclasses import dataclass

import numpy as np
import soxr

PREROLL_S = 0.25
"""Output seconds resampled before a task's first sample and after its last. soxr's
filters settle within ~300 output samples (VHQ, 8 kHz → 24 kHz); this is ten times that."""


@dataclass(frozen=True)
class RateGrid:
    """The common grid of an input rate R and an output rate Q: R/g input frames last exactly
    as long as Q/g output samples (g = gcd(R, Q)).

    Attributes:
        in_rate: input samples per second.
        out_rate: output samples per second.
    """

    in_rate: int
    out_rate: int

    @property
    def _periods(self) -> tuple[int, int]:
        g = math.gcd(self.in_rate, self.out_rate)
        return self.in_rate // g, self.out_rate // g

    def n_output(self, n_input: int) -> int:
        """Output samples of `n_input` frames resampled at once (soxr rounds to nearest)."""
        return (2 * n_input * self.out_rate + self.in_rate) // (2 * self.in_rate)

    def to_input(self, output_index: int) -> int:
        """The input frame at which output sample `output_index` falls (rounded down)."""
        return output_index * self.in_rate // self.out_rate

    def stream_start(self, output_index: int) -> tuple[int, int]:
        """Where to start a stream so that it is settled by output sample `output_index`.

        Returns:
            (input frame, output sample) of the stream's first sample: a point on the
            common grid at least `PREROLL_S` before `output_index`, or (0, 0).
        """
        period_in, period_out = self._periods
        preroll = math.ceil(PREROLL_S * self.out_rate)
        k = max(0, (output_index - preroll) // period_out)
        return k * period_in, k * period_out

    def stream_stop(self, output_index: int, n_frames: int) -> int | None:
        """The input frame to read up to so that outputs before `output_index` are settled.

        Returns:
            An input frame on the common grid at least `PREROLL_S` after `output_index`,
            or None when that is at or past the end of the file (read it all).
        """
        period_in, period_out = self._periods
        postroll = math.ceil(PREROLL_S * self.out_rate)
        k = -(-(output_index + postroll) // period_out)
        stop = k * period_in
        return None if stop >= n_frames else stop


class StreamResampler:
    """Resamples `[n, channels]` float32 blocks as one continuous stream.

    Args:
        in_rate: input samples per second.
        out_rate: output samples per second (equal rates pass blocks through).
        channels: channels of every block.
        quality: soxr preset ("QQ", "LQ", "MQ", "HQ", "VHQ").
    """

    def __init__(self, in_rate: int, out_rate: int, channels: int, quality: str) -> None:
        self._stream = (
            None
            if in_rate == out_rate
            else soxr.ResampleStream(in_rate, out_rate, channels, dtype="float32", quality=quality)
        )

    def push(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """Resample the next block; `last=True` on the final block flushes the filter.

        Args:
            block: float32 `[n, channels]`, C-contiguous.
            last: this is the end of the stream.

        Returns:
            float32 `[m, channels]`, m ≈ n·out/in (0 while the filter fills).
        """
        if self._stream is None:
            return block
        return self._stream.resample_chunk(block, last=last)

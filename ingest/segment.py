"""Fixed windows on a stream: where segments fall, the rule for the tail, and a cutter for chunks.

Segment `i` of a recording covers output samples `[i·hop, i·hop + length)`. The same
windows mapped to the source rate give the source samples each segment was made from.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

Bounds = Callable[[int], tuple[int, int]]
"""Window index → (start, stop) sample positions; both non-decreasing in the index."""


@dataclass(frozen=True)
class SegmentGrid:
    """Segment windows in output samples, with the rule for the last, shorter window.

    Attributes:
        length: samples per segment.
        hop: samples from one segment start to the next (≤ length).
        tail: "keep" a shorter last segment, "pad" it with zeros to `length`, or "drop" it.
        min_tail: a tail shorter than this many samples is dropped.
    """

    length: int
    hop: int
    tail: Literal["keep", "pad", "drop"]
    min_tail: int

    def bounds(self, index: int) -> tuple[int, int]:
        """Output samples `[start, stop)` of full segment `index`."""
        start = index * self.hop
        return start, start + self.length

    def n_full(self, n_samples: int) -> int:
        """How many full segments fit in `n_samples`."""
        return 0 if n_samples < self.length else (n_samples - self.length) // self.hop + 1

    def tail_bounds(self, n_samples: int) -> tuple[int, int] | None:
        """The tail segment's samples `[start, n_samples)`, or None when the rule drops it.

        The tail is the window after the last full one; it exists when it holds audio no
        full segment covers and is at least `min_tail` samples long.
        """
        n = self.n_full(n_samples)
        start = n * self.hop
        covered = (n - 1) * self.hop + self.length if n else 0
        if self.tail == "drop" or n_samples <= covered or n_samples - start < max(self.min_tail, 1):
            return None
        return start, n_samples

    def n_segments(self, n_samples: int) -> int:
        """Segments of a stream of `n_samples`, the tail included if kept."""
        return self.n_full(n_samples) + (self.tail_bounds(n_samples) is not None)


class WindowCutter:
    """Cuts windows out of a stream that arrives in chunks, keeping only what later windows need.

    Chunks are kept as they come and each window is assembled once (a view when it lies
    inside one chunk), so every sample is copied at most once per window it is in.

    Args:
        bounds: window index → (start, stop), in absolute sample positions.
        first: index of the first window to cut.
        stop: index to stop before (None: until the stream ends).
        origin: absolute position of the first sample that will be pushed.
    """

    def __init__(self, bounds: Bounds, first: int, stop: int | None, origin: int) -> None:
        self._bounds = bounds
        self._next = first
        self._stop = stop
        self._chunks: list[np.ndarray] = []
        self._origin = origin  # absolute position of self._chunks[0][0]
        self._end = origin

    @property
    def done(self) -> bool:
        """Every window up to `stop` has been cut."""
        return self._stop is not None and self._next >= self._stop

    @property
    def next_index(self) -> int:
        """The index of the next window to cut."""
        return self._next

    @property
    def end(self) -> int:
        """Absolute position just after the last sample pushed."""
        return self._end

    def push(self, chunk: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Add the next chunk `[n, ...]` and return the windows it completes.

        Returns:
            (index, window) pairs in index order; a window may be a view of a chunk, so
            the caller must not modify chunks after pushing them.
        """
        if self.done or len(chunk) == 0:
            return []
        self._chunks.append(chunk)
        self._end += len(chunk)
        windows = []
        while not self.done:
            start, stop = self._bounds(self._next)
            if stop > self._end:
                break
            windows.append((self._next, self._span(start, stop)))
            self._next += 1
        self._drop_before(self._bounds(self._next)[0])
        return windows

    def rest(self, start: int) -> np.ndarray:
        """The samples pushed from absolute position `start` on (for the tail)."""
        return self._span(max(start, self._origin), self._end)

    def _span(self, start: int, stop: int) -> np.ndarray:
        """Samples `[start, stop)`, which must lie within what is held."""
        pieces, position = [], self._origin
        for chunk in self._chunks:
            lo, hi = max(start - position, 0), min(stop - position, len(chunk))
            if lo < hi:
                pieces.append(chunk[lo:hi])
            position += len(chunk)
        if len(pieces) == 1:
            return pieces[0]
        if not pieces:
            return self._chunks[0][:0] if self._chunks else np.zeros((0,), np.float32)
        return np.concatenate(pieces)

    def _drop_before(self, position: int) -> None:
        """Forget chunks that end before `position`: no later window reaches back to them."""
        while self._chunks and self._origin + len(self._chunks[0]) <= position:
            self._origin += len(self._chunks.pop(0))

"""Progress bars with a unit, a rate and an ETA, for every long piece of work.

A bar is drawn only when stderr is a terminal and sonotype logs at INFO or below
(`-q` hides it); setting `SONOTYPE_PROGRESS=1` forces it on, `0` forces it off. Log
records written while a bar is open go through tqdm so they do not tear the bar.
"""

import contextlib
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

T = TypeVar("T")

_ENV_SWITCH = "SONOTYPE_PROGRESS"


def progress_enabled() -> bool:
    """Whether progress bars should be drawn in this process."""
    forced = os.environ.get(_ENV_SWITCH)
    if forced is not None:
        return forced not in ("0", "", "false", "no")
    if not logging.getLogger("sonotype").isEnabledFor(logging.INFO):
        return False
    return sys.stderr.isatty()


@contextlib.contextmanager
def progress_bar(
    total: float | None, unit: str, desc: str, unit_scale: bool = False
) -> Iterator[tqdm]:
    """Open a progress bar; log records are routed through it while it is open.

    Args:
        total: the amount of work (None when unknown: the bar shows a count and a rate).
        unit: what is counted, e.g. "files", "segments", "steps", "chunks".
        desc: a short label shown before the bar.
        unit_scale: show k/M suffixes (for samples or frames).

    Yields:
        The tqdm bar; call `bar.update(n)` as work completes.
    """
    bar = tqdm(
        total=total,
        unit=unit,
        desc=desc,
        unit_scale=unit_scale,
        disable=not progress_enabled(),
        dynamic_ncols=True,
        smoothing=0.1,
    )
    with bar, logging_redirect_tqdm(loggers=[logging.getLogger()]):
        yield bar


def track(items: Iterable[T], total: int | None, unit: str, desc: str) -> Iterator[T]:
    """Iterate over `items` while advancing a progress bar by one per item.

    Args:
        items: what to iterate over.
        total: number of items, if known.
        unit: what one item is, e.g. "files".
        desc: a short label shown before the bar.

    Yields:
        The items of `items`, unchanged.
    """
    with progress_bar(total, unit, desc) as bar:
        for item in items:
            yield item
            bar.update(1)

"""Counting what the reader skips, by reason, without ever sleeping.

webdataset's `warn_and_continue` handler sleeps half a second per error, so a shard of
bad samples would stall training for minutes; this counter records and moves on.
"""

import logging
from collections import Counter
from collections.abc import Callable

logger = logging.getLogger(__name__)

_LOGGED_PER_REASON = 5
"""Skips logged at WARNING per reason and slot; the rest go to DEBUG (all are counted)."""


class SkipCounter:
    """Counts what a slot skipped, by reason, and logs the first few of each reason.

    Reasons: `shard` (cannot open), `tar` (a shard whose reading broke off), `member`
    (a repeated member name in a sample), `incomplete` (no FLAC or no JSON), `key`
    (invalid key), `json` (unreadable metadata), `audio` (undecodable or truncated
    FLAC), `sample_rate`, `channels`, `short` (shorter than a crop, with
    `short_segments: skip`).
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._since: Counter[str] = Counter()

    def record(self, reason: str, message: str) -> None:
        """Count one skip and log why."""
        self.counts[reason] += 1
        self._since[reason] += 1
        level = logging.WARNING if self.counts[reason] <= _LOGGED_PER_REASON else logging.DEBUG
        logger.log(level, "skipped (%s): %s", reason, message)

    def handler(
        self, reason: str, url: str, counted: Callable[[], bool], once: bool = False
    ) -> Callable[[Exception], bool]:
        """A webdataset error handler for one shard: record, continue, never sleep.

        Args:
            reason: what the errors are counted as.
            url: the shard, for messages.
            counted: whether an error met now is this slot's to count (see `read_range`).
            once: count only the first error (a broken tar stream raises again at every
                following member); the rest are logged at DEBUG.
        """
        seen = []

        def handle(error: Exception) -> bool:
            detail = f"{url}: {error.args[0] if error.args else type(error).__name__}"
            if (once and seen) or not counted():
                logger.debug("not counted here (%s): %s", reason, detail)
            else:
                self.record(reason, detail)
            seen.append(detail)
            return True

        return handle

    def take(self) -> dict[str, int]:
        """The skips recorded since the previous call."""
        since = dict(self._since)
        self._since.clear()
        return since

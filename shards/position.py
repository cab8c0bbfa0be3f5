"""Where a reader stands in its epochs, as plain data that a checkpoint can hold.

A position is the epoch, the batches of it this rank has delivered, and for each
DataLoader worker the number of crop specs it has drawn from its shuffle buffer (its
cursor). With those, a new reader fast-forwards each worker's stream without
decoding and then yields exactly the batches an uninterrupted run would have.

A position only fits a reader built the same way: the same shards and counts, the
same stream-shaping settings, rank, world size and worker count. Each is recorded
and checked on load, and a mismatch names the setting.
"""

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sonotype.errors import SonotypeError

_VERSION = 1


@dataclass
class ReaderPosition:
    """The reader's position.

    Attributes:
        epoch: the current epoch.
        batches: batches of `epoch` this rank has delivered.
        cursors: per logical worker, crop specs drawn in `epoch` so far.
        skipped: skipped samples by reason, over the reader's life.
    """

    epoch: int
    batches: int
    cursors: list[int]
    skipped: Counter[str] = field(default_factory=Counter)

    @classmethod
    def start(cls, epoch: int, n_workers: int) -> "ReaderPosition":
        """The start of `epoch`."""
        return cls(epoch, 0, [0] * n_workers)

    def state_dict(self, identity: Mapping[str, Any]) -> dict[str, Any]:
        """The position and the identity of the reader that holds it, as plain data."""
        return {
            "version": _VERSION,
            "epoch": self.epoch,
            "batches": self.batches,
            "cursors": list(self.cursors),
            "skipped": dict(self.skipped),
            "identity": dict(identity),
        }

    @classmethod
    def from_state_dict(
        cls, state: Mapping[str, Any], identity: Mapping[str, Any]
    ) -> "ReaderPosition":
        """The position saved in `state`, checked against the loading reader's `identity`.

        Raises:
            SonotypeError: the state is not a reader position, or was saved by a reader
                built differently (the message names what differs).
        """
        if not isinstance(state, Mapping) or state.get("version") != _VERSION:
            raise SonotypeError(
                f"not a reader position (version {_VERSION} expected): {dict(state)!r:.200}"
            )
        saved = state.get("identity", {})
        differ = [
            f"{name}: saved {saved.get(name)!r}, now {identity[name]!r}"
            for name in identity
            if saved.get(name) != identity[name]
        ]
        if differ:
            raise SonotypeError(
                "the saved reader position does not fit this reader; "
                "resume with the same data and reader settings (" + "; ".join(differ) + ")"
            )
        cursors = [int(c) for c in state["cursors"]]
        epoch, batches = int(state["epoch"]), int(state["batches"])
        if epoch < 0 or batches < 0 or any(c < 0 for c in cursors):
            raise SonotypeError(f"reader position has negative numbers: {dict(state)!r:.200}")
        return cls(epoch, batches, cursors, Counter(dict(state.get("skipped", {}))))

"""Pull an iterator in a background thread, a bounded number of items ahead of its consumer.

The single-device encode reads and decodes the next windows of segments while the
model runs on the current one: libsndfile's decoding and numpy release the GIL, so a
GPU (or a second core) is not left waiting for FLAC frames. Memory: at most `depth`
items wait in the queue, plus the one being made.
"""

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_POLL_S = 0.1
"""How often a producer blocked on a full queue checks whether the consumer has gone."""


def read_ahead(items: Iterable[T], depth: int) -> Iterator[T]:
    """Yield the items of `items`, produced by a background thread up to `depth` ahead.

    An exception raised while producing is raised here, at the item where it happened.
    If the consumer stops early (break, exception), the thread stops after the item it
    is making.

    Args:
        items: what to iterate over (iterated in the background thread only).
        depth: items made ahead; 0 iterates in the caller's thread.

    Yields:
        The items, in order.
    """
    if depth < 1:
        yield from items
        return
    waiting: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry: tuple[str, object]) -> bool:
        while not stop.is_set():
            try:
                waiting.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(("item", item)):
                    return
        except BaseException as error:  # handed to the consumer, raised there
            offer(("error", error))
            return
        offer(("done", None))

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = waiting.get()
            if kind == "done":
                return
            if kind == "error":
                raise value  # type: ignore[misc]
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()

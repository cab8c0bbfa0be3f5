"""read_ahead: order kept, bounded lead, errors raised in place, the thread ends with use."""

import threading
import time

import pytest

from training.read_ahead import read_ahead


def test_items_come_in_order_and_the_producer_stays_at_most_depth_ahead():
    made = []

    def produce():
        for i in range(20):
            made.append(i)
            yield i

    seen = []
    for item in read_ahead(produce(), depth=3):
        time.sleep(0.005)  # a slow consumer: the producer fills the queue and waits
        # made: the items queued (≤ 3), the one handed over, and one being offered
        assert len(made) - len(seen) <= 3 + 2
        seen.append(item)
    assert seen == list(range(20))


def test_an_error_while_producing_is_raised_after_the_items_before_it():
    def produce():
        yield 1
        yield 2
        raise ValueError("broken shard")

    items = read_ahead(produce(), depth=2)
    assert [next(items), next(items)] == [1, 2]
    with pytest.raises(ValueError, match="broken shard"):
        next(items)


def test_the_thread_stops_when_the_consumer_stops_early():
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    before = threading.active_count()
    items = read_ahead(endless(), depth=2)
    assert [next(items) for _ in range(5)] == [0, 1, 2, 3, 4]
    items.close()  # what a `break` out of a for loop does
    assert threading.active_count() == before


def test_depth_zero_iterates_in_the_callers_thread():
    threads = []

    def produce():
        threads.append(threading.current_thread())
        yield 1

    assert list(read_ahead(produce(), depth=0)) == [1]
    assert threads == [threading.current_thread()]

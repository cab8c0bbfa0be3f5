"""Epoch plans: pieces cover every sample once, quotas give every rank the same batch count."""

import pytest

from shards.plan import (
    ShardRange,
    apportion,
    batches_per_rank,
    cut_pieces,
    derive_seed,
    plan_single_pass,
    plan_training_epoch,
    worker_batches,
)
from sonotype.errors import SonotypeError

URLS = ("a.tar", "b.tar", "c.tar", "d.tar", "e.tar")
COUNTS = (50, 1, 7, 0, 23)  # very uneven, one empty


def _samples(pieces) -> list[tuple[str, int]]:
    return [(r.url, i) for piece in pieces for r in piece for i in range(r.start, r.stop)]


def test_apportion_is_proportional_and_exact():
    assert apportion(10, [1, 1, 1]) == [4, 3, 3]
    assert apportion(81, [3, 3, 2, 2]) == [25, 24, 16, 16]  # 24.3, 24.3, 16.2, 16.2
    assert sum(apportion(81, [3, 3, 2, 2])) == 81
    assert apportion(0, [5, 1]) == [0, 0]


def test_cut_pieces_cover_every_sample_exactly_once_in_order():
    order = [2, 0, 4, 1, 3]
    pieces = cut_pieces(URLS, COUNTS, order, [20, 20, 20, 21])
    assert [sum(r.n_samples for r in p) for p in pieces] == [20, 20, 20, 21]
    expected = [(URLS[s], i) for s in order for i in range(COUNTS[s])]
    assert _samples(pieces) == expected
    # A piece starts in the middle of a shard when needed.
    assert pieces[1][0] == ShardRange("a.tar", 13, 33)


def test_derived_seeds_differ_per_part_and_are_stable():
    assert derive_seed(0, "slot", 1, 0, 0) == derive_seed(0, "slot", 1, 0, 0)
    assert derive_seed(0, 1) != derive_seed(1, 0)
    assert derive_seed(0, "slot", 0, 0, 1) != derive_seed(0, "slot", 0, 1, 0)


@pytest.mark.parametrize(("world_size", "num_workers"), [(1, 0), (2, 2), (3, 1), (4, 3)])
def test_every_rank_gets_the_same_number_of_batches(world_size: int, num_workers: int):
    plans = plan_training_epoch(
        URLS,
        COUNTS,
        seed=3,
        epoch=1,
        world_size=world_size,
        num_workers=num_workers,
        batch_size=4,
        crops_per_segment=2,
    )
    workers = max(num_workers, 1)
    per_rank = [
        sum(p.n_batches for p in plans[r * workers : (r + 1) * workers]) for r in range(world_size)
    ]
    expected = 81 * 2 // (world_size * 4)
    assert per_rank == [expected] * world_size
    # The pieces still hold every sample exactly once.
    assert sorted(_samples(p.ranges for p in plans)) == sorted(
        (u, i) for u, c in zip(URLS, COUNTS, strict=True) for i in range(c)
    )


def test_pieces_follow_quotas_so_full_batches_read_each_sample_once():
    # 40 samples × 2 crops = 80 crops = 2 ranks × 5 batches × 8; workers make 3 and 2.
    plans = plan_training_epoch(
        ("x", "y"),
        (33, 7),
        seed=0,
        epoch=0,
        world_size=2,
        num_workers=2,
        batch_size=8,
        crops_per_segment=2,
    )
    assert [p.n_batches for p in plans] == [3, 2, 3, 2]
    assert [p.n_samples * 2 for p in plans] == [24, 16, 24, 16]


def test_the_shard_order_changes_with_the_epoch_and_not_with_the_rank():
    def order(epoch: int) -> list[str]:
        plans = plan_training_epoch(
            URLS,
            COUNTS,
            seed=0,
            epoch=epoch,
            world_size=1,
            num_workers=1,
            batch_size=1,
            crops_per_segment=1,
        )
        return list(dict.fromkeys(r.url for r in plans[0].ranges))

    orders = {tuple(order(epoch)) for epoch in range(6)}
    assert len(orders) > 1
    assert order(2) == order(2)


def test_too_little_data_for_one_batch_per_rank_is_an_error():
    with pytest.raises(SonotypeError, match="do not fill one batch of 8 on each of 4 ranks"):
        batches_per_rank(7, 1, world_size=4, batch_size=8)


def test_worker_batches_are_round_robin():
    assert list(worker_batches(7, 0, 3)) == [0, 3, 6]
    assert list(worker_batches(7, 2, 3)) == [2, 5]


def test_single_pass_splits_evenly_in_shard_order():
    plans = plan_single_pass(URLS, COUNTS, world_size=2, num_workers=2)
    assert [p.n_samples for p in plans] == [21, 20, 20, 20]
    assert all(p.n_batches is None for p in plans)
    assert _samples(p.ranges for p in plans) == [
        (u, i) for u, c in zip(URLS, COUNTS, strict=True) for i in range(c)
    ]

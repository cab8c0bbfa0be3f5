"""Training state pieces: RNG states round-trip through a weights-only file; the schedule."""

import random

import numpy as np
import pytest
import torch

from training.checkpoint import read_checkpoint_file, write_checkpoint_file
from training.schedule import learning_rate
from training.state import capture_rng, restore_rng


def _draws() -> tuple:
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]


def test_rng_states_survive_a_weights_only_checkpoint(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    np.random.normal()  # leaves a cached Gaussian in numpy's state
    path = tmp_path / "rng.pt"
    write_checkpoint_file({"rng": capture_rng()}, path)
    expected = _draws()
    restore_rng(read_checkpoint_file(path)["rng"])
    assert _draws() == expected


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 1.0 / 5),  # warm-up starts above zero...
        (3, 4.0 / 5),  # ...and climbs linearly
        (4, 1.0),  # peak once warm-up is over
        (54, 0.1 + 0.9 * 0.5),  # half way through the cosine
        (104, 0.1),  # the floor at max_steps
        (500, 0.1),  # and after it
    ],
)
def test_warmup_then_cosine_to_the_floor(step, expected):
    assert learning_rate(step, 1.0, 4, 104, 0.1) == pytest.approx(expected)

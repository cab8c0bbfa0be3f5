"""Shared fixtures: deterministic RNG state and synthetic audio factories."""

import random
from pathlib import Path

import numpy as np
import pytest

from sonotype.config.example import ExampleConfig
from sonotype.config.load import CONFIGS_DIR, load_config
from sonotype.example import ExampleSummary, write_example
from tests.audio_factory import AudioFactory


@pytest.fixture(autouse=True)
def deterministic_rng():
    """Seed Python's and numpy's global generators, and restore their state afterwards."""
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    random.seed(0)
    np.random.seed(0)
    yield
    random.setstate(python_state)
    np.random.set_state(numpy_state)


@pytest.fixture
def audio_factory(tmp_path: Path) -> AudioFactory:
    """Writes synthetic audio files (clean and broken) under the test's tmp_path."""
    return AudioFactory(tmp_path / "audio")


def small_example_config(**changes) -> ExampleConfig:
    """The small example deployment (configs/example/small.yaml) with optional overrides."""
    overrides = [f"{key}={value}" for key, value in changes.items()]
    return load_config(ExampleConfig, CONFIGS_DIR / "example" / "small.yaml", overrides)


@pytest.fixture(scope="session")
def small_example(tmp_path_factory: pytest.TempPathFactory) -> ExampleSummary:
    """The small example deployment, written once per test session (read-only for tests)."""
    root = tmp_path_factory.mktemp("small-example")
    return write_example(small_example_config(), str(root), workers=1)

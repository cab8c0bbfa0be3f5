"""A seeded synthetic deployment that looks like real field recordings, with ground truth.

`write_example(config, out)` writes recorder folders of WAV/FLAC files named as
AudioMoth and Song Meter recorders name them, side files like theirs, and
`ground_truth.parquet`: which sound source dominates each second of each file, and
the same as annotations (`ground_truth.csv`) for `sonotype evaluate`.
"""

from sonotype.example.deployment import PlannedFile, plan_deployment
from sonotype.example.generate import (
    ANNOTATIONS_FILE,
    GROUND_TRUTH_FILE,
    ExampleSummary,
    write_example,
)
from sonotype.example.soundscape import SOURCES

__all__ = [
    "ANNOTATIONS_FILE",
    "GROUND_TRUTH_FILE",
    "SOURCES",
    "ExampleSummary",
    "PlannedFile",
    "plan_deployment",
    "write_example",
]

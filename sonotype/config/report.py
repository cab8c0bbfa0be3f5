"""Config of `sonotype report`: how many examples, how much data the page samples, which clock.

Every setting that makes the page heavier has a bound here: the page weighs about
`n_examples × (clip + thumbnail)` plus a fixed number of plot images, whatever the
size of the dataset. A 3 s FLAC clip of a 24 kHz soundscape is about 100 kB and its
thumbnail 8 kB, so the defaults (at most 64 examples) stay under about 8 MB, and the
page loads no clip before it is played. Memory while building it is one block of
`block_rows` rows plus the `map_sample` rows kept for the 2-D map.
"""

from typing import Literal

from pydantic import Field

from sonotype.config.base import StrictModel, TimeZone


class ReportConfig(StrictModel):
    """What the HTML report shows and how much of the data it samples."""

    examples_per_sonotype: int = Field(
        default=3, ge=1, le=20, description="audio examples (nearest the centroid) per sonotype"
    )
    max_examples: int = Field(
        default=64,
        ge=1,
        description=(
            "examples on the whole page; with many sonotypes each gets fewer (at least one "
            "while k <= max_examples, none beyond)"
        ),
    )
    clip_s: float = Field(
        default=3.0,
        gt=0.0,
        le=30.0,
        description="length of each audio example, s (the densest part of the segment)",
    )
    clip_format: Literal["flac", "wav"] = Field(
        default="flac",
        description="audio example files: flac (smaller) or 16-bit wav; browsers play both",
    )
    clip_peak_dbfs: float | None = Field(
        default=-1.0,
        le=0.0,
        description="peak-normalise examples to this level, dBFS, so quiet sounds are audible; "
        "null keeps the recorded level",
    )
    clip_max_gain_db: float = Field(
        default=40.0,
        ge=0.0,
        description="largest amplification of an example, dB: near-silence stays quiet",
    )
    map_sample: int = Field(
        default=3000, ge=10, description="rows drawn uniformly for the 2-D embedding map"
    )
    map_method: Literal["pca", "tsne"] = Field(
        default="pca", description="2-D projection of the map: pca (fast) or tsne (slower)"
    )
    max_heatmap_sonotypes: int = Field(
        default=24,
        ge=1,
        description="hour × date heatmaps for this many sonotypes (the most frequent)",
    )
    max_failed_rows: int = Field(
        default=200, ge=0, description="failed recordings listed in the overview table"
    )
    max_curve_points: int = Field(
        default=2000, ge=10, description="points per training curve (longer runs are strided)"
    )
    block_rows: int = Field(
        default=65536,
        ge=1,
        description="rows read from the feature store at once; bounds memory",
    )
    timezone: TimeZone = Field(
        default="UTC",
        description="IANA zone of dates and hours of day on the page (e.g. America/Cayenne)",
    )
    random_state: int = Field(default=0, ge=0, description="seed of the map sample and t-SNE")

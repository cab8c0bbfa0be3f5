"""Config of `sonotype cluster`: out-of-core k-means on the feature store."""

from typing import Literal

from pydantic import Field, field_validator, model_validator

from sonotype.config.base import StrictModel, TimeZone

SHAPING_FIELDS = ("k", "level", "window_s", "loudness", "feature", "normalise")
"""Fields that define what a clustering *is*: an update keeps them, a change needs a refit."""


class ClusterConfig(StrictModel):
    """How frames or segments are grouped into sonotypes.

    Memory is bounded by `block_rows × dim × 4` bytes per block being read (one per
    Dask worker while labelling, one while fitting) plus `reservoir_size × dim × 4`
    bytes for the initialisation sample — never by the size of the store.
    """

    k: int = Field(default=16, ge=2, le=32767, description="number of sonotypes")
    level: Literal["frame", "window", "segment"] = Field(
        default="window",
        description=(
            "cluster every frame; every window (window_s long: the mean and standard "
            "deviation of its frame embeddings; labels are written per frame); or every "
            "segment (pooled)"
        ),
    )
    window_s: float = Field(
        default=1.0, gt=0.0, description="window length in seconds (level=window)"
    )
    loudness: bool = Field(
        default=True,
        description=(
            "level=window: each window also carries its recorded level (dBFS, before the "
            "encoder's gain normalisation), so loud and quiet sounds stay apart"
        ),
    )
    feature: Literal["embeddings", "tokens"] = Field(
        default="embeddings",
        description=(
            "embeddings: frame embeddings or per-segment pooled embeddings; "
            "tokens: bag-of-tokens histogram per segment (level=segment only)"
        ),
    )
    normalise: Literal["centred-l2", "standard", "balanced", "l2", "none"] = Field(
        default="balanced",
        description=(
            "centred-l2: subtract the mean row of the first fit, then scale rows to unit "
            "length, so k-means groups by direction around the data's centre, not by "
            "loudness or the common offset every embedding shares; the centre is saved and "
            "kept, so a new year is scaled like the old. standard: subtract the same centre "
            "and divide each column by its standard deviation (both saved), so columns of "
            "different units weigh alike. balanced: standard, then each block of columns "
            "(embedding means, embedding spreads, level) divided by the root of its width, "
            "so that blocks weigh alike. l2: unit-length rows (cosine). "
            "none: rows as they are"
        ),
    )
    block_rows: int = Field(
        default=65536,
        ge=1,
        description="rows read at once (rounded up to whole Zarr chunks); bounds memory",
    )
    batch_size: int = Field(default=4096, ge=1, description="rows per MiniBatchKMeans step")
    passes: int = Field(default=2, ge=1, description="passes over the rows while fitting")
    reservoir_size: int = Field(
        default=20000, ge=2, description="uniform sample for k-means++ init and k selection"
    )
    n_init: int = Field(
        default=3, ge=1, description="k-means++ draws on the reservoir; the best starts the fit"
    )
    reassignment_ratio: float = Field(
        default=0.0,
        ge=0.0,
        description=(
            "MiniBatchKMeans moves centres with fewer rows than this share of the largest to "
            "random rows; 0 (not sklearn's 0.01) keeps rare sonotypes and label identities, "
            "and the reservoir init already avoids empty centres"
        ),
    )
    random_state: int = Field(default=0, ge=0)
    update_strategy: Literal["continue", "refit"] = Field(
        default="continue",
        description=(
            "continue: resume from the saved centroids and counts with the new rows only; "
            "refit: refit on all rows from a new k-means++ init"
        ),
    )
    relabel_all: bool = Field(
        default=False,
        description="on --update, relabel every row (exact churn) instead of the new ones only",
    )
    new_sonotypes: int = Field(
        default=2,
        ge=0,
        description=(
            "on --update (continue), the most new sonotypes one update may open for new "
            "rows far from every old centroid that form a dense group (new numbers, never "
            "reused); 0: never"
        ),
    )
    new_sonotype_min_share: float = Field(
        default=0.02,
        gt=0.0,
        le=1.0,
        description="share of the new rows a group must hold to become a new sonotype",
    )
    far_quantile: float = Field(
        default=0.99,
        gt=0.0,
        lt=1.0,
        description=(
            "a new row is far when its distance to every old centroid exceeds this quantile "
            "of the old rows' distances to their own centroid"
        ),
    )
    churn_sample: int = Field(
        default=20000, ge=1, description="old rows sampled to estimate churn on --update"
    )
    k_selection: list[int] = Field(
        default=[4, 8, 16, 32, 64],
        description="k values of the k-selection table (fitted on the reservoir); [] to skip",
    )
    silhouette_sample: int = Field(
        default=5000, ge=10, description="rows of the reservoir used for each silhouette score"
    )
    timezone: TimeZone = Field(
        default="UTC", description="IANA zone of the dates and hours-of-day in the statistics"
    )

    @field_validator("k_selection")
    @classmethod
    def _valid_ks(cls, values: list[int]) -> list[int]:
        if any(value < 2 for value in values):
            raise ValueError(f"k values of at least 2, got {values}")
        return sorted(set(values))

    @model_validator(mode="after")
    def _consistent(self) -> "ClusterConfig":
        if self.feature == "tokens" and self.level != "segment":
            raise ValueError("feature=tokens (bag-of-tokens) needs level=segment")
        if self.reservoir_size < self.k:
            raise ValueError(
                f"reservoir_size ({self.reservoir_size}) must be at least k ({self.k})"
            )
        if any(value > self.reservoir_size for value in self.k_selection):
            raise ValueError(
                f"k_selection values must not exceed reservoir_size ({self.reservoir_size})"
            )
        return self

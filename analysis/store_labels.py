"""The label arrays of a feature store, `labels/<name>` (part of FeatureStore).

A clustering's labels: one int16/int32 array per clustering, along frames or along
segments, on the same chunk grid as the features there. An append resizes them with
the features (`analysis.store_append`) and fills the new rows with `UNLABELLED`.
"""

from collections.abc import Mapping
from typing import Any

import numpy as np
import zarr

from analysis.store_layout import FRAME, UNLABELLED, checked_level, compressor
from sonotype.contracts import LABELS, POOLED, TOKENS
from sonotype.errors import SonotypeError

_LABEL_ATTR_LEVEL = "level"


class LabelArrays:
    """The `labels/<name>` arrays of `FeatureStore`: listing, creating, writing, attributes.

    A mixin of `FeatureStore`, split off to keep each module to one concept: it uses
    the handle's `url`, `group`, `array`, `n_rows` and `chunk_rows`.
    """

    def label_names(self, level: str | None = None) -> list[str]:
        """Names of the label arrays, optionally only those at `level`."""
        if LABELS not in self.group:
            return []
        names = []
        for name, array in self.group[LABELS].arrays():
            if level is None or array.metadata.dimension_names[0] == level:
                names.append(name)
        return sorted(names)

    def create_labels(self, name: str, level: str, n_clusters: int) -> zarr.Array:
        """Create (or replace) `labels/<name>`, every row `UNLABELLED`.

        Args:
            name: the clustering's name.
            level: "frame" or "segment".
            n_clusters: number of sonotypes; picks int16 (up to 32767) or int32.

        Returns:
            The new array, as long as the frame or segment arrays.

        Raises:
            SonotypeError: an unknown level, or a name that is empty or holds '/'.
        """
        level = checked_level(level)
        if not name or "/" in name:
            raise SonotypeError(f"label name must be non-empty without '/', got {name!r}")
        length = self.array(TOKENS if level == FRAME else POOLED).shape[0]
        labels = self.group.require_group(LABELS)
        return labels.create_array(
            name,
            shape=(length,),
            chunks=(self.chunk_rows(level),),
            dtype="int16" if n_clusters <= np.iinfo(np.int16).max else "int32",
            fill_value=UNLABELLED,
            compressors=compressor(),
            dimension_names=(level,),
            attributes={_LABEL_ATTR_LEVEL: level},
            overwrite=True,
        )

    def labels_level(self, name: str) -> str:
        """The level ("frame" or "segment") of `labels/<name>`."""
        return str(self.array(f"{LABELS}/{name}").metadata.dimension_names[0])

    def write_labels(self, name: str, start: int, values: np.ndarray) -> None:
        """Write labels of rows `[start, start + len(values))` of `labels/<name>`.

        Raises:
            SonotypeError: the rows leave the committed range.
        """
        array = self.array(f"{LABELS}/{name}")
        stop = start + len(values)
        committed = self.n_rows(self.labels_level(name))
        if not 0 <= start <= stop <= committed:
            raise SonotypeError(
                f"{self.url}: labels for rows [{start}, {stop}); committed rows are "
                f"[0, {committed})"
            )
        array[start:stop] = values.astype(array.dtype)

    def labels_attrs(self, name: str) -> dict[str, Any]:
        """The attributes of `labels/<name>` (the clustering records its status there)."""
        return self.array(f"{LABELS}/{name}").attrs.asdict()

    def set_labels_attrs(self, name: str, attrs: Mapping[str, Any]) -> None:
        """Update the attributes of `labels/<name>` in one write."""
        self.array(f"{LABELS}/{name}").update_attributes(dict(attrs))

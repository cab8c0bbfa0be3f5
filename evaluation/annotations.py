"""Annotations: labelled time spans of recordings, read from CSV or Raven selection tables.

Whatever the input, the result is one table with a row per annotated span:
`recording_id` (the catalog's), `start_s` and `end_s` (seconds from the recording's
start) and `label`.

- CSV: a `label` column; `path` (the source file, as ingested or relative to any of its
  parent folders) or `recording_id`; and either `start_s`/`end_s` (seconds from the
  file start) or `begin_time`/`end_time` (ISO 8601 UTC, converted with the recording's
  start time from the catalog).
- Raven selection tables (tab-separated, `Begin Time (s)`, `End Time (s)` and a label
  column named by the caller): one table per recording. The recording is the table's
  `Begin File`/`Begin Path` column when present, else the table's file name up to
  `.Table` (Raven's default naming, `NAME.Table.1.selections.txt`) matched against the
  recordings' file names.

Rows naming a recording the catalog does not hold are skipped with a WARNING that
names them; anything else malformed is an error naming the file and field.
"""

import io
import logging
import posixpath
from collections.abc import Sequence

import pandas as pd

from sonotype.errors import SonotypeError
from sonotype.fsio import url_to_fs

logger = logging.getLogger(__name__)

COLUMNS = ["recording_id", "start_s", "end_s", "label"]
RAVEN_BEGIN = "Begin Time (s)"
RAVEN_END = "End Time (s)"
RAVEN_FILE_COLUMNS = ("Begin File", "Begin Path")
DEFAULT_RAVEN_LABEL = "Annotation"


class AnnotationError(SonotypeError):
    """An annotation file cannot be read or breaks its format."""


def read_annotations(
    sources: Sequence[str], recordings: pd.DataFrame, raven_label: str = DEFAULT_RAVEN_LABEL
) -> pd.DataFrame:
    """Read annotation files into one table of `COLUMNS`.

    Args:
        sources: CSV files and/or Raven selection tables.
        recordings: the catalog's `recording_id`, `path` and `start_time` (UTC).
        raven_label: the column of a Raven table that holds the label.

    Returns:
        One row per span, with `start_s < end_s`, sorted by recording and start.

    Raises:
        AnnotationError: a file cannot be read, misses a needed column, holds a bad
            value, or no row names a recording in the catalog.
    """
    if not sources:
        raise AnnotationError("no annotation file given")
    finder = _RecordingFinder(recordings)
    parts = []
    for source in sources:
        text = _read_text(source)
        first_line = text.split("\n", 1)[0]
        if RAVEN_BEGIN in first_line.split("\t"):
            parts.append(_raven(source, text, finder, raven_label))
        else:
            parts.append(_csv(source, text, finder, recordings))
    table = pd.concat(parts, ignore_index=True)
    if table.empty:
        raise AnnotationError(
            f"{', '.join(sources)}: no annotation names a recording of the catalog"
        )
    return table.sort_values(["recording_id", "start_s"], kind="stable").reset_index(drop=True)


def _read_text(source: str) -> str:
    fs, path = url_to_fs(source)
    try:
        with fs.open(path, "rb") as handle:
            return handle.read().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise AnnotationError(f"{source}: cannot read annotations ({error})") from error


class _RecordingFinder:
    """Finds a recording by its id, its source path, or a trailing part of that path."""

    def __init__(self, recordings: pd.DataFrame):
        self.ids = set(recordings["recording_id"])
        self.by_path: dict[str, str] = {}
        self.by_name: dict[str, list[str]] = {}
        for recording_id, path in zip(recordings["recording_id"], recordings["path"], strict=True):
            normal = _normal_path(path)
            self.by_path[normal] = recording_id
            stem = posixpath.splitext(posixpath.basename(normal))[0]
            self.by_name.setdefault(stem, []).append(recording_id)
        self.missing: list[str] = []

    def by_source_path(self, path: str, where: str) -> str | None:
        normal = _normal_path(path)
        if normal in self.by_path:
            return self.by_path[normal]
        matches = [rid for full, rid in self.by_path.items() if full.endswith("/" + normal)]
        if len(matches) > 1:
            raise AnnotationError(
                f"{where}: path {path!r} matches {len(matches)} recordings; give more of it"
            )
        if not matches:
            self.missing.append(path)
            return None
        return matches[0]

    def by_file_name(self, name: str, where: str) -> str | None:
        stem = posixpath.splitext(posixpath.basename(_normal_path(name)))[0]
        matches = self.by_name.get(stem, [])
        if len(matches) > 1:
            raise AnnotationError(
                f"{where}: file name {name!r} matches {len(matches)} recordings; "
                "use a CSV with `path` or `recording_id`"
            )
        if not matches:
            self.missing.append(name)
            return None
        return matches[0]

    def warn_missing(self, where: str) -> None:
        if self.missing:
            unique = sorted(set(self.missing))
            logger.warning(
                "%s: %d annotated recording(s) not in the catalog, skipped: %s%s",
                where,
                len(unique),
                ", ".join(unique[:5]),
                " ..." if len(unique) > 5 else "",
            )
            self.missing = []


def _normal_path(path: str) -> str:
    return str(path).replace("\\", "/").strip()


def _require(table: pd.DataFrame, columns: Sequence[str], where: str) -> None:
    absent = [column for column in columns if column not in table.columns]
    if absent:
        raise AnnotationError(
            f"{where}: missing column(s) {', '.join(absent)}; found {', '.join(table.columns)}"
        )


def _numbers(values: pd.Series, where: str, column: str) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.isna().any():
        row = int(numbers.index[numbers.isna()][0])
        raise AnnotationError(
            f"{where}: row {row + 1}: {column} must be a number of seconds, "
            f"got {values.iloc[row]!r}"
        )
    return numbers.astype(float)


def _csv(
    source: str, text: str, finder: _RecordingFinder, recordings: pd.DataFrame
) -> pd.DataFrame:
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise AnnotationError(f"{source}: not a CSV table ({error})") from error
    _require(table, ["label"], source)
    if "recording_id" in table.columns:
        ids = table["recording_id"].where(table["recording_id"].isin(finder.ids))
        finder.missing.extend(table.loc[ids.isna(), "recording_id"].tolist())
    elif "path" in table.columns:
        ids = pd.Series(
            [finder.by_source_path(path, source) for path in table["path"]], dtype=object
        )
    else:
        raise AnnotationError(f"{source}: needs a `path` or a `recording_id` column")
    finder.warn_missing(source)
    if {"start_s", "end_s"} <= set(table.columns):
        start = _numbers(table["start_s"], source, "start_s")
        end = _numbers(table["end_s"], source, "end_s")
    elif {"begin_time", "end_time"} <= set(table.columns):
        start, end = _utc_offsets(table, ids, recordings, source)
    else:
        raise AnnotationError(
            f"{source}: needs `start_s`/`end_s` (seconds from the file start) or "
            "`begin_time`/`end_time` (UTC)"
        )
    return _spans(ids, start, end, table["label"], source)


def _utc_offsets(
    table: pd.DataFrame, ids: pd.Series, recordings: pd.DataFrame, source: str
) -> tuple[pd.Series, pd.Series]:
    starts = recordings.set_index("recording_id")["start_time"]
    recording_start = pd.to_datetime(ids.map(starts), utc=True)
    offsets = []
    for column in ("begin_time", "end_time"):
        times = pd.to_datetime(table[column], utc=True, errors="coerce", format="ISO8601")
        if times.isna().any():
            row = int(times.index[times.isna()][0])
            raise AnnotationError(
                f"{source}: row {row + 1}: {column} must be an ISO 8601 time, "
                f"got {table[column].iloc[row]!r}"
            )
        offsets.append((times - recording_start).dt.total_seconds())
    unknown = ids.notna() & recording_start.isna()
    if unknown.any():
        raise AnnotationError(
            f"{source}: UTC times given for recording(s) without a known start time "
            f"({', '.join(sorted(set(ids[unknown]))[:5])}); give start_s/end_s instead"
        )
    return offsets[0], offsets[1]


def _raven(source: str, text: str, finder: _RecordingFinder, label: str) -> pd.DataFrame:
    try:
        table = pd.read_csv(io.StringIO(text), sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise AnnotationError(f"{source}: not a Raven selection table ({error})") from error
    _require(table, [RAVEN_BEGIN, RAVEN_END, label], source)
    file_column = next((c for c in RAVEN_FILE_COLUMNS if c in table.columns), None)
    if file_column is not None:
        ids = pd.Series(
            [finder.by_file_name(name, source) for name in table[file_column]], dtype=object
        )
    else:
        # Raven names a saved table after its sound file: NAME.Table.1.selections.txt.
        name = posixpath.basename(_normal_path(source)).split(".Table", 1)[0]
        ids = pd.Series([finder.by_file_name(name, source)] * len(table), dtype=object)
    finder.warn_missing(source)
    start = _numbers(table[RAVEN_BEGIN], source, RAVEN_BEGIN)
    end = _numbers(table[RAVEN_END], source, RAVEN_END)
    return _spans(ids, start, end, table[label], source)


def _spans(
    ids: pd.Series, start: pd.Series, end: pd.Series, labels: pd.Series, source: str
) -> pd.DataFrame:
    spans = pd.DataFrame(
        {
            "recording_id": ids.to_numpy(),
            "start_s": start.to_numpy(),
            "end_s": end.to_numpy(),
            "label": labels.astype(str).str.strip().to_numpy(),
        }
    )
    backwards = spans.index[spans["end_s"] <= spans["start_s"]]
    if len(backwards):
        row = int(backwards[0])
        raise AnnotationError(
            f"{source}: row {row + 1}: the span ends ({spans.at[row, 'end_s']} s) before it "
            f"starts ({spans.at[row, 'start_s']} s)"
        )
    empty = spans.index[spans["label"] == ""]
    if len(empty):
        raise AnnotationError(f"{source}: row {int(empty[0]) + 1}: empty label")
    return spans[spans["recording_id"].notna()].reset_index(drop=True)

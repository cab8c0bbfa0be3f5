"""`sonotype shards stats`: hours of audio per site / year / hour of day, and a QC summary.

Everything comes from `catalog/segments.parquet`, read in record batches and
aggregated with pyarrow, so memory depends on the number of (site, year, hour)
groups, not on the number of segments. A segment counts towards the year and hour
of day of its `start_time`, taken in UTC unless a time zone is given; segments with
an unknown start time go to a null year and hour. Hours are hours of segment audio:
a stereo recording split into two streams counts twice.

Two tables are written under `OUT/catalog/`:
- `stats_hours.parquet`: site, year, hour_of_day, n_segments_kept, hours_kept,
  n_segments_dropped, hours_dropped (schema metadata `timezone` says which clock);
- `stats_qc.parquet`: site, measure, n_segments, hours; measures are `all`, `kept`,
  `dropped:<reason>`, `clipped` (any clipped sample), `silent`, `nonfinite`; a
  measure with no segment at a site has no row.
"""

import zoneinfo
from collections import defaultdict
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from shards.catalog import count_segments, iter_segments
from sonotype.contracts import UTC_TIMESTAMP, OutputLayout
from sonotype.contracts import SegmentColumn as Col
from sonotype.errors import SonotypeError
from sonotype.fsio import join, write_parquet_atomic
from sonotype.progress import progress_bar

HOURS_FILE = "stats_hours.parquet"
QC_FILE = "stats_qc.parquet"

HOURS_SCHEMA = pa.schema(
    [
        pa.field("site", pa.string()),
        pa.field("year", pa.int32()),
        pa.field("hour_of_day", pa.int8()),
        pa.field("n_segments_kept", pa.int64()),
        pa.field("hours_kept", pa.float64()),
        pa.field("n_segments_dropped", pa.int64()),
        pa.field("hours_dropped", pa.float64()),
    ]
)
QC_SCHEMA = pa.schema(
    [
        pa.field("site", pa.string()),
        pa.field("measure", pa.string()),
        pa.field("n_segments", pa.int64()),
        pa.field("hours", pa.float64()),
    ]
)

_COLUMNS = [
    str(c)
    for c in (
        Col.SITE,
        Col.START_TIME,
        Col.DURATION_S,
        Col.KEPT,
        Col.DROP_REASON,
        Col.CLIPPED_FRACTION,
        Col.IS_SILENT,
        Col.HAS_NONFINITE,
    )
]
_UNKNOWN = "(unknown)"


@dataclass(frozen=True)
class ShardStats:
    """The statistics tables and where they were written.

    Attributes:
        hours: HOURS_SCHEMA rows, sorted by site, year, hour.
        qc: QC_SCHEMA rows, sorted by site, measure.
        timezone: the clock of `year` and `hour_of_day` ("UTC" or an IANA name).
        hours_path: where `hours` was written.
        qc_path: where `qc` was written.
    """

    hours: pa.Table
    qc: pa.Table
    timezone: str
    hours_path: str
    qc_path: str

    def to_text(self) -> str:
        """Plain-text tables: hours per site × year, per hour of day × site, QC per site."""
        return "\n\n".join(
            [
                _site_by_year(self.hours, self.timezone),
                _hour_by_site(self.hours, self.timezone),
                _qc_by_site(self.qc),
                f"written: {self.hours_path}\n         {self.qc_path}",
            ]
        )


def shard_stats(out: str, timezone: str | None = None) -> ShardStats:
    """Aggregate the segment catalog of `OUT` and write the statistics tables.

    Args:
        out: the output root written by ingest.
        timezone: IANA name for the hour-of-day and year clock (None: UTC).

    Returns:
        The tables, also written to `OUT/catalog/stats_hours.parquet` and `stats_qc.parquet`.

    Raises:
        SonotypeError: the catalog is missing or breaks the contract, or the time zone
            is unknown.
    """
    zone = timezone or "UTC"
    hours_table, qc_table = compute_shard_stats(out, zone)
    catalog_dir = OutputLayout(out).catalog_dir
    hours_path, qc_path = join(catalog_dir, HOURS_FILE), join(catalog_dir, QC_FILE)
    write_parquet_atomic(hours_table, hours_path)
    write_parquet_atomic(qc_table, qc_path)
    return ShardStats(hours_table, qc_table, zone, hours_path, qc_path)


def compute_shard_stats(out: str, timezone: str = "UTC") -> tuple[pa.Table, pa.Table]:
    """The hours and QC tables of `OUT`'s segment catalog, computed without writing them.

    Args:
        out: the output root written by ingest.
        timezone: IANA name for the hour-of-day and year clock.

    Returns:
        (hours, qc): HOURS_SCHEMA rows (schema metadata `timezone`) and QC_SCHEMA rows.

    Raises:
        SonotypeError: the catalog is missing or breaks the contract, or the time zone
            is unknown.
    """
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        raise SonotypeError(f"time zone {timezone!r}: expected an IANA name such as UTC") from error
    hours: dict[tuple, list[float]] = defaultdict(lambda: [0, 0.0, 0, 0.0])
    qc: dict[tuple, list[float]] = defaultdict(lambda: [0, 0.0])
    with progress_bar(count_segments(out), unit="segments", desc="shard stats") as bar:
        for batch in iter_segments(out, _COLUMNS):
            table = pa.Table.from_batches([batch])
            _add_hours(hours, table, timezone)
            _add_qc(qc, table)
            bar.update(batch.num_rows)
    return _hours_table(hours, timezone), _qc_table(qc)


def _add_hours(totals: dict[tuple, list[float]], table: pa.Table, zone: str) -> None:
    start = table[Col.START_TIME].cast(pa.timestamp(UTC_TIMESTAMP.unit, tz=zone))
    kept = pc.fill_null(table[Col.KEPT], False)
    parts = pa.table(
        {
            "site": table[Col.SITE],
            "year": pc.year(start),
            "hour": pc.hour(start),
            "kept": kept,
            "seconds": pc.fill_null(table[Col.DURATION_S], 0.0),
        }
    )
    grouped = parts.group_by(["site", "year", "hour", "kept"], use_threads=False).aggregate(
        [("seconds", "sum"), ("seconds", "count")]
    )
    for row in grouped.to_pylist():
        entry = totals[(row["site"], row["year"], row["hour"])]
        column = 0 if row["kept"] else 2
        entry[column] += row["seconds_count"]
        entry[column + 1] += row["seconds_sum"]


def _add_qc(totals: dict[tuple, list[float]], table: pa.Table) -> None:
    kept = pc.fill_null(table[Col.KEPT], False)
    reason = pc.fill_null(table[Col.DROP_REASON], "unspecified")
    measures = {
        "all": pa.array([True] * table.num_rows),
        "kept": kept,
        "clipped": pc.fill_null(pc.greater(table[Col.CLIPPED_FRACTION], 0.0), False),
        "silent": pc.fill_null(table[Col.IS_SILENT], False),
        "nonfinite": pc.fill_null(table[Col.HAS_NONFINITE], False),
    }
    seconds = pc.fill_null(table[Col.DURATION_S], 0.0)
    for measure, mask in measures.items():
        part = pa.table({"site": table[Col.SITE], "seconds": seconds}).filter(mask)
        _add_grouped(totals, part, lambda _row, m=measure: m)
    dropped = pa.table({"site": table[Col.SITE], "reason": reason, "seconds": seconds}).filter(
        pc.invert(kept)
    )
    _add_grouped(totals, dropped, lambda row: f"dropped:{row['reason']}", ["reason"])


def _add_grouped(totals, part: pa.Table, measure, extra: list[str] | None = None) -> None:
    keys = ["site", *(extra or [])]
    grouped = part.group_by(keys, use_threads=False).aggregate(
        [("seconds", "sum"), ("seconds", "count")]
    )
    for row in grouped.to_pylist():
        entry = totals[(row["site"], measure(row))]
        entry[0] += row["seconds_count"]
        entry[1] += row["seconds_sum"]


def _hours_table(totals: dict[tuple, list[float]], zone: str) -> pa.Table:
    rows = [
        {
            "site": site,
            "year": year,
            "hour_of_day": hour,
            "n_segments_kept": int(v[0]),
            "hours_kept": v[1] / 3600,
            "n_segments_dropped": int(v[2]),
            "hours_dropped": v[3] / 3600,
        }
        for (site, year, hour), v in sorted(totals.items(), key=_sort_key)
    ]
    schema = HOURS_SCHEMA.with_metadata({"timezone": zone})
    return pa.Table.from_pylist(rows, schema=schema)


def _qc_table(totals: dict[tuple, list[float]]) -> pa.Table:
    rows = [
        {"site": site, "measure": measure, "n_segments": int(v[0]), "hours": v[1] / 3600}
        for (site, measure), v in sorted(totals.items(), key=_sort_key)
    ]
    return pa.Table.from_pylist(rows, schema=QC_SCHEMA)


def _sort_key(item: tuple) -> tuple:
    """Sort with None last in each key part."""
    return tuple((part is None, part if part is not None else 0) for part in item[0])


# --- text tables -------------------------------------------------------------------


def _format(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [header, *rows]
    return "\n".join(
        "  ".join(
            str(cell).ljust(w) if i == 0 else str(cell).rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )


def _label(value: object) -> str:
    return _UNKNOWN if value is None else str(value)


def _unknown_last(label: str) -> tuple[bool, str]:
    return label == _UNKNOWN, label


def _hour_label(hour: int | None) -> str:
    return _UNKNOWN if hour is None else f"{hour:02d}"


def _site_by_year(hours: pa.Table, zone: str) -> str:
    table = hours.group_by(["site", "year"]).aggregate([("hours_kept", "sum")])
    sites = sorted({_label(s) for s in table["site"].to_pylist()}, key=_unknown_last)
    years = sorted({_label(y) for y in table["year"].to_pylist()}, key=_unknown_last)
    cells = defaultdict(float)
    for row in table.to_pylist():
        cells[(_label(row["site"]), _label(row["year"]))] += row["hours_kept_sum"]
    rows = [
        [site, *(f"{cells[(site, y)]:.2f}" for y in years), f"{_total(cells, site):.2f}"]
        for site in sites
    ]
    title = f"Hours of kept audio per site and year (start_time, {zone}):"
    return title + "\n" + _format(["site", *years, "total"], rows)


def _total(cells: dict, site: str) -> float:
    return sum(v for (s, _), v in cells.items() if s == site)


def _hour_by_site(hours: pa.Table, zone: str) -> str:
    table = hours.group_by(["hour_of_day", "site"]).aggregate([("hours_kept", "sum")])
    sites = sorted({_label(s) for s in table["site"].to_pylist()}, key=_unknown_last)
    cells = defaultdict(float)
    for row in table.to_pylist():
        cells[(row["hour_of_day"], _label(row["site"]))] += row["hours_kept_sum"]
    present = {hour for hour, _ in cells}
    hours_listed = [*range(24), *([None] if None in present else [])]
    rows = [
        [_hour_label(hour), *(f"{cells[(hour, site)]:.2f}" for site in sites)]
        for hour in hours_listed
    ]
    title = f"Hours of kept audio per hour of day ({zone}) and site:"
    return title + "\n" + _format(["hour", *sites], rows)


def _qc_by_site(qc: pa.Table) -> str:
    measures = sorted(set(qc["measure"].to_pylist()), key=_measure_order)
    sites = sorted({_label(s) for s in qc["site"].to_pylist()}, key=_unknown_last)
    cells = {(_label(r["site"]), r["measure"]): r["n_segments"] for r in qc.to_pylist()}
    rows = [[site, *(str(cells.get((site, m), 0)) for m in measures)] for site in sites]
    return "Segments per site (QC):\n" + _format(["site", *measures], rows)


def _measure_order(measure: str) -> tuple[int, str]:
    fixed = ["all", "kept", "clipped", "silent", "nonfinite"]
    return (fixed.index(measure), "") if measure in fixed else (len(fixed), measure)

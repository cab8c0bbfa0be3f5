"""Paths and fsspec URLs, and atomic writes (write to a temporary name, then rename).

Every stage reads what the previous one wrote from a local path or an fsspec URL
(`s3://`, `gs://`, `file://`, `memory://`). Outputs become visible only once complete:
a killed job leaves a temporary file behind, never a half-written output.
"""

import contextlib
import os
import posixpath
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

TEMP_MARKER = ".tmp-"
"""Infix of temporary names; anything containing it is an unfinished write."""


def url_to_fs(url: str | Path) -> tuple[fsspec.AbstractFileSystem, str]:
    """Return the filesystem for `url` and the path inside it."""
    return fsspec.core.url_to_fs(str(url))


def is_local(url: str | Path) -> bool:
    """Whether `url` names a file on this machine."""
    fs, _ = url_to_fs(url)
    return isinstance(fs, LocalFileSystem)


def join(base: str | Path, *parts: str) -> str:
    """Join path parts with '/', for local paths and URLs alike."""
    text = str(base)
    for part in parts:
        text = posixpath.join(text, part) if "://" in text else os.path.join(text, part)
    return text


def split(url: str | Path) -> tuple[str, str]:
    """(parent, last name) of a path or URL; a trailing '/' is ignored."""
    text = str(url).rstrip("/")
    return posixpath.split(text) if "://" in text else os.path.split(text)


def temporary_name(url: str) -> str:
    """A unique sibling name for `url` that marks an unfinished write."""
    head, tail = split(url)
    return join(head, f"{tail}{TEMP_MARKER}{uuid.uuid4().hex[:12]}")


def makedirs(url: str | Path) -> None:
    """Create a directory and its parents (a no-op on object stores without folders)."""
    fs, path = url_to_fs(url)
    fs.makedirs(path, exist_ok=True)


def exists(url: str | Path) -> bool:
    """Whether a file or directory exists at `url`."""
    fs, path = url_to_fs(url)
    return fs.exists(path)


@contextlib.contextmanager
def atomic_open(url: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open `url` for writing so that it appears only when the block ends without error.

    Locally the data go to a temporary sibling that is fsync'ed and renamed over the
    target (an atomic step on POSIX). On object stores an upload only becomes visible
    once complete, so the final name is written directly.

    Args:
        url: final location.
        mode: "wb" or "w".

    Yields:
        A writable file object.
    """
    fs, path = url_to_fs(url)
    if not isinstance(fs, LocalFileSystem):
        with fs.open(path, mode) as handle:
            yield handle
        return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    temp = temporary_name(path)
    try:
        with open(temp, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def write_bytes_atomic(url: str | Path, data: bytes) -> None:
    """Write `data` to `url` atomically."""
    with atomic_open(url, "wb") as handle:
        handle.write(data)


def write_text_atomic(url: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `url` atomically."""
    write_bytes_atomic(url, text.encode("utf-8"))


def write_parquet_atomic(table: pa.Table, url: str | Path) -> None:
    """Write an Arrow table as one Parquet file at `url`, atomically."""
    with atomic_open(url, "wb") as handle:
        pq.write_table(table, handle, compression="zstd")


def read_parquet(url: str | Path, columns: list[str] | None = None) -> pa.Table:
    """Read a Parquet file (or a directory of them) from a path or URL."""
    fs, path = url_to_fs(url)
    return pq.read_table(path, filesystem=fs, columns=columns)


def read_parquet_file(url: str | Path) -> pa.Table:
    """Read one Parquet file from a path or URL.

    Half the cost of `read_parquet` per call, which builds a dataset to look for
    partitions: it counts when thousands of small files are read in a row.
    """
    fs, path = url_to_fs(url)
    return pq.ParquetFile(path, filesystem=fs).read()


def glob(pattern: str | Path) -> list[str]:
    """Expand a glob on any filesystem; URLs keep their protocol. Sorted."""
    fs, path = url_to_fs(pattern)
    matches = sorted(fs.glob(path))
    if isinstance(fs, LocalFileSystem):
        return matches
    return [fs.unstrip_protocol(match) for match in matches]

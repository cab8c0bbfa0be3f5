"""Write WebDataset shards: one `.tar` per task, visible only once complete.

A shard is written to a temporary name and renamed when closed without error, so a
killed job never leaves a truncated shard under its final name. Tar headers carry a
fixed mtime, owner and mode, so the same samples always give the same bytes.

Members are written with the standard library's `tarfile` exactly as webdataset's
`TarWriter` writes them (tarfile's default PAX format, the members of a sample in
sorted extension order, mode 0o444), not through `webdataset` itself: importing
webdataset imports torch when it is installed, which would cost every Dask ingest
worker ~0.5 GB and seconds of start-up.

The archive is opened in tarfile's plain write mode ("w") rather than its stream mode
("w|", webdataset's choice): both give the same bytes, but stream mode re-buffers every
member in 10 KiB records and copies it in 16 KiB pieces. Plain mode with one copy per
member (`_COPY_BUFFER`) halves the time spent writing a shard (12 against 25 ms for 60
samples of 10 s at 24 kHz, 2-4 % of an ingest task).
"""

import datetime as dt
import hashlib
import io
import json
import math
import tarfile
from collections.abc import Mapping
from types import TracebackType
from typing import IO, Any

from sonotype.contracts import AUDIO_EXTENSION, METADATA_EXTENSION, is_valid_key
from sonotype.errors import ShardFormatError
from sonotype.fsio import atomic_open

_FIXED_MTIME = 0.0
_MEMBER_MODE = 0o444
_OWNER = "sonotype"
_COPY_BUFFER = 1 << 22
"""Bytes tarfile copies at a time: more than a 10 s segment's FLAC at 24 kHz (~0.5 MB) holds."""


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ShardFormatError(
                f"naive datetime {value!r} in sample metadata; times must be UTC"
            )
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in sample metadata")


def audio_checksum(data: bytes) -> str:
    """The catalog's `checksum` of a sample's FLAC member: BLAKE2b, 8 bytes, hex."""
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def encode_metadata(row: Mapping[str, Any]) -> bytes:
    """A segment row as the JSON member of a sample (datetimes as ISO-8601 UTC, NaN as null)."""
    clean = {
        key: None if isinstance(value, float) and not math.isfinite(value) else value
        for key, value in row.items()
    }
    return json.dumps(clean, default=_json_default, sort_keys=True).encode("utf-8")


class ShardWriter:
    """Writes samples (`KEY.flac` + `KEY.json`) into one shard at `url`.

    Use as a context manager: the shard appears under `url` when the block ends
    without error, and not at all otherwise.

    Args:
        url: final location of the `.tar` (local path or fsspec URL).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.n_samples = 0
        self._keys: set[str] = set()
        self._file_context = atomic_open(url, "wb")
        self._tar: tarfile.TarFile | None = None

    def __enter__(self) -> "ShardWriter":
        handle: IO[bytes] = self._file_context.__enter__()
        self._tar = tarfile.open(fileobj=handle, mode="w", copybufsize=_COPY_BUFFER)
        return self

    def _add(self, name: str, data: bytes) -> None:
        member = tarfile.TarInfo(name)
        member.size = len(data)
        member.mtime = _FIXED_MTIME
        member.mode = _MEMBER_MODE
        member.uname = member.gname = _OWNER
        self._tar.addfile(member, io.BytesIO(data))

    def write(self, key: str, audio: bytes, metadata: Mapping[str, Any]) -> None:
        """Add one sample.

        Args:
            key: the segment key (dot-free, unique within the shard).
            audio: the encoded audio file (FLAC bytes).
            metadata: the segment's row.

        Raises:
            ShardFormatError: the key is invalid or repeated.
        """
        if self._tar is None:
            raise ShardFormatError(f"{self.url}: write() outside the writer's `with` block")
        if not is_valid_key(key):
            raise ShardFormatError(f"{self.url}: invalid sample key {key!r} (dot-free, no slashes)")
        if key in self._keys:
            raise ShardFormatError(f"{self.url}: duplicate sample key {key!r}")
        self._keys.add(key)
        members = {AUDIO_EXTENSION: audio, METADATA_EXTENSION: encode_metadata(metadata)}
        for extension in sorted(members):
            self._add(f"{key}.{extension}", members[extension])
        self.n_samples += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None
        return self._file_context.__exit__(exc_type, exc, traceback)

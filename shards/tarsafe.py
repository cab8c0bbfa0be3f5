"""Read tar shards member by member into memory, never trusting member names as paths.

This is the one module that uses `tarfile` (verify and the shard scan need every
member's name and size, and problems reported one by one). Nothing is ever extracted
to disk: members are read into bytes, and names are only split into key and
extension. The streaming reader goes through webdataset instead, which reads the
same way.
"""

import tarfile
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import IO

from sonotype.contracts import AUDIO_EXTENSION
from sonotype.errors import ShardFormatError
from sonotype.fsio import url_to_fs

MAX_MEMBER_BYTES = 256 * 1024 * 1024
"""Members larger than this are not read (a segment's FLAC is a few MB at most)."""


@dataclass(frozen=True)
class TarMember:
    """One tar member.

    Attributes:
        name: the member's name as stored (never used as a path).
        size: its size in bytes.
        is_file: whether it is a regular file (links, folders, devices are not).
        data: its bytes; None when not regular, not wanted, or over MAX_MEMBER_BYTES.
    """

    name: str
    size: int
    is_file: bool
    data: bytes | None


@dataclass
class TarSample:
    """Consecutive members sharing a key (`KEY.flac`, `KEY.json`), webdataset's grouping.

    Attributes:
        key: the name up to the first dot of its last path component.
        members: extension (lower case, without the dot) → member.
        duplicates: extensions that appeared more than once in the group.
    """

    key: str
    members: dict[str, TarMember] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)


def split_name(name: str) -> tuple[str, str]:
    """`dir/KEY.ext.more` → (`dir/KEY`, `ext.more`): the key ends at the first dot of the base name.

    This is webdataset's rule (`base_plus_ext`), so the keys verify sees are those the
    reader sees.
    """
    head, _, base = name.rpartition("/")
    stem, _, extension = base.partition(".")
    return (f"{head}/{stem}" if head else stem), extension.lower()


def iter_members(
    fileobj: IO[bytes], name: str, wanted: Callable[[str], bool] | None = None
) -> Iterator[TarMember]:
    """Iterate over the members of a tar stream, reading wanted regular files into memory.

    Args:
        fileobj: an open binary stream positioned at the start of the tar.
        name: the shard's path or URL, for messages.
        wanted: which member names to read (None: all); others are skipped unread.

    Yields:
        Members in archive order.

    Raises:
        ShardFormatError: the stream is not a tar or ends inside a member (truncated);
            the message names the last complete member.
    """
    last = "(start of archive)"
    try:
        with tarfile.open(fileobj=fileobj, mode="r|") as archive:
            for info in archive:
                is_file = info.isreg()
                read = (
                    is_file
                    and info.size <= MAX_MEMBER_BYTES
                    and (wanted is None or wanted(info.name))
                )
                data = None
                if read:
                    handle = archive.extractfile(info)
                    data = handle.read() if handle is not None else None
                # The stream-mode TarFile keeps every TarInfo it has seen; dropping them
                # keeps memory flat on shards of any length (webdataset does the same).
                archive.members = []
                yield TarMember(info.name, info.size, is_file, data)
                last = info.name
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ShardFormatError(f"{name}: unreadable tar after member {last!r} ({error})") from error


def iter_samples(
    fileobj: IO[bytes], name: str, wanted: Callable[[str], bool] | None = None
) -> Iterator[TarSample]:
    """Group consecutive members by key, as webdataset does.

    Args:
        fileobj: an open binary stream positioned at the start of the tar.
        name: the shard's path or URL, for messages.
        wanted: which member names to read (None: all).

    Yields:
        One `TarSample` per run of members with the same key.

    Raises:
        ShardFormatError: see `iter_members`; samples completed before the problem
            have already been yielded.
    """
    current: TarSample | None = None
    try:
        for member in iter_members(fileobj, name, wanted):
            key, extension = split_name(member.name)
            if current is None or key != current.key:
                if current is not None:
                    yield current
                current = TarSample(key)
            if extension in current.members:
                current.duplicates.append(extension)
            else:
                current.members[extension] = member
    except ShardFormatError:
        # The group read before a truncation is yielded before the error propagates,
        # so that its members still get checked.
        if current is not None:
            yield current
        raise
    if current is not None:
        yield current


def find_members(fileobj: IO[bytes], name: str, names: Collection[str]) -> dict[str, bytes]:
    """Read the regular members called `names` from a seekable tar, and nothing else.

    Only the 512-byte headers of the other members are read: the archive is opened in
    random-access mode, which seeks over member data, and reading stops once every
    name is found. Picking a few samples out of a large shard (the report's audio
    examples) thus costs a few reads, not a pass over the shard.

    Args:
        fileobj: an open, seekable binary stream positioned at the start of the tar.
        name: the shard's path or URL, for messages.
        names: member names wanted (`KEY.flac`).

    Returns:
        name → bytes for the wanted names found (regular files under MAX_MEMBER_BYTES).

    Raises:
        ShardFormatError: the stream is not a tar or ends inside a header.
    """
    wanted = set(names)
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=fileobj, mode="r:") as archive:
            for info in archive:
                if info.name in wanted and info.isreg() and info.size <= MAX_MEMBER_BYTES:
                    handle = archive.extractfile(info)
                    if handle is not None:
                        found[info.name] = handle.read()
                # As in iter_members: the TarFile would otherwise keep every header it read.
                archive.members = []
                if len(found) == len(wanted):
                    break
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ShardFormatError(f"{name}: unreadable tar ({error})") from error
    return found


def read_segment_audio(url: str, keys: Collection[str]) -> dict[str, bytes]:
    """The FLAC bytes of the samples `keys` of one shard (`find_members` on the file).

    Returns:
        key → bytes for the keys found; absent keys are simply missing.

    Raises:
        ShardFormatError: the shard is not a tar or ends inside a header.
        OSError: the shard cannot be opened.
    """
    fs, path = url_to_fs(url)
    with fs.open(path, "rb") as handle:
        found = find_members(handle, url, {f"{key}.{AUDIO_EXTENSION}" for key in keys})
    return {name.rsplit(".", 1)[0]: data for name, data in found.items()}

"""Find recordings under folders, globs and fsspec URLs; tell side files apart; fingerprint."""

import fnmatch
import hashlib
import logging
import posixpath
from dataclasses import dataclass

from fsspec.implementations.local import LocalFileSystem

from sonotype.config.ingest import DiscoverConfig
from sonotype.errors import SonotypeError
from sonotype.fsio import url_to_fs

logger = logging.getLogger(__name__)

_GLOB_CHARACTERS = "*?["
FINGERPRINT_SPAN = 64 * 1024
"""Bytes read at each end of a file for its fingerprint."""


@dataclass(frozen=True)
class FoundFile:
    """A file found under one of the inputs.

    Attributes:
        url: where to read it: an absolute local path, or a URL with its protocol.
        relative: its POSIX path relative to the input root it was found under.
        size: its length in bytes.
        ignore_reason: why it is a side file and not read, None for a recording.
    """

    url: str
    relative: str
    size: int
    ignore_reason: str | None


def _has_glob(text: str) -> bool:
    return any(character in text for character in _GLOB_CHARACTERS)


def _glob_root(path: str) -> str:
    """The folder part of a glob before its first wildcard: 'a/b/*/c*.wav' → 'a/b'."""
    first = min(path.index(c) for c in _GLOB_CHARACTERS if c in path)
    return posixpath.dirname(path[:first]) or "/"


def _files_under(fs, path: str) -> dict[str, int]:
    """Every file below `path` (recursively) with its size."""
    found = fs.find(path, withdirs=False, detail=True)
    return {name: int(info.get("size") or 0) for name, info in found.items()}


def _expand(input_: str) -> tuple[object, str, dict[str, int]]:
    """The filesystem, the root and the files (path → size) of one input.

    Raises:
        SonotypeError: the input names nothing that exists, or a glob matches nothing.
    """
    fs, path = url_to_fs(input_)
    if _has_glob(path):
        root = _glob_root(path)
        files: dict[str, int] = {}
        for match, info in fs.glob(path, detail=True).items():
            if info.get("type") == "directory":
                files.update(_files_under(fs, match))
            else:
                files[match] = int(info.get("size") or 0)
        if not files:
            raise SonotypeError(f"{input_}: the pattern matches no files")
        return fs, root, files
    if fs.isdir(path):
        return fs, path, _files_under(fs, path)
    if fs.isfile(path):
        return fs, posixpath.dirname(path), {path: int(fs.size(path) or 0)}
    raise SonotypeError(f"{input_}: no such file or folder")


def side_file_reason(name: str, config: DiscoverConfig) -> str | None:
    """Why a file named `name` is a side file (not read), or None if it is a recording.

    Args:
        name: the file name (no folders).
        config: the discovery settings.
    """
    for pattern in config.ignore_names:
        if fnmatch.fnmatchcase(name, pattern):
            return f"side file: its name matches the ignore pattern {pattern!r}"
    _, dot, extension = name.rpartition(".")
    if not dot:
        return "side file: no file extension, expected one of " + ", ".join(config.audio_extensions)
    if extension.lower() not in config.audio_extensions:
        known = ", ".join(config.audio_extensions)
        return f"side file: .{extension} is not an audio extension ({known})"
    return None


def discover(inputs: list[str], config: DiscoverConfig) -> list[FoundFile]:
    """List the files under `inputs`: folders (recursively), globs or single files, local or URLs.

    A file reached through several inputs is listed once, for the first of them.

    Args:
        inputs: local paths or fsspec URLs of folders, files or glob patterns.
        config: which extensions are audio and which names are side files.

    Returns:
        The files sorted by URL, side files included with their `ignore_reason`.

    Raises:
        SonotypeError: an input does not exist or a glob matches nothing.
    """
    found: dict[str, FoundFile] = {}
    for input_ in inputs:
        fs, root, files = _expand(input_)
        for path, size in sorted(files.items()):
            url = path if isinstance(fs, LocalFileSystem) else fs.unstrip_protocol(path)
            if url in found:
                continue
            relative = posixpath.relpath(path, root) if root != "/" else path.lstrip("/")
            reason = side_file_reason(posixpath.basename(path), config)
            found[url] = FoundFile(url, relative, size, reason)
        logger.debug("%s: %d files", input_, len(files))
    return sorted(found.values(), key=lambda f: f.url)


def fingerprint(url: str, size: int) -> str:
    """A cheap identity of a file's content: its size and a hash of its first and last 64 KiB.

    Audio files change as a whole (re-exported, re-copied, repaired headers), so the
    ends and the length catch a change without reading terabytes again on a re-run.

    Args:
        url: local path or URL.
        size: its length in bytes.

    Returns:
        "<bytes>:<16 hex digits>".

    Raises:
        OSError: the file cannot be read.
    """
    fs, path = url_to_fs(url)
    digest = hashlib.blake2b(str(size).encode(), digest_size=8)
    with fs.open(path, "rb") as handle:
        digest.update(handle.read(FINGERPRINT_SPAN))
        if size > 2 * FINGERPRINT_SPAN:
            handle.seek(size - FINGERPRINT_SPAN)
            digest.update(handle.read(FINGERPRINT_SPAN))
        elif size > FINGERPRINT_SPAN:
            digest.update(handle.read())
    return f"{size}:{digest.hexdigest()}"

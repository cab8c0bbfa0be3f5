"""Safe tar reading: webdataset's key rule, members in memory, truncation named."""

import io
import tarfile

import pytest

from shards.tarsafe import find_members, iter_samples, split_name
from sonotype.errors import ShardFormatError


def _tar(members: list[tuple[str, bytes]], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            archive.addfile(info)
    return buffer.getvalue()


def test_split_name_follows_webdataset():
    assert split_name("a_s0_000001.flac") == ("a_s0_000001", "flac")
    assert split_name("dir/x.y.JSON") == ("dir/x", "y.json")
    assert split_name("../../etc/passwd") == ("../../etc/passwd", "")


def test_members_are_grouped_by_key_and_kept_in_memory():
    data = _tar([("a.flac", b"1"), ("a.json", b"{}"), ("b.flac", b"2"), ("b.flac", b"3")])
    samples = list(iter_samples(io.BytesIO(data), "t.tar"))
    assert [s.key for s in samples] == ["a", "b"]
    assert samples[0].members["json"].data == b"{}"
    assert samples[1].duplicates == ["flac"]


def test_links_are_reported_not_followed_and_unwanted_members_not_read():
    data = _tar([("a.flac", b"1"), ("a.json", b"{}")], symlink="c.flac")
    samples = list(iter_samples(io.BytesIO(data), "t.tar", wanted=lambda n: n.endswith(".json")))
    assert samples[0].members["flac"].data is None
    assert samples[0].members["json"].data == b"{}"
    link = samples[1].members["flac"]
    assert (link.is_file, link.data) == (False, None)


def test_a_truncated_tar_names_the_last_complete_member():
    data = _tar([("a.flac", b"x" * 5000), ("a.json", b"{}"), ("b.flac", b"y" * 5000)])
    cut = data[: 512 * 3 + 5000 + 100]  # inside b.flac's data
    found = []
    with pytest.raises(ShardFormatError, match=r"t.tar: unreadable tar after member 'a.json'"):
        found.extend(iter_samples(io.BytesIO(cut), "t.tar"))
    assert [s.key for s in found] == ["a"]


class _CountingReader(io.BytesIO):
    """A seekable stream that counts the bytes read from it."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.n_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.n_read += len(chunk)
        return chunk


def test_find_members_reads_the_wanted_members_and_skips_the_rest():
    big = 64 * 1024
    members = [(f"k{i:03d}.{ext}", bytes([i]) * big) for i in range(40) for ext in ("flac", "json")]
    stream = _CountingReader(_tar(members))
    found = find_members(stream, "t.tar", ["k003.flac", "k007.json", "missing.flac"])
    assert found == {"k003.flac": bytes([3]) * big, "k007.json": bytes([7]) * big}
    # Two members' data plus headers, not the 80 members of the archive: data is seeked over.
    assert stream.n_read < 3 * big + 80 * 1024


def test_find_members_stops_once_everything_is_found():
    members = [(f"k{i:03d}.flac", b"x" * 4096) for i in range(100)]
    stream = _CountingReader(_tar(members))
    assert find_members(stream, "t.tar", ["k001.flac"]) == {"k001.flac": b"x" * 4096}
    assert stream.n_read < 10 * 4096


def test_find_members_names_a_file_that_is_not_a_tar():
    with pytest.raises(ShardFormatError, match=r"t\.tar: unreadable tar"):
        find_members(io.BytesIO(b"not a tar at all" * 100), "t.tar", ["a.flac"])

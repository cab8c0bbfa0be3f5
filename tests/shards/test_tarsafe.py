"""Safe tar reading: webdataset's key rule, members in memory, truncation named."""

import io
import tarfile

import pytest

from shards.tarsafe import iter_samples, split_name
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

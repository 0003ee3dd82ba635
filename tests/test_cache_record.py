"""A cache entry whose entry.json is not what focuswrap wrote: a miss, told in one line, never a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from focuswrap import cache, paths


def _published(tmp_path: Path) -> Path:
    frame = tmp_path / "w" / "aligned_0000.tif"
    frame.parent.mkdir()
    frame.write_bytes(b"frame")
    assert cache.store("k", [frame], max_bytes=10**9)
    return paths.cache_dir() / "aligned" / "k"


@pytest.mark.parametrize(
    "record",
    [
        [],  # not an object
        {"format": cache.FORMAT, "frames": {"name": "aligned_0000.tif"}},  # frames not a list
        {"format": cache.FORMAT, "frames": ["aligned_0000.tif"]},  # a frame not an object
        {"format": cache.FORMAT, "frames": [{"name": "../outside.tif", "size": 5, "sha256": "0"}]},
        {"format": cache.FORMAT, "frames": [{"name": "aligned_0000.tif", "size": "5", "sha256": "0"}]},
    ],
)
def test_malformed_record_is_a_miss_and_discarded(tmp_path, record):
    entry = _published(tmp_path)
    (entry / "entry.json").write_text(json.dumps(record))
    into = tmp_path / "into"
    into.mkdir()
    told: list[str] = []
    assert cache.lookup("k", into, on_damaged=told.append) is None
    assert not entry.exists()
    assert list(into.iterdir()) == []
    assert not (tmp_path / "outside.tif").exists()
    assert len(told) == 1 and "malformed record" in told[0]


def test_record_of_another_version_is_damaged(tmp_path):
    entry = _published(tmp_path)
    record = json.loads((entry / "entry.json").read_text())
    (entry / "entry.json").write_text(json.dumps({**record, "format": cache.FORMAT + 1}))
    told: list[str] = []
    assert cache.lookup("k", tmp_path, on_damaged=told.append) is None
    assert not entry.exists()
    assert len(told) == 1 and "another version" in told[0]


def test_good_record_still_hits(tmp_path):
    _published(tmp_path)
    into = tmp_path / "into"
    into.mkdir()
    got = cache.lookup("k", into)
    assert got == [into / "aligned_0000.tif"] and got[0].read_bytes() == b"frame"

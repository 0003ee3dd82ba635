"""The aligned-frame cache: keys, atomic publish, lookup, LRU eviction."""

from __future__ import annotations

import os
import time
from pathlib import Path

from focuswrap import cache, paths


def _frames(folder: Path, n: int, size: int = 1000) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        f = folder / f"aligned_{i:04d}.tif"
        f.write_bytes(bytes([i]) * size)
        out.append(f)
    return out


def _photos(folder: Path, *contents: bytes) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, c in enumerate(contents):
        p = folder / f"p{i}.jpg"
        p.write_bytes(c)
        out.append(p)
    return out


def test_key_depends_on_content_order_flags_and_version(tmp_path):
    a, b = _photos(tmp_path / "x", b"one", b"two")
    base = cache.key([a, b], ["-m", "-e"], "2022.0")
    assert base == cache.key([a, b], ["-m", "-e"], "2022.0")
    assert base != cache.key([b, a], ["-m", "-e"], "2022.0")
    assert base != cache.key([a, b], ["-m", "-e", "-i"], "2022.0")
    assert base != cache.key([a, b], ["-m", "-e"], "2023.0")
    a.write_bytes(b"one, edited")
    assert base != cache.key([a, b], ["-m", "-e"], "2022.0")


def test_key_ignores_file_names(tmp_path):
    a, b = _photos(tmp_path / "x", b"one", b"two")
    c, d = _photos(tmp_path / "y", b"one", b"two")
    assert cache.key([a, b], ["-m"], "v") == cache.key([c, d], ["-m"], "v")


def test_store_then_lookup_returns_same_bytes(tmp_path):
    frames = _frames(tmp_path / "work1", 3)
    assert cache.store("k1", frames, max_bytes=10**9)
    into = tmp_path / "work2"
    into.mkdir()
    got = cache.lookup("k1", into)
    assert [p.name for p in got] == [f.name for f in frames]
    assert all(g.read_bytes() == f.read_bytes() for g, f in zip(got, frames, strict=False))
    assert all(g.parent == into for g in got)


def test_lookup_miss(tmp_path):
    assert cache.lookup("nothing-here", tmp_path) is None


def test_store_is_off_with_zero_limit(tmp_path):
    assert not cache.store("k", _frames(tmp_path / "w", 2), max_bytes=0)
    assert cache.entries() == []


def test_second_publisher_keeps_first_entry(tmp_path):
    first = _frames(tmp_path / "a", 2, size=10)
    second = _frames(tmp_path / "b", 2, size=20)
    assert cache.store("same", first, max_bytes=10**9)
    assert not cache.store("same", second, max_bytes=10**9)
    into = tmp_path / "c"
    into.mkdir()
    got = cache.lookup("same", into)
    assert got[0].stat().st_size == 10
    # No half-built folders left behind.
    assert [p.name for p in (paths.cache_dir() / "aligned").iterdir()] == ["same"]


def test_lru_eviction_keeps_recently_used(tmp_path):
    for k in ("old", "mid", "new"):
        cache.store(k, _frames(tmp_path / k, 2, size=1000), max_bytes=10**9)
        time.sleep(0.02)
    # Use "old" so it becomes the most recent.
    into = tmp_path / "use"
    into.mkdir()
    assert cache.lookup("old", into) is not None
    sizes = {e.key: e.bytes for e in cache.entries()}
    removed = cache.evict(sizes["old"] + sizes["new"])
    assert removed == 1
    assert sorted(e.key for e in cache.entries()) == ["new", "old"]


def test_clear_removes_everything(tmp_path):
    cache.store("a", _frames(tmp_path / "a", 1), max_bytes=10**9)
    cache.store("b", _frames(tmp_path / "b", 1), max_bytes=10**9)
    assert cache.clear() == 2
    assert cache.entries() == []


def test_incomplete_entry_is_ignored(tmp_path):
    broken = paths.cache_dir() / "aligned" / "broken"
    broken.mkdir(parents=True)
    (broken / "aligned_0000.tif").write_bytes(b"x")  # no entry.json: never published
    assert cache.entries() == []
    assert cache.lookup("broken", tmp_path) is None


def test_store_failure_never_raises(tmp_path, monkeypatch):
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    monkeypatch.setenv("FOCUSWRAP_HOME", os.fspath(blocker))
    assert cache.store("k", _frames(tmp_path / "w", 1), max_bytes=10**9) is False

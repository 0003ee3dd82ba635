"""The aligned-frame cache: fuse again with other settings without aligning again.

An entry holds the aligned TIFFs of one stack, keyed by the photos' content,
the exact alignment options and the align_image_stack version; changing only
fusion settings finds the entry and skips alignment ("instant re-fuse").

Entries are published atomically (built in a private folder, then renamed
into place; a rename onto an existing entry fails and the loser's copy is
dropped), so two runs sharing the cache never see half an entry.  Each
frame's size and SHA-256 are recorded when the entry is published and checked
every time it is used: an entry damaged since (a truncated or edited file, a
disk error) is discarded and the stack is aligned again, never fused from
broken frames.  The cache
is bounded: after each store the least recently used entries are evicted
until the total is under the limit (``cache_max_mb`` in config.toml).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from focuswrap import paths

#: Bumped when the layout of an entry changes (2: each frame's size and checksum recorded).
FORMAT = 2
_META = "entry.json"


def _root() -> Path:
    return paths.cache_dir() / "aligned"


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def key(photos: Sequence[Path], align_flags: Sequence[str], tool_version: str | None) -> str:
    """The entry key: photo contents (in order), align flags, tool version."""
    h = hashlib.sha256()
    h.update(json.dumps({"format": FORMAT, "flags": list(align_flags), "version": tool_version}).encode())
    for p in photos:
        h.update(_file_digest(p).encode())
    return h.hexdigest()[:32]


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


class DamagedEntry(Exception):
    """A cached frame differs from what was published (its size or checksum)."""


@dataclass(frozen=True)
class _StoredFrame:
    """One aligned frame of an entry, as its entry.json records it."""

    name: str
    size: int
    sha256: str


def _read_record(meta_path: Path) -> list[_StoredFrame]:
    """The frames an entry.json records.

    Raises :class:`DamagedEntry` for an entry of another version, ValueError
    (or KeyError) for a record that is not what :func:`store` writes.
    """
    record = json.loads(meta_path.read_text())
    if not isinstance(record, dict):
        raise ValueError("the record is not a JSON object")
    if record.get("format") != FORMAT:
        raise DamagedEntry("written by another version of focuswrap")
    items = record["frames"]
    if not isinstance(items, list):
        raise ValueError("the record has no list of frames")
    frames = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError("a frame's record is not a JSON object")
        name, size, digest = item["name"], item["size"], item["sha256"]
        # A bare file name: the frame is linked into the work folder under it.
        if not isinstance(name, str) or not name or Path(name).name != name:
            raise ValueError("a frame's name is not a file name")
        if not isinstance(size, int) or not isinstance(digest, str):
            raise ValueError("a frame's size or checksum is malformed")
        frames.append(_StoredFrame(name, size, digest))
    return frames


def _verify(entry: Path, frames: Sequence[_StoredFrame]) -> None:
    """Raise :class:`DamagedEntry` unless every frame has the size and checksum recorded at publish time."""
    for item in frames:
        path = entry / item.name
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise DamagedEntry(f"{item.name} is missing") from None
        if size != item.size:
            raise DamagedEntry(f"{item.name} has {size} bytes instead of {item.size}")
        if _file_digest(path) != item.sha256:
            raise DamagedEntry(f"{item.name} has changed since it was stored")


def lookup(entry_key: str, into: Path, *, on_damaged: Callable[[str], None] | None = None) -> list[Path] | None:
    """Put the cached aligned frames into ``into`` (hard links where possible); None on a miss.

    A damaged entry (see :func:`_verify`) is removed and counts as a miss;
    ``on_damaged`` is then told why, in one line for the user.
    """
    entry = _root() / entry_key
    meta_path = entry / _META
    out: list[Path] = []
    try:
        frames = _read_record(meta_path)
        _verify(entry, frames)
        for item in frames:
            dst = into / item.name
            _link_or_copy(entry / item.name, dst)
            out.append(dst)
        os.utime(meta_path)  # mark as recently used
    except DamagedEntry as exc:
        _remove(entry)
        for f in out:
            f.unlink(missing_ok=True)
        if on_damaged is not None:
            on_damaged(f"The cached aligned frames of these photos were damaged ({exc}): discarded, aligning again.")
        return None
    except FileNotFoundError:
        return None  # a miss, or an entry evicted under our feet
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # An unreadable or malformed entry would fail the same way every time: drop it.
        for f in out:
            f.unlink(missing_ok=True)
        if entry.is_dir():
            _remove(entry)
            if on_damaged is not None:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "a malformed record"
                on_damaged(f"The cached aligned frames could not be read ({reason}): discarded, aligning again.")
        return None
    return out


def store(entry_key: str, frames: Sequence[Path], *, max_bytes: int) -> bool:
    """Publish ``frames`` under ``entry_key``; returns False when caching is off or failed."""
    if max_bytes <= 0:
        return False
    try:
        if sum(f.stat().st_size for f in frames) > max_bytes:
            return False  # would evict everything else, then itself
    except OSError:
        return False
    root = _root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=root))
        try:
            recorded = []
            for f in frames:
                _link_or_copy(f, tmp / f.name)
                # Measured on the entry's own copy: that is what a later run will read.
                recorded.append(
                    {"name": f.name, "size": (tmp / f.name).stat().st_size, "sha256": _file_digest(tmp / f.name)}
                )
            (tmp / _META).write_text(json.dumps({"format": FORMAT, "frames": recorded, "stored": time.time()}))
            try:
                os.rename(tmp, root / entry_key)
            except OSError:
                return False  # another run published the same entry first: keep theirs
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        evict(max_bytes)
        return True
    except OSError:
        return False  # a cache that cannot be written never fails a stack


@dataclass(frozen=True)
class Entry:
    key: str
    path: Path
    bytes: int
    last_used: float


def entries() -> list[Entry]:
    """Every complete entry, least recently used first."""
    root = _root()
    found = []
    if not root.is_dir():
        return []
    for d in root.iterdir():
        meta = d / _META
        if d.name.startswith(".") or not meta.is_file():
            continue
        try:
            size = sum(f.stat().st_size for f in d.iterdir())
            found.append(Entry(d.name, d, size, meta.stat().st_mtime))
        except OSError:
            continue
    return sorted(found, key=lambda e: e.last_used)


def evict(max_bytes: int) -> int:
    """Remove least recently used entries until the cache fits in ``max_bytes``; returns how many."""
    current = entries()
    total = sum(e.bytes for e in current)
    removed = 0
    for e in current:
        if total <= max_bytes:
            break
        _remove(e.path)
        total -= e.bytes
        removed += 1
    return removed


def _remove(path: Path) -> None:
    # Rename first so that a reader never sees a half-deleted entry as complete.
    doomed = path.with_name(f".doomed-{path.name}-{os.getpid()}")
    try:
        os.rename(path, doomed)
    except OSError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


def clear() -> int:
    """Remove every entry; returns how many."""
    all_entries = entries()
    for e in all_entries:
        _remove(e.path)
    return len(all_entries)


def describe(limit_mb: int) -> str:
    """``focuswrap cache info``: folder, entries, size against the limit."""
    found = entries()
    total = sum(e.bytes for e in found)
    state = "off (cache_max_mb = 0 in config.toml)" if limit_mb <= 0 else f"{limit_mb} MB"
    return "\n".join(
        [
            f"folder   {_root()}",
            f"entries  {len(found)} stack(s) of aligned frames",
            f"size     {total / 2**20:.1f} MB of {state}",
        ]
    )

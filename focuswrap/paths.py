"""Where focuswrap keeps the user's config, presets and cache.

``FOCUSWRAP_HOME`` relocates every user directory at once (tests isolate
themselves with it); otherwise platformdirs picks the usual place per OS.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

APP = "focuswrap"
HOME_ENV = "FOCUSWRAP_HOME"


def config_dir() -> Path:
    """The user config folder (holds ``config.toml`` and ``presets/``)."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home) / "config"
    import platformdirs

    return Path(platformdirs.user_config_dir(APP, appauthor=False))


def cache_dir() -> Path:
    """The user cache folder (aligned frames kept for instant re-fuse)."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home) / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP, appauthor=False))


def config_file() -> Path:
    return config_dir() / "config.toml"


def user_presets_dir() -> Path:
    return config_dir() / "presets"


# ------------------------------------------------------------ work folders

#: Work folders are ``tempfile.mkdtemp(prefix=WORK_PREFIX)``.
WORK_PREFIX = "focuswrap."
#: The owner's lock file inside each work folder: held locked (``flock``) by
#: the process using the folder for as long as it lives.  The kernel drops the
#: lock when that process ends in any way (SIGKILL and Ctrl-\ included), so a
#: folder whose lock can be taken belongs to nobody any more.
OWNER_FILE = ".focuswrap-owner"

_held: dict[str, int] = {}  # work folder -> the open, locked owner file


def claim_work_folder(folder: Path) -> None:
    """Mark ``folder`` (just created) as this process's work folder until :func:`release_work_folder`.

    The lock is taken on a private name and only then renamed to
    :data:`OWNER_FILE`, so no other run can ever see the owner file unlocked
    while its owner lives.  A no-op where there is no ``flock`` (Windows):
    stale folders are then left for the system to clear.
    """
    try:
        import fcntl
    except ImportError:
        return
    part = folder / f"{OWNER_FILE}.{os.getpid()}"
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.rename(part, folder / OWNER_FILE)
    except OSError:
        os.close(fd)
        raise
    _held[os.fspath(folder)] = fd


def release_work_folder(folder: Path) -> None:
    """Drop this process's claim on ``folder`` (before or after removing it)."""
    fd = _held.pop(os.fspath(folder), None)
    if fd is not None:
        os.close(fd)


def _owner_gone(owner: Path) -> bool:
    import fcntl

    try:
        fd = os.open(owner, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # locked: its owner is alive (possibly this very process)
    finally:
        os.close(fd)  # closing drops the lock just taken
    return True


def remove_stale_work_folders(where: Path) -> list[Path]:
    """Remove the work folders in ``where`` left by focuswrap runs that died (SIGKILL, power cut).

    Only folders named ``focuswrap.*`` that hold an :data:`OWNER_FILE` whose
    lock nobody holds are touched: another program's folder, a folder of an
    older focuswrap (no owner file) and a live run's folder are left alone.
    Returns the folders removed; never raises.
    """
    import importlib.util
    import shutil

    if importlib.util.find_spec("fcntl") is None:  # only where locks exist
        return []

    removed = []
    try:
        candidates = [d for d in where.iterdir() if d.name.startswith(WORK_PREFIX)]
    except OSError:
        return []
    for folder in candidates:
        owner = folder / OWNER_FILE
        try:
            if folder.is_symlink() or not folder.is_dir() or folder.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        if not _owner_gone(owner):
            continue
        # Renamed first: two runs starting at once do not both work on it, and
        # a half-removed folder never looks like a live one.
        doomed = folder.with_name(f".{folder.name}.stale-{os.getpid()}")
        try:
            os.rename(folder, doomed)
        except OSError:
            continue
        shutil.rmtree(doomed, ignore_errors=True)
        removed.append(folder)
    return removed


# ------------------------------------------------------- names the tools see

#: What a path may hold for the Hugin tools to take it as it is.  Hugin's
#: project file quotes names with ``"``, so a ``"`` in a name broke
#: align_image_stack (SIGSEGV on every attempt); a newline ends a project
#: line; a leading ``-`` or ``@`` is read as an option or a response file.
_SAFE_PATH = re.compile(r"[A-Za-z0-9._/+-]+")
#: The generated names: ``photo_0001.jpg`` ...
STAGED_STEM = "photo_"


def safe_for_tools(path: Path) -> bool:
    """True when ``path`` (absolute) can be given to a Hugin tool as it is."""
    text = os.fspath(path)
    return bool(_SAFE_PATH.fullmatch(text)) and not any(part.startswith(("-", "@")) for part in Path(text).parts)


def stage(frames: Sequence[Path], work: Path, suffixes: Sequence[str]) -> list[Path]:
    """The frames under names every tool can take: each unsafe one linked into ``work`` as photo_NNNN.EXT.

    ``suffixes`` give each frame's extension (".jpg", ".tif", ".png": what
    its format is, since the tools choose their reader by it).  A symbolic
    link where the system allows one, else a hard link, else a copy; the
    user's file is never touched.  Safe frames are returned as they are.
    """
    import shutil

    out = []
    for i, (frame, suffix) in enumerate(zip(frames, suffixes, strict=True), start=1):
        frame = Path(frame).absolute()
        if safe_for_tools(frame):
            out.append(frame)
            continue
        staged = work / f"{STAGED_STEM}{i:04d}{suffix}"
        try:
            os.symlink(frame, staged)
        except OSError:
            try:
                os.link(frame, staged)
            except OSError:
                shutil.copyfile(frame, staged)
        out.append(staged)
    return out

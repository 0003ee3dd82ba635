"""Where a stack works: its private work folder (also for a Flatpak Hugin), and the result's missing folders."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from focuswrap import inputs, paths
from focuswrap.discovery import Tools
from focuswrap.errors import BadInputError, WriteFailed

log = logging.getLogger("focuswrap.workspace")


@contextlib.contextmanager
def work_folder(*, keep: bool, inside: Path | None = None) -> Iterator[Path]:
    """A private temporary folder, removed afterwards (also on error and Ctrl-C) unless ``keep``.

    ``inside`` puts it in that folder instead of the system's temporary one.
    """
    try:
        if inside is not None:
            inside.mkdir(parents=True, exist_ok=True)
        # Folders of earlier runs that were killed (SIGKILL, Ctrl-\, a power cut) go first.
        paths.remove_stale_work_folders(inside if inside is not None else Path(tempfile.gettempdir()))
        path = Path(tempfile.mkdtemp(prefix=paths.WORK_PREFIX, dir=inside))
        paths.claim_work_folder(path)
        log.debug("work folder %s", path)
    except OSError as exc:
        where = inside if inside is not None else tempfile.gettempdir()
        raise WriteFailed(
            f"Could not create a work folder in {where}: {exc.strerror or exc}; "
            "free some space there or point TMPDIR at another folder."
        ) from None
    try:
        yield path
    finally:
        if keep:
            # Kept for inspection, it is the user's now: without its owner file no later run removes it.
            with contextlib.suppress(OSError):
                (path / paths.OWNER_FILE).unlink()
        else:
            shutil.rmtree(path, ignore_errors=True)
        paths.release_work_folder(path)


def _flatpak_work(tools: Tools, photos: Sequence[Path]) -> Path | None:
    """Where the work folder must go for a Flatpak Hugin, which sees only the home folder.

    The Flatpak sandbox has its own private /tmp, so the work folder goes
    under the user cache folder; photos outside the home folder cannot be
    read at all, which is said before anything runs.
    """
    if not (tools.align.flatpak or tools.enfuse.flatpak):
        return None
    home = Path.home().resolve()
    outside = [p for p in photos if home not in Path(p).resolve().parents]
    if outside:
        raise BadInputError(
            f"The Flatpak Hugin can read only files under your home folder ({home}); "
            f"{outside[0]} is outside it: copy the photos into your home folder first."
        )
    return paths.cache_dir() / "work"


@contextlib.contextmanager
def missing_folders(folders: list[Path]) -> Iterator[None]:
    """Make the result's missing folders; on failure remove the ones made (innermost first, only if empty)."""
    created: list[Path] = []
    try:
        for folder in folders:
            if not folder.is_dir():
                try:
                    created += inputs.make_folder(folder)
                except OSError as exc:
                    raise WriteFailed(f"Could not create the folder {folder}: {exc.strerror or exc}.") from None
        yield
    except BaseException:
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise

"""The web page's jobs: the photos a person added, their brackets, and the stacks run on them.

Nothing here knows about HTTP.  A :class:`Job` owns a private work folder
(mode 0700, inside the server's own temporary folder) holding the uploaded
copies of the photos; the person's originals are never touched.  The name a
browser sends with a file is only shown, never used as a path: the copy is
stored under a name focuswrap makes from its letters and digits (so that the
library's bracket grouping can still read Open Camera's bracket names).

Brackets come from the library: photos added one by one form one bracket
(as ``focuswrap stack`` takes them); a dropped folder is split with
:func:`focuswrap.batch.find_groups`, exactly as ``focuswrap batch`` does.
Each bracket is checked with :func:`focuswrap.inputs.check_photos`, and its
one-sentence refusals are put next to the files they name.

Stacks run one at a time (:class:`Manager` keeps the queue), each as a child
process ``python -m focuswrap stack ... --events`` whose JSON lines are read
back with :func:`focuswrap.events.from_dict`.  Cancelling sends it SIGTERM:
its own handling stops the Hugin tools and removes its work folder.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

from focuswrap import batch, events, inputs, pipeline
from focuswrap.errors import BadInputError

#: Result formats offered on the page: label, extension.
FORMATS = {"jpg": "JPEG", "tif": "TIFF", "png": "PNG"}

#: What the page's JSON answers and events are made of (read-only containers, so that a
#: ``list[str]`` or a ``dict[str, int]`` is one too).
JsonValue: TypeAlias = "bool | int | float | str | Sequence[JsonValue] | Mapping[str, JsonValue] | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"


@dataclass(frozen=True)
class Limits:
    """Caps on what one job may upload (checked while the bytes arrive)."""

    photo_bytes: int = 300 * 1024 * 1024  #: one photo (a 16-bit TIFF of 50 Mpx is ~300 MB)
    photos: int = 500  #: photos in one job
    job_bytes: int = 8 * 1024 * 1024 * 1024  #: all photos of one job together
    #: Seconds a job may go unwatched (its page closed) before its stacks are cancelled and it is removed.
    grace: float = 20.0


class Refused(Exception):
    """A request the page cannot honour, with one sentence for the person and an HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB"


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_name(name: str, taken: set[str]) -> str:
    """A file name made of ASCII letters, digits, ``_`` and ``-`` (plus the extension), unique in ``taken``.

    ``taken`` holds case-folded names already used; the result is added to it.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem = _UNSAFE.sub("_", stem).strip("_-")[:80] or "photo"
    ext = _UNSAFE.sub("", ext)[:8].lower()
    suffix = f".{ext}" if ext else ""
    candidate, n = stem + suffix, 1
    while candidate.casefold() in taken:
        n += 1
        candidate = f"{stem}-{n}{suffix}"
    taken.add(candidate.casefold())
    return candidate


def _shown(text: str) -> str:
    """A name from the browser, safe to put in one line of text."""
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text[:200] or "(no name)"


@dataclass
class Upload:
    """One photo added to a job: what the person called it, and where its copy is."""

    index: int
    name: str  #: the file's name as the browser gave it (shown only)
    folder: str  #: the dropped folder it came from ("" for photos added one by one)
    path: Path  #: the copy in the job's work folder
    size: int = 0
    complete: bool = False


@dataclass
class Bracket:
    """Photos stacked together: upload indexes in stack order, and the refused ones with their reason."""

    index: int
    name: str
    photos: list[int]
    refused: dict[int, str] = field(default_factory=dict)
    how: str = "picked"

    @property
    def ready(self) -> list[int]:
        return [i for i in self.photos if i not in self.refused]


def _names_in(message: str, uploads: Sequence[Upload]) -> list[Upload]:
    """The uploads a library message names (the odd ones out come before its " but ")."""
    head = message.split(" but ", 1)[0]
    found = []
    for up in uploads:
        if re.search(re.escape(str(up.path)) + r"(?![\w.-])", head):
            found.append(up)
    return found


def _plain(message: str, uploads: Sequence[Upload]) -> str:
    """A library message with the copies' paths replaced by the names the person knows."""
    for up in sorted(uploads, key=lambda u: -len(str(u.path))):
        message = message.replace(str(up.path), up.name)
    return message


def check_bracket(uploads: Sequence[Upload]) -> dict[int, str]:
    """Refusals (upload index -> one sentence) for a bracket, from the library's photo checks.

    The library reports one kind of problem at a time, naming the photos that
    have it; those are set aside and the rest checked again, until the rest
    passes or fewer than two photos are left.
    """
    refused: dict[int, str] = {}
    remaining = list(uploads)
    while remaining:
        try:
            inputs.check_photos([u.path for u in remaining])
            break
        except BadInputError as exc:
            named = _names_in(exc.message, remaining) if len(remaining) > 1 else remaining
            if not named:  # a problem of the whole bracket: every photo carries it
                named = remaining
            for up in named:
                refused[up.index] = _plain(exc.message, uploads)
            remaining = [u for u in remaining if u not in named]
    return refused


# ---------------------------------------------------------------- runs


@dataclass
class BracketRun:
    """One bracket's stack inside a run, and what became of it."""

    bracket: int
    name: str
    photos: list[int]
    state: str = "waiting"  #: waiting, running, done, failed, cancelled
    started: float | None = None
    seconds: float | None = None
    result: JsonObject | None = None
    failure: JsonObject | None = None
    warnings: list[str] = field(default_factory=list)
    output: Path | None = None
    map_output: Path | None = None
    saved: Path | None = None


@dataclass
class Run:
    """The brackets of one job stacked with one preset and format ("Stack" or "Try another preset")."""

    id: int
    job: Job
    preset: str
    crop: bool | None
    fmt: str
    brackets: list[BracketRun]
    state: str = "queued"  #: queued, running, done, failed, cancelled
    #: Set by :meth:`Manager.cancel` (another thread than the one running the stacks).
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    process: subprocess.Popen[str] | None = None

    def summary(self) -> JsonObject:
        return {
            "id": self.id,
            "preset": self.preset,
            "crop": self.crop,
            "format": self.fmt,
            "state": self.state,
            "brackets": [
                {
                    "bracket": b.bracket,
                    "name": b.name,
                    "count": len(b.photos),
                    "state": b.state,
                    "seconds": b.seconds,
                    "result": b.result,
                    "failure": b.failure,
                    "warnings": b.warnings,
                }
                for b in self.brackets
            ],
        }


class Job:
    """One page's photos, brackets and runs, in a private work folder."""

    def __init__(self, folder: Path, limits: Limits) -> None:
        self.id = secrets.token_urlsafe(12)
        self.folder = folder
        self.limits = limits
        self.uploads: list[Upload] = []
        self.runs: list[Run] = []
        self.events: list[JsonObject] = []
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.watchers = 0
        self.last_seen = time.monotonic()
        self.closed = False
        self._taken: dict[str, set[str]] = {}
        self._folders: dict[str, Path] = {}
        self._subs: dict[tuple[str, str], Path] = {}
        self._brackets: list[Bracket] | None = None
        for sub in ("photos", "results", "tmp", "previews"):
            (folder / sub).mkdir()

    # ------------------------------------------------------------ events

    def emit(self, kind: str, **data: JsonValue) -> None:
        """Add one event for the page (server-sent events replay them from any point)."""
        with self.changed:
            self.events.append({"id": len(self.events), "kind": kind, **data})
            self.changed.notify_all()

    # ------------------------------------------------------------ photos

    def reserve(self, name: str, folder: str = "") -> Upload:
        """A new upload's place in the work folder (raises :class:`Refused` over the count cap)."""
        with self.lock:
            if self.closed:
                raise Refused("This set of photos was closed; reload the page to start again.", 409)
            if any(r.state in ("queued", "running") for r in self.runs):
                raise Refused("Photos cannot be added while they are being stacked; wait or press Cancel.", 409)
            if len(self.uploads) >= self.limits.photos:
                raise Refused(
                    f"{_shown(name)} was not added: one set takes at most {self.limits.photos} photos; "
                    "stack these first, then start again with the rest.",
                    413,
                )
            folder = folder.replace("\\", "/").strip("/")
            parts = [p for p in folder.split("/") if p not in ("", ".", "..")]
            top = parts[0] if parts else ""
            if top:
                # One folder per dropped folder; its first level of subfolders are brackets, as in batch.
                key = top
                if key not in self._folders:
                    self._folders[key] = self.folder / "photos" / f"folder-{len(self._folders) + 1}"
                    self._folders[key].mkdir()
                where = self._folders[key]
                if len(parts) > 1:
                    # Deeper folders join their first-level one's name: batch looks one level down.
                    sub_key = (key, "/".join(parts[1:]))
                    if sub_key not in self._subs:
                        taken = self._taken.setdefault(f"{key}/", set())
                        self._subs[sub_key] = where / safe_name(sub_key[1].replace("/", "_"), taken)
                        self._subs[sub_key].mkdir()
                    where = self._subs[sub_key]
            else:
                where = self.folder / "photos" / "picked"
                where.mkdir(exist_ok=True)
            taken = self._taken.setdefault(str(where), set())
            upload = Upload(len(self.uploads), _shown(name), _shown(top) if top else "", where / safe_name(name, taken))
            self.uploads.append(upload)
            self._brackets = None
            return upload

    def used_bytes(self) -> int:
        with self.lock:
            return sum(u.size for u in self.uploads)

    def receive(self, upload: Upload, chunk: bytes) -> None:
        """Count one received chunk against the caps (raises :class:`Refused` past them)."""
        upload.size += len(chunk)
        if upload.size > self.limits.photo_bytes:
            raise Refused(
                f"{upload.name} is larger than {_mb(self.limits.photo_bytes)}, the most one photo may be here; "
                "use the command line (focuswrap stack) for it.",
                413,
            )
        if self.used_bytes() > self.limits.job_bytes:
            raise Refused(
                f"{upload.name} was not added: the photos of one set may take at most "
                f"{_mb(self.limits.job_bytes)} together; stack these first, then start again with the rest.",
                413,
            )

    def finish(self, upload: Upload, modified: float | None) -> None:
        """The upload arrived whole: give it the photo's own file time (time grouping falls back to it)."""
        if modified is not None and modified > 0:
            try:
                os.utime(upload.path, (modified, modified))
            except (OSError, OverflowError, ValueError):
                pass
        with self.lock:
            upload.complete = True
            self._brackets = None

    def discard(self, upload: Upload) -> None:
        """Forget an upload that did not arrive whole (its partial copy is deleted)."""
        upload.path.unlink(missing_ok=True)
        with self.lock:
            if upload in self.uploads:
                self.uploads[upload.index] = Upload(upload.index, upload.name, upload.folder, upload.path)
            self._brackets = None

    def brackets(self) -> list[Bracket]:
        """The brackets of the photos added so far, checked (computed again after every change)."""
        with self.lock:
            if self._brackets is not None:
                return self._brackets
            complete = [u for u in self.uploads if u.complete]
            by_path = {u.path: u for u in complete}
            found: list[Bracket] = []
            picked = [u for u in complete if not u.folder]
            if picked:
                ordered = [by_path[p] for p in inputs.order_photos([u.path for u in picked], keep_order=False)]
                found.append(Bracket(0, ordered[0].path.stem, [u.index for u in ordered]))
            loose: list[int] = []
            for root in self._folders.values():
                try:
                    groups = batch.find_groups(root)
                except BadInputError:
                    groups = []
                in_groups: set[Path] = set()
                for g in groups:
                    members = [by_path[p] for p in g.frames if p in by_path]
                    in_groups.update(u.path for u in members)
                    if members:
                        found.append(Bracket(len(found), g.name, [u.index for u in members], how=g.how))
                loose += [
                    u.index for u in complete if u.folder and u.path.is_relative_to(root) and u.path not in in_groups
                ]
            for b in found:
                b.refused = check_bracket([self.uploads[i] for i in b.photos])
            if loose:
                # Files the grouping does not take (not .jpg/.tif/.png): refused one by one.
                other = Bracket(len(found), "not photos", loose, how="none")
                for i in loose:
                    other.refused[i] = (
                        f"{self.uploads[i].name} is not a photo focuswrap can stack; it takes JPEG, TIFF and PNG "
                        "photos (.jpg, .tif, .png)."
                    )
                found.append(other)
            self._brackets = found
            return found

    def state(self) -> JsonObject:
        """Everything the page shows about the job, as JSON-able data."""
        with self.lock:
            brackets = self.brackets()
            return {
                "id": self.id,
                "photos": [
                    {"index": u.index, "name": u.name, "folder": u.folder, "size": u.size}
                    for u in self.uploads
                    if u.complete
                ],
                "brackets": [
                    {
                        "index": b.index,
                        "name": b.name,
                        "how": b.how,
                        "photos": b.photos,
                        "ready": len(b.ready) >= 2,
                        "refused": {str(k): v for k, v in b.refused.items()},
                    }
                    for b in brackets
                ],
                "runs": [r.summary() for r in self.runs],
            }


# ---------------------------------------------------------------- manager


def _picture_folder() -> Path:
    home = os.environ.get("FOCUSWRAP_HOME")
    if home:
        return Path(home) / "results"
    import platformdirs

    return Path(platformdirs.user_pictures_dir()) / "focuswrap"


def results_folder(given: Path | None = None) -> Path:
    """Where finished results are saved: ``given``, else config.toml's ``results_dir``, else Pictures/focuswrap."""
    if given is not None:
        return given
    from focuswrap.config import load_config

    configured = load_config().results_dir
    return configured.expanduser() if configured is not None else _picture_folder()


def save_copy(source: Path, folder: Path, name: str) -> Path:
    """Copy ``source`` into ``folder`` as ``name`` (or ``name-2``, ``-3``...): never replaces a file."""
    folder.mkdir(parents=True, exist_ok=True)
    stem, suffix = Path(name).stem, Path(name).suffix
    part = folder / f".{stem}.{os.getpid()}.{secrets.token_hex(4)}.focuswrap-part"
    shutil.copyfile(source, part)
    try:
        n = 1
        while True:
            target = folder / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
            try:
                os.link(part, target)  # fails if the name is taken: an earlier result stays untouched
                return target
            except FileExistsError:
                n += 1
            except OSError:  # no hard links on this file system
                if not os.path.lexists(target):
                    os.replace(part, target)
                    return target
                n += 1
    finally:
        part.unlink(missing_ok=True)


class Manager:
    """All jobs of one server, the queue of runs (one stack at a time) and the clean-up."""

    def __init__(
        self,
        *,
        results_dir: Path | None = None,
        limits: Limits | None = None,
        python: Sequence[str] | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.results_dir = results_folder(results_dir)
        self.python = list(python or [sys.executable])
        self.root = Path(tempfile.mkdtemp(prefix="focuswrap-gui."))
        os.chmod(self.root, 0o700)
        self.jobs: dict[str, Job] = {}
        self.lock = threading.RLock()
        self.wake = threading.Condition(self.lock)
        self.queue: deque[Run] = deque()
        self.current: Run | None = None
        self.stopping = False
        self._runs = 0
        self._worker = threading.Thread(target=self._work, name="focuswrap-gui-stacks", daemon=True)
        self._reaper = threading.Thread(target=self._reap, name="focuswrap-gui-reaper", daemon=True)
        self._worker.start()
        self._reaper.start()

    # ------------------------------------------------------------ jobs

    def create_job(self) -> Job:
        with self.lock:
            if self.stopping:
                raise Refused("focuswrap is stopping.", 503)
            folder = Path(tempfile.mkdtemp(prefix="job.", dir=self.root))
            job = Job(folder, self.limits)
            self.jobs[job.id] = job
            return job

    def job(self, job_id: str) -> Job:
        with self.lock:
            job = self.jobs.get(job_id)
        if job is None:
            raise Refused(
                "This set of photos is gone (the page was closed or focuswrap restarted); reload the page.", 404
            )
        job.last_seen = time.monotonic()
        return job

    def close_job(self, job: Job) -> None:
        """Cancel the job's stacks and delete its work folder (uploads, results not yet saved elsewhere)."""
        with job.lock:
            job.closed = True
        for run in list(job.runs):
            self.cancel(run, wait=True)
        with self.lock:
            self.jobs.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)
        job.emit("closed")

    # ------------------------------------------------------------ runs

    def start(self, job: Job, *, preset: str, crop: bool | None, fmt: str, brackets: Sequence[int] | None) -> Run:
        """Queue a run of the job's ready brackets (all of them, or those listed)."""
        from focuswrap import presets

        if fmt not in FORMATS:
            raise Refused(f"focuswrap cannot write {fmt!r} results; choose JPEG, TIFF or PNG.")
        presets.get(preset)  # an unknown preset: ConfigError/BadInputError, shown by the app
        with job.lock:
            if any(r.state in ("queued", "running") for r in job.runs):
                raise Refused("These photos are already being stacked; wait for the result or press Cancel.", 409)
            chosen = [b for b in job.brackets() if len(b.ready) >= 2 and (brackets is None or b.index in brackets)]
            if not chosen:
                raise Refused("There is no bracket of two or more good photos to stack; add photos first.")
        with self.lock:
            self._runs += 1
            run = Run(
                self._runs,
                job,
                preset,
                crop,
                fmt,
                [BracketRun(b.index, b.name, b.ready) for b in chosen],
            )
            job.runs.append(run)
            self.queue.append(run)
            ahead = len(self.queue) - 1 + (1 if self.current is not None else 0)
            self.wake.notify_all()
        job.emit("run_queued", run=run.summary(), ahead=ahead)
        return run

    def find_run(self, job: Job, run_id: int) -> Run:
        for run in job.runs:
            if run.id == run_id:
                return run
        raise Refused("There is no such stack.", 404)

    def cancel(self, run: Run, *, wait: bool = False) -> None:
        """Stop a run at once: drop it from the queue, or SIGTERM its running stack."""
        with self.lock:
            run.cancel_requested.set()
            if run in self.queue:
                self.queue.remove(run)
                self._finish_run(run, "cancelled")
                return
            process = run.process
        if process is not None and process.poll() is None:
            _terminate(process)
        if wait:
            deadline = time.monotonic() + 60
            with run.job.changed:
                while run.state in ("queued", "running") and time.monotonic() < deadline:
                    run.job.changed.wait(0.5)

    def _finish_run(self, run: Run, state: str) -> None:
        run.state = state
        for b in run.brackets:
            if b.state in ("waiting", "running"):
                b.state = "cancelled"
        run.job.emit("run_finished", run=run.summary())

    def _work(self) -> None:
        while True:
            with self.lock:
                while not self.queue and not self.stopping:
                    self.wake.wait()
                if self.stopping:
                    return
                run = self.queue.popleft()
                self.current = run
                waiting = list(self.queue)
            for position, other in enumerate(waiting):
                other.job.emit("run_waiting", run=other.id, ahead=position + 1)
            try:
                with _machine_turn(run):
                    self._execute(run)
            finally:
                with self.lock:
                    self.current = None

    def _execute(self, run: Run) -> None:
        job = run.job
        run.state = "running"
        job.emit("run_started", run=run.summary())
        failed = False
        for b in run.brackets:
            if run.cancel_requested.is_set() or job.closed:
                break
            try:
                _run_bracket(self, run, b)
            except Exception as exc:  # noqa: BLE001 - a bug here must end the run, never hang the queue
                b.state = "failed"
                b.failure = {
                    "message": f"focuswrap's page could not run this stack ({type(exc).__name__}: {exc}); "
                    "please report it.",
                    "exit_code": 1,
                    "hint": "The command line (focuswrap stack) may still work on these photos.",
                    "attempts": [],
                    "tool_output": "",
                }
                job.emit("bracket_finished", run=run.id, bracket=b.bracket, state="failed", failure=b.failure)
            failed = failed or b.state == "failed"
        state = "cancelled" if run.cancel_requested.is_set() else "failed" if failed else "done"
        with self.lock:
            self._finish_run(run, state)

    # ------------------------------------------------------------ clean-up

    def _reap(self) -> None:
        """Close jobs whose page is gone for longer than the grace period."""
        while not self.stopping:
            time.sleep(min(1.0, self.limits.grace / 4))
            now = time.monotonic()
            with self.lock:
                gone = [j for j in self.jobs.values() if j.watchers <= 0 and now - j.last_seen > self.limits.grace]
            for job in gone:
                self.close_job(job)

    def shutdown(self) -> None:
        """Stop every stack, then delete every job's work folder (server stop, Ctrl-C included)."""
        with self.lock:
            self.stopping = True
            self.wake.notify_all()
            jobs = list(self.jobs.values())
        for job in jobs:
            self.close_job(job)
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def _machine_turn(run: Run) -> Iterator[None]:
    """Wait until no other ``focuswrap gui`` of this user is stacking (one stack at a time per machine).

    A lock file in the user's cache folder, held while the run stacks; the
    lock goes with the process, so a killed server never blocks the next.
    (Windows has no ``fcntl``: there each server keeps only its own queue.)
    """
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    from focuswrap import paths

    folder = paths.cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "gui-stack.lock", "a+b") as fh:
        told = False
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if run.cancel_requested.is_set():
                    yield  # _execute sees the cancel and runs nothing
                    return
                if not told:
                    run.job.emit("run_waiting", run=run.id, ahead=1, elsewhere=True)
                    told = True
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _terminate(process: subprocess.Popen[str]) -> None:
    """SIGTERM the stack (it stops its tools and removes its work folder); kill it if it does not go."""
    try:
        if sys.platform == "win32":
            process.terminate()
        else:
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    except OSError:
        pass


# ---------------------------------------------------------------- one stack


def stack_argv(
    python: Sequence[str],
    *,
    photos: Sequence[Path],
    output: Path,
    map_output: Path,
    preset: str,
    crop: bool | None,
) -> list[str]:
    """The child process of one bracket's stack (pure; the photos in the order shown on the page)."""
    return (
        [*python, "-m", "focuswrap", "stack", *map(os.fspath, photos)]
        + ["-o", os.fspath(output), "--preset", preset, "--map", os.fspath(map_output), "--keep-order", "--events"]
        + ([] if crop is None else ["--crop" if crop else "--no-crop"])
    )


def _progress(event: events.Event) -> tuple[str, str, float | None] | None:
    """(step, text, fraction done) of an event the page shows as progress; None for the others."""
    if isinstance(event, events.StepStarted):
        return event.step, event.title, None
    if isinstance(event, events.StepProgress):
        return event.step, event.label, event.done / event.total if event.total else None
    if isinstance(event, events.AttemptStarted):
        why = f": {event.why}" if event.why else ""
        return "", f"Trying again (attempt {event.number} of {event.limit}){why}", None
    return None


def _run_bracket(manager: Manager, run: Run, b: BracketRun) -> None:
    """Stack one bracket in a child process and turn its events into the page's."""
    job = run.job
    # The stack's own messages name its output ("Writing pcb_001-miniature-stacked.jpg"): give it the person's name.
    where = job.folder / "results" / f"run{run.id}" / str(b.bracket)
    where.mkdir(parents=True)
    stem = f"{b.name}-{run.preset}{pipeline.STACKED_SUFFIX}"
    b.output = output = where / f"{stem}.{run.fmt}"
    b.map_output = where / f"{stem}-map.png"
    photos = [job.uploads[i].path for i in b.photos]
    argv = stack_argv(
        manager.python, photos=photos, output=output, map_output=b.map_output, preset=run.preset, crop=run.crop
    )
    env = {**os.environ, "TMPDIR": str(job.folder / "tmp"), "PYTHONUNBUFFERED": "1"}
    b.state = "running"
    b.started = time.monotonic()
    job.emit("bracket_started", run=run.id, bracket=b.bracket, name=b.name, count=len(b.photos))
    stderr: deque[str] = deque(maxlen=40)
    finished: events.StackFinished | events.StackFailed | None = None
    with manager.lock:
        if run.cancel_requested.is_set():
            b.state = "cancelled"
            return
        try:
            process = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                cwd=job.folder,
                env=env,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
        except OSError as exc:
            b.state = "failed"
            b.failure = {"message": f"focuswrap could not start a stack: {exc.strerror or exc}.", "exit_code": 1}
            job.emit("bracket_finished", run=run.id, bracket=b.bracket, state=b.state, failure=b.failure)
            return
        run.process = process
    # Both are pipes (Popen above): the last lines of stderr are kept for a stack that dies without its event.
    assert process.stdout is not None and process.stderr is not None
    reader = threading.Thread(target=stderr.extend, args=(process.stderr,), daemon=True)
    reader.start()
    for line in process.stdout:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            event = events.from_dict(json.loads(line))
        except ValueError:
            continue
        elapsed = round(time.monotonic() - b.started, 1)
        progress = _progress(event)
        if progress is not None:
            step, text, fraction = progress
            if text:
                job.emit(
                    "progress", run=run.id, bracket=b.bracket, step=step, text=text, fraction=fraction, elapsed=elapsed
                )
        elif isinstance(event, events.Notice) and event.level == "warning":
            b.warnings.append(event.text)
            job.emit("warning", run=run.id, bracket=b.bracket, text=event.text)
        elif isinstance(event, events.AttemptFailed):
            job.emit("progress", run=run.id, bracket=b.bracket, step="align", text=event.explanation, elapsed=elapsed)
        elif isinstance(event, (events.StackFinished, events.StackFailed)):
            finished = event
    code = process.wait()
    reader.join(timeout=10)
    with manager.lock:
        run.process = None
    b.seconds = round(time.monotonic() - b.started, 1)
    if run.cancel_requested.is_set():
        b.state = "cancelled"
        shutil.rmtree(where, ignore_errors=True)
        job.emit("bracket_finished", run=run.id, bracket=b.bracket, state="cancelled", seconds=b.seconds)
        return
    if isinstance(finished, events.StackFinished) and code == 0 and output.is_file():
        _finished(manager, run, b, output, finished)
    else:
        b.state = "failed"
        shutil.rmtree(where, ignore_errors=True)
        if isinstance(finished, events.StackFailed):
            b.failure = {
                "message": finished.message,
                "exit_code": finished.exit_code,
                "hint": finished.hint,
                "attempts": list(finished.attempts),
                "tool_output": finished.tool_output,
            }
        else:
            tail = "\n".join(s.rstrip() for s in stderr)
            b.failure = {
                "message": f"The stack stopped unexpectedly (exit code {code}).",
                "exit_code": code,
                "hint": "",
                "attempts": [],
                "tool_output": tail,
            }
    job.emit(
        "bracket_finished",
        run=run.id,
        bracket=b.bracket,
        state=b.state,
        seconds=b.seconds,
        result=b.result,
        failure=b.failure,
        warnings=b.warnings,
    )


def _finished(manager: Manager, run: Run, b: BracketRun, output: Path, event: events.StackFinished) -> None:
    """A bracket's stack succeeded: save a copy of ``output``, and the result the page shows."""
    job = run.job
    sharp = event.sharpness or {}
    sharpest_name = sharp.get("sharpest_input")
    sharpest = None
    for i in b.photos:
        if sharpest_name and job.uploads[i].path.name == Path(sharpest_name).name:
            sharpest = i
    gain = sharp.get("gain")
    warnings = list(event.warnings)
    for text in warnings:
        if text not in b.warnings:
            b.warnings.append(text)
    name = output.name
    try:
        b.saved = save_copy(output, manager.results_dir, name)
        saved_text = shown_path(b.saved)
    except OSError as exc:
        saved_text = None
        b.warnings.append(
            f"The result could not be saved into {manager.results_dir} ({exc.strerror or exc}); use Download."
        )
    has_map = bool(event.map_output) and b.map_output is not None and b.map_output.is_file()
    from focuswrap import contribution

    b.state = "done"
    b.result = {
        "size": event.size,
        "bytes": output.stat().st_size,
        "preset": event.preset,
        "cached": event.cached,
        "seconds": event.seconds,
        "gain": gain,
        "sharpest": sharpest,
        "sharpest_name": job.uploads[sharpest].name if sharpest is not None else None,
        "map": has_map,
        "legend": [
            {
                "name": job.uploads[i].name,
                "colour": "#{:02x}{:02x}{:02x}".format(*contribution.PALETTE[k % len(contribution.PALETTE)]),
            }
            for k, i in enumerate(b.photos)
        ],
        "saved": saved_text,
        "download_name": b.saved.name if b.saved else name,
        "format": FORMATS[run.fmt],
    }


def shown_path(path: Path) -> str:
    """``path`` as a person reads it: under their home folder as ``~/...``, else in full."""
    try:
        inside = path.relative_to(Path.home())
    except (ValueError, RuntimeError):  # elsewhere, or no home folder
        return str(path)
    return str(Path("~") / inside)

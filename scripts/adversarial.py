#!/usr/bin/env python3
"""Hostile and unlucky users against an installed focuswrap, with the real Hugin tools.

Each row is one promise of issue 13 ("nothing lost, ever"): a broken-promise
item (B1..B10) or a misleading-message item (M...).  A row builds its own
photos in a fresh temporary folder, runs ``python -m focuswrap`` as a person
would (its own FOCUSWRAP_HOME and TMPDIR, a new session so that every process
it starts can be found afterwards) and checks what the issue says must hold,
plus what every run must keep:

* no Python traceback, on either stream;
* no ``focuswrap.*`` work folder left in its TMPDIR;
* no process of its session still running (no orphaned Hugin tool).

Usage (from anywhere; it uses the focuswrap the Python running it imports)::

    python scripts/adversarial.py            # every row
    python scripts/adversarial.py -k cache   # rows whose id or title contains "cache"
    python scripts/adversarial.py --list     # the rows, without running them

It prints one line per row (``held`` or ``FAILED: why``, ``skipped: why``) and
then ``tried N, held N, failed N``; it exits 1 when any row failed.
``tests/test_hostile.py`` runs the same rows under pytest.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "stacks"
PCB = SHARED / "pcb"
DEEP32 = SHARED / "deep32"
TOOLS = ("align_image_stack", "enfuse", "nona")
#: Seconds one focuswrap run may take here (2 shared cores, other work beside it).
RUN_LIMIT = 300


class Broken(AssertionError):
    """A promise that did not hold (the row fails with this message)."""


class Skip(Exception):
    """The row cannot run here (what is missing is the message)."""


def expect(condition: object, why: str) -> None:
    if not condition:
        raise Broken(why)


# ------------------------------------------------------------------ a trial


#: Every focuswrap a row starts gets this variable, with a value of its own; its
#: tools inherit it, so they are found even after they start sessions of their
#: own (focuswrap puts each tool in its own process group) or are orphaned.
MARK = "FOCUSWRAP_ADVERSARIAL_RUN"
#: What makes a child Python start coverage measurement (under ``COVERAGE=1``).
_COVERAGE_HOOK = ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")
#: focuswrap's pid -> its mark.
MARKS: dict[int, str] = {}


def marked_processes(mark: str) -> list[tuple[int, str]]:
    """(pid, name) of every live, non-zombie process whose environment carries ``MARK=mark``."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if needle not in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                continue
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if stat[stat.rindex(")") + 2 :].split()[0] != "Z":
            found.append((int(entry), name))
    return found


def _argc(pid: int) -> int:
    try:
        return len(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")) - 1
    except OSError:
        return 0


def children_named(child: subprocess.Popen, name: str, *, working: bool = True) -> list[int]:
    """Pids of the running processes called ``name`` that focuswrap ``child`` started.

    ``working``: only runs on photos, not the version probe (``align_image_stack -h``).
    """
    return [
        p
        for p, n in marked_processes(MARKS[child.pid])
        if n == name[:15] and p != child.pid and (not working or _argc(p) > 2)
    ]


@dataclass
class Trial:
    """One row's folder: photos in ``shots``, its own FOCUSWRAP_HOME and TMPDIR, and ways to run focuswrap."""

    root: Path
    started: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.shots = self.root / "shots"
        self.home = self.root / "home"
        self.tmp = self.root / "tmp"
        for folder in (self.shots, self.home, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)

    # -- photos

    def photos(self, n: int = 3, size: tuple[int, int] = (320, 240), seed: int = 1, stem: str = "IMG_") -> list[Path]:
        """``n`` synthetic frames of one scene (see focuswrap.synthetic), named STEM1.jpg ..."""
        from focuswrap import synthetic

        made = synthetic.make_stack(self.root / f"render-{seed}-{n}-{size[0]}", frames=n, size=size, seed=seed)
        out = []
        for i, frame in enumerate(made.frames):
            dst = self.shots / f"{stem}{i + 1}.jpg"
            shutil.copyfile(frame, dst)
            out.append(dst)
        return out

    def converted(self, photos: Sequence[Path], convert: Callable, suffix: str) -> list[Path]:
        """Each photo passed through ``convert(PIL image) -> image`` and saved with ``suffix``."""
        from PIL import Image

        out = []
        for p in photos:
            with Image.open(p) as im:
                dst = p.with_suffix(suffix)
                convert(im).save(dst)
            p.unlink()
            out.append(dst)
        return out

    # -- running

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOCUSWRAP_")}
        env.update(FOCUSWRAP_HOME=str(self.home), TMPDIR=str(self.tmp), NO_COLOR="1", COLUMNS="120")
        return env

    def argv(self, *args: object) -> list[str]:
        return [sys.executable, "-m", "focuswrap", *map(str, args)]

    def start(
        self, *args: object, env: dict[str, str] | None = None, measured: bool = True, **popen
    ) -> subprocess.Popen:
        """Start focuswrap; ``measured=False`` leaves out the test run's coverage hook (a .pth file
        that runs while Python starts, and would take a signal meant for focuswrap's start-up)."""
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        mark = f"{os.getpid()}-{len(self.started)}-{time.monotonic_ns()}"
        user_preexec = popen.pop("preexec_fn", None)

        def preexec() -> None:
            # As a person's shell starts it: a harness run in the background
            # (nohup, &) would otherwise pass SIGINT/SIGHUP on as ignored.
            for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
                signal.signal(sig, signal.SIG_DFL)
            if user_preexec is not None:
                user_preexec()

        child = subprocess.Popen(
            self.argv(*args),
            cwd=popen.pop("cwd", self.shots),
            env={
                k: v for k, v in {**self.env, **(env or {}), MARK: mark}.items() if measured or k not in _COVERAGE_HOOK
            },
            start_new_session=True,
            preexec_fn=preexec,
            **popen,
        )
        self.started.append(mark)
        MARKS[child.pid] = mark
        return child

    def run(self, *args: object, env: dict[str, str] | None = None, timeout: float = RUN_LIMIT, **popen) -> Run:
        """Run focuswrap ARGS to its end; the common promises are checked on the way out."""
        child = self.start(*args, env=env, **popen)
        try:
            out, err = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise Broken(f"focuswrap {' '.join(map(str, args))} did not finish within {timeout} s") from None
        return self.finished(child, out, err)

    def finished(self, child: subprocess.Popen, out: bytes | None, err: bytes | None) -> Run:
        result = Run(child.returncode, (out or b"").decode("utf-8", "replace"), (err or b"").decode("utf-8", "replace"))
        self.check_common(child.pid, result)
        return result

    def check_common(self, pid: int, result: Run | None = None) -> None:
        """What every run must keep: no traceback, no work folder, no process left behind."""
        if result is not None:
            expect("Traceback" not in result.out + result.err, f"a traceback was printed:\n{result.err[-2000:]}")
        deadline = time.monotonic() + 10
        while (left := marked_processes(MARKS[pid])) and time.monotonic() < deadline:
            time.sleep(0.1)
        expect(not left, f"processes left running after focuswrap ended: {left}")
        folders = [f for f in os.listdir(self.tmp) if f.startswith("focuswrap.")]
        expect(not folders, f"work folders left in TMPDIR: {folders}")

    def cleanup(self) -> None:
        for mark in self.started:
            for p, _ in marked_processes(mark):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass

    def fake_bin(self, name: str, body: str) -> Path:
        """A folder holding the real tools but ``name`` replaced by a Python script running ``body``.

        The script answers ``-h``/``--version`` like the real tool unless ``body`` does that itself.
        """
        folder = self.root / "bin"
        folder.mkdir(exist_ok=True)
        for tool in TOOLS:
            real = shutil.which(tool)
            if real and not (folder / tool).exists() and tool != name:
                (folder / tool).symlink_to(real)
        script = folder / name
        script.write_text(
            f"#!{sys.executable}\nimport os, subprocess, sys, time\nREAL = {shutil.which(name)!r}\n{body}\n"
        )
        script.chmod(0o755)
        return folder


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err

    def error_line(self) -> str:
        lines = [ln for ln in self.err.splitlines() if ln.startswith("focuswrap: error: ")]
        return lines[0] if lines else ""


def wait_until(what: Callable[[], object], within: float, why: str) -> object:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.02)
    raise Broken(f"{why} (waited {within} s)")


# ------------------------------------------------------------------ the rows


@dataclass(frozen=True)
class Case:
    id: str
    item: str  # the item: B1..B10 (broken promises), M (messages)
    title: str
    check: Callable[[Trial], None]
    needs: frozenset[str] = frozenset({"real"})


CASES: list[Case] = []


def case(id: str, item: str, title: str, needs: Sequence[str] = ("real",)):
    def register(fn: Callable[[Trial], None]) -> Callable[[Trial], None]:
        CASES.append(Case(id, item, title, fn, frozenset(needs)))
        return fn

    return register


def _stacked(t: Trial, run: Run, output: Path) -> None:
    expect(run.code == 0, f"exit {run.code}, expected 0:\n{run.err[-1500:]}")
    expect(output.is_file() and output.stat().st_size > 0, f"{output.name} was not written")


# B1 ------------------------------------------------------------------------


@case("cache-damaged", "B1", "a damaged cache entry is discarded and the stack aligned again")
def _cache_damaged(t: Trial) -> None:
    photos = t.photos()
    _stacked(t, t.run("stack", *photos, "-o", "first.jpg", "-q"), t.shots / "first.jpg")
    entries = [d for d in (t.home / "cache" / "aligned").iterdir() if not d.name.startswith(".")]
    expect(len(entries) == 1, f"expected one cache entry, found {entries}")
    frame = sorted(entries[0].glob("*.tif"))[0]
    data = frame.read_bytes()
    frame.unlink()  # a new file: the hard link into the first run's folder is gone anyway
    frame.write_bytes(data[: len(data) // 3])
    for name in ("second.jpg", "third.jpg"):  # before the fix: exit 5 on every run until `cache clear`
        _stacked(t, t.run("stack", *photos, "-o", name), t.shots / name)


@case("cache-damaged-notice", "B1", "the run that finds a damaged cache entry says so in one line")
def _cache_damaged_notice(t: Trial) -> None:
    photos = t.photos()
    _stacked(t, t.run("stack", *photos, "-o", "first.jpg", "-q"), t.shots / "first.jpg")
    entry = next(d for d in (t.home / "cache" / "aligned").iterdir() if not d.name.startswith("."))
    frame = sorted(entry.glob("*.tif"))[-1]
    data = bytearray(frame.read_bytes())
    frame.unlink()
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed
    frame.write_bytes(bytes(data))
    run = t.run("stack", *photos, "-o", "second.jpg")
    _stacked(t, run, t.shots / "second.jpg")
    notices = [ln for ln in run.text.splitlines() if "damaged" in ln]
    expect(len(notices) == 1, f"expected one line about the damaged cache entry, got:\n{run.text}")
    expect("reused from the cache" not in run.text, "the damaged frames were fused")


# B2 ------------------------------------------------------------------------


def _signal_while(t: Trial, tool: str, sig: int, size=(320, 240), n: int = 3) -> Run:
    photos = t.photos(n, size=size)
    child = t.start("stack", *photos, "-o", "out.tif", "--no-cache")
    wait_until(lambda: children_named(child, tool) or child.poll() is not None, 120, f"{tool} never ran")
    expect(child.poll() is None, f"focuswrap ended before {tool} could be interrupted")
    child.send_signal(sig)
    try:
        out, err = child.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        raise Broken(f"focuswrap did not stop within 30 s of {signal.Signals(sig).name}") from None
    run = t.finished(child, out, err)
    expect(run.code == 130, f"exit {run.code} after {signal.Signals(sig).name}, expected 130:\n{run.err}")
    expect(not (t.shots / "out.tif").exists(), "a result appeared although the stack was interrupted")
    return run


@case("sighup-align", "B2", "closing the terminal (SIGHUP) while aligning stops align_image_stack and cleans up")
def _sighup_align(t: Trial) -> None:
    _signal_while(t, "align_image_stack", signal.SIGHUP)


@case("sighup-fuse", "B2", "closing the terminal (SIGHUP) while fusing stops enfuse and removes the aligned frames")
def _sighup_fuse(t: Trial) -> None:
    _signal_while(t, "enfuse", signal.SIGHUP, size=(2400, 1800))


@case("stale-work-folder", "B2", "a work folder left by a SIGKILLed run is removed by the next run")
def _stale_work_folder(t: Trial) -> None:
    photos = t.photos()
    child = t.start("stack", *photos, "-o", "killed.jpg", "--no-cache")
    wait_until(lambda: children_named(child, "align_image_stack"), 120, "align_image_stack never ran")
    child.send_signal(signal.SIGKILL)
    child.communicate()
    t.cleanup()  # the orphaned tool (SIGKILL cannot be handled; nothing could have stopped it)
    left = [f for f in os.listdir(t.tmp) if f.startswith("focuswrap.")]
    expect(left, "the SIGKILLed run left no work folder: the row tests nothing")
    other = t.tmp / "focuswrap.not-ours"  # no owner file: not ours to remove
    other.mkdir()
    child = t.start("stack", *photos, "-o", "next.jpg", "--no-cache")
    out, err = child.communicate(timeout=RUN_LIMIT)
    left = sorted(f for f in os.listdir(t.tmp) if f.startswith("focuswrap."))
    expect(left == [other.name], f"after the next run, TMPDIR holds {left}; expected only {other.name}")
    other.rmdir()
    _stacked(t, t.finished(child, out, err), t.shots / "next.jpg")


# B3 ------------------------------------------------------------------------


@case("output-reader-gone", "B3", "stack ... 2>&1 | head -3: the reader goes away, the result is still delivered")
def _reader_gone(t: Trial) -> None:
    photos = t.photos()
    child = t.start("stack", *photos, "-o", "out.jpg", "--no-cache", stderr=subprocess.STDOUT)
    for _ in range(3):
        child.stdout.readline()
    child.stdout.close()  # as head -3 exits
    try:
        child.wait(timeout=RUN_LIMIT)
    except subprocess.TimeoutExpired:
        child.kill()
        raise Broken("focuswrap did not finish after its reader went away") from None
    t.check_common(child.pid)
    expect((t.shots / "out.jpg").is_file(), f"no result after the reader went away (exit {child.returncode})")
    expect(child.returncode == 0, f"exit {child.returncode} although the result was written")


@case("stderr-closed", "B3", "stack ... 2>&-: no display, the result is delivered")
def _stderr_closed(t: Trial) -> None:
    photos = t.photos()
    run = t.run(
        "stack", *photos, "-o", "out.jpg", "--no-cache", stderr=subprocess.DEVNULL, preexec_fn=lambda: os.close(2)
    )
    expect("internal error" not in run.out, f"stdout says: {run.out}")
    _stacked(t, run, t.shots / "out.jpg")


@case("stderr-full", "B3", "stack ... 2>/dev/full: no display, the result is delivered")
def _stderr_full(t: Trial) -> None:
    photos = t.photos()
    with open("/dev/full", "wb") as full:
        run = t.run("stack", *photos, "-o", "out.jpg", "--no-cache", stderr=full)
    _stacked(t, run, t.shots / "out.jpg")


# B4 ------------------------------------------------------------------------


def _grey16(im):
    return im.convert("L").point(lambda v: v * 257, "I").convert("I;16")


@case("grey16-tiff", "B4", "16-bit greyscale TIFFs stack into a 16-bit greyscale result")
def _grey16_tiff(t: Trial) -> None:
    photos = t.converted(t.photos(), _grey16, ".tif")
    run = t.run("stack", *photos, "-o", "out.tif")
    _stacked(t, run, t.shots / "out.tif")
    _expect_grey(t.shots / "out.tif", bits=16)


@case("grey16-png", "B4", "16-bit greyscale PNGs stack into a 16-bit greyscale PNG")
def _grey16_png(t: Trial) -> None:
    photos = t.converted(t.photos(), _grey16, ".png")
    run = t.run("stack", *photos, "-o", "out.png")
    _stacked(t, run, t.shots / "out.png")
    _expect_grey(t.shots / "out.png", bits=16)


@case("float32-tiff", "B4", "32-bit float TIFFs stack into a 32-bit float result")
def _float_tiff(t: Trial) -> None:
    photos = t.converted(t.photos(), lambda im: im.convert("L").point(lambda v: v / 255.0, "F"), ".tif")
    run = t.run("stack", *photos, "-o", "out.tif")
    _stacked(t, run, t.shots / "out.tif")
    _expect_grey(t.shots / "out.tif", bits=32)


def _expect_grey(path: Path, *, bits: int) -> None:
    """``path`` is a greyscale picture of ``bits`` bits per sample, and not blank.

    Read with focuswrap's own reader (Pillow cannot open every TIFF Hugin's tools write).
    """
    from focuswrap import pixels

    if path.suffix == ".tif":
        facts = pixels.tiff_facts(path)
        expect(facts.samples - facts.alpha == 1, f"{path.name} has {facts.samples} samples per pixel: not greyscale")
        expect(facts.bits == bits, f"{path.name} has {facts.bits} bits per sample, expected {bits}")
    with pixels.open_image(path) as im:
        if path.suffix == ".png":
            expect(im.mode in ("I;16", "I", "I;16B"), f"{path.name} is {im.mode}, expected 16-bit grey")
        plane = im.convert("I") if im.mode.startswith("I;16") else im
        plane = plane if plane.mode in ("I", "F", "L") else plane.convert("L")
        low, high = plane.getextrema()
    expect(high > low, f"{path.name} is one flat value ({low}): nothing was stacked into it")


# B5 ------------------------------------------------------------------------


def _names_case(stems: Sequence[str]) -> Callable[[Trial], None]:
    def check(t: Trial) -> None:
        photos = t.photos(len(stems))
        renamed = []
        for p, stem in zip(photos, stems, strict=True):
            dst = p.with_name(stem + ".jpg")
            p.rename(dst)
            renamed.append(dst)
        out = t.shots / (stems[0] + "-result.jpg")
        # "./" keeps a leading "-" from being read as an option by focuswrap itself.
        run = t.run("stack", *[f"./{p.name}" for p in renamed], "-o", f"./{out.name}", "--no-cache")
        _stacked(t, run, out)
        expect("Could not" not in run.text, run.text)

    return check


for _id, _stems in {
    "name-quote": ['IMG "1"', 'IMG "2"', 'IMG "3"'],
    "name-dollar-space": ["shot $HOME 1", "shot $HOME 2", "shot $(id) 3"],
    "name-newline": ["line\nbreak 1", "line\nbreak 2", "line\nbreak 3"],
    "name-dash-at": ["-v 1", "@list 2", "-o 3"],
    "name-non-ascii": ["Käfer ünd 1", "Käfer ünd 2", "日本 3"],
}.items():
    case(_id, "B5", f"photo names the tools cannot take ({_id[5:]}) stack with the default preset")(_names_case(_stems))


# B6 ------------------------------------------------------------------------


def _evil_preset(t: Trial, token: str) -> Path:
    folder = t.home / "config" / "presets"
    folder.mkdir(parents=True, exist_ok=True)
    preset = folder / "evil.toml"
    preset.write_text(f'description = "x"\n\n[align]\nextra_args = ["{token}"]\n')
    return preset


def _guard_case(token: str) -> Callable[[Trial], None]:
    def check(t: Trial) -> None:
        evil = t.root / "evil"
        evil.mkdir()
        preset = _evil_preset(t, token.replace("EVIL", str(evil)))
        photos = t.photos()
        run = t.run("stack", *photos, "-o", "out.jpg", "--preset", "evil")
        expect(list(evil.iterdir()) == [], f"files written outside the work folder: {list(evil.iterdir())}")
        expect(run.code == 6, f"exit {run.code}, expected 6 (a preset that sets a managed option):\n{run.err}")
        expect(
            str(preset) in run.err and "extra_args" in run.err, f"the preset file and field are not named:\n{run.err}"
        )

    return check


for _id, _token in {
    "guard-grouped-a": "-maEVIL/evil_",
    "guard-grouped-o": "-moEVIL/evil.tif",
    "guard-grouped-v": "-ev",
}.items():
    case(_id, "B6", f"preset extra_args {_token!r} is refused (a managed option inside a group of short flags)")(
        _guard_case(_token)
    )


# B7 ------------------------------------------------------------------------


def _bad_input(run: Run, name: str) -> None:
    expect(run.code == 2, f"exit {run.code}, expected 2:\n{run.err}")
    line = run.error_line()
    expect(line and len([ln for ln in run.err.splitlines() if ln.strip()]) <= 3, f"not one clear sentence:\n{run.err}")
    expect(name in line, f"{name!r} not named in: {line}")


@case("input-symlink-loop", "B7", "an input that is a symlink loop: one sentence, exit 2")
def _input_loop(t: Trial) -> None:
    photos = t.photos(2)
    (t.shots / "loop.jpg").symlink_to("loop.jpg")
    _bad_input(t.run("stack", *photos, "loop.jpg", "-o", "out.jpg"), "loop.jpg")


@case("output-symlink-loop", "B7", "an output that is a symlink loop: one sentence, exit 2")
def _output_loop(t: Trial) -> None:
    photos = t.photos(2)
    (t.shots / "out.jpg").symlink_to("out.jpg")
    _bad_input(t.run("stack", *photos, "-o", "out.jpg"), "out.jpg")


@case("output-name-too-long", "B7", "an output name over 255 bytes: one sentence, exit 2")
def _output_long(t: Trial) -> None:
    photos = t.photos(2)
    _bad_input(t.run("stack", *photos, "-o", "x" * 300 + ".jpg"), "name")


@case("demo-into-a-file", "B7", "focuswrap demo FILE: one sentence, exit 2")
def _demo_file(t: Trial) -> None:
    (t.shots / "notes.txt").write_text("mine\n")
    run = t.run("demo", "notes.txt")
    _bad_input(run, "notes.txt")
    expect((t.shots / "notes.txt").read_text() == "mine\n", "the file was changed")


# B8 ------------------------------------------------------------------------


@case("stdout-full", "B8", "stdout on a full device: the result is written, exit 0")
def _stdout_full(t: Trial) -> None:
    photos = t.photos()
    with open("/dev/full", "wb") as full:
        run = t.run("stack", *photos, "-o", "out.jpg", stdout=full)
    _stacked(t, run, t.shots / "out.jpg")
    expect("Exception ignored" not in run.err, run.err)


@case("ascii-terminal", "B8", "a non-UTF-8 terminal (PYTHONIOENCODING=ascii) and a non-ASCII output name")
def _ascii(t: Trial) -> None:
    photos = t.photos()
    run = t.run("stack", *photos, "-o", "Ergebnis-ä日.jpg", env={"PYTHONIOENCODING": "ascii", "LC_ALL": "C"})
    _stacked(t, run, t.shots / "Ergebnis-ä日.jpg")


# B9 ------------------------------------------------------------------------


@case("ctrl-c-at-import", "B9", "Ctrl-C in the first 0.15 s (Python still importing): exit 130, no traceback")
def _ctrl_c_import(t: Trial) -> None:
    photos = t.photos()
    ours = 0
    for delay in (0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15) * 2:
        child = t.start("stack", *photos, "-o", "out.jpg", "--force", measured=False)
        time.sleep(delay)
        child.send_signal(signal.SIGINT)
        err = child.communicate(timeout=60)[1].decode("utf-8", "replace")
        t.check_common(child.pid)
        # Before focuswrap's first line runs, the interpreter itself is starting
        # (site, .pth files): a signal then is Python's to handle, not ours.
        # site.py prints the traceback of a .pth file's code (coverage's
        # subprocess hook, under COVERAGE=1) and goes on: that one is Python's too.
        in_site = "Error processing line" in err or "Remainder of file ignored" in err
        in_python_startup = in_site or (
            "focuswrap" not in err.replace("focuswrap: error:", "")
            and (child.returncode == -signal.SIGINT or "KeyboardInterrupt" in err)
        )
        if in_python_startup:
            continue
        ours += 1
        expect("Traceback" not in err, f"Ctrl-C after {delay} s printed a traceback:\n{err[-1500:]}")
        expect(child.returncode == 130, f"Ctrl-C after {delay} s: exit {child.returncode}, expected 130:\n{err[-800:]}")
    expect(ours >= 8, f"only {ours} of 16 signals reached focuswrap's own code: the row tested too little")


# B10 -----------------------------------------------------------------------


@case("map-deep32", "B10", "--map on the 32-frame stack (enfuse numbers its masks 01..32)", needs=("real", "deep32"))
def _map_deep(t: Trial) -> None:
    photos = sorted(DEEP32.glob("a*.jpg"))
    run = t.run("stack", *photos, "-o", t.root / "out.jpg", "--map", t.root / "map.png", "--no-cache")
    _stacked(t, run, t.root / "out.jpg")
    expect((t.root / "map.png").is_file(), "no map written")
    expect("map" in run.out, f"the summary does not mention the map:\n{run.out}")


# M: messages ---------------------------------------------------------------


@case("out-of-memory", "M", "enfuse running out of memory is recognised and says how much the stack needs")
def _oom(t: Trial) -> None:
    # The real enfuse under a 250 MB address-space limit (3 photos of 12 megapixels need
    # about 370 MB): focuswrap itself and align_image_stack keep the machine's memory.
    body = (
        "import resource\n"
        "if len(sys.argv) > 2:\n"
        "    resource.setrlimit(resource.RLIMIT_AS, (250 * 2**20, 250 * 2**20))\n"
        "os.execv(REAL, [REAL, *sys.argv[1:]])\n"
    )
    folder = t.fake_bin("enfuse", body)
    from PIL import Image

    photos = t.photos(3, size=(400, 300))
    for p in photos:
        with Image.open(p) as im:
            im.resize((4000, 3000), Image.BICUBIC).save(p, quality=90)
    run = t.run("stack", *photos, "-o", "out.jpg", "--no-cache", "--hugin-dir", folder)
    expect(run.code == 5, f"exit {run.code}, expected 5:\n{run.err[-1500:]}")
    line = run.error_line()
    expect("out of memory" in line, f"not recognised as running out of memory: {line}")
    expect("does not recognise" not in run.err, run.err)
    expect(re.search(r"needs about \d+(\.\d)? GB", line), f"no figure for the memory needed: {line}")


def _refused_before_tools(run: Run, name: str) -> None:
    expect(run.code == 2, f"exit {run.code}, expected 2 (refused before any tool runs):\n{run.err[-1500:]}")
    expect(name in run.error_line(), f"{name} not named in: {run.error_line()}")


@case("cmyk-jpeg", "M", "a CMYK JPEG is converted (stacks) or refused naming it")
def _cmyk(t: Trial) -> None:
    photos = t.photos()
    from PIL import Image

    with Image.open(photos[1]) as im:
        im.convert("CMYK").save(photos[1], quality=92)
    run = t.run("stack", *photos, "-o", "out.jpg")
    if run.code != 0:
        _refused_before_tools(run, photos[1].name)


def _tiny_case(size: int) -> Callable[[Trial], None]:
    def check(t: Trial) -> None:
        from PIL import Image

        names = []
        for i in range(3):
            p = t.shots / f"tiny_{i + 1}.png"
            Image.effect_noise((size, size), 40 + i).convert("RGB").save(p)
            names.append(p)
        _refused_before_tools(t.run("stack", *names, "-o", "out.png"), "tiny_1.png")

    return check


case("tiny-1px", "M", "1x1 px photos are refused before any tool runs")(_tiny_case(1))
case("tiny-16px", "M", "16x16 px photos are refused before any tool runs")(_tiny_case(16))


@case("corrupt-png-pixels", "M", "a PNG with corrupt pixel data (valid chunks) is refused naming it")
def _corrupt_png(t: Trial) -> None:
    import struct
    import zlib

    photos = t.converted(t.photos(), lambda im: im, ".png")
    data = bytearray(photos[2].read_bytes())
    pos = data.index(b"IDAT") + 4
    length = struct.unpack(">I", data[pos - 8 : pos - 4])[0]
    for k in range(pos + 40, pos + length - 40, 97):
        data[k] ^= 0x5A  # garbled pixel data inside a chunk whose checksum is then made right again
    crc = zlib.crc32(bytes(data[pos - 4 : pos + length])) & 0xFFFFFFFF
    data[pos + length : pos + length + 4] = struct.pack(">I", crc)
    photos[2].write_bytes(bytes(data))
    _refused_before_tools(t.run("stack", *photos, "-o", "out.png"), photos[2].name)


@case("random-icc", "M", "a random-bytes ICC profile is refused before any tool runs, naming the file")
def _random_icc(t: Trial) -> None:
    from PIL import Image

    photos = t.photos()
    with Image.open(photos[0]) as im:
        im.load()
        im.save(photos[0], quality=92, icc_profile=os.urandom(3000))
    _refused_before_tools(t.run("stack", *photos, "-o", "out.jpg"), photos[0].name)


@case("fully-transparent", "M", "fully transparent photos are refused as such, not as a disk problem")
def _transparent(t: Trial) -> None:
    photos = t.converted(t.photos(), lambda im: (lambda a: (a.putalpha(0), a)[1])(im.convert("RGBA")), ".png")
    run = t.run("stack", *photos, "-o", "out.png")
    expect(run.code == 2, f"exit {run.code}, expected 2:\n{run.err}")
    expect("transparent" in run.error_line(), run.error_line())
    expect("disk" not in run.err, run.err)


@case("align-exit0-no-project", "M", "align_image_stack exits 0 without its project: the message says so, not nona's")
def _no_project(t: Trial) -> None:
    # The real tool runs, then its project file is removed before nona would read it.
    body = (
        "code = subprocess.call([REAL, *sys.argv[1:]])\n"
        "if '-p' in sys.argv:\n"
        "    os.unlink(sys.argv[sys.argv.index('-p') + 1])\n"
        "sys.exit(code)\n"
    )
    folder = t.fake_bin("align_image_stack", body)
    photos = t.photos()
    run = t.run("stack", *photos, "-o", "out.jpg", "--hugin-dir", folder, "--no-cache")
    expect(run.code == 4, f"exit {run.code}:\n{run.err}")
    line = run.error_line()
    expect("project" in line, f"does not say the project file is missing: {line}")
    expect("does not recognise" not in run.err, run.err)


@case("odd-photo-out", "M", "a photo from another scene is named, and the ladder stops at once")
def _odd_photo(t: Trial) -> None:
    photos = t.photos(4)
    from PIL import Image

    Image.effect_noise((320, 240), 90).convert("RGB").save(photos[2], quality=92)  # another scene
    run = t.run("stack", *photos, "-o", "out.jpg", "--no-cache")
    expect(run.code == 4, f"exit {run.code}, expected 4:\n{run.err}")
    expect(photos[2].name in run.error_line(), f"the odd photo is not named: {run.error_line()}")
    expect("after 1 attempt" in run.error_line(), f"the ladder was climbed: {run.error_line()}")


@case("unknown-not-retried", "M", "an alignment failure no rung can help is not retried through the ladder")
def _unknown(t: Trial) -> None:
    body = (
        "if sys.argv[1:] in (['-h'], ['--help']) or '-h' in sys.argv:\n"
        "    os.execv(REAL, [REAL, *sys.argv[1:]])\n"
        "print('frobnicator: quantum flux misaligned', file=sys.stderr)\n"
        "sys.exit(3)\n"
    )
    folder = t.fake_bin("align_image_stack", body)
    photos = t.photos()
    run = t.run("stack", *photos, "-o", "out.jpg", "--hugin-dir", folder, "--no-cache")
    expect(run.code == 4, f"exit {run.code}:\n{run.err}")
    expect("after 1 attempt" in run.error_line(), f"retried: {run.error_line()}")


@case("version-check-hangs", "M", "Ctrl-C while a tool's version check hangs stops within 3 s")
def _version_hang(t: Trial) -> None:
    folder = t.fake_bin("align_image_stack", "time.sleep(60)\n")
    photos = t.photos()
    child = t.start("stack", *photos, "-o", "out.jpg", "--hugin-dir", folder)
    wait_until(lambda: children_named(child, "align_image_stack", working=False), 60, "the version check never started")
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    try:
        out, err = child.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
    took = time.monotonic() - sent
    run = t.finished(child, out, err)
    expect(run.code == 130, f"exit {run.code}, expected 130:\n{run.err}")
    # The promise is 3 s; 1 s of slack for a loaded machine.
    expect(took <= 4.0, f"took {took:.1f} s to stop (promised: 3 s)")


@case("batch-two-levels-down", "M", "batch says so when photos two folder levels down are not stacked")
def _batch_deep(t: Trial) -> None:
    deep = t.shots / "trip" / "day1" / "bracket"
    deep.mkdir(parents=True)
    for p in t.photos():
        p.rename(deep / p.name)
    run = t.run("batch", "trip", "--dry-run")
    expect("day1" in run.text or "level" in run.text or "deeper" in run.text, f"nothing said about them:\n{run.text}")


@case("map-is-output", "M", "--map X.png -o X.png says the map and the result would be one file")
def _map_is_output(t: Trial) -> None:
    photos = t.photos()
    run = t.run("stack", *photos, "-o", "x.png", "--map", "x.png")
    expect(run.code == 2, f"exit {run.code}")
    line = run.error_line()
    expect("input photo" not in line and "map" in line, f"misleading: {line}")


@case("preset-control-chars", "M", "presets list strips terminal escape codes from a preset's description", needs=())
def _escapes(t: Trial) -> None:
    folder = t.home / "config" / "presets"
    folder.mkdir(parents=True)
    (folder / "loud.toml").write_text('description = "nice \\u001b[2J\\u001b[31mred\\u0007 text"\n')
    run = t.run("presets", "list")
    expect(run.code == 0, run.err)
    expect("loud" in run.out, run.out)
    expect(not any(ord(c) < 32 and c not in "\n\t" for c in run.out), f"control characters printed: {run.out!r}")


# ------------------------------------------------------------------ running


def missing(needs: frozenset[str]) -> str | None:
    """Why a row needing ``needs`` cannot run here, or None."""
    if "real" in needs:
        absent = [t for t in ("align_image_stack", "enfuse") if shutil.which(t) is None]
        if absent:
            return f"the real Hugin tools are not installed ({', '.join(absent)})"
    if "pcb" in needs and not PCB.is_dir():
        return f"the real photographs are not at {PCB}"
    if "deep32" in needs and not DEEP32.is_dir():
        return f"the 32-frame stack is not at {DEEP32}"
    return None


def run_case(c: Case, keep: bool = False) -> None:
    """Run one row in a fresh temporary folder; raises Broken or Skip."""
    why = missing(c.needs)
    if why:
        raise Skip(why)
    root = Path(tempfile.mkdtemp(prefix="adversarial-"))
    t = Trial(root)
    try:
        c.check(t)
    finally:
        t.cleanup()
        if not keep:
            for folder, dirs, _ in os.walk(root):  # rows make folders unreadable, loops, ...
                for d in dirs:
                    try:
                        os.chmod(os.path.join(folder, d), 0o755)
                    except OSError:
                        pass
            shutil.rmtree(root, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", default="", help="only rows whose id or title contains this")
    parser.add_argument("--list", action="store_true", help="list the rows and exit")
    parser.add_argument("--keep", action="store_true", help="keep each row's temporary folder")
    args = parser.parse_args(argv)
    chosen = [c for c in CASES if args.k.lower() in (c.id + " " + c.title).lower()]
    if args.list:
        for c in chosen:
            print(f"{c.item:4} {c.id:26} {c.title}")
        return 0
    tried = held = failed = skipped = 0
    for c in chosen:
        started = time.monotonic()
        try:
            run_case(c, keep=args.keep)
        except Skip as exc:
            skipped += 1
            print(f"{c.item:4} {c.id:26} skipped: {exc}", flush=True)
            continue
        except Exception as exc:  # noqa: BLE001 - any error is a failed row, reported and counted
            tried += 1
            failed += 1
            why = str(exc).strip().replace("\n", "\n" + " " * 32)
            print(
                f"{c.item:4} {c.id:26} FAILED ({time.monotonic() - started:.0f} s): {type(exc).__name__}: {why}",
                flush=True,
            )
            continue
        tried += 1
        held += 1
        print(f"{c.item:4} {c.id:26} held ({time.monotonic() - started:.0f} s)", flush=True)
    print(f"tried {tried}, held {held}, failed {failed}" + (f", skipped {skipped}" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Helpers shared by the test modules: photos to stack, a workspace for CLI runs, process checks, config files.

Fixtures built on these (``hugin``, ``run``, ``ws``, ...) are in ``conftest.py``.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import fakehugin
import pytest
from fakehugin import ALIGN, ENFUSE
from PIL import Image, ImageFilter

from focuswrap.errors import ConfigError, ExitCode

#: The size of :func:`photo`'s photos (a :class:`Workspace`'s).
SIZE = (96, 64)
#: Seconds a CLI run may take here before the test gives up on it (the fakes answer at once).
RUN_LIMIT = 60

T = TypeVar("T")


# ------------------------------------------------------------------- photos


def photos(folder: Path, n: int = 3, size: tuple[int, int] = (96, 72), *, camera: str | None = None) -> list[Path]:
    """``n`` small JPEGs of one scene, the last one the sharpest.

    With ``camera``, every photo is saved with EXIF and the first one names that camera (EXIF Model).
    """
    folder.mkdir(parents=True, exist_ok=True)
    scene = Image.effect_noise(size, 80).convert("RGB")
    out = []
    for i in range(n):
        frame = scene.filter(ImageFilter.GaussianBlur(n - 1 - i)) if i < n - 1 else scene
        path = folder / f"IMG_{i + 1}.jpg"
        if camera is None:
            frame.save(path, quality=90)
        else:
            exif = Image.Exif()
            if i == 0:
                exif[0x0110] = camera  # Model
            frame.save(path, quality=90, exif=exif)
        out.append(path)
    return out


def photo(path: Path, size: tuple[int, int] = SIZE, *, orientation: int | None = None, sigma: int = 60) -> Path:
    """A small JPEG of random noise (a real scan, so truncating it is detectable; every call differs)."""
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    Image.merge("RGB", [Image.effect_noise(size, sigma + 10 * i) for i in range(3)]).save(
        path, "JPEG", quality=90, exif=exif
    )
    return path


# ---------------------------------------------------------------- workspace


@dataclass
class Workspace:
    """A photo folder, fake Hugin tools, an isolated FOCUSWRAP_HOME and TMPDIR, and a way to run the CLI."""

    root: Path

    def __post_init__(self) -> None:
        self.shots = self.root / "shots"
        self.bin = self.root / "bin"
        self.home = self.root / "home"
        self.tmp = self.root / "tmp"
        for folder in (self.shots, self.home, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)
        self.align = fakehugin.install(self.bin, ALIGN)
        self.enfuse = fakehugin.install(self.bin, ENFUSE)

    def photos(self, n: int = 3, prefix: str = "IMG_") -> list[str]:
        """``n`` good photos in the photo folder; their names as typed (relative to it)."""
        names = [f"{prefix}{i + 1}.jpg" for i in range(n)]
        for i, name in enumerate(names):
            photo(self.shots / name, sigma=40 + 7 * i)
        return names

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("FOCUSWRAP_DEBUG", "FOCUSWRAP_HUGIN_DIR")}
        env.update(FOCUSWRAP_HOME=str(self.home), TMPDIR=str(self.tmp), NO_COLOR="1", COLUMNS="200")
        # Without the heif and raw extras, whether or not this Python has them.
        blocker = self.tmp.parent / "no-extras"
        blocker.mkdir(exist_ok=True)
        for module in ("pillow_heif", "rawpy"):
            (blocker / f"{module}.py").write_text(f"raise ImportError('{module} hidden by the test')\n")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(blocker), env.get("PYTHONPATH")]))
        return env

    def argv(self, *args: str, hugin_dir: Path | None = None) -> list[str]:
        return [sys.executable, "-m", "focuswrap", "stack", *args, "--hugin-dir", str(hugin_dir or self.bin)]

    def run(self, *args: str, hugin_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
        """``focuswrap stack ARGS`` in the photo folder, to completion."""
        return subprocess.run(
            self.argv(*args, hugin_dir=hugin_dir),
            cwd=self.shots,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=RUN_LIMIT,
        )

    def start(self, *args: str, hugin_dir: Path | None = None) -> subprocess.Popen[str]:
        """``focuswrap stack ARGS`` in the photo folder, in the background."""
        return subprocess.Popen(
            self.argv(*args, hugin_dir=hugin_dir),
            cwd=self.shots,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def snapshot(self) -> dict[str, str]:
        """Every entry under the photo folder: a file's SHA-256, a link's target, or 'folder'."""
        found: dict[str, str] = {}
        for folder, dirs, files in os.walk(self.shots):
            for name in dirs + files:
                path = Path(folder) / name
                key = path.relative_to(self.shots).as_posix()
                if path.is_symlink():
                    found[key] = "link to " + os.readlink(path)
                elif path.is_dir():
                    found[key] = "folder"
                else:
                    try:
                        found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
                    except PermissionError:  # a row's unreadable photo (not as root)
                        st = path.stat()
                        found[key] = f"unreadable {st.st_size} {st.st_mtime_ns}"
        return found

    def work_folders(self) -> list[str]:
        """What is left in TMPDIR (focuswrap's work folders are ``focuswrap.*``)."""
        return sorted(os.listdir(self.tmp))

    def part_files(self) -> list[Path]:
        """Half-written results (``.NAME.*.focuswrap-part``) anywhere under the workspace."""
        return sorted(self.root.rglob("*.focuswrap-part"))

    def custom_tool(self, name: str, body: str) -> None:
        """Replace the fake ``name`` with a script that answers the version probe, writes
        its pid to ``BIN/NAME.pid`` like the fakes do, then runs the Python ``body``
        (for what the recorded transcripts cannot do: crash, ignore SIGTERM, start children)."""
        version = "align_image_stack version 2022.0.0.fake" if name == ALIGN else "enfuse 4.2"
        exe = self.bin / name
        exe.write_text(
            f"#!{sys.executable}\n"
            "import os, signal, subprocess, sys, time\n"
            "if sys.argv[1:] in (['-h'], ['-V'], ['--version']):\n"
            f"    print({version!r})\n"
            "    sys.exit(0)\n"
            f"with open({str(self.bin / (name + '.pid'))!r} + '.new', 'w') as fh:\n"
            "    fh.write(str(os.getpid()))\n"
            f"os.replace({str(self.bin / (name + '.pid'))!r} + '.new', {str(self.bin / (name + '.pid'))!r})\n"
            + body
            + "\n"
        )
        exe.chmod(0o755)


def assert_clean_failure(ws: Workspace, result: subprocess.CompletedProcess[str], before: dict[str, str]) -> str:
    """The common promises of any failed run; returns the error line."""
    assert "Traceback" not in result.stderr + result.stdout
    assert ws.snapshot() == before, "a file in the photo folder was changed, added or removed"
    assert ws.work_folders() == [], "a work folder was left behind"
    assert ws.part_files() == []
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("focuswrap: error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def stack_fails(
    ws: Workspace, *args: str, code: ExitCode, hugin_dir: Path | None = None
) -> tuple[subprocess.CompletedProcess[str], str]:
    """``focuswrap stack`` on three good photos plus ``args``: it must exit with ``code`` and keep
    the promises of :func:`assert_clean_failure`.  Returns the result and its error line."""
    names = ws.photos()
    before = ws.snapshot()
    result = ws.run(*names, *args, hugin_dir=hugin_dir)
    assert result.returncode == code, result.stderr
    return result, assert_clean_failure(ws, result, before)


# ---------------------------------------------------------------- processes


def wait_for_pid(fake: fakehugin.Fake, within: float = 20.0) -> int:
    """The pid the fake wrote once it started (it writes the file, then its pid into it)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            pid = fake.pid
        except ValueError:  # created, not yet written
            pid = None
        if pid is not None:
            return pid
        time.sleep(0.02)
    raise AssertionError(f"{fake.name} did not start within {within} s")


def process_gone(pid: int, within: float = 5.0) -> bool:
    """True once ``pid`` no longer runs (gone, or a zombie: it burns no CPU)."""
    deadline = time.monotonic() + within
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state == "Z":
                return True
        except (OSError, IndexError):
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def kill_if_running(pid: int | None) -> None:
    """Test cleanup: end a fake this test started, should focuswrap have failed to."""
    if pid is not None and not process_gone(pid, within=0):
        os.kill(pid, signal.SIGKILL)


# ------------------------------------------------------- config and preset files


def write_file(path: Path, text: str | bytes) -> Path:
    """Write ``text`` (or bytes) to ``path``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def config_error(load: Callable[[Path], object], path: Path) -> str:
    """The message of the ConfigError ``load(path)`` must raise: exit code BAD_CONFIG, no traceback,
    nothing from pydantic, every line starting with the file's path."""
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.exit_code == ExitCode.BAD_CONFIG
    message = str(info.value)
    assert "Traceback" not in message
    assert "pydantic" not in message  # no "For further information visit https://errors.pydantic.dev/..."
    for line in message.splitlines():
        assert line.startswith(f"{path}: "), line
    return message


def loaded_or_config_error(load: Callable[[Path], T], path: Path) -> T | None:
    """What ``load(path)`` returns, or None if it raised a ConfigError whose every line names the file."""
    try:
        return load(path)
    except ConfigError as exc:
        message = str(exc)
        assert message and all(line.startswith(f"{path}: ") for line in message.splitlines())
        return None


def unfused_border(preset: str = "miniature") -> int:
    """Pixels cut from each side of a result of ``preset``: the edge enfuse does not blend."""
    from focuswrap import presets
    from focuswrap.hugin.enfuse import unfused_border as border

    chosen = presets.get(preset).preset
    return border(chosen.fuse) if chosen.align.crop else 0

"""Bad input through the real command line: one clear line, a documented exit code, nothing touched.

Every row of :data:`ROWS` runs ``focuswrap stack`` as a subprocess (with the
fake Hugin tools, so a row that wrongly got past the checks would be seen
running them) and asserts the exit code, the message, that no traceback was
printed, that every file in the photo folder is byte for byte as before, that
no new file appeared there and that no work folder was left in ``TMPDIR``.

:class:`Workspace` is shared with ``test_interrupt.py`` and ``test_faults.py``.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from PIL import Image

import fakehugin
from focuswrap.errors import ExitCode

REPO = Path(__file__).resolve().parent.parent
EXIT_CODES_DOC = REPO / "docs" / "exit-codes.md"
ALIGN = "align_image_stack"
ENFUSE = "enfuse"
SIZE = (96, 64)
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
#: Seconds a CLI run may take here before the test gives up on it (the fakes answer at once).
RUN_LIMIT = 60


def photo(path: Path, size: tuple[int, int] = SIZE, *, orientation: int | None = None, sigma: int = 60) -> Path:
    """A small JPEG of random noise (a real scan, so truncating it is detectable; every call differs)."""
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    Image.merge("RGB", [Image.effect_noise(size, sigma + 10 * i) for i in range(3)]).save(
        path, "JPEG", quality=90, exif=exif
    )
    return path


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
            self.argv(*args, hugin_dir=hugin_dir), cwd=self.shots, env=self.env,
            capture_output=True, text=True, timeout=RUN_LIMIT,
        )

    def start(self, *args: str, hugin_dir: Path | None = None) -> subprocess.Popen[str]:
        """``focuswrap stack ARGS`` in the photo folder, in the background."""
        return subprocess.Popen(
            self.argv(*args, hugin_dir=hugin_dir), cwd=self.shots, env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
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


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


def assert_clean_failure(ws: Workspace, result: subprocess.CompletedProcess[str], before: dict[str, str]) -> str:
    """The common promises of any failed run; returns the error line."""
    assert "Traceback" not in result.stderr + result.stdout
    assert ws.snapshot() == before, "a file in the photo folder was changed, added or removed"
    assert ws.work_folders() == [], "a work folder was left behind"
    assert ws.part_files() == []
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("focuswrap: error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


# --------------------------------------------------------------- the table

Setup = Callable[[Workspace], list[str]]


def _with(*extra: str) -> Setup:
    """Three good photos plus ``extra`` arguments."""
    return lambda ws: ws.photos() + list(extra)


def _one_photo(ws: Workspace) -> list[str]:
    return ws.photos(1)


def _missing(ws: Workspace) -> list[str]:
    return ws.photos(2) + ["IMG_9.jpg"]


def _folder(ws: Workspace) -> list[str]:
    (ws.shots / "more").mkdir()
    return ws.photos(2) + ["more"]


def _unreadable(ws: Workspace) -> list[str]:
    names = ws.photos()
    (ws.shots / names[2]).chmod(0)
    return names


def _broken_link(ws: Workspace) -> list[str]:
    (ws.shots / "IMG_3.jpg").symlink_to("gone.jpg")
    return ws.photos(2) + ["IMG_3.jpg"]


def _empty(ws: Workspace) -> list[str]:
    (ws.shots / "IMG_3.jpg").write_bytes(b"")
    return ws.photos(2) + ["IMG_3.jpg"]


def _not_an_image(ws: Workspace) -> list[str]:
    (ws.shots / "notes.jpg").write_text("shot at f/8, 1/125 s\n" * 20)
    return ws.photos(2) + ["notes.jpg"]


def _truncated_jpeg(ws: Workspace) -> list[str]:
    names = ws.photos()
    path = ws.shots / names[2]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])  # as after an interrupted copy
    return names


def _truncated_png(ws: Workspace) -> list[str]:
    names = ws.photos(2)
    Image.effect_noise(SIZE, 50).convert("RGB").save(ws.shots / "IMG_3.png")
    data = (ws.shots / "IMG_3.png").read_bytes()
    (ws.shots / "IMG_3.png").write_bytes(data[: len(data) // 2])
    return names + ["IMG_3.png"]


def _raw(ws: Workspace) -> list[str]:
    (ws.shots / "IMG_3.dng").write_bytes(b"II*\x00" + bytes(200))
    return ws.photos(2) + ["IMG_3.dng"]


def _different_size(ws: Workspace) -> list[str]:
    names = ws.photos()
    photo(ws.shots / names[1], (80, 64))
    return names


def _different_orientation(ws: Workspace) -> list[str]:
    names = ws.photos()
    photo(ws.shots / names[2], orientation=6)
    return names


def _twice(ws: Workspace) -> list[str]:
    names = ws.photos(2)
    return [names[0], names[1], names[0]]


def _twice_by_another_name(ws: Workspace) -> list[str]:
    names = ws.photos(2)
    os.link(ws.shots / names[0], ws.shots / "copy.jpg")  # a hard link: the same file
    return names + ["copy.jpg"]


def _existing_output(ws: Workspace) -> list[str]:
    (ws.shots / "out.jpg").write_bytes(b"an earlier result")
    return ws.photos() + ["-o", "out.jpg"]


def _output_under_a_file(ws: Workspace) -> list[str]:
    names = ws.photos()
    return names + ["-o", f"{names[0]}/out.jpg"]  # a file stands where the folder should be


def _output_folder_unwritable(ws: Workspace) -> list[str]:
    (ws.shots / "locked").mkdir()
    (ws.shots / "locked").chmod(0o555)
    return ws.photos() + ["-o", "locked/out.jpg"]


def _output_is_a_folder(ws: Workspace) -> list[str]:
    (ws.shots / "results").mkdir()
    return ws.photos() + ["-o", "results"]


@dataclass(frozen=True)
class Row:
    setup: Setup
    message: str  #: a regular expression the error line must match (it names the file)
    code: ExitCode = ExitCode.BAD_INPUT


_ROOT_SKIP = pytest.mark.skipif(IS_ROOT, reason="file permissions do not stop root")

ROWS = [
    pytest.param(Row(_one_photo, r"needs at least two photos to stack; got 1: IMG_1\.jpg\.$"), id="one-photo"),
    pytest.param(Row(_missing, r"IMG_9\.jpg does not exist; check the file name and folder\.$"), id="missing"),
    pytest.param(Row(_folder, r"more is a folder, not a photo; give the photos inside it, e\.g\. more/\*\.jpg"), id="folder"),
    pytest.param(Row(_unreadable, r"IMG_3\.jpg cannot be read \(.*\); check the file permissions"), id="unreadable",
                 marks=_ROOT_SKIP),
    pytest.param(Row(_broken_link, r"IMG_3\.jpg is a link to a file that does not exist"), id="broken-link"),
    pytest.param(Row(_empty, r"IMG_3\.jpg is an empty file \(0 bytes\); copy the photos again"), id="empty"),
    pytest.param(Row(_not_an_image, r"notes\.jpg is not an image focuswrap can read; give JPEG, TIFF or PNG"), id="not-an-image"),
    pytest.param(Row(_truncated_jpeg, r"IMG_3\.jpg is incomplete \(the file ends early.*copy the photos again"), id="truncated-jpeg"),
    pytest.param(Row(_truncated_png, r"IMG_3\.png is incomplete \(the file ends early"), id="truncated-png"),
    pytest.param(Row(_raw, r"IMG_3\.dng is a raw camera file, which Hugin cannot read; install raw support"), id="raw"),
    pytest.param(Row(_different_size, r"IMG_2\.jpg is 80x64 but the other photos are 96x64; .*remove or resize it"), id="different-sizes"),
    pytest.param(Row(_different_orientation, r"camera turned differently: IMG_3\.jpg is portrait \(EXIF orientation 6\) "
                     r"but IMG_1\.jpg and IMG_2\.jpg are landscape"), id="different-orientations"),
    pytest.param(Row(_twice, r"IMG_1\.jpg is given twice; give each photo once\.$"), id="same-file-twice"),
    pytest.param(Row(_twice_by_another_name, r"copy\.jpg and IMG_1\.jpg are the same file; give each photo once"), id="same-file-two-names"),
    pytest.param(Row(_with("-o", "IMG_2.jpg"), r"The output IMG_2\.jpg is also one of the input photos; choose another"),
                 id="output-is-an-input"),
    pytest.param(Row(_with("-o", "IMG_2.jpg", "--force"), r"The output IMG_2\.jpg is also one of the input photos"),
                 id="output-is-an-input-even-with-force"),
    pytest.param(Row(_with("-o", "out.gif"), r"cannot write \.gif files \(out\.gif\); end the output name with one of \.tif"),
                 id="output-extension"),
    pytest.param(Row(_with("-o", "out"), r"needs an extension to know the format \(out\)"), id="output-without-extension"),
    pytest.param(Row(_with("-o", "results/out.jpg"), r"The folder results for results/out\.jpg does not exist; create it first"),
                 id="output-folder-missing"),
    pytest.param(Row(_output_under_a_file, r"IMG_1\.jpg is a file, not a folder, so IMG_1\.jpg/out\.jpg cannot be written"),
                 id="output-folder-is-a-file"),
    pytest.param(Row(_output_folder_unwritable, r"cannot write into the folder .*locked \(permission denied\)"),
                 id="output-folder-unwritable", marks=_ROOT_SKIP),
    pytest.param(Row(_output_is_a_folder, r"The output results is a folder; give a file name"), id="output-is-a-folder"),
    pytest.param(Row(_existing_output, r"out\.jpg already exists; use --force to replace it\.$"), id="output-exists"),
    pytest.param(Row(_with("--preset", "nope"), r"There is no preset called 'nope'; the presets are: .*miniature"), id="unknown-preset"),
]


@pytest.mark.parametrize("row", ROWS)
def test_bad_input_is_one_clear_line_and_touches_nothing(ws: Workspace, row: Row) -> None:
    args = row.setup(ws)
    before = ws.snapshot()
    result = ws.run(*args, "--quiet")
    assert result.returncode == row.code, result.stderr
    line = assert_clean_failure(ws, result, before)
    assert re.search(row.message, line), line
    assert result.stderr.strip() == line, "more than the one error line was printed"
    assert result.stdout == ""
    assert ws.align.calls == [] and ws.enfuse.calls == [], "a Hugin tool ran despite bad input"


def test_the_checks_pass_for_the_good_photos_of_the_table(ws: Workspace) -> None:
    # The rows differ from a good run only in what each one breaks.
    result = ws.run(*ws.photos(), "-o", "out.jpg", "--quiet")
    assert result.returncode == ExitCode.OK, result.stderr
    assert (ws.shots / "out.jpg").is_file()
    assert ws.work_folders() == [] and ws.part_files() == []


def test_without_quiet_the_error_is_still_the_only_failure_line(ws: Workspace) -> None:
    args = ws.photos(2) + ["IMG_9.jpg"]
    before = ws.snapshot()
    result = ws.run(*args)
    assert result.returncode == ExitCode.BAD_INPUT
    line = assert_clean_failure(ws, result, before)
    assert "IMG_9.jpg does not exist" in line


def test_no_photos_at_all_is_a_usage_error(ws: Workspace) -> None:
    result = ws.run("-o", "out.jpg")
    assert result.returncode == ExitCode.BAD_INPUT
    assert "Missing argument" in result.stderr
    assert "Traceback" not in result.stderr
    assert ws.work_folders() == []


# ------------------------------------------------------------ bad configuration


def test_malformed_config_toml_names_file_field_and_allowed_fields(ws: Workspace) -> None:
    config = ws.home / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('timeout = 60\ncolour = "red"\n')
    args = ws.photos()
    before = ws.snapshot()
    result = ws.run(*args, "--quiet")
    assert result.returncode == ExitCode.BAD_CONFIG
    line = assert_clean_failure(ws, result, before)
    assert result.stderr.strip() == line
    assert line == (
        f"focuswrap: error: {config}: colour: unknown field; allowed here: hugin_dir, preset, timeout, cache_max_mb"
    )


def test_config_toml_value_out_of_range(ws: Workspace) -> None:
    config = ws.home / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("timeout = -5\n")
    args = ws.photos()
    before = ws.snapshot()
    result = ws.run(*args, "--quiet")
    assert result.returncode == ExitCode.BAD_CONFIG
    line = assert_clean_failure(ws, result, before)
    assert line == f"focuswrap: error: {config}: timeout: Input should be greater than 0"


def test_malformed_preset_names_file_field_and_allowed_values(ws: Workspace) -> None:
    preset = ws.home / "config" / "presets" / "mine.toml"
    preset.parent.mkdir(parents=True)
    preset.write_text('description = "Mine."\n[fuse]\ngray_projector = "brightest"\n')
    args = ws.photos()
    before = ws.snapshot()
    result = ws.run(*args, "--preset", "mine", "--quiet")
    assert result.returncode == ExitCode.BAD_CONFIG
    line = assert_clean_failure(ws, result, before)
    assert result.stderr.strip() == line
    assert line.startswith(f"focuswrap: error: {preset}: fuse.gray_projector: ")
    for allowed in ("average", "l-star", "lightness", "luminance", "value", "anti-value"):
        assert f"'{allowed}'" in line
    assert ws.align.calls == []


# ------------------------------------------------------------ documented codes


def test_every_exit_code_is_documented() -> None:
    text = EXIT_CODES_DOC.read_text(encoding="utf-8")
    for code in ExitCode:
        # One table row per code: "| 4 | `ALIGN_FAILED` | ..."
        assert re.search(rf"^\|\s*{code.value}\s*\|\s*`{code.name}`\s*\|", text, re.MULTILINE), code


def test_the_doc_lists_no_code_that_does_not_exist() -> None:
    text = EXIT_CODES_DOC.read_text(encoding="utf-8")
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*`([A-Z_]+)`\s*\|", text, re.MULTILINE)
    assert sorted(rows) == sorted((str(c.value), c.name) for c in ExitCode)

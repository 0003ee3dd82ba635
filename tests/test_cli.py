"""The command line, run as a user runs it: ``python -m focuswrap ...`` with the fake Hugin tools.

Exit codes are mapped in ``cli.main`` only, so these tests start a real
process rather than calling the Typer app.  Each run gets its own TMPDIR, so
a leftover work folder cannot hide among other programs' files.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import fakehugin
import pytest
from fakehugin import ALIGN, ENFUSE, Hugin
from helpers import photos, unfused_border
from PIL import Image

from focuswrap import __version__, paths

WORK = re.compile(r"focuswrap\.[A-Za-z0-9_]+")
PLACEHOLDER = "focuswrap.XXXXXXXX"
CAMERA = "FakeCam 3000"
JSON_KEYS = {"output", "bytes", "preset", "inputs", "attempts", "seconds", "sharpness"}


@pytest.fixture
def shots(tmp_path: Path) -> list[Path]:
    return photos(tmp_path / "shots", camera=CAMERA)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


# ---------------------------------------------------------------- basics


def test_version(run) -> None:
    done = run("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"focuswrap {__version__}"


def test_python_m_focuswrap_is_the_program(run) -> None:
    done = run("--help")
    assert done.returncode == 0, done.stderr
    assert "Usage: focuswrap" in done.stdout


@pytest.mark.parametrize(
    "command",
    [[], ["stack"], ["doctor"], ["demo"], ["presets"], ["presets", "list"], ["presets", "show"], ["presets", "path"]],
    ids=lambda c: " ".join(c) or "focuswrap",
)
def test_every_help_shows_an_example(run, command: list[str]) -> None:
    done = run(*command, "--help")
    assert done.returncode == 0, done.stderr
    assert "Example" in done.stdout
    # The example is a whole command line of this kind (the main help's is a stack).
    example = " ".join(["focuswrap", *command]) if command else "focuswrap stack"
    assert re.search(r"(^\s*|Example: )" + re.escape(example) + r"\b", done.stdout, re.M), done.stdout


# ---------------------------------------------------------------- stack


def test_stack_writes_the_default_output_with_exif(run, hugin: Hugin, shots: list[Path]) -> None:
    done = run("stack", *shots, "--hugin-dir", hugin.bin_dir)
    assert done.returncode == 0, done.stderr
    out = shots[0].with_name("IMG_1-stacked.jpg")
    assert out.is_file()
    with Image.open(out) as im:
        assert im.format == "JPEG"
        b = unfused_border()  # the edge enfuse does not blend is cut
        assert im.size == (96 - 2 * b, 72 - 2 * b)
        assert im.getexif().get(0x0110) == CAMERA
    lines = done.stdout.splitlines()
    assert lines[0] == f"Stacked 3 photos into {out}"
    assert re.match(r"  size\s+\d", lines[1])
    assert lines[2] == "  preset     miniature (1 attempt)"
    assert lines[3].startswith("  time ")
    assert "sharpness" in lines[4]
    assert len(hugin.align.calls) == 1 and len(hugin.enfuse.calls) == 1


def test_stack_finds_the_tools_through_the_environment(run, hugin: Hugin, shots: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "result.tif"
    done = run("stack", *shots, "-o", out, env={"FOCUSWRAP_HUGIN_DIR": str(hugin.bin_dir)})
    assert done.returncode == 0, done.stderr
    with Image.open(out) as im:
        assert im.format == "TIFF"
    assert f"into {out}" in done.stdout


def test_relative_hugin_dir(run, hugin: Hugin, shots: list[Path], tmp_path: Path) -> None:
    done = run("stack", *shots, "--hugin-dir", "bin", cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def _placeholder(argv: list[str]) -> list[str]:
    return [WORK.sub(PLACEHOLDER, a) for a in argv]


@pytest.mark.parametrize(
    "extra", [[], ["--keep-temp"], ["--preset", "handheld"]], ids=["default", "keep-temp", "handheld"]
)
def test_dry_run_prints_what_the_real_run_executes(run, hugin: Hugin, shots: list[Path], tmpdir_: Path, extra) -> None:
    done = run("stack", *shots, "--hugin-dir", hugin.bin_dir, "--dry-run", *extra)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    planned_align, planned_fuse = (shlex.split(line) for line in lines)
    # Ran nothing, wrote nothing.
    assert hugin.align.calls == [] and hugin.enfuse.calls == []
    assert not shots[0].with_name("IMG_1-stacked.jpg").exists()
    assert list(tmpdir_.iterdir()) == []

    real = run("stack", *shots, "--hugin-dir", hugin.bin_dir, *extra)
    assert real.returncode == 0, real.stderr
    assert planned_align[0] == str(hugin.bin_dir / ALIGN)
    assert planned_fuse[0] == str(hugin.bin_dir / ENFUSE)
    assert [_placeholder(c) for c in hugin.align.calls] == [planned_align[1:]]
    assert [_placeholder(c) for c in hugin.enfuse.calls] == [planned_fuse[1:]]


def test_existing_output_is_kept_without_force(run, hugin: Hugin, shots: list[Path]) -> None:
    out = shots[0].with_name("IMG_1-stacked.jpg")
    out.write_bytes(b"an earlier result")
    done = run("stack", *shots, "--hugin-dir", hugin.bin_dir)
    assert done.returncode == 2
    assert out.read_bytes() == b"an earlier result"
    assert re.search(r"already exists.*--force", done.stderr)
    assert hugin.align.calls == []  # refused before any tool ran

    done = run("stack", *shots, "--hugin-dir", hugin.bin_dir, "--force")
    assert done.returncode == 0, done.stderr
    with Image.open(out) as im:
        assert im.format == "JPEG"


def test_json_result(run, hugin: Hugin, shots: list[Path]) -> None:
    done = run("stack", *shots, "--hugin-dir", hugin.bin_dir, "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert JSON_KEYS <= set(data)
    assert data["output"] == str(shots[0].with_name("IMG_1-stacked.jpg"))
    assert data["bytes"] == Path(data["output"]).stat().st_size
    assert data["preset"] == "miniature"
    assert data["inputs"] == [str(p) for p in shots]
    assert [a["diagnosis"] for a in data["attempts"]] == ["ok"]
    assert data["attempts"][0]["flags"] == "-m -e --use-given-order -C"
    assert {"align", "fuse", "total"} <= set(data["seconds"])
    assert data["sharpness"]["sharpest_input"] == "IMG_3.jpg"
    assert done.stderr == ""  # --json implies no progress


def test_quiet_prints_nothing_on_stderr(run, hugin: Hugin, shots: list[Path]) -> None:
    done = run("stack", *shots, "--hugin-dir", hugin.bin_dir, "--quiet")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("Stacked 3 photos")


def test_progress_without_a_terminal_is_plain_lines(run, hugin: Hugin, shots: list[Path]) -> None:
    hugin.align.plan({"transcript": fakehugin.transcript(ALIGN, "success-verbose"), "write": True})
    done = run("stack", *shots, "--hugin-dir", hugin.bin_dir)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stderr and "\r" not in done.stderr
    steps = [
        line.split()[0]
        for line in done.stderr.splitlines()
        if line and not line.startswith((" ", "focuswrap: warning:"))  # the fake's result is no sharper
    ]
    assert steps[0] == "check" and "align" in steps and "fuse" in steps and steps[-1] == "finish"
    assert re.search(r"^align  \[1/5\] comparing photo 2 with photo 1 \(IMG_2\.jpg\)$", done.stderr, re.M)
    assert re.search(r"^fuse   \[1/4\] loading ", done.stderr, re.M)  # 3 photos read, then the blending


def test_verbose_shows_the_commands(run, hugin: Hugin, shots: list[Path]) -> None:
    done = run("stack", *shots, "--hugin-dir", hugin.bin_dir, "--verbose")
    assert done.returncode == 0, done.stderr
    assert f"$ {hugin.bin_dir / ALIGN} -v -m -e --use-given-order" in done.stderr
    assert f"$ {hugin.bin_dir / ENFUSE} --exposure-weight=0" in done.stderr


def test_earlier_results_in_a_glob_are_left_out(run, hugin: Hugin, shots: list[Path]) -> None:
    assert run("stack", *shots, "--hugin-dir", hugin.bin_dir).returncode == 0
    folder = shots[0].parent
    everything = sorted(folder.glob("*.jpg"))  # what shots/*.jpg expands to
    assert folder / "IMG_1-stacked.jpg" in everything
    done = run("stack", *everything, "--hugin-dir", hugin.bin_dir, "--force", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["inputs"] == [str(p) for p in shots]
    assert [os.path.basename(a) for a in hugin.align.calls[-1][-3:]] == ["IMG_1.jpg", "IMG_2.jpg", "IMG_3.jpg"]


def test_unknown_preset_is_one_line_and_exit_2(run, hugin: Hugin, shots: list[Path]) -> None:
    done = run("stack", *shots, "--hugin-dir", hugin.bin_dir, "--preset", "nope")
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert "'nope'" in line and "miniature" in line
    assert hugin.align.calls == []


# ---------------------------------------------------------------- doctor


def test_doctor_with_the_tools(run, hugin: Hugin) -> None:
    done = run("doctor", "--hugin-dir", hugin.bin_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^align_image_stack\s+2022\.0\.0\.fake\s", done.stdout, re.M)
    assert re.search(r"^enfuse\s+4\.2\s", done.stdout, re.M)
    assert str(hugin.bin_dir / ALIGN) in done.stdout
    assert str(paths.user_presets_dir()) in done.stdout


def test_doctor_without_the_tools(run, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    done = run("doctor", "--hugin-dir", empty)
    assert done.returncode == 3
    assert "NOT USABLE" in done.stdout
    assert "Install" in done.stdout and "hugin" in done.stdout.lower()


def test_stack_without_the_tools_is_exit_3(run, tmp_path: Path, shots: list[Path]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    done = run("stack", *shots, "--hugin-dir", empty)
    assert done.returncode == 3
    assert "align_image_stack not found" in done.stderr and "Install" in done.stderr


# ---------------------------------------------------------------- presets


def test_presets_list(run) -> None:
    done = run("presets", "list")
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines() if line and not line.startswith(" ")]
    assert names == sorted(names) and {"miniature", "handheld"} <= set(names)
    assert "miniature [default]" in done.stdout


def test_presets_list_marks_user_presets(run) -> None:
    folder = paths.user_presets_dir()
    folder.mkdir(parents=True)
    (folder / "miniature.toml").write_text('description = "my own miniature"\n')
    (folder / "mine.toml").write_text('description = "my preset"\n')
    done = run("presets", "list")
    assert done.returncode == 0, done.stderr
    assert "miniature [default] (user, overrides bundled)\n    my own miniature" in done.stdout
    assert "mine (user)\n    my preset" in done.stdout


def test_presets_show(run) -> None:
    done = run("presets", "show", "miniature")
    assert done.returncode == 0, done.stderr
    assert "align:  align_image_stack -m -e --use-given-order -C -p WORK/debug.pto PHOTO1 PHOTO2 ..." in done.stdout
    assert "fuse:   enfuse --exposure-weight=0" in done.stdout
    assert re.search(r"^  1\. -i\s+align image centres", done.stdout, re.M)
    assert re.search(r"^  4\. -g 3\s", done.stdout, re.M)


def test_presets_show_unknown(run) -> None:
    done = run("presets", "show", "nope")
    assert done.returncode == 2
    assert "'nope'" in one_line(done.stderr)


def test_presets_path(run) -> None:
    done = run("presets", "path")
    assert done.returncode == 0
    assert done.stdout.strip() == str(paths.user_presets_dir())

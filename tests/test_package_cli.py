"""The command line a new user meets, in plain words: help, preset names, patterns, folders, progress.

Issue 15's small traps, each checked as a user runs into it (``python -m focuswrap``
with the fake Hugin tools), or at the unit that decides it.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import fakehugin
import pytest
from fakehugin import ALIGN
from helpers import Workspace, photo

from focuswrap import batch, cli, display, pipeline

#: Every command --help can be asked for.
COMMANDS = [
    [],
    ["stack"],
    ["batch"],
    ["doctor"],
    ["demo"],
    ["gui"],
    ["presets"],
    ["presets", "list"],
    ["presets", "show"],
    ["presets", "new"],
    ["presets", "path"],
    ["cache"],
    ["cache", "info"],
    ["cache", "clear"],
]
#: What a photographer should not have to read.
JARGON = [
    r"<list\[",
    r"<bool>",
    r"<path>",
    r"<str>",
    r"<int",
    r"<float",
    r"<dir>",
    r"\{[A-Z][A-Z.]*\}",  # {PHOTOS...}
    r"\[x>=",
    r"Rt1",
]


def _help(run, command: list[str]) -> str:
    done = run(*command, "--help", env={"COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "focuswrap")
def test_help_is_in_plain_words_with_an_example(run, command: list[str]) -> None:
    text = _help(run, command)
    for pattern in JARGON:
        assert not re.search(pattern, text), f"{pattern!r} in 'focuswrap {' '.join(command)} --help':\n{text}"
    assert "Example" in text
    # Pages are pointed to by the one documentation address, never by a path in the source tree.
    assert not re.search(r"(?<![/\w])docs/\w", text), text


def test_help_points_to_the_docs_by_one_address(run) -> None:
    assert cli.DOCS_URL.startswith("https://") and not cli.DOCS_URL.endswith("/")
    assert cli.DOCS_URL in _help(run, [])
    stack_help = _help(run, ["stack"])
    assert cli.docs("json") in stack_help and cli.docs("map") in stack_help
    assert cli.docs("batch") in _help(run, ["batch"])
    assert cli.docs("cache") in _help(run, ["cache"])
    source = Path(cli.__file__).read_text(encoding="utf-8")
    assert source.count("https://") == 1  # the constant, and nothing else spells an address


def test_the_photos_argument_reads_as_photos(run) -> None:
    usage = next(line for line in _help(run, ["stack"]).splitlines() if "Usage:" in line)
    assert usage.split() == ["Usage:", "focuswrap", "stack", "[OPTIONS]", "PHOTO..."]


# ------------------------------------------------------------------ presets


def test_preset_descriptions_explain_every_option_letter(run) -> None:
    done = run("presets", "list")
    assert done.returncode == 0, done.stderr
    descriptions = [line.strip() for line in done.stdout.splitlines() if line.startswith("    ")]
    assert len(descriptions) >= 6
    for text in descriptions:
        for pattern in JARGON + [r"\bnona\b", r"\bLZW\b", r"\bremap", r"\bcontrol points\b"]:
            assert not re.search(pattern, text), f"{pattern!r} in: {text}"
        # A Hugin option letter only in brackets, after the words that say what it does.
        for m in re.finditer(r"(?<![\w-])-[A-Za-z]\b", text):
            before = text[: m.start()]
            assert before.endswith("("), f"{m.group()} without its meaning in: {text}"
            assert len(re.findall(r"[A-Za-z]{3,}", before[-40:])) >= 2, f"{m.group()} in: {text}"


def test_a_preset_name_in_another_case_is_found(run) -> None:
    done = run("presets", "show", "Miniature")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("miniature: ")


def test_a_mistyped_preset_gets_a_suggestion(ws: Workspace) -> None:
    result = ws.run(*ws.photos(), "-p", "miniture")
    assert result.returncode == 2, result.stderr
    assert "There is no preset called 'miniture'; did you mean 'miniature'?" in result.stderr
    result = ws.run(*ws.photos(), "-p", "Miniature", "-o", "out.jpg")
    assert result.returncode == 0, result.stderr


def test_one_broken_user_preset_does_not_hide_the_others(run, _isolated_home: Path) -> None:
    folder = _isolated_home / "config" / "presets"
    folder.mkdir(parents=True)
    (folder / "mine.toml").write_text('description = "mine"\n[align]\nfishey = true\n', encoding="utf-8")
    (folder / "good.toml").write_text('description = "my good one"\n', encoding="utf-8")
    done = run("presets", "list")
    assert done.returncode == 0, done.stderr
    assert "miniature [default]" in done.stdout and "good (user)\n    my good one" in done.stdout
    assert re.search(r"^mine \(user\) CANNOT BE USED", done.stdout, re.M)
    assert re.search(r"^    .*mine\.toml: align\.fishey: unknown field", done.stdout, re.M)
    assert "1 preset file cannot be used" in done.stderr
    assert "Traceback" not in done.stderr


# ------------------------------------------------------------------ photos and folders


def test_a_lowercase_pattern_among_uppercase_photos_says_what_it_found(ws: Workspace) -> None:
    for i in (1, 2, 3):
        photo(ws.shots / f"IMG_{i}.JPG")
    result = ws.run("*.jpg")  # as bash passes a pattern that matched nothing
    assert result.returncode == 2, result.stderr
    assert (
        "No file matches *.jpg (names are case-sensitive), but 3 photos here match it in another case: "
        "IMG_1.JPG, IMG_2.JPG and IMG_3.JPG; type *.JPG instead." in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_a_pattern_the_shell_left_alone_is_expanded(ws: Workspace) -> None:
    # Windows' shells never expand *.jpg; focuswrap does it itself.
    ws.photos(3)
    result = ws.run("IMG_*.jpg", "-o", "out.jpg", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "Stacked 3 photos" in result.stdout


def test_a_pattern_that_matches_nothing_lists_the_photos(ws: Workspace) -> None:
    ws.photos(2)
    result = ws.run("*.png")
    assert result.returncode == 2
    assert "No file matches *.png; the photos here are IMG_1.jpg and IMG_2.jpg." in result.stderr


def test_output_into_a_missing_folder_creates_it(ws: Workspace) -> None:
    names = ws.photos()
    result = ws.run(*names, "-o", "results/today/out.jpg", "--quiet")
    assert result.returncode == 0, result.stderr
    assert (ws.shots / "results" / "today" / "out.jpg").is_file()


def test_a_failed_stack_leaves_no_folder_it_would_have_created(ws: Workspace) -> None:
    names = ws.photos()
    ws.align.plan(*[fakehugin.failure(ALIGN, "no-control-points")] * 6)
    before = ws.snapshot()
    result = ws.run(*names, "-o", "results/out.jpg", "--quiet")
    assert result.returncode == 4, result.stderr
    assert ws.snapshot() == before
    assert not (ws.shots / "results").exists()


def test_output_under_a_file_is_still_refused(ws: Workspace) -> None:
    names = ws.photos()
    result = ws.run(*names, "-o", "IMG_1.jpg/out.jpg")
    assert result.returncode == 2
    assert "IMG_1.jpg is a file, not a folder" in result.stderr


# ------------------------------------------------------------------ batch


def _open_camera(folder: Path, stem: str, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        photo(folder / f"{stem}_{i}.jpg", sigma=40 + 9 * i)


def test_two_open_camera_brackets_in_one_subfolder_are_two_results(ws: Workspace) -> None:
    session = ws.shots / "OpenCamera"  # a phone's DCIM/OpenCamera, copied into the folder
    _open_camera(session, "IMG_20240601_141502", 4)
    _open_camera(session, "IMG_20240601_142230", 3)
    groups = batch.find_groups(ws.shots)
    assert [(g.name, len(g.frames)) for g in groups] == [
        ("OpenCamera-IMG_20240601_141502", 4),
        ("OpenCamera-IMG_20240601_142230", 3),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "focuswrap", "batch", str(ws.shots), "--hugin-dir", str(ws.bin), "--quiet"],
        env=ws.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results = sorted(p.name for p in (ws.shots / "stacked").iterdir())
    assert results == [
        "OpenCamera-IMG_20240601_141502-stacked.jpg",
        "OpenCamera-IMG_20240601_142230-stacked.jpg",
    ]


def test_a_subfolder_of_one_bracket_stays_one_bracket(tmp_path: Path) -> None:
    (tmp_path / "dragon").mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        photo(tmp_path / "dragon" / name)
    _open_camera(tmp_path / "knight", "IMG_20240601_141502", 3)
    groups = batch.find_groups(tmp_path)
    assert [(g.name, len(g.frames)) for g in groups] == [("dragon", 3), ("knight", 3)]


# ------------------------------------------------------------------ doctor, progress, --verbose


def test_doctor_shows_how_big_the_cache_is(run, _isolated_home: Path) -> None:
    entry = _isolated_home / "cache" / "aligned" / "0123abcd"
    entry.mkdir(parents=True)
    (entry / "aligned_0001.tif").write_bytes(b"\0" * (3 * 2**20))
    (entry / "entry.json").write_text('{"frames": ["aligned_0001.tif"], "stored": 0}')
    done = run("doctor")
    assert re.search(
        r"^\s+3\.0 MB of at most 2048 MB \(1 stack; 'focuswrap cache clear' empties it\)$", done.stdout, re.M
    )


def test_verbose_folds_a_repeated_tool_warning_into_one_line_with_a_count() -> None:
    out = io.StringIO()
    with display.PlainReporter(verbose=True, stream=out) as rep:
        rep.command(["enfuse", "a.tif"])
        for n in range(1, 8):
            rep.tool_line("enfuse", "stderr", f"TIFFWriteDirectorySec: Warning, Unknown field with tag {300 + n}.")
            rep.tool_line("enfuse", "stderr", f"loading next image: aligned_000{n}.tif 1/1")
    lines = out.getvalue().splitlines()
    warnings = [ln for ln in lines if "TIFFWriteDirectorySec" in ln]
    assert warnings == [
        "       enfuse: TIFFWriteDirectorySec: Warning, Unknown field with tag 301.",
        "       enfuse: (the warning above came 6 more times: TIFFWriteDirectorySec: Warning, "
        "Unknown field with tag 301.)",
    ]
    assert sum("loading next image" in ln for ln in lines) == 7  # other lines are all shown


def test_dry_run_notes_are_in_plain_words(ws: Workspace) -> None:
    result = ws.run(*ws.photos(), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "Rt1" not in result.stderr and " i line" not in result.stderr


class Recorder(pipeline.Reporter):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def progress(self, step: str, done: int, total: int, label: str = "") -> None:
        self.events.append((step, done, total, label))


def test_align_progress_names_the_photos_and_keeps_its_total() -> None:
    rec = Recorder()
    names = ["IMG_1.jpg", "IMG_2.jpg", "IMG_3.jpg"]
    progress = pipeline._AlignProgress(rec, len(names) - 1, 2, names)
    for line in ["Creating control points between a and b", "Creating control points between b and c"]:
        progress("stdout", line)
    progress.remaps(2)  # the reference is fused as it is: already in place
    for line in ["saving aligned_0002.tif", "saving aligned_0001.tif"]:
        progress("stdout", line)
    assert rec.events == [
        ("align", 1, 5, "comparing photo 2 with photo 1 (IMG_2.jpg)"),
        ("align", 2, 5, "comparing photo 3 with photo 2 (IMG_3.jpg)"),
        ("align", 4, 5, "lining up photo 3 of 3 (IMG_3.jpg)"),
        ("align", 5, 5, "lining up photo 2 of 3 (IMG_2.jpg)"),
    ]


def test_fuse_progress_names_the_photos_then_keeps_the_blending_alive() -> None:
    rec = Recorder()
    frames = [Path("/w/IMG_1.jpg"), Path("/w/aligned_0001.tif"), Path("/w/aligned_0002.tif")]
    on_line = pipeline._fuse_progress(rec, 3, frames, ["IMG_1.jpg", "IMG_2.jpg", "IMG_3.jpg"])
    for f in frames:
        on_line("stderr", f"enfuse: info: loading next image: {f} 1/1")
    assert rec.events == [
        ("fuse", 1, 4, "loading IMG_1.jpg (photo 1 of 3)"),
        ("fuse", 2, 4, "loading IMG_2.jpg (photo 2 of 3)"),
        ("fuse", 3, 4, "loading IMG_3.jpg (photo 3 of 3)"),
        # Not finished (3 of 4): the live bar keeps its spinner and clock while enfuse blends.
        ("fuse", 3, 4, "blending the sharpest parts of 3 photos into one"),
    ]

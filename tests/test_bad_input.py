"""Bad input through the real command line: one clear line, a documented exit code, nothing touched.

Every row of :data:`ROWS` runs ``focuswrap stack`` as a subprocess (with the
fake Hugin tools, so a row that wrongly got past the checks would be seen
running them) and asserts the exit code, the message, that no traceback was
printed, that every file in the photo folder is byte for byte as before, that
no new file appeared there and that no work folder was left in ``TMPDIR``.

The :class:`~helpers.Workspace` (fixture ``ws``) and :func:`~helpers.assert_clean_failure`
are in ``helpers.py``, shared with ``test_interrupt.py`` and ``test_faults.py``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import SIZE, Workspace, assert_clean_failure, photo, stack_fails
from PIL import Image

from focuswrap.errors import ExitCode

REPO = Path(__file__).resolve().parent.parent
EXIT_CODES_DOC = REPO / "docs" / "exit-codes.md"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


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
    pytest.param(
        Row(_folder, r"more is a folder, not a photo; give the photos inside it, e\.g\. more/\*\.jpg"), id="folder"
    ),
    pytest.param(
        Row(_unreadable, r"IMG_3\.jpg cannot be read \(.*\); check the file permissions"),
        id="unreadable",
        marks=_ROOT_SKIP,
    ),
    pytest.param(Row(_broken_link, r"IMG_3\.jpg is a link to a file that does not exist"), id="broken-link"),
    pytest.param(Row(_empty, r"IMG_3\.jpg is an empty file \(0 bytes\); copy the photos again"), id="empty"),
    pytest.param(
        Row(_not_an_image, r"notes\.jpg is not an image focuswrap can read; give JPEG, TIFF or PNG"), id="not-an-image"
    ),
    pytest.param(
        Row(_truncated_jpeg, r"IMG_3\.jpg is incomplete \(the file ends early.*copy the photos again"),
        id="truncated-jpeg",
    ),
    pytest.param(Row(_truncated_png, r"IMG_3\.png is incomplete \(the file ends early"), id="truncated-png"),
    pytest.param(Row(_raw, r"IMG_3\.dng is a raw camera file, which Hugin cannot read; install raw support"), id="raw"),
    pytest.param(
        Row(_different_size, r"IMG_2\.jpg is 80x64 but the other photos are 96x64; .*remove or resize it"),
        id="different-sizes",
    ),
    pytest.param(
        Row(
            _different_orientation,
            r"camera turned differently: IMG_3\.jpg is portrait \(EXIF orientation 6\) "
            r"but IMG_1\.jpg and IMG_2\.jpg are landscape",
        ),
        id="different-orientations",
    ),
    pytest.param(Row(_twice, r"IMG_1\.jpg is given twice; give each photo once\.$"), id="same-file-twice"),
    pytest.param(
        Row(_twice_by_another_name, r"copy\.jpg and IMG_1\.jpg are the same file; give each photo once"),
        id="same-file-two-names",
    ),
    pytest.param(
        Row(_with("-o", "IMG_2.jpg"), r"The output IMG_2\.jpg is also one of the input photos; choose another"),
        id="output-is-an-input",
    ),
    pytest.param(
        Row(_with("-o", "IMG_2.jpg", "--force"), r"The output IMG_2\.jpg is also one of the input photos"),
        id="output-is-an-input-even-with-force",
    ),
    pytest.param(
        Row(_with("-o", "out.gif"), r"cannot write \.gif files \(out\.gif\); end the output name with one of \.tif"),
        id="output-extension",
    ),
    pytest.param(
        Row(_with("-o", "out"), r"needs an extension to know the format \(out\)"), id="output-without-extension"
    ),
    pytest.param(
        Row(_output_under_a_file, r"IMG_1\.jpg is a file, not a folder, so IMG_1\.jpg/out\.jpg cannot be written"),
        id="output-folder-is-a-file",
    ),
    pytest.param(
        Row(_output_folder_unwritable, r"cannot write into the folder .*locked \(permission denied\)"),
        id="output-folder-unwritable",
        marks=_ROOT_SKIP,
    ),
    pytest.param(
        Row(_output_is_a_folder, r"The output results is a folder; give a file name"), id="output-is-a-folder"
    ),
    pytest.param(Row(_existing_output, r"out\.jpg already exists; use --force to replace it\.$"), id="output-exists"),
    pytest.param(
        Row(_with("--preset", "nope"), r"There is no preset called 'nope'; the presets are: .*miniature"),
        id="unknown-preset",
    ),
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
    result, line = stack_fails(ws, "--quiet", code=ExitCode.BAD_CONFIG)
    assert result.stderr.strip() == line
    assert line == (
        f"focuswrap: error: {config}: colour: unknown field; "
        "allowed here: hugin_dir, preset, timeout, cache_max_mb, results_dir"
    )


def test_config_toml_value_out_of_range(ws: Workspace) -> None:
    config = ws.home / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("timeout = -5\n")
    _, line = stack_fails(ws, "--quiet", code=ExitCode.BAD_CONFIG)
    assert line == f"focuswrap: error: {config}: timeout: Input should be greater than 0"


def test_malformed_preset_names_file_field_and_allowed_values(ws: Workspace) -> None:
    preset = ws.home / "config" / "presets" / "mine.toml"
    preset.parent.mkdir(parents=True)
    preset.write_text('description = "Mine."\n[fuse]\ngray_projector = "brightest"\n')
    result, line = stack_fails(ws, "--preset", "mine", "--quiet", code=ExitCode.BAD_CONFIG)
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

"""The fallback ladder, end to end: ``focuswrap stack`` against fake tools replaying real failures.

Each attempt's argv is checked exactly: attempt 1 is the preset's recipe and
every later attempt adds one rung, keeping the earlier ones.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import fakehugin
import pytest
from fakehugin import ALIGN, ENFUSE
from helpers import photos

from focuswrap import paths

WORK = re.compile(r"^.*/focuswrap\.[A-Za-z0-9_]+/")  # the work folder, in a path
RECIPE = ["-v", "-m", "-e", "--use-given-order", "-C"]  # the default preset: the recipe, cropped
#: miniature's rungs, in order, as each adds them.
RUNGS = [["-i"], ["--corr=0.8"], ["-c", "500"], ["-g", "3"]]


@pytest.fixture
def shots(tmp_path: Path) -> list[Path]:
    return photos(tmp_path / "shots")


@pytest.fixture
def align(hugin: fakehugin.Hugin) -> fakehugin.Fake:
    return hugin.align


@pytest.fixture
def enfuse(hugin: fakehugin.Hugin) -> fakehugin.Fake:
    return hugin.enfuse


@pytest.fixture
def stack(run, shots: list[Path], hugin: fakehugin.Hugin):
    """``focuswrap stack`` on ``shots`` with the fake tools, plus the given arguments."""

    def stack(*args: object) -> subprocess.CompletedProcess:
        return run("stack", *shots, "--hugin-dir", hugin.bin_dir, *args)

    return stack


def expected_argv(shots: list[Path], *added: list[str], pto: bool = False) -> list[str]:
    """align_image_stack's argv (without argv[0]) with the work folder as WORK."""
    flags = [tok for group in added for tok in group]
    return [*RECIPE, *flags, *(["-p", "/WORK/debug.pto"] if pto else []), "-a", "/WORK/aligned_", *map(str, shots)]


def calls(fake: fakehugin.Fake) -> list[list[str]]:
    return [[WORK.sub("/WORK/", a) for a in call] for call in fake.calls]


def attempts_rows(stderr: str) -> list[list[str]]:
    """The rows of the attempts table: [number, flags, diagnosis]."""
    table = stderr.split("Attempts:\n", 1)[1].splitlines()
    rows = []
    for line in table[1:]:
        m = re.match(r"^  (\d+)  (.*?)\s+(\S+)$", line)
        if m is None:
            break
        rows.append(list(m.groups()))
    return rows


def assert_no_result(shots: list[Path], tmpdir_: Path) -> None:
    assert not shots[0].with_name("IMG_1-stacked.jpg").exists()
    assert list(shots[0].parent.glob(".*")) == []  # no half-written result either
    assert list(tmpdir_.iterdir()) == []  # the work folder is gone


# ---------------------------------------------------------------- the ladder helps


def test_second_attempt_with_i_succeeds(stack, align, enfuse, shots) -> None:
    align.plan(fakehugin.failure(ALIGN, "no-control-points"), fakehugin.success(ALIGN))
    done = stack()
    assert done.returncode == 0, done.stderr
    assert calls(align) == [expected_argv(shots), expected_argv(shots, RUNGS[0])]
    assert "miniature (2 attempts; -i made the difference)" in done.stdout
    assert "attempt 1 failed: no-control-points" in done.stderr
    assert "attempt 2 of up to 5: adding -i (align image centres too" in done.stderr
    assert shots[0].with_name("IMG_1-stacked.jpg").is_file()
    assert len(enfuse.calls) == 1


def test_third_attempt_keeps_the_second_rung(stack, align, shots) -> None:
    align.plan(
        fakehugin.failure(ALIGN, "no-control-points"),
        fakehugin.failure(ALIGN, "no-feature-points"),
        fakehugin.success(ALIGN),
    )
    done = stack("--json")
    assert done.returncode == 0, done.stderr
    assert calls(align) == [expected_argv(shots), expected_argv(shots, RUNGS[0]), expected_argv(shots, *RUNGS[:2])]

    attempts = json.loads(done.stdout)["attempts"]
    assert [(a["number"], a["added"], a["diagnosis"]) for a in attempts] == [
        (1, "", "no-control-points"),
        (2, "-i", "no-feature-points"),
        (3, "--corr=0.8", "ok"),
    ]
    assert attempts[2]["flags"] == "-m -e --use-given-order -C -i --corr=0.8"


# ---------------------------------------------------------------- the ladder is exhausted


def test_exhausted_ladder(stack, align, enfuse, shots, tmpdir_) -> None:
    align.plan(fakehugin.failure(ALIGN, "no-control-points"))
    done = stack()
    assert done.returncode == 4
    assert calls(align) == [expected_argv(shots, *RUNGS[:k]) for k in range(5)]
    assert enfuse.calls == []
    assert "focuswrap: error: Alignment failed after 5 attempts" in done.stderr
    assert attempts_rows(done.stderr) == [
        ["1", "-m -e --use-given-order -C", "no-control-points"],
        ["2", "-m -e --use-given-order -C -i", "no-control-points"],
        ["3", "-m -e --use-given-order -C -i --corr=0.8", "no-control-points"],
        ["4", "-m -e --use-given-order -C -i --corr=0.8 -c 500", "no-control-points"],
        ["5", "-m -e --use-given-order -C -i --corr=0.8 -c 500 -g 3", "no-control-points"],
    ]
    # Plain-language advice, not the tool's jargon.
    assert "too different to align" in done.stderr and "tripod" in done.stderr
    assert "Traceback" not in done.stderr
    assert_no_result(shots, tmpdir_)


@pytest.mark.parametrize(
    ("option", "count"), [(["--no-retry"], 1), (["--max-attempts", "2"], 2), (["--max-attempts", "9"], 5)]
)
def test_attempt_limits(stack, align, shots, tmpdir_, option, count) -> None:
    align.plan(fakehugin.failure(ALIGN, "no-feature-points"))
    done = stack(*option)
    assert done.returncode == 4
    assert calls(align) == [expected_argv(shots, *RUNGS[:k]) for k in range(count)]
    assert len(attempts_rows(done.stderr)) == count
    assert f"after {count} attempt{'s' if count > 1 else ''}:" in done.stderr
    assert_no_result(shots, tmpdir_)


@pytest.mark.parametrize(
    ("case", "diagnosis", "advice"),
    [
        ("different-sizes", "different-sizes", "not all the same size"),
        ("undecodable-first", "unreadable-image", "not an image Hugin can read"),
        ("damaged-jpeg", "damaged-image", "copy the stack from the card again"),
    ],
)
def test_failures_the_ladder_cannot_fix_are_not_retried(
    stack, align, enfuse, shots, tmpdir_, case, diagnosis, advice
) -> None:
    align.plan(fakehugin.failure(ALIGN, case))
    done = stack()
    assert done.returncode == 4
    assert calls(align) == [expected_argv(shots)]
    assert attempts_rows(done.stderr) == [["1", "-m -e --use-given-order -C", diagnosis]]
    assert advice in done.stderr
    assert enfuse.calls == []
    assert_no_result(shots, tmpdir_)


def test_unknown_failure_shows_the_tools_last_lines(stack, align, shots, tmpdir_) -> None:
    strange = {"transcript": {"stdout": "loading frames\n", "stderr": "flux capacitor overheated\n", "returncode": 1}}
    align.plan(strange)
    done = stack("--max-attempts", "2")
    assert done.returncode == 4
    assert len(align.calls) == 1  # no rung is known to help a failure nobody understands: not retried
    assert attempts_rows(done.stderr) == [["1", "-m -e --use-given-order -C", "unknown"]]
    assert "Not retried with other align options" in done.stderr
    # The tool's own words, then the advice that points at them.
    assert "    flux capacitor overheated" in done.stderr
    assert re.search(r"^command: .*align_image_stack -v -m -e --use-given-order -C ", done.stderr, re.M)
    assert done.stderr.index("flux capacitor") < done.stderr.index("see its last lines above")
    assert_no_result(shots, tmpdir_)


def test_known_failure_hides_the_tool_output_unless_verbose(stack, align) -> None:
    align.plan(fakehugin.failure(ALIGN, "different-sizes"))
    quiet = stack()
    assert "command:" not in quiet.stderr
    loud = stack("--verbose")
    assert "command:" in loud.stderr and "Images have different sizes." in loud.stderr


@pytest.mark.parametrize(
    ("first", "added"),
    [("no-control-points", ["-t", "6"]), ("no-feature-points", ["--corr=0.8"])],
)
def test_rung_tied_to_a_diagnosis_is_skipped_for_others(stack, align, shots, first, added) -> None:
    folder = paths.user_presets_dir()
    folder.mkdir(parents=True)
    (folder / "mine.toml").write_text(
        'description = "test ladder"\n'
        "[align]\noptimize_fov = true\nfisheye = true\ncrop = true\n"
        '[[ladder]]\nset = { max_error = 6 }\nwhy = "allow more error"\nhelps = ["no-control-points"]\n'
        '[[ladder]]\nset = { correlation = 0.8 }\nwhy = "weaker matches"\n'
    )
    align.plan(fakehugin.failure(ALIGN, first), fakehugin.success(ALIGN))
    done = stack("--preset", "mine")
    assert done.returncode == 0, done.stderr
    assert calls(align) == [expected_argv(shots), expected_argv(shots, added)]
    assert f"{' '.join(added)} made the difference" in done.stdout


def test_tied_rung_alone_cannot_help_other_failures(stack, align, shots) -> None:
    folder = paths.user_presets_dir()
    folder.mkdir(parents=True)
    (folder / "tied.toml").write_text(
        'description = "only one tied rung"\n[align]\nfisheye = true\n'
        '[[ladder]]\nset = { max_error = 6 }\nwhy = "allow more error"\nhelps = ["no-control-points"]\n'
    )
    align.plan(fakehugin.failure(ALIGN, "no-feature-points"))
    done = stack("--preset", "tied")
    assert done.returncode == 4
    assert len(align.calls) == 1


def test_keep_temp_on_failure_names_the_kept_folder(stack, align, shots, tmpdir_) -> None:
    align.plan(fakehugin.failure(ALIGN, "no-control-points"))
    done = stack("--keep-temp", "--no-retry")
    assert done.returncode == 4
    (argv,) = align.calls
    pto = Path(argv[argv.index("-p") + 1])
    assert pto.name == "debug.pto"
    work = pto.parent
    assert work.parent == tmpdir_ and work.is_dir()
    assert f"kept for inspection: {work}" in done.stderr
    assert calls(align) == [expected_argv(shots, pto=True)]


# ---------------------------------------------------------------- exit 0 is not proof


def test_align_exit_0_without_files_is_a_failure(stack, align, enfuse, shots, tmpdir_) -> None:
    align.plan({"transcript": fakehugin.transcript(ALIGN, "success"), "write": False})
    done = stack()
    assert done.returncode == 4
    assert len(align.calls) == 1  # not retried: another rung would not write them either
    assert attempts_rows(done.stderr) == [["1", "-m -e --use-given-order -C", "output-not-written"]]
    assert "aligned_0000.tif was not written" in done.stderr
    assert enfuse.calls == []
    assert_no_result(shots, tmpdir_)


# ---------------------------------------------------------------- fusion failures


@pytest.mark.parametrize("case", ["disk-full", "output-not-writable", "unknown-option", "undecodable-image"])
def test_fusion_failure_is_exit_5_and_not_retried(stack, align, enfuse, shots, tmpdir_, case) -> None:
    enfuse.plan(fakehugin.failure(ENFUSE, case))
    done = stack()
    assert done.returncode == 5, done.stderr
    assert len(align.calls) == 1 and len(enfuse.calls) == 1
    assert "focuswrap: error: Fusion failed" in done.stderr
    assert "Attempts:" not in done.stderr
    assert_no_result(shots, tmpdir_)


def test_enfuse_exit_0_without_output_is_exit_5(stack, align, enfuse, shots, tmpdir_) -> None:
    enfuse.plan({"transcript": fakehugin.transcript(ENFUSE, "success"), "write": False})
    done = stack()
    assert done.returncode == 5
    assert "enfuse exited 0 but fused.tif was not written" in done.stderr
    assert len(enfuse.calls) == 1
    assert_no_result(shots, tmpdir_)


def test_keep_temp_on_fusion_failure_names_the_kept_folder(stack, align, enfuse, tmpdir_) -> None:
    enfuse.plan(fakehugin.failure(ENFUSE, "disk-full"))
    done = stack("--keep-temp")
    assert done.returncode == 5
    (work,) = tmpdir_.iterdir()
    assert f"kept for inspection: {work}" in done.stderr
    assert (work / "aligned_0000.tif").is_file()

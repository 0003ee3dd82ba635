"""Tests for focuswrap.batch: grouping a folder into brackets and stacking each one."""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from pathlib import Path

import fakehugin
import pytest
from helpers import unfused_border
from PIL import Image

from focuswrap import batch, discovery, pipeline, presets
from focuswrap.errors import BadInputError, ExitCode, Interrupted

OC = "IMG_20240101_120000"  # an Open Camera bracket name
OC2 = "IMG_20240101_120130"


def photo(path: Path, *, when: str | None = None, shade: int = 128, size: tuple[int, int] = (64, 48)) -> Path:
    """A small JPEG, with EXIF DateTimeOriginal ``when`` ('2024:01:01 12:00:00') if given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", size, (shade, 255 - shade, 90))
    exif = Image.Exif()
    if when is not None:
        exif.get_ifd(0x8769)[0x9003] = when
    im.save(path, exif=exif.tobytes() if when is not None else b"")
    return path


def bracket(folder: Path, stem: str, n: int, ext: str = ".jpg", suffix: str = "") -> list[Path]:
    """Frames stem_0 .. stem_{n-1} (``suffix`` after the frame number, e.g. 'Z' or '_1')."""
    return [photo(folder / f"{stem}_{i}{suffix}{ext}", shade=40 + 10 * i) for i in range(n)]


def names(paths) -> list[str]:
    return [Path(p).name for p in paths]


@pytest.fixture
def fake_tools(tmp_path: Path):
    """Fake align_image_stack and enfuse (succeeding), and the Tools that point at them."""
    bin_dir = tmp_path / "bin"
    align = fakehugin.install(bin_dir, "align_image_stack")
    enfuse = fakehugin.install(bin_dir, "enfuse")
    return align, enfuse, discovery.find_tools(hugin_dir=bin_dir)


@pytest.fixture
def work_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work folders go here, so a test can see that none is left behind."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(folder))
    return folder


def run(folder: Path, tools, **kw) -> batch.BatchResult:
    kw.setdefault("verbose_tools", False)
    return batch.run(folder, tools=tools, preset=presets.get("miniature"), **kw)


# ------------------------------------------------------------- Open Camera names


@pytest.mark.parametrize(
    "name, expected",
    [
        ("IMG_20240101_120000_0.jpg", ("IMG_20240101_120000", 0)),
        ("IMG_20240101_120000_10.jpg", ("IMG_20240101_120000", 10)),
        ("IMG_20240101_120000Z_3.jpg", ("IMG_20240101_120000Z", 3)),  # "UTC time" setting
        ("IMG_20240101_120000_3Z.jpg", ("IMG_20240101_120000Z", 3)),
        ("IMG_20240101_120000_3_1.jpg", ("IMG_20240101_120000_1", 3)),  # name taken: index _1 added
        ("Macro_20240101_120000_2.JPG", ("Macro_20240101_120000", 2)),  # another prefix setting
        ("IMG_20240101_120000.jpg", None),  # a single shot
        ("IMG_20240101_120000_NR.jpg", None),  # noise-reduction mode
        ("IMG_0001.jpg", None),
        ("DSC_1234_5.jpg", None),
    ],
)
def test_open_camera_bracket_names(name: str, expected) -> None:
    assert batch.open_camera_bracket(Path(name)) == expected


def test_a_bracket_of_eleven_frames_is_in_natural_order(tmp_path: Path) -> None:
    frames = bracket(tmp_path, OC, 11)
    [group] = batch.find_groups(tmp_path)
    assert group.name == OC and group.how == "names"
    assert list(group.frames) == frames  # _10 last, not after _1
    assert group.frames[-1].name == f"{OC}_10.jpg"


def test_two_brackets_in_one_folder(tmp_path: Path) -> None:
    second = bracket(tmp_path, OC2, 3)
    first = bracket(tmp_path, OC, 4)
    groups = batch.find_groups(tmp_path)
    assert [(g.name, list(g.frames)) for g in groups] == [(OC, first), (OC2, second)]


def test_a_collision_index_makes_its_own_bracket(tmp_path: Path) -> None:
    first = bracket(tmp_path, OC, 3)
    second = bracket(tmp_path, OC, 3, suffix="_1")  # IMG_..._0_1.jpg, IMG_..._1_1.jpg, ...
    groups = batch.find_groups(tmp_path)
    assert [(g.name, list(g.frames)) for g in groups] == [(OC, first), (f"{OC}_1", second)]


@pytest.mark.parametrize("layout", ["after-frame", "after-timestamp"])
def test_z_suffix(tmp_path: Path, layout: str) -> None:
    if layout == "after-frame":
        frames = bracket(tmp_path, OC, 3, suffix="Z")  # IMG_..._0Z.jpg
    else:
        frames = bracket(tmp_path, OC + "Z", 3)  # IMG_...Z_0.jpg
    [group] = batch.find_groups(tmp_path)
    assert group.name == OC + "Z"
    assert list(group.frames) == frames


def test_same_bracket_in_two_formats_is_two_groups(tmp_path: Path) -> None:
    bracket(tmp_path, OC, 2)
    for i in range(2):
        Image.new("RGB", (64, 48)).save(tmp_path / f"{OC}_{i}.png")
    groups = batch.find_groups(tmp_path)
    assert sorted(g.name for g in groups) == [OC, f"{OC}-2"]
    assert {tuple(sorted({f.suffix for f in g.frames})) for g in groups} == {(".jpg",), (".png",)}


def test_left_out_raw_hidden_and_earlier_results(tmp_path: Path) -> None:
    frames = bracket(tmp_path, OC, 2)
    (tmp_path / f"{OC}_0.dng").write_bytes(b"raw")  # Open Camera's raw twin
    photo(tmp_path / f"._{OC}_1.jpg")  # macOS AppleDouble
    photo(tmp_path / f"{OC}-stacked.jpg")  # an earlier 'focuswrap stack' result
    (tmp_path / "notes.txt").write_text("x")
    [group] = batch.find_groups(tmp_path)
    assert list(group.frames) == frames


# ------------------------------------------------------------- folders and time


def test_one_bracket_per_subfolder(tmp_path: Path) -> None:
    a = [photo(tmp_path / "beetle" / f"P{i}.jpg") for i in (1, 2, 10)]
    b = [photo(tmp_path / "coin" / f"x{i}.jpg") for i in (1, 2)]
    photo(tmp_path / "stacked" / "beetle-stacked.jpg")  # the results folder
    photo(tmp_path / ".thumbnails" / "t1.jpg")
    (tmp_path / "empty").mkdir()
    groups = batch.find_groups(tmp_path, exclude=[tmp_path / "stacked"])
    assert [(g.name, g.how, list(g.frames)) for g in groups] == [("beetle", "folder", a), ("coin", "folder", b)]
    assert batch.find_groups(tmp_path, group_by="folders", exclude=[tmp_path / "stacked"]) == groups


def test_auto_prefers_subfolders_and_groups_loose_photos_itself(tmp_path: Path) -> None:
    photo(tmp_path / "a" / "1.jpg")
    photo(tmp_path / "a" / "2.jpg")
    loose = bracket(tmp_path, OC, 2)
    groups = batch.find_groups(tmp_path)
    assert [(g.name, g.how) for g in groups] == [("a", "folder"), (OC, "names")]
    assert list(groups[1].frames) == loose


def test_names_mode_ignores_subfolders(tmp_path: Path) -> None:
    photo(tmp_path / "a" / "1.jpg")
    photo(tmp_path / "a" / "2.jpg")
    bracket(tmp_path, OC, 2)
    photo(tmp_path / "IMG_0001.jpg")
    groups = batch.find_groups(tmp_path, group_by="names")
    assert [(g.name, len(g.frames)) for g in groups] == [(OC, 2), ("IMG_0001", 1)]


def test_time_gaps(tmp_path: Path) -> None:
    for name, when in [
        ("DSC_0010.jpg", "2024:01:01 12:00:00"),
        ("DSC_0009.jpg", "2024:01:01 12:00:02"),  # taken later, but natural order puts it first
        ("DSC_0011.jpg", "2024:01:01 12:00:04"),
        ("DSC_0020.jpg", "2024:01:01 12:01:00"),
        ("DSC_0021.jpg", "2024:01:01 12:01:05"),  # exactly the gap: same bracket
        ("DSC_0030.jpg", "2024:01:01 12:05:00"),
    ]:
        photo(tmp_path / name, when=when)
    groups = batch.find_groups(tmp_path)  # auto: no subfolders, no Open Camera names
    assert [(g.name, g.how, names(g.frames)) for g in groups] == [
        ("DSC_0009", "time", ["DSC_0009.jpg", "DSC_0010.jpg", "DSC_0011.jpg"]),
        ("DSC_0020", "time", ["DSC_0020.jpg", "DSC_0021.jpg"]),
        ("DSC_0030", "time", ["DSC_0030.jpg"]),
    ]
    wide = batch.find_groups(tmp_path, group_by="time", gap=60)
    assert [len(g.frames) for g in wide] == [5, 1]
    assert all(g.note == "" for g in wide)


def test_time_without_exif_uses_file_times_and_says_so(tmp_path: Path) -> None:
    a, b = photo(tmp_path / "a.jpg"), photo(tmp_path / "b.jpg")
    os.utime(a, (1_000_000, 1_000_000))
    os.utime(b, (1_000_002, 1_000_002))
    [group] = batch.find_groups(tmp_path, group_by="time")
    assert list(group.frames) == [a, b]
    assert "file times" in group.note


@pytest.mark.parametrize(
    "setup, kw, message",
    [
        (lambda p: None, {}, "no photos"),
        (lambda p: photo(p / "only.jpg"), {}, "no bracket of two or more"),
        (lambda p: bracket(p, OC, 2), {"group_by": "pairs"}, "--group-by must be one of"),
        (lambda p: bracket(p, OC, 2), {"gap": 0}, "--gap must be more than 0"),
        (lambda p: bracket(p, OC, 2), {"fmt": "webp"}, "cannot write"),
    ],
)
def test_plan_refuses(tmp_path: Path, setup, kw, message: str) -> None:
    folder = tmp_path / "shots"
    folder.mkdir()
    setup(folder)
    with pytest.raises(BadInputError, match=message) as info:
        batch.plan(folder, **kw)
    assert info.value.exit_code == ExitCode.BAD_INPUT


def test_missing_folder_and_file_instead_of_folder(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="does not exist"):
        batch.plan(tmp_path / "nope")
    with pytest.raises(BadInputError, match="is a file, not a folder"):
        batch.plan(photo(tmp_path / "a.jpg"))


# ------------------------------------------------------------- dry run


def test_dry_run_says_one_bracket_in_the_singular(tmp_path: Path, fake_tools) -> None:
    _align, _enfuse, tools = fake_tools
    shots = tmp_path / "shots"
    bracket(shots, OC, 3)
    first = batch.plan_lines(run(shots, tools, dry_run=True)).splitlines()[0]
    assert first.startswith(f"1 bracket in {shots} ")


def test_dry_run_lists_groups_and_writes_nothing(tmp_path: Path, fake_tools) -> None:
    align, enfuse, tools = fake_tools
    shots = tmp_path / "shots"
    bracket(shots, OC, 11)
    bracket(shots, OC2, 3)
    photo(shots / "IMG_0001.jpg", when="2024:01:01 09:00:00")
    outdir = tmp_path / "out"
    outdir.mkdir()
    done = photo(outdir / f"{OC2}-stacked.jpg")
    future = time.time() + 60
    os.utime(done, (future, future))

    result = run(shots, tools, outdir=outdir, dry_run=True)
    text = batch.plan_lines(result)
    out = io.StringIO()
    batch.print_report(result, out=out)
    assert out.getvalue().strip() == text

    lines = text.splitlines()
    assert f"3 brackets in {shots}" in lines[0] and str(outdir) in lines[0]
    first = next(line for line in lines if line.split()[0] == OC)
    assert "11 frames" in first and f"{OC}_0.jpg .. {OC}_10.jpg" in first
    assert str(outdir / f"{OC}-stacked.jpg") in first
    second = next(line for line in lines if line.split()[0] == OC2)
    assert "3 frames" in second and "skip: up to date" in second
    single = next(line for line in lines if line.split()[0] == "IMG_0001")
    assert "1 frame " in single and "skip: single photo" in single
    assert result.exit_code == ExitCode.OK
    assert align.calls == [] and enfuse.calls == []
    assert sorted(p.name for p in outdir.iterdir()) == [f"{OC2}-stacked.jpg"]


def test_dry_run_needs_no_tools_and_creates_no_results_folder(tmp_path: Path) -> None:
    bracket(tmp_path / "shots", OC, 2)
    result = run(tmp_path / "shots", None, dry_run=True)
    assert [o.status for o in result.outcomes] == ["planned"]
    assert not (tmp_path / "shots" / "stacked").exists()


# ------------------------------------------------------------- running with fake tools


def test_stacks_each_bracket_into_the_results_folder(tmp_path: Path, fake_tools, work_tmp: Path) -> None:
    align, _enfuse, tools = fake_tools
    shots = tmp_path / "shots"
    first = bracket(shots, OC, 11)
    second = bracket(shots, OC2, 3)
    result = run(shots, tools, fmt="png")
    assert [o.status for o in result.outcomes] == ["ok", "ok"]
    assert result.exit_code == ExitCode.OK
    out = shots / "stacked"
    assert sorted(p.name for p in out.iterdir()) == [f"{OC}-stacked.png", f"{OC2}-stacked.png"]
    with Image.open(out / f"{OC}-stacked.png") as im:
        assert im.format == "PNG"
    # Each stack got its frames in natural order (align's inputs follow its -a PREFIX).
    given = [call[call.index("-a") + 2 :] for call in align.calls]
    assert given == [[str(p) for p in first], [str(p) for p in second]]
    assert result.outcomes[0].result is not None and result.outcomes[0].result.inputs == first
    assert list(work_tmp.iterdir()) == []


def test_singletons_are_skipped(tmp_path: Path, fake_tools) -> None:
    align, _enfuse, tools = fake_tools
    bracket(tmp_path / "shots", OC, 3)
    photo(tmp_path / "shots" / f"{OC2}_0.jpg")  # a bracket cut short
    result = run(tmp_path / "shots", tools)
    assert [(o.group.name, o.status) for o in result.outcomes] == [(OC, "ok"), (OC2, "single")]
    assert len(align.calls) == 1
    table = batch.summary_table(result)
    assert "skipped: single photo" in table
    assert result.exit_code == ExitCode.OK


def test_rerun_skips_up_to_date_results_and_force_redoes_them(tmp_path: Path, fake_tools) -> None:
    align, _enfuse, tools = fake_tools
    shots = tmp_path / "shots"
    bracket(shots, OC, 2)
    newer = bracket(shots, OC2, 2)
    assert [o.status for o in run(shots, tools).outcomes] == ["ok", "ok"]
    assert len(align.calls) == 2

    again = run(shots, tools)
    assert [o.status for o in again.outcomes] == ["up-to-date", "up-to-date"]
    assert len(align.calls) == 2
    assert "skipped: up to date" in batch.summary_table(again)
    assert again.exit_code == ExitCode.OK

    # A frame changed after its result was made: that stack is out of date and is replaced.
    future = time.time() + 60
    os.utime(newer[0], (future, future))
    changed = run(shots, tools)
    assert [o.status for o in changed.outcomes] == ["up-to-date", "ok"]
    assert len(align.calls) == 3

    forced = run(shots, tools, force=True)
    assert [o.status for o in forced.outcomes] == ["ok", "ok"]
    assert len(align.calls) == 5


def test_one_failed_stack_does_not_stop_the_others(tmp_path: Path, fake_tools, work_tmp: Path) -> None:
    align, _enfuse, tools = fake_tools
    # The first stack's alignment finds nothing to match; the others succeed.
    align.plan(fakehugin.failure("align_image_stack", "no-control-points"), fakehugin.success("align_image_stack"))
    shots = tmp_path / "shots"
    for stem in (OC, OC2, "IMG_20240101_120300"):
        bracket(shots, stem, 2)
    result = run(shots, tools, retry=False)
    assert [o.status for o in result.outcomes] == ["failed", "ok", "ok"]
    assert result.exit_code == ExitCode.ALIGN_FAILED
    assert sorted(p.name for p in (shots / "stacked").iterdir()) == [
        f"{OC2}-stacked.jpg",
        "IMG_20240101_120300-stacked.jpg",
    ]
    assert list(work_tmp.iterdir()) == []

    out, err = io.StringIO(), io.StringIO()
    batch.print_report(result, out=out, err=err)
    table = out.getvalue().splitlines()
    assert table[0].split() == ["stack", "frames", "attempts", "result", "time"]
    failed = next(line for line in table if line.startswith(OC + " "))
    assert failed.split()[1:5] == ["2", "1", "failed:", "align:"] and "no-control-points" in failed
    ok = next(line for line in table if line.startswith(OC2))
    assert ok.split()[1:4] == ["2", "1", "ok"] and ok.endswith(" s")
    assert "2 stacked, 0 up to date, 0 single photos skipped, 1 failed" in out.getvalue()
    assert f"focuswrap: error: {OC}: Alignment failed after 1 attempt" in err.getvalue()


def test_verbose_report_shows_the_tools_output(tmp_path: Path, fake_tools) -> None:
    align, _enfuse, tools = fake_tools
    align.plan(fakehugin.failure("align_image_stack", "no-control-points"))
    bracket(tmp_path, OC, 2)
    result = run(tmp_path, tools, retry=False)
    quiet, verbose = io.StringIO(), io.StringIO()
    batch.print_report(result, out=io.StringIO(), err=quiet)
    batch.print_report(result, verbose=True, out=io.StringIO(), err=verbose)
    assert "command:" not in quiet.getvalue()
    assert "command:" in verbose.getvalue() and "No Feature Points" in verbose.getvalue()


def test_the_ladder_runs_for_each_stack(tmp_path: Path, fake_tools) -> None:
    align, _enfuse, tools = fake_tools
    # First stack: one retryable failure, then success on the second rung attempt.
    align.plan(fakehugin.failure("align_image_stack", "no-control-points"), fakehugin.success("align_image_stack"))
    bracket(tmp_path, OC, 2)
    bracket(tmp_path, OC2, 2)
    result = run(tmp_path, tools)
    assert [(o.status, o.attempts) for o in result.outcomes] == [("ok", 2), ("ok", 1)]
    assert "-i" in align.calls[1]  # the ladder's first rung
    rows = batch.summary_table(result).splitlines()
    assert rows[1].split()[1:4] == ["2", "2", "ok"]


def test_exit_code_is_the_first_failures_unless_one_is_an_alignment(tmp_path: Path, fake_tools) -> None:
    align, enfuse, tools = fake_tools
    enfuse.plan(fakehugin.failure("enfuse", "unknown-option"), fakehugin.success("enfuse"))
    for stem in (OC, OC2):
        bracket(tmp_path, stem, 2)
    photo(tmp_path / "IMG_20240101_120300_0.jpg", size=(64, 48))
    photo(tmp_path / "IMG_20240101_120300_1.jpg", size=(48, 64))  # bad input: sizes differ
    result = run(tmp_path, tools, retry=False)
    assert [o.status for o in result.outcomes] == ["failed", "ok", "failed"]
    assert result.exit_code == ExitCode.FUSE_FAILED  # the first failure's code
    assert "failed: fuse:" in batch.summary_table(result)

    align.plan(fakehugin.failure("align_image_stack", "no-feature-points"))
    enfuse.plan(fakehugin.failure("enfuse", "unknown-option"))
    (tmp_path / "IMG_20240101_120300_1.jpg").unlink()
    photo(tmp_path / "IMG_20240101_120300_1.jpg")
    mixed = run(tmp_path, tools, retry=False, force=True)
    assert [o.status for o in mixed.outcomes] == ["failed", "failed", "failed"]
    assert mixed.exit_code == ExitCode.ALIGN_FAILED  # any alignment failure wins


def test_stale_result_is_replaced_without_force(tmp_path: Path, fake_tools) -> None:
    _align, _enfuse, tools = fake_tools
    frames = bracket(tmp_path / "shots", OC, 2)
    old = photo(tmp_path / "shots" / "stacked" / f"{OC}-stacked.jpg", shade=0)
    past = frames[0].stat().st_mtime - 60
    os.utime(old, (past, past))
    result = run(tmp_path / "shots", tools)
    assert [o.status for o in result.outcomes] == ["ok"]
    assert old.stat().st_mtime > past


# ------------------------------------------------------------- Ctrl-C


class InterruptAt(pipeline.Reporter):
    """Raises Interrupted (what cli.main's SIGINT handler raises) at the n-th 'fuse' step."""

    def __init__(self, nth: int) -> None:
        self.fuses = 0
        self.nth = nth
        self.notes: list[str] = []

    def step(self, name: str, detail: str = "") -> None:
        if name == "fuse":
            self.fuses += 1
            if self.fuses == self.nth:
                raise Interrupted("Interrupted")

    def note(self, text: str) -> None:
        self.notes.append(text)


def test_ctrl_c_keeps_finished_results_and_leaves_nothing_of_the_unfinished(
    tmp_path: Path, fake_tools, work_tmp: Path
) -> None:
    _align, _enfuse, tools = fake_tools
    shots = tmp_path / "shots"
    for stem in (OC, OC2, "IMG_20240101_120300"):
        bracket(shots, stem, 2)
    result = run(shots, tools, reporter=InterruptAt(2))
    assert [o.status for o in result.outcomes] == ["ok", "interrupted", "not-started"]
    assert result.interrupted and result.exit_code == ExitCode.INTERRUPTED
    assert [p.name for p in (shots / "stacked").iterdir()] == [f"{OC}-stacked.jpg"]
    assert list(work_tmp.iterdir()) == []
    table = batch.summary_table(result)
    assert "interrupted" in table and "not started" in table


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _raise_interrupted(signum, frame) -> None:
    raise Interrupted("Interrupted")  # what cli.main's handler does


@pytest.mark.skipif(os.name == "nt", reason="uses POSIX signals and process checks")
@pytest.mark.parametrize("handler", ["KeyboardInterrupt", "cli.main's Interrupted"])
def test_ctrl_c_with_parallel_jobs_stops_running_tools_and_cancels_pending(
    tmp_path: Path, fake_tools, work_tmp: Path, handler: str
) -> None:
    if handler != "KeyboardInterrupt":
        previous = signal.signal(signal.SIGINT, _raise_interrupted)
    align, _enfuse, tools = fake_tools
    align.plan({"sleep": 60, "transcript": fakehugin.transcript("align_image_stack", "success"), "write": True})
    shots = tmp_path / "shots"
    for stem in (OC, OC2, "IMG_20240101_120300", "IMG_20240101_120400"):
        bracket(shots, stem, 2)

    def ctrl_c_once_both_run() -> None:
        deadline = time.monotonic() + 20
        while len(align.calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: KeyboardInterrupt in the main thread (no cli.main here)

    threading.Thread(target=ctrl_c_once_both_run, daemon=True).start()
    started = time.monotonic()
    try:
        result = run(shots, tools, jobs=2)
    finally:
        if handler != "KeyboardInterrupt":
            signal.signal(signal.SIGINT, previous)
    took = time.monotonic() - started

    assert took < 20, "the running tools were not stopped"
    assert result.interrupted and result.exit_code == ExitCode.INTERRUPTED
    statuses = sorted(o.status for o in result.outcomes)
    assert statuses == ["interrupted", "interrupted", "not-started", "not-started"]
    assert len(align.calls) == 2  # the pending stacks never started a tool
    assert not _alive(align.pid)
    assert not (shots / "stacked").exists() or list((shots / "stacked").iterdir()) == []
    assert list(work_tmp.iterdir()) == []
    err = io.StringIO()
    batch.print_report(result, out=io.StringIO(), err=err)
    assert "interrupted; the finished results are kept" in err.getvalue()


def test_parallel_jobs_stack_everything(tmp_path: Path, fake_tools) -> None:
    align, _enfuse, tools = fake_tools
    shots = tmp_path / "shots"
    stems = (OC, OC2, "IMG_20240101_120300")
    for stem in stems:
        bracket(shots, stem, 2)

    class Notes(pipeline.Reporter):
        def __init__(self) -> None:
            self.lines: list[str] = []

        def note(self, text: str) -> None:
            self.lines.append(text)

    notes = Notes()
    result = run(shots, tools, jobs=2, reporter=notes)
    assert [o.status for o in result.outcomes] == ["ok", "ok", "ok"]
    assert len(align.calls) == 3
    assert sorted(p.name for p in (shots / "stacked").iterdir()) == sorted(f"{s}-stacked.jpg" for s in stems)
    # Parallel stacks report as notes naming their stack.
    assert any(line.startswith(f"{OC}: ok") for line in notes.lines)


def test_options_batch_sets_itself_are_refused(tmp_path: Path, fake_tools) -> None:
    _align, _enfuse, tools = fake_tools
    bracket(tmp_path, OC, 2)
    with pytest.raises(TypeError, match="output"):
        run(tmp_path, tools, output=tmp_path / "x.jpg")
    with pytest.raises(BadInputError, match="--jobs"):
        run(tmp_path, tools, jobs=0)


# ------------------------------------------------------------- real tools, real photographs


@pytest.mark.real
@pytest.mark.pcb
def test_real_batch_of_two_open_camera_brackets(tmp_path: Path, pcb_photos: list[Path]) -> None:
    shots = tmp_path / "DCIM" / "OpenCamera"
    shots.mkdir(parents=True)
    # Two brackets of 3 frames, downscaled (EXIF kept) so the test stays quick.
    sources = {OC: pcb_photos[0:3], OC2: pcb_photos[3:6]}
    expected: dict[str, list[Path]] = {}
    for stem, frames in sources.items():
        expected[stem] = []
        for i, src in enumerate(frames):
            dest = shots / f"{stem}_{i}.jpg"
            with Image.open(src) as im:
                exif = im.info.get("exif", b"")
                im.resize((1024, 768), Image.Resampling.LANCZOS).save(dest, quality=92, exif=exif)
            expected[stem].append(dest)
    tools = discovery.find_tools()

    result = run(shots, tools)
    assert [(o.group.name, o.status) for o in result.outcomes] == [(OC, "ok"), (OC2, "ok")], batch.summary_table(result)
    for o in result.outcomes:
        assert o.result is not None
        assert o.result.inputs == expected[o.group.name]  # natural frame order
        with Image.open(o.output) as im:
            b = unfused_border()  # the edge enfuse does not blend is cut
            assert im.size == (1024 - 2 * b, 768 - 2 * b)
            assert im.getexif().get_ifd(0x8769).get(0x9003)  # EXIF of the first frame carried over
    assert result.exit_code == ExitCode.OK

    again = run(shots, tools)
    assert [o.status for o in again.outcomes] == ["up-to-date", "up-to-date"]
    assert again.exit_code == ExitCode.OK


def test_cli_batch_runs_and_exits_with_the_summary(tmp_path: Path, fake_tools) -> None:
    """`focuswrap batch` through the real entry point: summary on stdout, exit 0, then all up to date."""
    import subprocess
    import sys

    shots = tmp_path / "shots"
    bracket(shots, OC, 3)
    bracket(shots, OC2, 2)
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    argv = [sys.executable, "-m", "focuswrap", "batch", str(shots), "--hugin-dir", str(tmp_path / "bin"), "-q"]
    first = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "2 stacked" in first.stdout
    assert sorted(p.name for p in (shots / "stacked").iterdir()) == [f"{OC}-stacked.jpg", f"{OC2}-stacked.jpg"]
    again = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 0 and "2 up to date" in again.stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("focuswrap.")]
    # The default preset crops (-C); --no-crop reaches every stack of the batch.
    align = fake_tools[0]
    assert align.calls and all("-C" in call for call in align.calls)
    before = len(align.calls)
    cropless = subprocess.run([*argv, "--no-crop", "--force"], capture_output=True, text=True, env=env, timeout=120)
    assert cropless.returncode == 0, cropless.stderr
    assert len(align.calls) == before + 2 and not any("-C" in call for call in align.calls[before:])


def test_capture_time_of_a_tiff_pillow_cannot_open(tmp_path: Path) -> None:
    """A 16-bit grey TIFF with alpha (Pillow cannot open it) still gives its capture time for --group-by time."""
    import numpy as np
    import tifffile

    frame = tmp_path / "grey16.tif"
    plane = np.arange(32 * 24, dtype=np.uint16).reshape(24, 32) * 80
    tifffile.imwrite(
        frame,
        np.dstack([plane, np.full_like(plane, 65535)]),
        photometric="minisblack",
        extrasamples=["unassalpha"],
        extratags=[(306, "s", 0, "2024:01:01 12:00:05", True)],  # DateTime
    )
    assert batch.capture_time(frame) == batch._exif_seconds("2024:01:01 12:00:05")
    assert batch.capture_time(frame) is not None

"""The pipeline as a library: the ladder's next rung, --dry-run's plan, what the Reporter is told.

The tools are the fake Hugin binaries of ``fakehugin`` (real processes that
replay recorded transcripts), called through :func:`focuswrap.pipeline.stack`.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import fakehugin
import pytest
from fakehugin import ALIGN, ENFUSE
from helpers import photos

from focuswrap import pipeline, presets
from focuswrap.discovery import Tool, Tools
from focuswrap.errors import AlignmentFailed, FusionFailed
from focuswrap.presets import AlignOptions, NamedPreset, Preset, Rung

WORK = re.compile(r"focuswrap\.[A-Za-z0-9_]+")


@pytest.fixture
def fakes(hugin: fakehugin.Hugin) -> tuple[fakehugin.Fake, fakehugin.Fake, Tools]:
    tools = Tools(
        align=Tool(ALIGN, (str(hugin.bin_dir / ALIGN),), "test"),
        enfuse=Tool(ENFUSE, (str(hugin.bin_dir / ENFUSE),), "test"),
    )
    return hugin.align, hugin.enfuse, tools


def make_preset(*rungs: Rung, **align: object) -> NamedPreset:
    preset = Preset(description="test", align=AlignOptions(**align), ladder=list(rungs))
    return NamedPreset("test", preset, Path("test.toml"), "user")


def rung(why: str, helps: tuple[str, ...] = (), **changes: object) -> Rung:
    return Rung.model_validate({"set": changes, "why": why, "helps": list(helps)})


class Recorder(pipeline.Reporter):
    """Records every event as a tuple."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def step(self, name, detail=""):
        self.events.append(("step", name))

    def progress(self, step, done, total, label=""):
        self.events.append(("progress", step, done, total))

    def attempt(self, attempt, total):
        self.events.append(("attempt", attempt.number, total))

    def attempt_failed(self, attempt):
        self.events.append(("attempt_failed", attempt.number, attempt.diagnosis.id))

    def command(self, argv):
        self.events.append(("command", os.path.basename(argv[0])))

    def tool_line(self, tool, stream, line):
        self.events.append(("tool_line", tool))

    def note(self, text):
        self.events.append(("note", text))

    def main_events(self) -> list[tuple]:
        return [e for e in self.events if e[0] not in ("progress", "tool_line")]


# ---------------------------------------------------------------- next_rung


def test_next_rung_takes_the_ladder_in_order() -> None:
    r1, r2, r3 = rung("one", center_shift=True), rung("two", correlation=0.8), rung("three", grid=3)
    p = make_preset(r1, r2, r3)
    assert pipeline.next_rung(p, "no-feature-points", []) is r1
    assert pipeline.next_rung(p, "no-feature-points", [r1]) is r2
    assert pipeline.next_rung(p, "no-feature-points", [r1, r2]) is r3
    assert pipeline.next_rung(p, "no-feature-points", [r1, r2, r3]) is None


def test_next_rung_passes_over_rungs_tied_to_other_diagnoses() -> None:
    only_cp = rung("only for no-control-points", helps=("no-control-points",), max_error=6)
    anything = rung("any", correlation=0.8)
    p = make_preset(only_cp, anything)
    assert pipeline.next_rung(p, "no-feature-points", []) is anything
    assert pipeline.next_rung(p, "no-control-points", []) is only_cp
    # Passed over once, the tied rung is still there when its diagnosis comes up.
    assert pipeline.next_rung(p, "no-control-points", [anything]) is only_cp
    assert pipeline.next_rung(p, "no-feature-points", [anything]) is None


def test_next_rung_with_an_empty_ladder() -> None:
    assert pipeline.next_rung(make_preset(), "no-control-points", []) is None


def test_bundled_miniature_ladder_order() -> None:
    p = presets.get("miniature")
    used: list[Rung] = []
    flags = []
    while (r := pipeline.next_rung(p, "no-control-points", used)) is not None:
        used.append(r)
        flags.append(r.flags())
    assert flags == ["-i", "--corr=0.8", "-c 500", "-g 3"]


# ---------------------------------------------------------------- plan


def test_plan_is_the_recipe_with_absolute_paths(tmp_path: Path, fakes) -> None:
    _, _, tools = fakes
    files = photos(tmp_path / "shots")
    request = pipeline.StackRequest(inputs=files, preset=presets.get("classic"))
    plan = pipeline.plan(request, tools)
    work = Path(tempfile.gettempdir()) / "focuswrap.XXXXXXXX"
    assert plan.inputs == files
    assert plan.output == tmp_path / "shots" / "IMG_1-stacked.jpg"
    assert plan.align_argv == [
        tools.align.command[0],
        "-v",
        "-m",
        "-e",
        "--use-given-order",
        "-a",
        str(work / "aligned_"),
        *map(str, files),
    ]
    recipe_fuse = [
        tools.enfuse.command[0],
        "--exposure-weight=0",
        "--saturation-weight=0",
        "--contrast-weight=1",
        "--hard-mask",
        "--gray-projector=luminance",
        "--contrast-window-size=15",
        f"--output={work / 'fused.tif'}",
        *(str(work / f"aligned_{i:04d}.tif") for i in range(3)),
    ]
    # The result is a JPEG: enfuse's TIFF is only an intermediate, written with PACKBITS.
    assert plan.fuse_argv == [*recipe_fuse[:7], "--compression=packbits", *recipe_fuse[7:]]
    assert len(plan.shell_lines()) == 2
    # A TIFF result is enfuse's own file, LZW-compressed as the recipe writes it.
    tif = pipeline.plan(
        pipeline.StackRequest(inputs=files, preset=presets.get("classic"), output=tmp_path / "o.tif"), tools
    )
    assert tif.fuse_argv == recipe_fuse


def test_plan_sorts_naturally_and_drops_earlier_results(tmp_path: Path, fakes) -> None:
    _, _, tools = fakes
    folder = tmp_path / "shots"
    files = photos(folder, n=3)
    (folder / "IMG_10.jpg").write_bytes(files[2].read_bytes())
    earlier = folder / "IMG_1-stacked.jpg"
    earlier.write_bytes(files[0].read_bytes())
    given = [folder / "IMG_10.jpg", earlier, *reversed(files)]
    request = pipeline.StackRequest(inputs=given, preset=presets.get("miniature"), force=True)
    plan = pipeline.plan(request, tools)
    assert [p.name for p in plan.inputs] == ["IMG_1.jpg", "IMG_2.jpg", "IMG_3.jpg", "IMG_10.jpg"]


def test_plan_with_keep_temp_names_the_debug_project(tmp_path: Path, fakes) -> None:
    _, _, tools = fakes
    request = pipeline.StackRequest(inputs=photos(tmp_path), preset=presets.get("miniature"), keep_temp=True)
    argv = pipeline.plan(request, tools).align_argv
    assert argv[argv.index("-p") + 1].endswith("debug.pto")


def test_relative_tool_path_is_made_absolute(tmp_path: Path, fakes, monkeypatch) -> None:
    # The tools run with cwd = the work folder: a relative --hugin-dir must still reach them.
    a, e, _ = fakes
    monkeypatch.chdir(tmp_path)
    tools = Tools(Tool(ALIGN, (f"bin/{ALIGN}",), "--hugin-dir"), Tool(ENFUSE, (f"bin/{ENFUSE}",), "--hugin-dir"))
    files = photos(tmp_path / "shots")
    result = pipeline.stack(pipeline.StackRequest(inputs=files, preset=presets.get("miniature")), tools)
    assert result.output.is_file()
    assert len(a.calls) == 1 and len(e.calls) == 1


# ---------------------------------------------------------------- stack and the reporter


def test_reporter_events_in_order_with_one_retry(tmp_path: Path, fakes) -> None:
    a, _e, tools = fakes
    a.plan(fakehugin.failure(ALIGN, "no-control-points"), fakehugin.success(ALIGN))
    rec = Recorder()
    request = pipeline.StackRequest(inputs=photos(tmp_path / "shots"), preset=presets.get("miniature"))
    result = pipeline.stack(request, tools, rec)
    assert rec.main_events() == [
        ("step", "check"),
        ("step", "align"),
        ("attempt", 1, 5),
        ("command", ALIGN),
        ("attempt_failed", 1, "no-control-points"),
        ("attempt", 2, 5),
        ("command", ALIGN),
        ("step", "fuse"),
        ("command", ENFUSE),
        ("step", "finish"),
    ]
    # The tools' lines reach the reporter, under the right step.
    assert ("tool_line", ALIGN) in rec.events and ("tool_line", ENFUSE) in rec.events
    assert result.output.is_file()
    assert [att.diagnosis.id for att in result.attempts] == ["no-control-points", "ok"]


def test_attempts_record_what_was_added_and_why(tmp_path: Path, fakes) -> None:
    a, _, tools = fakes
    a.plan(
        fakehugin.failure(ALIGN, "no-control-points"),
        fakehugin.failure(ALIGN, "no-feature-points"),
        fakehugin.success(ALIGN),
    )
    request = pipeline.StackRequest(inputs=photos(tmp_path / "shots"), preset=presets.get("miniature"))
    result = pipeline.stack(request, tools)
    first, second, third = result.attempts
    assert (first.number, first.added, first.why) == (1, "", "")
    assert (second.number, second.added) == (2, "-i")
    assert "-i" in second.why and "tripod" in second.why
    assert (third.number, third.added) == (3, "--corr=0.8")
    assert "weaker matches" in third.why
    assert third.options.center_shift and third.options.correlation == 0.8  # earlier rungs stay
    assert third.ok and not first.ok and not second.ok


def test_progress_counts_pairs_and_frames(tmp_path: Path, fakes) -> None:
    a, _e, tools = fakes
    a.plan({"transcript": fakehugin.transcript(ALIGN, "success-verbose"), "write": True})
    rec = Recorder()
    request = pipeline.StackRequest(inputs=photos(tmp_path / "shots", n=2), preset=presets.get("miniature"))
    pipeline.stack(request, tools, rec)
    align = [(ev[2], ev[3]) for ev in rec.events if ev[:2] == ("progress", "align")]
    fuse = [(ev[2], ev[3]) for ev in rec.events if ev[:2] == ("progress", "fuse")]
    assert align == [(1, 3), (2, 3), (3, 3)]  # one control-point pair, then two frames saved
    assert fuse == [(1, 3), (2, 3), (2, 3)]  # two photos read, then the blending (the last part)


def test_sorted_frames_and_left_out_results_are_noted(tmp_path: Path, fakes) -> None:
    _, _, tools = fakes
    folder = tmp_path / "shots"
    files = photos(folder, n=2)
    earlier = folder / "IMG_0-stacked.jpg"
    earlier.write_bytes(files[0].read_bytes())
    rec = Recorder()
    request = pipeline.StackRequest(inputs=[earlier, files[1], files[0]], preset=presets.get("miniature"))
    result = pipeline.stack(request, tools, rec)
    notes = [ev[1] for ev in rec.events if ev[0] == "note"]
    assert notes == [
        "Left out earlier results: IMG_0-stacked.jpg",
        "Frames sorted in natural order: IMG_1.jpg, IMG_2.jpg",
    ]
    assert result.inputs == files


def test_no_sorting_note_when_already_in_order(tmp_path: Path, fakes) -> None:
    _, _, tools = fakes
    rec = Recorder()
    request = pipeline.StackRequest(inputs=photos(tmp_path / "shots"), preset=presets.get("miniature"))
    pipeline.stack(request, tools, rec)
    assert [ev for ev in rec.events if ev[0] == "note"] == []


def test_failures_leave_no_work_folder(tmp_path: Path, fakes, monkeypatch) -> None:
    a, e, tools = fakes
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    files = photos(tmp_path / "shots")
    a.plan(fakehugin.failure(ALIGN, "different-sizes"))
    with pytest.raises(AlignmentFailed) as info:
        pipeline.stack(pipeline.StackRequest(inputs=files, preset=presets.get("miniature")), tools)
    assert [att.diagnosis.id for att in info.value.attempts] == ["different-sizes"]
    a.plan(fakehugin.success(ALIGN))
    e.plan(fakehugin.failure(ENFUSE, "disk-full"))
    with pytest.raises(FusionFailed):
        pipeline.stack(pipeline.StackRequest(inputs=files, preset=presets.get("miniature")), tools)
    assert list(private_tmp.iterdir()) == []
    assert not (tmp_path / "shots" / "IMG_1-stacked.jpg").exists()


def test_keep_temp_keeps_the_work_folder(tmp_path: Path, fakes, monkeypatch) -> None:
    _, _, tools = fakes
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    request = pipeline.StackRequest(inputs=photos(tmp_path / "shots"), preset=presets.get("miniature"), keep_temp=True)
    result = pipeline.stack(request, tools)
    assert result.work_folder is not None and result.work_folder.parent == private_tmp
    assert (result.work_folder / "fused.tif").is_file()
    assert WORK.fullmatch(result.work_folder.name)


def test_alignment_timeout_is_not_retried(tmp_path: Path, fakes) -> None:
    a, e, tools = fakes
    a.plan({"sleep": 30})
    request = pipeline.StackRequest(inputs=photos(tmp_path / "shots"), preset=presets.get("miniature"), timeout=0.5)
    with pytest.raises(AlignmentFailed) as info:
        pipeline.stack(request, tools)
    assert [att.diagnosis.id for att in info.value.attempts] == ["timeout"]
    assert len(a.calls) == 1 and e.calls == []
    assert "--timeout" in info.value.hint


def test_live_reporter_completes_every_step() -> None:
    from focuswrap import display

    live = display.LiveReporter()
    with live:
        live.step("check", "3 photos")
        live.step("align", "3 frames")
        live.progress("align", 2, 5, "finding control points")
        live.step("finish", "out.jpg")
    assert [t.finished for t in live.bar.tasks] == [True, True, True]
    assert [t.fields["step"] for t in live.bar.tasks] == ["check", "align", "finish"]


def test_make_reporter_without_a_terminal_is_plain(monkeypatch) -> None:
    import io

    from focuswrap import display

    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert type(display.make_reporter(quiet=False, verbose=False)) is display.PlainReporter
    assert type(display.make_reporter(quiet=True, verbose=False)) is display.QuietReporter


def test_flatpak_hugin_works_under_the_home_folder(tmp_path, monkeypatch) -> None:
    """A Flatpak Hugin has its own /tmp and sees only $HOME: the work folder goes under the user cache."""
    import dataclasses

    from focuswrap import paths, pipeline
    from focuswrap.discovery import Tool, Tools
    from focuswrap.errors import BadInputError

    flat = Tool(
        "align_image_stack",
        ("flatpak", "run", "--command=align_image_stack", "net.sourceforge.Hugin"),
        "Flatpak (user)",
        "2022.0.0",
        flatpak=True,
    )
    tools = Tools(flat, dataclasses.replace(flat, name="enfuse"))
    monkeypatch.setenv("HOME", str(tmp_path))
    inside = tmp_path / "shots" / "a.jpg"
    assert pipeline._flatpak_work(tools, [inside]) == paths.cache_dir() / "work"
    with pytest.raises(BadInputError, match="home folder"):
        pipeline._flatpak_work(tools, [Path("/elsewhere/a.jpg")])
    plain = Tools(dataclasses.replace(flat, flatpak=False), dataclasses.replace(flat, flatpak=False))
    assert pipeline._flatpak_work(plain, [Path("/elsewhere/a.jpg")]) is None
    with pipeline.work_folder(keep=False, inside=tmp_path / "w") as work:
        assert work.parent == tmp_path / "w" and work.name.startswith("focuswrap.")
    assert not work.exists()

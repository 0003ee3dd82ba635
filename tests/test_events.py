"""The typed event stream: every event survives to_dict/JSON/from_dict; stack() and --events emit it."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import fakehugin
import pytest
from fakehugin import ALIGN, ENFUSE, Hugin
from helpers import photos

from focuswrap import events, pipeline, presets
from focuswrap.discovery import Tool, Tools
from focuswrap.errors import AlignmentFailed, ExitCode, FocuswrapError, Interrupted

SAMPLES: list[events.Event] = [
    events.StepStarted("check", 1, 5, "Checking 3 photos", "3 photos"),
    events.StepProgress("align", 3, 7, "lining up photo 3 of 7 (IMG_3.jpg)"),
    events.StepFinished("fuse", 1.25),
    events.AttemptStarted(2, 5, "-i", "the photos shifted"),
    events.AttemptFailed(1, "no-control-points", "No matches.", "adding -i (the photos shifted)"),
    events.ToolCommand("enfuse", ("enfuse", "-o", "fused.tif", "a.tif")),
    events.ToolOutput("align_image_stack", "stderr", "saving aligned_0001.tif"),
    events.Notice("Frames sorted in natural order: a, b"),
    events.Notice("Could not measure sharpness", "warning"),
    events.StackFinished(
        output="/x/IMG_1-stacked.jpg",
        size=1234,
        preset="miniature",
        inputs=("/x/IMG_1.jpg", "/x/IMG_2.jpg"),
        seconds={"align": 1.5, "total": 2.0},
        sharpness={"result": 3.0, "sharpest_input": "IMG_2.jpg", "sharpest_input_value": 1.0, "gain": 3.0},
        cached=False,
        map_output=None,
        crop=(1, 2, 90, 70),
        warnings=("careful",),
        crop_size=(89, 68),
        attempts=({"number": 1, "flags": "-v", "added": "", "why": "", "diagnosis": "ok", "seconds": 1.0},),
    ),
    events.StackFailed("Alignment failed.", 4, "Try a tripod.", ({"number": 1, "diagnosis": "x"},), "stderr..."),
    events.BracketStarted(1, 2, "IMG_20240101_1200", ("IMG_1.jpg", "IMG_2.jpg")),
    events.BracketFinished(1, 2, "IMG_20240101_1200", False, None, "Alignment failed."),
]


def test_samples_cover_every_event_type() -> None:
    assert {type(e) for e in SAMPLES} == set(events.Event.__args__)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_round_trip_through_json(event: events.Event) -> None:
    d = events.to_dict(event)
    assert d["type"] == events.type_name(type(event))
    assert events.from_dict(d) == event
    assert events.from_dict(json.loads(events.dump(event))) == event


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_events_are_frozen_and_slotted(event: events.Event) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.__setattr__(dataclasses.fields(event)[0].name, None)
    assert not hasattr(event, "__dict__")


def test_type_names_are_snake_case() -> None:
    assert events.type_name(events.StepStarted) == "step_started"
    assert events.type_name(events.StackFinished) == "stack_finished"
    assert events.to_dict(events.Notice("hi")) == {"type": "notice", "text": "hi", "level": "info"}


@pytest.mark.parametrize(
    "data",
    [
        {"type": "step_exploded"},
        {"text": "no type"},
        {"type": "notice"},  # a required field missing
        {"type": "notice", "text": "x", "colour": "red"},  # a field it does not have
        ["notice"],
    ],
)
def test_from_dict_refuses_what_is_no_event(data) -> None:
    with pytest.raises(ValueError):
        events.from_dict(data)


def test_interrupted_is_not_an_exception() -> None:
    # Nothing written as `except Exception` may swallow Ctrl-C.
    assert not issubclass(Interrupted, Exception)
    assert issubclass(Interrupted, BaseException)
    assert not issubclass(Interrupted, FocuswrapError)
    exc = Interrupted("Interrupted")
    assert exc.exit_code == ExitCode.INTERRUPTED == 130
    assert str(exc) == "Interrupted" and exc.hint is None
    try:
        try:
            raise Interrupted("Interrupted")
        except Exception:  # noqa: BLE001 - the point of the test
            pytest.fail("except Exception caught Ctrl-C")
    except Interrupted:
        pass


# ---------------------------------------------------------------- stack(on_event=...)


@pytest.fixture
def fakes(hugin: fakehugin.Hugin) -> tuple[fakehugin.Fake, fakehugin.Fake, Tools]:
    tools = Tools(
        align=Tool(ALIGN, (str(hugin.bin_dir / ALIGN),), "test"),
        enfuse=Tool(ENFUSE, (str(hugin.bin_dir / ENFUSE),), "test"),
    )
    return hugin.align, hugin.enfuse, tools


def test_stack_emits_typed_events_in_order(tmp_path: Path, fakes) -> None:
    a, _, tools = fakes
    a.plan(fakehugin.failure(ALIGN, "no-control-points"), fakehugin.success(ALIGN))
    seen: list[events.Event] = []
    files = photos(tmp_path / "shots")
    result = pipeline.stack(
        pipeline.StackRequest(inputs=files, preset=presets.get("miniature")), tools, on_event=seen.append
    )
    kinds = [type(e).__name__ for e in seen if not isinstance(e, (events.StepProgress, events.ToolOutput))]
    assert kinds == [
        "StepStarted",
        "StepFinished",
        "StepStarted",
        "AttemptStarted",
        "ToolCommand",
        "AttemptFailed",
        "AttemptStarted",
        "ToolCommand",
        "StepFinished",
        "StepStarted",
        "ToolCommand",
        "StepFinished",
        "StepStarted",
        "StepFinished",
        "StackFinished",
    ]
    started = [e for e in seen if isinstance(e, events.StepStarted)]
    assert [(e.step, e.index, e.total) for e in started] == [
        ("check", 1, 5),
        ("align", 3, 5),
        ("fuse", 4, 5),
        ("finish", 5, 5),
    ]
    assert started[0].title == "Checking 3 photos"
    failed = next(e for e in seen if isinstance(e, events.AttemptFailed))
    assert failed.diagnosis == "no-control-points" and failed.explanation
    assert failed.next_change.startswith("adding -i")  # what the next rung changes, in words
    commands = [e for e in seen if isinstance(e, events.ToolCommand)]
    assert [c.tool for c in commands] == [ALIGN, ALIGN, ENFUSE]
    assert all(isinstance(c.argv, tuple) for c in commands)
    end = seen[-1]
    assert isinstance(end, events.StackFinished)
    assert end.output == str(result.output) and end.size == result.size == os.path.getsize(result.output)
    assert end.inputs == tuple(str(p) for p in files)
    assert [att["diagnosis"] for att in end.attempts] == ["no-control-points", "ok"]
    # Every event survives the trip the GUI makes (JSON line -> from_dict).
    assert [events.from_dict(json.loads(events.dump(e))) for e in seen] == seen


def test_progress_labels_name_the_photos(tmp_path: Path, fakes) -> None:
    a, _, tools = fakes
    a.plan({"transcript": fakehugin.transcript(ALIGN, "success-verbose"), "write": True})
    seen: list[events.Event] = []
    files = photos(tmp_path / "shots", n=2)
    pipeline.stack(pipeline.StackRequest(inputs=files, preset=presets.get("miniature")), tools, on_event=seen.append)
    labels = [e.label for e in seen if isinstance(e, events.StepProgress)]
    assert labels[0] == f"comparing photo 2 with photo 1 ({files[1].name})"
    assert f"lining up photo 2 of 2 ({files[1].name})" in labels
    assert any(lab.startswith("loading ") for lab in labels)  # (the fake replays another stack's file names)


def test_stack_failure_ends_with_stack_failed(tmp_path: Path, fakes) -> None:
    a, _, tools = fakes
    a.plan(fakehugin.failure(ALIGN, "no-control-points"))
    seen: list[events.Event] = []
    request = pipeline.StackRequest(inputs=photos(tmp_path / "shots"), preset=presets.get("miniature"), retry=False)
    with pytest.raises(AlignmentFailed) as caught:
        pipeline.stack(request, tools, on_event=seen.append)
    end = seen[-1]
    assert isinstance(end, events.StackFailed)
    assert end.exit_code == int(ExitCode.ALIGN_FAILED) == caught.value.exit_code
    assert end.message == caught.value.message and end.hint == caught.value.hint
    assert [att["diagnosis"] for att in end.attempts] == ["no-control-points"]
    assert ALIGN in end.tool_output  # the command and its output, for the report


# ---------------------------------------------------------------- focuswrap stack --events


def _lines(stdout: str) -> list[events.Event]:
    return [events.from_dict(json.loads(line)) for line in stdout.splitlines()]


def test_cli_events_one_json_event_per_line(run, hugin: Hugin, tmp_path: Path) -> None:
    shots = photos(tmp_path / "shots")
    out = tmp_path / "out.jpg"
    done = run("stack", *shots, "-o", out, "--hugin-dir", hugin.bin_dir, "--events")
    assert done.returncode == 0, done.stderr
    seen = _lines(done.stdout)
    assert isinstance(seen[0], events.StepStarted) and seen[0].step == "check"
    assert isinstance(seen[-1], events.StackFinished) and seen[-1].output == str(out)
    assert any(isinstance(e, events.StepProgress) for e in seen)
    assert out.is_file()
    assert done.stderr == ""  # no progress display besides the events


def test_cli_events_end_with_stack_failed_and_the_usual_exit_code(run, hugin: Hugin, tmp_path: Path) -> None:
    hugin.align.plan(fakehugin.failure(ALIGN, "no-control-points"))
    shots = photos(tmp_path / "shots")
    done = run("stack", *shots, "--hugin-dir", hugin.bin_dir, "--events", "--no-retry")
    assert done.returncode == int(ExitCode.ALIGN_FAILED), done.stderr
    end = _lines(done.stdout)[-1]
    assert isinstance(end, events.StackFailed) and end.exit_code == done.returncode
    assert "focuswrap: error: Alignment failed" in done.stderr


def test_cli_events_failure_before_the_stack_still_ends_the_stream(run, tmp_path: Path) -> None:
    missing = tmp_path / "nothing.jpg"
    done = run("stack", missing, tmp_path / "nothing2.jpg", "--events", "--hugin-dir", tmp_path)
    assert done.returncode in (int(ExitCode.BAD_INPUT), int(ExitCode.MISSING_TOOL)), done.stderr
    seen = _lines(done.stdout)
    assert len(seen) >= 1 and isinstance(seen[-1], events.StackFailed)
    assert seen[-1].exit_code == done.returncode


def test_json_lines_from_two_threads_stay_whole_lines() -> None:
    # The tools' stdout and stderr are read on two threads; their events must not share a line.
    import io
    import threading

    out = io.StringIO()
    sink = events.JsonLines(out)

    def emit(stream: str) -> None:
        for i in range(2000):
            sink(events.ToolOutput("align_image_stack", stream, f"line {i}"))

    threads = [threading.Thread(target=emit, args=(s,)) for s in ("stdout", "stderr")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 4000
    assert all(isinstance(events.from_dict(json.loads(line)), events.ToolOutput) for line in lines)


def test_batch_sends_each_stack_between_bracket_events(tmp_path: Path, fakes, monkeypatch) -> None:
    from focuswrap import batch

    _a, _e, tools = fakes
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    for name in ("left", "right"):
        photos(tmp_path / "shots" / name)
    seen: list[events.Event] = []
    result = batch.run(
        tmp_path / "shots", tools=tools, preset=presets.get("miniature"), group_by="folders", on_event=seen.append
    )
    assert result.exit_code == 0
    marks = [e for e in seen if isinstance(e, (events.BracketStarted, events.BracketFinished, events.StackFinished))]
    assert [type(m).__name__ for m in marks] == ["BracketStarted", "StackFinished", "BracketFinished"] * 2
    first, _, done = marks[:3]
    assert (first.index, first.total, first.name, len(first.photos)) == (1, 2, "left", 3)
    assert done.ok and done.output and done.output.endswith("left-stacked.jpg")
    assert [events.from_dict(json.loads(events.dump(m))) for m in marks] == marks

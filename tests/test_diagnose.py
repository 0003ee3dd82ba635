"""The output classifier, on every transcript recorded from the real tools and on edge cases.

The transcripts are made by ``tests/transcripts/record.py``; a new one must
get its expected id in :data:`EXPECTED` (the test fails until it has one).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from focuswrap import diagnose
from focuswrap.hugin.failures import ALIGN, ANY, DIAGNOSES, ENFUSE, RULES, Diagnosis, classify, final_advice

TRANSCRIPTS = Path(__file__).parent / "transcripts"
FIXTURES = sorted(TRANSCRIPTS.glob("*/*.json"))

#: (tool, case) -> the id classify must give.  Comments say where the tool surprises.
EXPECTED: dict[tuple[str, str], str] = {
    (ALIGN, "success"): "ok",
    (ALIGN, "success-verbose"): "ok",
    (ALIGN, "success-jpeg-without-exif"): "ok",  # "Unable to read EXIF data" on stderr, exit 0
    (ALIGN, "success-one-control-point"): "ok",  # "You have too few control points (1)", exit 0
    (ALIGN, "no-control-points"): "no-control-points",  # with "No Feature Points" and "Bad params"
    (ALIGN, "no-control-points-unrelated"): "no-control-points",
    (ALIGN, "no-control-points-after-pruning"): "no-control-points",
    (ALIGN, "no-feature-points"): "no-feature-points",  # with "An error occurred during optimization."
    (ALIGN, "no-feature-points-verbose"): "no-feature-points",
    (ALIGN, "no-feature-points-after-pruning"): "no-feature-points",
    (ALIGN, "optimization-error"): "optimization-error",
    (ALIGN, "different-sizes"): "different-sizes",
    (ALIGN, "undecodable-first"): "unreadable-image",
    (ALIGN, "undecodable-second"): "unreadable-image",
    (ALIGN, "missing-file-first"): "missing-file",
    # A missing second photo reads "Could not decode image", like a non-image.
    (ALIGN, "missing-file-second"): "unreadable-image",
    (ALIGN, "damaged-tiff"): "damaged-image",  # exit 0
    (ALIGN, "damaged-jpeg"): "damaged-image",  # exit 0
    (ALIGN, "one-image"): "too-few-images",
    (ALIGN, "output-folder-missing"): "output-not-writable",  # exit 0, no files written
    (ALIGN, "output-not-writable"): "output-not-writable",  # exit 0, no files written
    (ALIGN, "disk-full"): "disk-full",  # SIGABRT
    # Exit 0, "Written project file", no file and no complaint: only the
    # caller's check of the files can see it (output-not-written).
    (ALIGN, "pto-folder-missing"): "ok",
    (ALIGN, "invalid-parameter"): "bad-arguments",
    (ALIGN, "unknown-option"): "bad-arguments",
    (ALIGN, "no-output-option"): "bad-arguments",
    (ENFUSE, "success"): "ok",
    (ENFUSE, "success-jpeg-output"): "ok",  # a warning about the alpha channel
    # enfuse 4.2 fuses different sizes silently, exit 0: focuswrap checks sizes first.
    (ENFUSE, "different-sizes"): "ok",
    (ENFUSE, "undecodable-image"): "unreadable-image",
    (ENFUSE, "missing-file"): "missing-file",
    (ENFUSE, "damaged-tiff"): "damaged-image",  # exit 0
    (ENFUSE, "damaged-jpeg"): "damaged-image",  # exit 0
    (ENFUSE, "single-image"): "too-few-images",  # exit 0, the output is a copy of the photo
    (ENFUSE, "no-images"): "too-few-images",
    (ENFUSE, "output-folder-missing"): "output-not-writable",
    (ENFUSE, "output-not-writable"): "output-not-writable",
    (ENFUSE, "disk-full"): "disk-full",  # SIGABRT
    (ENFUSE, "unknown-output-format"): "unknown-output-format",
    (ENFUSE, "unknown-option"): "bad-arguments",
}

RETRYABLE = {"no-control-points", "no-feature-points", "optimization-error"}
FIXTURE_KEYS = {"tool", "case", "argv", "returncode", "stdout", "stderr", "tool_version", "recorded"}


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _classify(t: dict) -> Diagnosis:
    return classify(t["tool"], t["returncode"], t["stdout"], t["stderr"])


# ---------------------------------------------------------------- recorded transcripts


def test_transcripts_exist() -> None:
    assert len(FIXTURES) >= 20, f"no transcripts under {TRANSCRIPTS}: run tests/transcripts/record.py"


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_recorded_transcript(path: Path) -> None:
    t = _load(path)
    assert FIXTURE_KEYS <= t.keys()
    assert (path.parent.name, path.stem) == (t["tool"], t["case"])
    key = (t["tool"], t["case"])
    assert key in EXPECTED, f"new transcript {path.relative_to(TRANSCRIPTS)}: add its expected id to EXPECTED"
    d = _classify(t)
    assert d.id == EXPECTED[key], f"{key}: got {d.id}, evidence:\n{d.evidence}"
    assert d.retryable == (d.id in RETRYABLE)
    assert d.explanation
    if d.id != "ok":
        assert d.evidence
        raw = t["stdout"] + t["stderr"]
        for line in d.evidence.splitlines():
            if not line.startswith("["):  # "[3 more]"
                assert line[:30] in raw, f"evidence line not in the output: {line!r}"


def test_every_expected_case_was_recorded() -> None:
    recorded = {(p.parent.name, p.stem) for p in FIXTURES}
    assert set(EXPECTED) - recorded == set()


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_transcripts_hide_the_work_folder(path: Path) -> None:
    t = _load(path)
    text = json.dumps([t["argv"], t["stdout"], t["stderr"]])
    assert "focuswrap-record." not in text
    assert t["argv"][0] == t["tool"]


def test_evidence_is_cleaned_of_garbage_bytes() -> None:
    # enfuse 4.2 prints uninitialised memory after some errors.
    t = _load(TRANSCRIPTS / ENFUSE / "damaged-tiff.json")
    assert "\x00" in t["stderr"]
    d = _classify(t)
    assert "\x00" not in d.evidence
    assert all(len(line) <= 240 for line in d.evidence.splitlines())


def test_path_named_in_explanation() -> None:
    d = _classify(_load(TRANSCRIPTS / ENFUSE / "missing-file.json"))
    assert "{work}/missing.tif" in d.explanation


# ---------------------------------------------------------------- the table


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r.tool}:{r.id}:{r.example[:30]}")
def test_rule_example_gives_its_own_id(rule: diagnose.Rule) -> None:
    tools = (ALIGN, ENFUSE) if rule.tool == ANY else (rule.tool,)
    for tool in tools:
        assert classify(tool, 1, "", rule.example + "\n").id == rule.id


@pytest.mark.parametrize(
    ("tool", "line"),
    [  # seen from the real tools, besides the recorded transcripts
        (ALIGN, "align_image_stack: option requires an argument -- 'g'"),
        (ALIGN, "align_image_stack: option '--corr' requires an argument"),
        (ALIGN, "align_image_stack: invalid option -- 'Q'"),
        (ALIGN, "/usr/bin/align_image_stack: unrecognized option '--bogus'"),
        (ENFUSE, 'enfuse: number is garbage; maybe the option before "abc" needs an argument'),
    ],
)
def test_other_option_errors(tool: str, line: str) -> None:
    assert classify(tool, 1, "", line + "\n").id == "bad-arguments"


def test_rules_name_documented_ids() -> None:
    assert {r.id for r in RULES} <= DIAGNOSES.keys()
    assert {r.tool for r in RULES} <= {ALIGN, ENFUSE, ANY}


def test_rules_only_apply_to_their_tool() -> None:
    # enfuse never prints align_image_stack's messages; do not read them into its output.
    assert classify(ENFUSE, 1, "No Feature Points\n", "").id == "unknown"
    assert classify(ALIGN, 1, "", 'enfuse: failed to open "x.tif": No such file or directory\n').id == "unknown"


# ---------------------------------------------------------------- combined messages


def test_control_point_message_beats_no_feature_points() -> None:
    # Real align_image_stack -m output: libpano13's line on stdout, its own on stderr.
    out = "No Feature Points\n"
    err = (
        "Bad params\n\nAfter control points pruning reference images has no control\n"
        "points Optimizing field of view in this case results in undefined\n"
        "behaviour. Increase error distance (-t parameter), tweak cp\n"
        "detection parameters or don't optimize HFOV.\n\nExiting...\n"
    )
    d = classify(ALIGN, 1, out, err)
    assert d.id == "no-control-points"
    assert d.retryable
    assert d.evidence.splitlines()[0] == "After control points pruning reference images has no control"
    assert "Exiting..." not in d.evidence


def test_no_feature_points_beats_optimization_error() -> None:
    err = (
        "Bad params\nAn error occurred during optimization.\n"
        'Try adding "-p debug.pto" and checking output.\nExiting...\n'
    )
    assert classify(ALIGN, 1, "No Feature Points\n", err).id == "no-feature-points"
    fov = "Field of View must be smaller than 180 degrees in rectilinear Images\n"
    d = classify(ALIGN, 1, fov, err)
    assert d.id == "optimization-error"
    assert "Field of View must be smaller" in d.evidence  # libpano13's reason is quoted


def test_damaged_photo_beats_no_feature_points() -> None:
    err = "TIFFFillStrip: Read error on strip 3; got 4500 bytes, expected 7680.\nBad params\n"
    d = classify(ALIGN, 1, "No Feature Points\n", err)
    assert d.id == "damaged-image"
    assert not d.retryable


def test_write_failure_beats_missing_file() -> None:
    # The same "Unable to open file" words follow a failed write.
    err = (
        "TIFFOpen: /w/out/aligned_0000.tif: Permission denied.\n\nPrecondition violation!\n"
        "Unable to open file '/w/out/aligned_0000.tif'.\n(./src/impex/tiff.cxx:839)\n"
    )
    d = classify(ALIGN, 0, 'Written aligned images to files with prefix "/w/out/aligned_"\n', err)
    assert d.id == "output-not-writable"
    assert "/w/out/aligned_0000.tif" in d.explanation


def test_harmless_jpeg_warning_is_not_damage() -> None:
    # Many good camera JPEGs make libjpeg print this.
    err = "Corrupt JPEG data: 2 extraneous bytes before marker 0xd9\n"
    assert classify(ENFUSE, 0, "", err).id == "ok"


def test_repeated_lines_are_quoted_once() -> None:
    err = "TIFFFillStrip: Read error on strip 2; got 4500 bytes, expected 7680.\n" * 50
    assert classify(ENFUSE, 0, "", err).evidence.count("\n") == 0


# ---------------------------------------------------------------- exit codes


def test_exit_zero_with_a_failure_message_is_a_failure() -> None:
    err = "TIFFOpen: /w/x/aligned_0000.tif: No such file or directory.\n"
    assert classify(ALIGN, 0, "", err).id == "output-not-writable"


@pytest.mark.parametrize(
    ("tool", "code", "retryable"),
    [
        (ALIGN, -11, True),  # SIGSEGV: another rung may not hit the same bug
        (ALIGN, -9, True),  # SIGKILL, e.g. out of memory
        (ALIGN, -15, False),  # SIGTERM: someone stopped it
        (ALIGN, -2, False),  # SIGINT
        (ENFUSE, -11, False),  # fusion is not retried
        (ALIGN, 0xC0000005, True),  # Windows access violation
        (ALIGN, 0xC000013A, False),  # Windows Ctrl-C
    ],
)
def test_killed_by_a_signal_is_crashed(tool: str, code: int, retryable: bool) -> None:
    d = classify(tool, code, "Creating control points between a.tif and b.tif\n", "")
    assert d.id == "crashed"
    assert d.retryable is retryable
    assert "Creating control points" in d.evidence  # what it was doing


def test_crash_names_the_signal() -> None:
    assert "SIGSEGV" in classify(ALIGN, -11, "", "").explanation


def test_message_before_a_crash_explains_it() -> None:
    err = (
        "TIFFAppendToStrip: Write error at scanline 0.\n"
        "terminate called after throwing an instance of 'vigra::Encoder::TIFFCompressionException'\n"
    )
    assert classify(ENFUSE, -6, "", err).id == "disk-full"


def test_no_exit_code_is_timeout() -> None:
    d = classify(ALIGN, None, "Trying to find 8 corners... \n", "")
    assert d.id == "timeout"
    assert not d.retryable
    assert "Trying to find 8 corners" in d.evidence


@pytest.mark.parametrize(("tool", "retryable"), [(ALIGN, False), (ENFUSE, False)])
def test_unknown_failure_keeps_the_last_lines(tool: str, retryable: bool) -> None:
    out = "".join(f"progress line {i}\n" for i in range(30))
    err = "something new went wrong\nand this is the last line\n"
    d = classify(tool, 3, out, err)
    assert d.id == "unknown"
    assert d.retryable is retryable
    assert "exit code 3" in d.explanation
    lines = d.evidence.splitlines()
    assert lines[-1] == "and this is the last line"
    assert "something new went wrong" in lines
    assert "progress line 0" not in lines  # the tail, not the head
    assert len(lines) <= 8


@pytest.mark.parametrize("tool", [ALIGN, ENFUSE])
def test_empty_output(tool: str) -> None:
    assert classify(tool, 0, "", "").id == "ok"
    d = classify(tool, 1, "", "")
    assert d.id == "unknown"
    assert d.evidence == "(no output)"
    assert classify(tool, 1, "\n\n  \n", "\n").evidence == "(no output)"


def test_tool_names() -> None:
    assert classify("/usr/bin/align_image_stack", 1, "No Feature Points\n", "").id == "no-feature-points"
    assert classify(r"C:\Hugin\bin\ENFUSE.EXE", 1, "", "enfuse: no input files specified\n").id == "too-few-images"
    with pytest.raises(ValueError, match="nona"):
        classify("nona", 0, "", "")


def test_diagnosis_is_frozen_and_positional() -> None:
    d = Diagnosis("output-not-written", False, "align_image_stack exited 0 but x was not written.", "x")
    assert d.id == "output-not-written"
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.id = "ok"  # type: ignore[misc]


# ---------------------------------------------------------------- the catalogue


def _reachable() -> set[str]:
    ids = {_classify(_load(p)).id for p in FIXTURES}
    ids |= {classify(ALIGN if r.tool == ANY else r.tool, 1, "", r.example).id for r in RULES}
    ids |= {classify(ALIGN, None, "", "").id, classify(ALIGN, -11, "", "").id, classify(ALIGN, 1, "", "").id}
    return ids


def test_every_documented_id_is_reachable() -> None:
    # An id in DIAGNOSES nothing can return is dead documentation; one that
    # classify returns but DIAGNOSES lacks would break final_advice and the docs.
    assert _reachable() | diagnose.CALLER_IDS == set(DIAGNOSES)


@pytest.mark.parametrize(
    "line", ["enfuse: out of memory", "terminate called after throwing an instance of 'std::bad_alloc'"]
)
def test_running_out_of_memory_is_recognised(line: str) -> None:
    for tool in (ALIGN, ENFUSE):
        d = classify(tool, -6, "", f"loading...\n{line}\n")
        assert (d.id, d.retryable) == ("out-of-memory", False)
        assert line in d.evidence


@pytest.mark.parametrize("diag_id", sorted(DIAGNOSES))
def test_every_id_is_documented(diag_id: str) -> None:
    assert re.fullmatch(r"[a-z]+(?:-[a-z]+)*", diag_id)
    info = DIAGNOSES[diag_id]
    for text in (info.title, info.explanation, info.advice, info.final):
        assert text.strip()
    assert info.explanation.endswith(".")
    assert final_advice(diag_id) == info.final


def test_final_advice_for_too_different_photos() -> None:
    for diag_id in ("no-feature-points", "no-control-points"):
        advice = final_advice(diag_id)
        assert "too different" in advice
        assert "tripod" in advice


def test_final_advice_for_an_unknown_id_does_not_fail() -> None:
    # It runs while a failure is being reported.
    assert final_advice("no-such-id") == DIAGNOSES["unknown"].final

"""What went wrong in a run of ``align_image_stack`` or ``enfuse``, from its exit code and output.

:func:`classify` is pure: it reads the exit code, stdout and stderr and
returns a :class:`Diagnosis`.  The work is done by each tool's ``RULES`` (in its
:mod:`focuswrap.hugin` module), an ordered
table of (tool, pattern, diagnosis id), most specific first, each rule with a
real line the tool printed (pipx's ``analyze_pip_output`` is the model).  The
examples are data rather than comments so that a test can check each one
still classifies to its own id; the recorded transcripts in
``tests/transcripts/`` are the full outputs they come from.

How the answer is decided, in order:

1. no exit code (the run was stopped by our timeout) -> ``timeout``;
2. the first rule whose pattern matches any line of stdout or stderr wins,
   *whatever the exit code*: align_image_stack exits 0 when it could not
   write its aligned frames, enfuse exits 0 after read errors in an input,
   and both abort (SIGABRT) after a write error on a full disk;
3. killed by a signal (negative exit code; on Windows an NTSTATUS crash
   code such as 0xC0000005) -> ``crashed`` (after the rules: a tool that
   aborts after "Write error at scanline" has told us why);
4. otherwise exit 0 -> ``ok`` and any other code -> ``unknown``, with the
   tool's last lines as evidence (never swallowed).

An exit 0 with nothing alarming printed is still not proof of success:
``align_image_stack -p missing/x.pto`` says "Written project file" and writes
nothing, and enfuse 4.2 fuses photos of different sizes without a word.  The
caller checks that the files are there (``output-not-written``) and that the
photos match before it runs the tools.

:data:`DIAGNOSES` documents every id (title, what you can do, the advice to
give when every attempt failed); ``docs/`` has one troubleshooting section
per id.
"""

from __future__ import annotations

import itertools
import re
import signal
from collections.abc import Sequence
from dataclasses import dataclass

ALIGN = "align_image_stack"
ENFUSE = "enfuse"
ANY = "*"
TOOLS = (ALIGN, ENFUSE)


@dataclass(frozen=True)
class Diagnosis:
    """The verdict on one run.

    ``retryable``: whether another rung of the align ladder (other options)
    might succeed.  ``evidence``: the tool's line(s) that led to the verdict,
    or its last lines when the verdict is ``unknown``.
    """

    id: str
    retryable: bool
    explanation: str
    evidence: str


@dataclass(frozen=True)
class DiagnosisInfo:
    """What focuswrap knows about one diagnosis id (for messages and the docs)."""

    title: str
    #: One sentence for a photographer: what happened.
    explanation: str
    #: Longer "what you can do" text (the troubleshooting section says the same).
    advice: str
    #: The most likely cause in plain words when every attempt failed this way.
    final: str
    #: Whether another align rung may help (``unknown`` and ``crashed`` depend on the tool).
    retryable: bool = False


_TOO_DIFFERENT = (
    "The photos are too different to align: re-take the stack steadier (a tripod, "
    "a remote or self-timer release), with smaller focus steps so that neighbouring "
    "frames overlap more, and with more light so that the frames are sharp and not noisy."
)

DIAGNOSES: dict[str, DiagnosisInfo] = {
    "ok": DiagnosisInfo(
        title="Success",
        explanation="The tool finished without reporting a problem.",
        advice="Nothing to do.",
        final="Nothing went wrong.",
    ),
    "no-control-points": DiagnosisInfo(
        title="No control points left after pruning",
        explanation=(
            "align_image_stack found no points it could trust between the frames, "
            "so it could not work out how they moved."
        ),
        advice=(
            "Hugin itself suggests raising the allowed error (-t, e.g. 6), looking for "
            "more control points (-c 500, a finer or coarser grid -g) or not optimising "
            "the field of view (-m). Accepting weaker matches (--corr=0.8) helps with "
            "noisy or dim photos, and -i helps when the camera was held by hand. The "
            "fallback ladder of your preset tries these in order; pick a preset with "
            "more rungs, or add your own. If nothing helps, the frames are too "
            "different: see below."
        ),
        final=_TOO_DIFFERENT,
        retryable=True,
    ),
    "no-feature-points": DiagnosisInfo(
        title="No feature points",
        explanation="align_image_stack found no matching detail between the frames.",
        advice=(
            "The frames share too little detail that is sharp in both: accept weaker "
            "matches (--corr=0.8), look for more points (-c 500) or use a coarser grid "
            "(-g 3) for subjects with large plain areas; align the centres too (-i) for "
            "hand-held shots. Plain, dark or very noisy subjects give few points: add "
            "light or texture (a textured background helps)."
        ),
        final=_TOO_DIFFERENT,
        retryable=True,
    ),
    "optimization-error": DiagnosisInfo(
        title="The optimiser failed",
        explanation="align_image_stack found control points but could not compute a consistent alignment from them.",
        advice=(
            'The line before "Bad params" names what libpano13 rejected; a field of '
            "view given with -f must be below 180 degrees for an ordinary (rectilinear) "
            "lens. Otherwise try other options: without -m, with -i, or with a larger "
            "error threshold (-t). Keep the work folder (--keep-temp) and open "
            "debug.pto in Hugin to see the control points."
        ),
        final=(
            "The frames could not be aligned consistently: check the preset's extra "
            "align_image_stack options first, then re-take the stack steadier with smaller "
            "focus steps."
        ),
        retryable=True,
    ),
    "different-sizes": DiagnosisInfo(
        title="Photos of different sizes",
        explanation="The photos do not all have the same width and height, which Hugin cannot stack.",
        advice=(
            "Use photos straight from one camera, all in one format and size: do not mix "
            "crops, resized copies, portrait and landscape frames, or photos from another "
            "series."
        ),
        final="The photos are not all the same size: stack only frames of one series, uncropped.",
    ),
    "unreadable-image": DiagnosisInfo(
        title="A photo cannot be read",
        explanation=(
            "Hugin could not read one of the photos: it is missing, not an image, "
            "or in a format Hugin does not understand."
        ),
        advice=(
            "Convert the photos to TIFF or JPEG first (RAW files must be developed); "
            "check that each file opens in an image viewer. Images with several alpha "
            "channels are not supported."
        ),
        final="One of the photos is not an image Hugin can read: convert it to TIFF or JPEG, or leave it out.",
    ),
    "damaged-image": DiagnosisInfo(
        title="A photo is damaged",
        explanation="One of the photos is cut off or corrupt, so part of it could not be read.",
        advice=(
            "The file was probably copied incompletely: copy it again from the camera "
            "or card, or leave that frame out. The tools carry on and even exit without "
            "an error, but the unread part of the frame comes out grey or black and "
            "spoils the result."
        ),
        final="A photo file is incomplete: copy the stack from the card again.",
    ),
    "missing-file": DiagnosisInfo(
        title="A photo is missing",
        explanation="A photo could not be opened: it does not exist or cannot be read.",
        advice="Check the file names and that you may read the files (and that the disk is still connected).",
        final="A photo could not be opened: check the file names and permissions.",
    ),
    "too-few-images": DiagnosisInfo(
        title="Fewer than two photos",
        explanation="A focus stack needs at least two photos.",
        advice="Give two or more photos of the same scene focused at different distances.",
        final="A focus stack needs at least two photos.",
    ),
    "output-not-writable": DiagnosisInfo(
        title="Cannot write the result",
        explanation="The tool could not create its output file: the folder is missing, read-only, or the disk is full.",
        advice=(
            "Check that the output folder exists and is writable, that the disk has room, "
            "and that the temporary folder (TMPDIR) is writable."
        ),
        final="The result could not be written: check the output folder, its permissions and free disk space.",
    ),
    "disk-full": DiagnosisInfo(
        title="Disk full",
        explanation="The tool ran out of disk space while writing its result.",
        advice=(
            "Free some space on the disk that holds the temporary folder (TMPDIR) and "
            "the output; aligned frames take about as much room as the photos "
            "uncompressed, several times the size of JPEGs. Point TMPDIR at a bigger "
            "disk if needed."
        ),
        final="The disk filled up: free space (or point TMPDIR at a bigger disk) and run again.",
    ),
    "unknown-output-format": DiagnosisInfo(
        title="Unknown output format",
        explanation="enfuse does not know the file format for the output's extension.",
        advice="Name the output .tif, .tiff, .jpg, .png (or another format enfuse --show-image-formats lists).",
        final="Give the output a known extension such as .tif or .jpg.",
    ),
    "bad-arguments": DiagnosisInfo(
        title="Options rejected",
        explanation="The tool rejected the options it was given.",
        advice=(
            "A preset or a command-line option passed a value the tool does not accept, "
            "or your Hugin is too old for an option: check the extra arguments of the "
            "preset and `focuswrap doctor`. If focuswrap built these options by itself, "
            "please report a bug."
        ),
        final="The tool rejected its options: check the preset's extra arguments and your Hugin version.",
    ),
    "crashed": DiagnosisInfo(
        title="The tool crashed",
        explanation="The tool was killed by a signal before it finished.",
        advice=(
            "A crash can come from running out of memory (very large photos, many "
            "control points) or from a bug in Hugin. Try fewer or smaller photos, close "
            "other programs, or update Hugin."
        ),
        final="The tool crashed: try fewer or smaller photos, or update Hugin.",
    ),
    "timeout": DiagnosisInfo(
        title="Took too long",
        explanation="The tool ran longer than the time limit and was stopped.",
        advice="Large photos and many control points take long: raise the limit with --timeout, or use smaller photos.",
        final="The tool needed more time than allowed: raise --timeout.",
    ),
    "output-not-written": DiagnosisInfo(
        title="Exited without writing its result",
        explanation="The tool reported success but its output files are missing or wrong.",
        advice=(
            "align_image_stack exits 0 even when it cannot write its files; check that "
            "the temporary folder is writable and has room. Run with --verbose to see "
            "the tool's own messages."
        ),
        final="The tool claimed success but wrote nothing usable: check free disk space and the temporary folder.",
    ),
    "out-of-memory": DiagnosisInfo(
        title="Out of memory",
        explanation="The tool ran out of memory.",
        advice=(
            "enfuse holds every frame in memory at once: about 8 MB per megapixel per photo "
            "(measured with enfuse 4.2), so 20 photos of 24 megapixels need about 4 GB. "
            "Use fewer photos (every other frame of a dense bracket is often enough) or "
            "smaller ones (all the same size), close other programs, and run batch with "
            "--jobs 1. Hugin 2022's enfuse has no option of its own to use less memory."
        ),
        final="The computer ran out of memory: use fewer or smaller photos, or close other programs.",
    ),
    "odd-photo-out": DiagnosisInfo(
        title="A photo matches none of the others",
        explanation="One photo shares no detail with its neighbours in the stack.",
        advice=(
            "align_image_stack found matches between the other photos but none with this one: "
            "it is most likely from another scene (or badly blurred, or of something else). "
            "Leave it out and stack the rest. Other align options do not help, so focuswrap "
            "does not climb the fallback ladder for it."
        ),
        final="Leave that photo out (is it from another scene?) and stack the others.",
    ),
    "unknown": DiagnosisInfo(
        title="Unrecognised failure",
        explanation="The tool failed with a message focuswrap does not recognise.",
        advice=(
            "Read the tool's last lines shown with the error (or run with --verbose). "
            "Please report the message so that focuswrap can explain it next time."
        ),
        final="The tool failed in a way focuswrap does not recognise: see its last lines above.",
    ),
}

#: Ids that callers make themselves, not :func:`classify` (``output-not-written``:
#: the files are checked after an exit 0; ``odd-photo-out``: from the matches
#: align_image_stack reports per pair of photos).
CALLER_IDS = frozenset({"output-not-written", "odd-photo-out"})


@dataclass(frozen=True)
class Rule:
    """One row of the table: on ``tool``'s output, ``pattern`` means ``id``.

    ``evidence`` (default: ``pattern``) picks the lines quoted as evidence; a
    group named ``path`` is named in the explanation.
    """

    tool: str
    pattern: re.Pattern[str]
    id: str
    example: str
    evidence: re.Pattern[str] | None = None


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A rule's pattern (the tool modules write their tables with it)."""
    return re.compile(pattern)


#: Exit codes that mean someone stopped the tool on purpose (no point retrying):
#: POSIX signals as negative codes, and Windows' STATUS_CONTROL_C_EXIT.
_STOPPED = {-int(getattr(signal, n)) for n in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, n)}
_STOPPED.add(0xC000013A)
_MAX_EVIDENCE = 6
_TAIL = 8
_MAX_LINE = 240
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SPACES = re.compile(r"\s{3,}")


def _clean(line: str) -> str:
    # enfuse 4.2 sometimes prints uninitialised memory: NULs and long runs of spaces.
    line = _SPACES.sub("  ", _CONTROL.sub("", line)).rstrip()
    return line if len(line) <= _MAX_LINE else line[: _MAX_LINE - 1] + "…"


def _lines(stdout: str, stderr: str) -> list[str]:
    """Non-blank cleaned lines, stdout first (the order between the two streams is lost)."""
    out: list[str] = []
    for text in (stdout, stderr):
        for raw in text.splitlines():
            line = _clean(raw)
            if line.strip():
                out.append(line)
    return out


def _tail(lines: list[str], n: int = _TAIL) -> str:
    """The last ``n`` lines, runs of one repeated line collapsed."""
    runs = [(line, len(list(group))) for line, group in itertools.groupby(lines)]
    shown = [f"{line}  [{count} times]" if count > 1 else line for line, count in runs[-n:]]
    return "\n".join(shown) if shown else "(no output)"


def _evidence(pattern: re.Pattern[str], lines: list[str]) -> tuple[str, str | None]:
    """The distinct lines ``pattern`` matches (at most a few) and the first ``path`` group."""
    found: list[str] = []
    path: str | None = None
    for line in lines:
        m = pattern.search(line)
        if m is None:
            continue
        if path is None and "path" in m.re.groupindex and m.group("path"):
            path = m.group("path")
        if line not in found:
            found.append(line)
    shown = found[:_MAX_EVIDENCE]
    if len(found) > _MAX_EVIDENCE:
        shown.append(f"[{len(found) - _MAX_EVIDENCE} more]")
    return "\n".join(shown), path


def _crash_signal(returncode: int) -> str | None:
    """The signal name when ``returncode`` says the process was killed, else None."""
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    if returncode >= 0xC0000000:  # Windows NTSTATUS error, e.g. 0xC0000005 access violation
        return f"0x{returncode:08X}"
    return None


def _make(diag_id: str, evidence: str, *, retryable: bool | None = None, detail: str | None = None) -> Diagnosis:
    info = DIAGNOSES[diag_id]
    explanation = info.explanation
    if detail:
        explanation = f"{explanation.rstrip('.')} ({detail})."
    return Diagnosis(diag_id, info.retryable if retryable is None else retryable, explanation, evidence)


def classify_with(
    rules: Sequence[Rule], name: str, returncode: int | None, stdout: str, stderr: str, *, retry_unknown: bool
) -> Diagnosis:
    """Say what a finished run of the tool ``name`` means, by its own ``rules`` (see the module's docstring).

    ``returncode`` None means the run was stopped by a timeout.  Pure: reads
    only its arguments.  ``retry_unknown``: whether another attempt may get
    past a failure no rule explains, or a crash (a fallback ladder's tool).
    """
    lines = _lines(stdout, stderr)
    if returncode is None:
        return _make("timeout", _tail(lines))
    for rule in rules:
        if rule.tool not in (ANY, name):
            continue
        if any(rule.pattern.search(line) for line in lines):
            evidence, path = _evidence(rule.evidence or rule.pattern, lines)
            return _make(rule.id, evidence, detail=path)
    sig = _crash_signal(returncode)
    if sig is not None:
        retry = retry_unknown and returncode not in _STOPPED
        return _make("crashed", _tail(lines), retryable=retry, detail=sig)
    if returncode == 0:
        return _make("ok", "")
    return Diagnosis(
        "unknown",
        # Not retried: the ladder's rungs are tied to the failures they can help,
        # and climbing all of them for a message nobody understands cost minutes.
        False,
        f"{name} failed with exit code {returncode} and a message focuswrap does not recognise.",
        _tail(lines),
    )


def final_advice(diagnosis_id: str) -> str:
    """The most likely cause, in plain words, when every attempt failed with ``diagnosis_id``.

    An id this module does not know gets the advice for ``unknown`` rather
    than an error: this runs while reporting a failure.
    """
    info = DIAGNOSES.get(diagnosis_id, DIAGNOSES["unknown"])
    return info.final

"""Issue 13's rows ("nothing lost, ever"), run under pytest, plus unit rows for the mechanisms behind them.

The end-to-end rows are the table of ``scripts/adversarial.py`` (one row per
broken promise and per misleading message of the issue), run here against the
installed focuswrap with the real tools: a row that does not hold fails here
as it does there.  The unit rows below check the mechanisms on their own
(cache verification, work-folder ownership, mask names), without Hugin.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from focuswrap import cache, contribution, paths

REPO = Path(__file__).resolve().parent.parent


def _load_adversarial():
    spec = importlib.util.spec_from_file_location("adversarial", REPO / "scripts" / "adversarial.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["adversarial"] = module
    spec.loader.exec_module(module)
    return module


adversarial = _load_adversarial()


#: Rows not fixed yet (each fails today; strict: once it holds, it must leave this list).
#: Every entry is listed as not done in the issue's report.
NOT_FIXED_YET: set[str] = set()


def _marks(c) -> list:
    marks = [getattr(pytest.mark, need) for need in sorted(c.needs) if need in ("real", "pcb")]
    if c.id in NOT_FIXED_YET:
        marks.append(pytest.mark.xfail(reason="issue 13: not fixed yet", strict=True, raises=AssertionError))
    return marks


@pytest.mark.parametrize("row", [pytest.param(c, id=f"{c.item}-{c.id}", marks=_marks(c)) for c in adversarial.CASES])
def test_adversarial_row(row) -> None:
    why = adversarial.missing(row.needs - {"real", "pcb"})  # real/pcb: conftest skips (or fails in CI)
    if why:
        pytest.skip(why)
    adversarial.run_case(row)


def test_every_issue_item_has_a_row() -> None:
    items = {c.item for c in adversarial.CASES}
    assert {f"B{n}" for n in range(1, 11)} <= items
    assert len([c for c in adversarial.CASES if c.item == "M"]) >= 12
    assert len({c.id for c in adversarial.CASES}) == len(adversarial.CASES)


# ----------------------------------------------------------- B1: the cache


def _frames(folder: Path, n: int = 3, size: int = 5000) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        f = folder / f"aligned_{i:04d}.tif"
        f.write_bytes(os.urandom(size))
        out.append(f)
    return out


@pytest.mark.parametrize("damage", ["truncated", "one byte changed", "missing", "record garbled"])
def test_a_damaged_entry_is_discarded_and_said_once(tmp_path: Path, damage: str) -> None:
    frames = _frames(tmp_path / "work1")
    assert cache.store("k", frames, max_bytes=10**9)
    entry = paths.cache_dir() / "aligned" / "k"
    victim = entry / frames[1].name
    data = bytearray(victim.read_bytes())
    victim.unlink()  # the entry's frames are hard links to the first work folder's: replace, not edit
    if damage == "truncated":
        victim.write_bytes(bytes(data[:100]))
    elif damage == "one byte changed":
        data[2500] ^= 0xFF
        victim.write_bytes(bytes(data))
    elif damage == "record garbled":
        victim.write_bytes(bytes(data))
        (entry / "entry.json").write_text("{not json")
    into = tmp_path / "work2"
    into.mkdir()
    said: list[str] = []
    assert cache.lookup("k", into, on_damaged=said.append) is None
    assert len(said) == 1 and ("damaged" in said[0] or "could not be read" in said[0]), said
    assert list(into.iterdir()) == [], "frames of a damaged entry were handed out"
    assert not entry.exists(), "the damaged entry was kept"
    # Stored again, it is used again.
    assert cache.store("k", frames, max_bytes=10**9)
    got = cache.lookup("k", into, on_damaged=said.append)
    assert got is not None and [g.read_bytes() for g in got] == [f.read_bytes() for f in frames]
    assert len(said) == 1


def test_an_intact_entry_is_not_reported(tmp_path: Path) -> None:
    frames = _frames(tmp_path / "work1")
    assert cache.store("k", frames, max_bytes=10**9)
    said: list[str] = []
    into = tmp_path / "work2"
    into.mkdir()
    assert cache.lookup("k", into, on_damaged=said.append) is not None
    assert cache.lookup("absent", into, on_damaged=said.append) is None
    assert said == []


# ----------------------------------------------- B2: stale work folders

_CLAIM = """
import sys, time
from pathlib import Path
from focuswrap import paths
folder = Path(sys.argv[1])
folder.mkdir()
paths.claim_work_folder(folder)
print("claimed", flush=True)
time.sleep(60)
"""


def _claimed_by_child(folder: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", _CLAIM, str(folder)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "claimed"
    return child


def test_only_work_folders_whose_owner_is_gone_are_removed(tmp_path: Path) -> None:
    dead = tmp_path / "focuswrap.dead"
    alive = tmp_path / "focuswrap.alive"
    killed = _claimed_by_child(dead)
    living = _claimed_by_child(alive)
    try:
        (dead / "aligned_0000.tif").write_bytes(b"frame")
        killed.send_signal(signal.SIGKILL)  # no handler runs: only the kernel's lock release
        killed.wait(timeout=30)
        not_ours = tmp_path / "focuswrap.other-program"  # no owner file
        not_ours.mkdir()
        older = tmp_path / "something-else"
        older.mkdir()
        mine = tmp_path / "focuswrap.mine"
        mine.mkdir()
        paths.claim_work_folder(mine)  # this very process's: alive
        removed = paths.remove_stale_work_folders(tmp_path)
        assert removed == [dead]
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "focuswrap.alive",
            "focuswrap.mine",
            "focuswrap.other-program",
            "something-else",
        ]
        paths.release_work_folder(mine)
        assert paths.remove_stale_work_folders(tmp_path) == [mine]
    finally:
        living.kill()
        living.wait(timeout=30)
    deadline = time.monotonic() + 10
    while alive.exists() and time.monotonic() < deadline:
        paths.remove_stale_work_folders(tmp_path)
        time.sleep(0.1)
    assert not alive.exists(), "the folder of a process that has since died was kept"


def test_a_symlink_named_like_a_work_folder_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.mkdir()
    (target / paths.OWNER_FILE).write_text("1\n")  # unlocked: would look stale
    (target / "keep.txt").write_text("mine")
    (tmp_path / "focuswrap.link").symlink_to(target)
    assert paths.remove_stale_work_folders(tmp_path) == []
    assert (target / "keep.txt").read_text() == "mine"


# ------------------------------------------------------------ B10: masks


@pytest.mark.parametrize(("count", "first", "last"), [(3, "1", "3"), (9, "1", "9"), (10, "01", "10"), (32, "01", "32")])
def test_mask_names_follow_enfuses_zero_padding(tmp_path: Path, count: int, first: str, last: str) -> None:
    soft, hard = contribution.mask_files(tmp_path, count)
    assert (soft[0].name, soft[-1].name) == (f"softmask-{first}.tif", f"softmask-{last}.tif")
    assert (hard[0].name, hard[-1].name) == (f"hardmask-{first}.tif", f"hardmask-{last}.tif")


@pytest.mark.real
def test_mask_names_are_the_ones_enfuse_writes(tmp_path: Path) -> None:
    from PIL import Image

    frames = []
    for i in range(11):
        f = tmp_path / f"f{i}.tif"
        Image.effect_noise((48, 32), 40 + i).convert("RGB").save(f)
        frames.append(f.name)
    done = subprocess.run(
        ["enfuse", f"--save-masks={contribution.save_masks_arg()}", "--hard-mask", "-o", "out.tif", *frames],
        cwd=tmp_path,
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    soft, hard = contribution.mask_files(tmp_path, 11)
    assert all(f.is_file() for f in soft + hard), sorted(p.name for p in tmp_path.iterdir())


# ------------------------------------------- B6: reading options as getopt does

from focuswrap.hugin import optspec  # noqa: E402


@pytest.mark.parametrize(
    ("tokens", "sets"),
    [
        (["-ma/some/dir/evil_"], ["-m", "-a"]),
        (["-mo/some/dir/evil"], ["-m", "-o"]),
        (["-ev"], ["-e", "-v"]),
        (["-c", "-a"], ["-c"]),  # "-a" is -c's value here, as getopt reads it
        (["-c500", "-i"], ["-c", "-i"]),
        (["--use-given"], ["--use-given-order"]),
        (["--corr", "0.8"], ["--corr"]),
        (["--corr=0.8", "-Cl"], ["--corr", "-C", "-l"]),
    ],
)
def test_align_options_are_read_as_getopt_reads_them(tokens, sets) -> None:
    assert [o for o, _, _ in optspec.options_set(optspec.ALIGN, tokens)] == sets


@pytest.mark.parametrize(
    ("tokens", "sets"),
    [
        (["-ox.tif"], ["-o"]),
        (["--out=x.tif"], ["--output"]),
        (["-v2", "--save"], ["-v", "--save-masks"]),
        (["-l", "-o"], ["-l"]),
        (["--compression=lzw", "--hard"], ["--compression", "--hard-mask"]),
    ],
)
def test_enfuse_options_are_read_as_getopt_reads_them(tokens, sets) -> None:
    assert [o for o, _, _ in optspec.options_set(optspec.ENFUSE, tokens)] == sets


@pytest.mark.parametrize(
    ("tokens", "why"),
    [
        (["-m", "IMG_9.jpg"], "read it as a photo"),
        (["--"], "'--'"),
        (["-c"], "needs a value"),
        (["-q"], "not an option"),
        (["--d"], "ambiguous"),
        (["--gpu=1"], "takes no value"),
    ],
)
def test_what_the_tool_would_misread_is_refused(tokens, why) -> None:
    with pytest.raises(optspec.BadArgs, match=why):
        optspec.options_set(optspec.ALIGN, tokens)


# ------------------------------------------------ B3, B8: streams that fail

from focuswrap import streams  # noqa: E402

_WRITE_AFTER = """
import os, sys
from focuswrap import streams
streams.install()
print("first line", flush=True)
sys.stderr.write("progress\\n")
sys.stderr.flush()
print("Ergebnis-\\u00e4\\u65e5.jpg written")
sys.stdout.flush()
open(sys.argv[1], "w").write("done")
"""


@pytest.mark.parametrize("where", ["stdout-full", "stderr-full", "stderr-closed", "stdout-closed", "ascii"])
def test_a_failing_stream_never_changes_the_outcome(tmp_path: Path, where: str) -> None:
    done = tmp_path / "done"
    env = {**os.environ}
    kwargs: dict = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    if where == "stdout-full":
        kwargs["stdout"] = open("/dev/full", "w")
    elif where == "stderr-full":
        kwargs["stderr"] = open("/dev/full", "w")
    elif where == "stderr-closed":
        kwargs["preexec_fn"] = lambda: os.close(2)
        kwargs["stderr"] = subprocess.DEVNULL
    elif where == "stdout-closed":
        kwargs["preexec_fn"] = lambda: os.close(1)
        kwargs["stdout"] = subprocess.DEVNULL
    else:
        env.update(PYTHONIOENCODING="ascii", LC_ALL="C")
    got = subprocess.run([sys.executable, "-c", _WRITE_AFTER, str(done)], env=env, timeout=120, **kwargs)
    assert got.returncode == 0, got.stderr
    assert done.read_text() == "done"
    if where == "ascii":
        assert b"Ergebnis-??.jpg written" in got.stdout
    for stream in (got.stdout, got.stderr):
        assert b"Exception ignored" not in (stream or b"")


def test_a_reader_that_goes_away_silences_the_stream_only(tmp_path: Path) -> None:
    script = (
        "import sys, time\nfrom focuswrap import streams\nstreams.install()\n"
        "for i in range(2000):\n    print('line', i, flush=True)\n    time.sleep(0.001)\n"
        f"open({str(tmp_path / 'done')!r}, 'w').write('done')\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for _ in range(3):
        child.stdout.readline()
    child.stdout.close()
    _, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert (tmp_path / "done").read_text() == "done"
    assert b"Exception ignored" not in err and b"Traceback" not in err


def test_a_closed_descriptor_is_never_reused_for_a_file(tmp_path: Path) -> None:
    script = (
        "import os, sys\nfrom focuswrap import streams\nstreams.install()\n"
        f"fd = os.open({str(tmp_path / 'photo.jpg')!r}, os.O_WRONLY | os.O_CREAT)\n"
        "sys.stderr.write('a warning\\n')\nos.write(2, b'a tool writes to 2\\n')\nprint(fd)\n"
    )
    got = subprocess.run(
        [sys.executable, "-c", script],
        preexec_fn=lambda: os.close(2),
        capture_output=False,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )
    assert got.returncode == 0
    assert int(got.stdout) > 2
    assert (tmp_path / "photo.jpg").read_bytes() == b""


def test_control_characters_are_stripped() -> None:
    assert streams.clean("nice \x1b[2J\x1b[31mred\x07 text\r\n\tnext\x9b") == "nice [2J[31mred text\n\tnext"


# ------------------------------------------------ B5: names the tools see


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("IMG_1.jpg", True),
        ("shot-2+b.tif", True),
        ('IMG "1".jpg', False),
        ("line\nbreak.jpg", False),
        ("-v 1.jpg", False),
        ("@list.jpg", False),
        ("Käfer.jpg", False),
        ("a $HOME.jpg", False),
    ],
)
def test_unsafe_names_are_staged_under_generated_ones(tmp_path: Path, name: str, safe: bool) -> None:
    shots = tmp_path / "shots"
    shots.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    photo = shots / name
    photo.write_bytes(b"the photo")
    (got,) = paths.stage([photo], work, [".jpg"])
    if safe:
        assert got == photo
    else:
        assert got == work / "photo_0001.jpg"
        assert got.read_bytes() == b"the photo"
        assert paths.safe_for_tools(got)
    assert photo.read_bytes() == b"the photo"


# ------------------------------------------------ M: the odd photo out

from focuswrap.hugin import align  # noqa: E402

_VERBOSE = """Creating control points between a.jpg and b.jpg
Trying to find 8 corners...
Number of good matches: 3, bad matches: 0
Number of good matches: 4, bad matches: 1
Creating control points between b.jpg and c.jpg
Number of good matches: 0, bad matches: 4
Creating control points between c.jpg and d.jpg
Number of good matches: 0, bad matches: 2
"""


def test_matches_are_counted_per_pair() -> None:
    assert align.matches_per_pair(_VERBOSE) == [("a.jpg", "b.jpg", 7), ("b.jpg", "c.jpg", 0), ("c.jpg", "d.jpg", 0)]


@pytest.mark.parametrize(
    ("pairs", "odd"),
    [
        ([("a", "b", 7), ("b", "c", 0), ("c", "d", 0)], ["c"]),  # d follows the odd one: not blamed
        ([("a", "b", 0), ("b", "c", 9), ("c", "d", 5)], ["a"]),
        ([("a", "b", 9), ("b", "c", 0), ("c", "d", 5)], []),  # a gap between two halves: nobody is odd
        ([("a", "b", 0), ("b", "c", 0)], []),  # nothing matched at all: not one odd photo
        ([("a", "b", 0)], []),  # two photos: no telling which
    ],
)
def test_the_odd_photo_out(pairs, odd) -> None:
    assert align.odd_ones_out(pairs) == odd

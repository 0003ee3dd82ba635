"""focuswrap's default against the focus stackers photographers would pick instead, and where its time goes.

Used by ``bench_stack.py --peers`` and ``bench_stack.py --breakdown``.

* **Stacks**: ``pcb`` (7 x 2048x1536), ``deep32`` (32 x 640x360), ``pcb21``
  (pcb's frames repeated to 21, each three times in a row so that the focus
  still moves one way) and ``16mp`` (pcb's frames upscaled to 4608x3456 by
  Pillow's Lanczos filter: a *synthetic upscale*, phone-sized, not a real
  phone photo).  The derived stacks are made once, in a folder kept between
  runs (``--stack-cache``).
* **Peers**: focus-stack (C++/OpenCV, built from source with
  ``../shared/peers/build-focus-stack.sh``) and focusweave (PyPI, in its own
  venv), each found by option or on ``PATH``; a peer that is not there is
  reported as absent and left out.  Every tool writes a JPEG into a fresh
  folder holding links to the photos; rounds interleave the tools (order
  reversed every other round).
* **Memory**: the peak of the summed resident memory of the whole process
  tree, sampled from ``/proc`` every 20 ms (two nonas side by side count
  twice), and the largest single process (``wait4``'s ``ru_maxrss``).
* **Sharpness**: :func:`focuswrap.sharpness.gradient_energy` of each result,
  the measure the tests use, and its ratio to focuswrap's default.

``--breakdown`` runs the default's own commands (from ``focuswrap stack
--dry-run``) with every tool's output lines time-stamped as they arrive, and
splits each tool's time into its phases: control points per pair and
optimisation (align_image_stack), loading, remapping and saving per frame
(nona), loading with the weights, mask, pyramids and collapse with writing
(enfuse); plus each tool's start-up and focuswrap's own step seconds (``--json``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_STACKS = REPO.parent / "shared" / "stacks"
PHONE_SIZE = (4608, 3456)

STACKS = {
    "pcb": "pcb, 7 x 2048x1536",
    "deep32": "deep32, 32 x 640x360",
    "pcb21": "pcb frames repeated to 21, 2048x1536",
    "16mp": "pcb upscaled to 4608x3456 (synthetic upscale, phone size), 7 frames",
}


def photos_in(folder: Path) -> list[Path]:
    """The stack's JPEGs, leaving out a reference result and earlier results."""
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    return [p for p in found if not p.stem.startswith("reference") and not p.stem.endswith("-stacked")]


def make_stack(name: str, cache: Path) -> list[Path]:
    """The photos of stack ``name``, making the derived stacks in ``cache`` the first time."""
    if name in ("pcb", "deep32"):
        return [p.resolve() for p in photos_in(SHARED_STACKS / name)]
    pcb = make_stack("pcb", cache)
    folder = cache / name
    done = folder / ".complete"
    if done.exists():
        return photos_in(folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if name == "pcb21":
        # Copies, not links (focuswrap refuses a photo given twice), each with its own JPEG
        # comment so that no two files are byte-identical; the pixels are pcb's.
        for i, photo in enumerate(p for p in pcb for _ in range(3)):
            data = photo.read_bytes()
            note = f"focuswrap benchmark: copy {i + 1} of {photo.name}".encode()
            comment = b"\xff\xfe" + (len(note) + 2).to_bytes(2, "big") + note
            (folder / f"pcb21_{i + 1:02d}.jpg").write_bytes(data[:2] + comment + data[2:])
    elif name == "16mp":
        from PIL import Image

        print(f"making the 16 MP stack (pcb upscaled to {PHONE_SIZE[0]}x{PHONE_SIZE[1]}) in {folder} ...", flush=True)
        for photo in pcb:
            with Image.open(photo) as im:
                big = im.convert("RGB").resize(PHONE_SIZE, Image.Resampling.LANCZOS)
                exif = im.info.get("exif")
                big.save(folder / f"{photo.stem}_16mp.jpg", quality=95, **({"exif": exif} if exif else {}))
    else:
        raise SystemExit(f"unknown stack {name!r}: choose from {', '.join(STACKS)}")
    done.touch()
    return photos_in(folder)


# ---------------------------------------------------------------- running and measuring


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids.extend(int(k) for k in f.read().split())
    except OSError:
        pass
    return kids


def _tree_rss(root: int) -> int:
    """Summed resident set (bytes) of ``root`` and all its descendants."""
    page = os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * page
        except (OSError, ValueError, IndexError):
            continue
        todo.extend(_children(pid))
    return total


@dataclass
class Timed:
    seconds: float
    tree_peak: int  # bytes, sampled sum over the process tree
    largest: int  # bytes, largest single process (wait4)
    lines: list[tuple[float, str]] = field(default_factory=list)  # (seconds since start, line) when captured


def run_measured(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None, capture: bool = False, interval: float = 0.02
) -> Timed:
    """Run ``argv``; wall seconds, peak tree memory, and (``capture``) its output lines, time-stamped."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if capture else subprocess.PIPE,
        text=True,
        errors="replace",
    )
    peak = [0]
    finished = threading.Event()

    def sample() -> None:
        while not finished.is_set():
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            finished.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    lines: list[tuple[float, str]] = []
    stream = proc.stdout if capture else proc.stderr
    assert stream is not None
    tail: list[str] = []
    for line in stream:
        if capture:
            lines.append((time.perf_counter() - start, line.rstrip("\n")))
        tail = (tail + [line])[-40:]
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    finished.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"failed ({proc.returncode}): {shlex.join(argv)}\n{''.join(tail)[-2000:]}")
    return Timed(seconds, peak[0], usage.ru_maxrss * 1024, lines)


def fresh_folder(photos: list[Path]) -> Path:
    work = Path(tempfile.mkdtemp(prefix="bench."))
    (work / "in").mkdir()
    for p in photos:
        os.symlink(p, work / "in" / p.name)
    return work


def focuswrap_argv() -> list[str]:
    exe = Path(sys.executable).with_name("focuswrap")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "focuswrap"]


# A case: (work folder holding in/ with the photos) -> (Timed, result file)
Case = Callable[[Path], tuple[Timed, Path]]


def focuswrap_case(preset: str | None = None, extra: tuple[str, ...] = ()) -> Case:
    def run(work: Path) -> tuple[Timed, Path]:
        out = work / "out.jpg"
        photos = [str(p) for p in photos_in(work / "in")]
        argv = focuswrap_argv() + ["stack", *photos, "-o", str(out), "--quiet", "--force", *extra]
        argv += ["--preset", preset] if preset else []
        home = work / "home"
        return run_measured(argv, work, env={**os.environ, "FOCUSWRAP_HOME": str(home)}), out

    return run


def focus_stack_case(exe: str) -> Case:
    def run(work: Path) -> tuple[Timed, Path]:
        out = work / "out.jpg"
        photos = [str(p) for p in photos_in(work / "in")]
        return run_measured([exe, f"--output={out}", *photos], work), out

    return run


def focusweave_case(exe: str) -> Case:
    def run(work: Path) -> tuple[Timed, Path]:
        out = work / "out.jpg"
        return run_measured([exe, str(work / "in"), "--output", str(out)], work), out

    return run


def find_tool(option: str | None, name: str) -> str | None:
    """The peer's executable: the path given by option, else ``name`` on PATH; None when absent."""
    if option:
        path = Path(option)
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(name)


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{model}, {os.cpu_count()} CPUs, {mem:.1f} GiB RAM, load average {os.getloadavg()[0]:.2f}"


def compare(
    stacks: list[str], cases: dict[str, Case], rounds: int, cache: Path, absent: dict[str, str], baseline: str
) -> None:
    """Run every case on every stack, interleaved; print the rounds and one table per stack."""
    from focuswrap.sharpness import gradient_energy

    print(f"machine: {machine()}")
    for name, why in absent.items():
        print(f"absent: {name} ({why}): left out")
    for stack in stacks:
        photos = make_stack(stack, cache)
        print(f"\n== {STACKS[stack]}: {len(photos)} photos, {rounds} rounds, load {os.getloadavg()[0]:.2f} at start")
        times: dict[str, list[float]] = {n: [] for n in cases}
        tree: dict[str, list[int]] = {n: [] for n in cases}
        largest: dict[str, list[int]] = {n: [] for n in cases}
        sharp: dict[str, list[float]] = {n: [] for n in cases}
        for r in range(rounds):
            order = list(cases) if r % 2 == 0 else list(cases)[::-1]
            for name in order:
                work = fresh_folder(photos)
                try:
                    timed, out = cases[name](work)
                    times[name].append(timed.seconds)
                    tree[name].append(timed.tree_peak)
                    largest[name].append(timed.largest)
                    sharp[name].append(gradient_energy(out))
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                print(
                    f"  round {r + 1}: {name:24} {timed.seconds:7.2f} s  {timed.tree_peak / 2**20:6.0f} MiB  "
                    f"load {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
        base_t = statistics.median(times[baseline])
        base_s = statistics.median(sharp[baseline])
        base_m = max(tree[baseline])
        print(
            f"\n{'tool':26} {'median s':>8} {'min-max s':>13} {'x default':>9} "
            f"{'tree MiB':>8} {'largest':>7} {'sharpness':>9} {'x default':>9}"
        )
        for name in cases:
            t, s = statistics.median(times[name]), statistics.median(sharp[name])
            print(
                f"{name:26} {t:8.2f} {min(times[name]):6.2f}-{max(times[name]):6.2f} {t / base_t:9.2f} "
                f"{max(tree[name]) / 2**20:8.0f} {max(largest[name]) / 2**20:7.0f} {s:9.1f} {s / base_s:9.3f}"
            )
        others = [n for n in cases if n != baseline]
        for name in others:
            print(
                f"  focuswrap default / {name}: {base_t / statistics.median(times[name]):.2f}x the time, "
                f"{base_m / max(tree[name]):.2f}x the memory"
            )


# ---------------------------------------------------------------- the breakdown

PLACEHOLDER = re.compile(r"/[^ ]*focuswrap\.XXXXXXXX")


def dry_run(photos: list[Path], out: Path, home: Path) -> list[list[tuple[dict[str, str], list[str]]]]:
    """The default's commands from ``--dry-run``, grouped into steps (nona's parts together)."""
    argv = focuswrap_argv() + ["stack", *map(str, photos), "-o", str(out), "--dry-run"]
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "FOCUSWRAP_HOME": str(home)})
    if done.returncode != 0:
        raise SystemExit(f"focuswrap --dry-run failed: {done.stderr}")
    steps: list[list[tuple[dict[str, str], list[str]]]] = []
    for line in done.stdout.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        words = shlex.split(line)
        env = {}
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            key, value = words.pop(0).split("=", 1)
            env[key] = value
        if steps and Path(words[0]).name == "nona" and Path(steps[-1][0][1][0]).name == "nona":
            steps[-1].append((env, words))
        else:
            steps.append([(env, words)])
    return steps


def _spans(lines: list[tuple[float, str]], end: float, marks: list[tuple[str, re.Pattern[str]]]) -> dict[str, float]:
    """Seconds between consecutive marked lines, summed per mark name (the last runs to ``end``)."""
    hits = [(t, name) for t, line in lines for name, pat in marks if pat.search(line)]
    out: dict[str, float] = {"start-up (to first line)": lines[0][0] if lines else end}
    for (t, name), nxt in zip(hits, [h[0] for h in hits[1:]] + [end], strict=True):
        out[name] = out.get(name, 0.0) + (nxt - t)
    return out


ALIGN_MARKS = [
    ("control points (all pairs)", re.compile(r"^Creating control points between")),
    ("optimisation", re.compile(r"^Optimizing Variables")),
    ("crop search and project writing", re.compile(r"^Run called")),
]
NONA_MARKS = [
    ("load", re.compile(r"^loading ")),
    ("remap", re.compile(r"^remapping ")),
    ("save (write TIFF)", re.compile(r"^saving ")),
]
ENFUSE_MARKS = [
    ("load + weights", re.compile(r"loading next image")),
    ("hard mask", re.compile(r"creating hard blend mask")),
    ("pyramids and blending", re.compile(r"using \d+ blending levels")),
    ("collapse + write", re.compile(r"collapsing Laplacian pyramid")),
]


def _pair_seconds(lines: list[tuple[float, str]], end: float) -> list[float]:
    starts = [t for t, line in lines if line.startswith("Creating control points between")]
    opt = [t for t, line in lines if line.startswith("Optimizing Variables")]
    stops = starts[1:] + [opt[0] if opt else end]
    return [b - a for a, b in zip(starts, stops, strict=True)]


def startup_seconds(argv: list[str], times: int = 5) -> float:
    """Median wall time of a run that only starts the tool and prints its usage."""
    samples = []
    for _ in range(times):
        t = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def run_side_by_side(argvs: list[tuple[dict[str, str], list[str]]], cwd: Path) -> list[Timed]:
    """Run the commands together (nona's parts), each time-stamped; all must succeed."""
    results: list[Timed] = []

    def one(env: dict[str, str], argv: list[str]) -> None:
        results.append(run_measured(argv, cwd, env={**os.environ, **env}, capture=True))

    threads = [threading.Thread(target=one, args=pair) for pair in argvs]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if len(results) != len(argvs):
        raise SystemExit(f"{argvs[0][1][0]} failed")
    return results


def breakdown(stacks: list[str], cache: Path, rounds: int) -> None:
    """Per step and per process: where the default's time goes, on each stack."""
    from focuswrap.hugin import pto

    print(f"machine: {machine()}")
    tools = {name: shutil.which(name) for name in ("align_image_stack", "nona", "enfuse")}
    starts = {
        "align_image_stack": startup_seconds([tools["align_image_stack"] or "align_image_stack", "-h"]),
        "nona": startup_seconds([tools["nona"] or "nona", "-h"]),
        "enfuse": startup_seconds([tools["enfuse"] or "enfuse", "-V"]),
        "python -c pass": startup_seconds([sys.executable, "-c", "pass"]),
        "focuswrap --version": startup_seconds(focuswrap_argv() + ["--version"]),
    }
    print(
        "process start-up (median of 5, usage or version only): "
        + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in starts.items())
    )
    for stack in stacks:
        photos = make_stack(stack, cache)
        print(f"\n== {STACKS[stack]}: {len(photos)} photos, {rounds} round(s), load {os.getloadavg()[0]:.2f} at start")
        rows: dict[str, list[float]] = {}
        pairs_all: list[list[float]] = []
        written: list[int] = []

        def add(key: str, value: float, rows: dict[str, list[float]] = rows) -> None:
            rows.setdefault(key, []).append(value)

        for _ in range(rounds):
            # focuswrap's own per-step seconds
            work = fresh_folder(photos)
            try:
                out = work / "out.jpg"
                argv = focuswrap_argv() + ["stack", *map(str, photos), "-o", str(out), "--json", "--force"]
                env = {**os.environ, "FOCUSWRAP_HOME": str(work / "home")}
                timed = run_measured(argv, work, env=env, capture=True)
                text = [line for _, line in timed.lines]
                first = next(i for i, line in enumerate(text) if line.startswith("{"))
                last = max(i for i, line in enumerate(text) if line.startswith("}"))
                report = json.loads("\n".join(text[first : last + 1]))
                for step, secs in report["seconds"].items():
                    add(f"focuswrap step: {step}", secs)
                add("focuswrap: wall (whole process)", timed.seconds)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            # the same commands by hand, each tool's lines time-stamped
            work = fresh_folder(photos)
            try:
                folder = work / "hand"
                folder.mkdir()
                steps = dry_run(photos, folder / "out.jpg", work / "home")
                total = 0.0
                for step in steps:
                    program = Path(step[0][1][0]).name
                    argvs = [(env, [PLACEHOLDER.sub(str(folder), w) for w in argv]) for env, argv in step]
                    if program == "nona":
                        project = folder / "debug.pto"
                        linear = pto.with_linear_response(project.read_text())
                        if linear is not None:
                            project.write_text(linear)
                    if program == "enfuse":
                        argvs = [(env, [argv[0], "-v", *argv[1:]]) for env, argv in argvs]
                    t0 = time.perf_counter()
                    results = run_side_by_side(argvs, folder)
                    wall = time.perf_counter() - t0
                    total += wall
                    add(f"{program}: wall", wall)
                    marks = {"align_image_stack": ALIGN_MARKS, "nona": NONA_MARKS, "enfuse": ENFUSE_MARKS}[program]
                    summed: dict[str, float] = {}
                    for res in results:
                        for k, v in _spans(res.lines, res.seconds, marks).items():
                            summed[k] = summed.get(k, 0.0) + v
                    for k, v in summed.items():
                        add(
                            f"{program}: {k}"
                            + (f" (summed over {len(results)} processes)" if len(results) > 1 else ""),
                            v,
                        )
                    if program == "align_image_stack":
                        pairs_all.append(_pair_seconds(results[0].lines, results[0].seconds))
                    if program == "nona":
                        written.append(sum(f.stat().st_size for f in folder.glob("aligned_*.tif")))
                add("by hand: all tools", total)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        print(f"{'what':64} {'median s':>8}")
        for key, values in rows.items():
            print(f"{key:64} {statistics.median(values):8.2f}")
        if pairs_all:
            per_pair = [statistics.median(col) for col in zip(*pairs_all, strict=False)]
            print(
                f"control points per pair ({len(per_pair)} pairs): median {statistics.median(per_pair):.2f} s, "
                f"min {min(per_pair):.2f}, max {max(per_pair):.2f}"
            )
        if written:
            print(f"nona wrote {statistics.median(written) / 2**20:.0f} MiB of uncompressed frames")

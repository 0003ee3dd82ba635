"""Time focuswrap against the hand-typed Hugin recipe it grew from.

    python benchmarks/bench_stack.py [STACK_DIR] [--rounds N] [--preset NAME] [--refuse] [--jpg]

Each round runs, in alternating order and each in a fresh temporary folder:

* **recipe**: the two commands exactly as a photographer types them in the
  photos' folder (``*.jpg`` expanded as the shell would, sorted);
* **focuswrap**: ``focuswrap stack --preset NAME ... -o out.tif --quiet``
  (TIFF, like the recipe's ``output.tif``, so the comparison is like-for-like);
* **focuswrap default**: the same with the default preset, when it differs;
* **default by hand** (``--by-hand``): the commands ``focuswrap stack --dry-run``
  prints for the default preset, run directly (with the project edit the
  dry-run notes, and nona's parts side by side as focuswrap runs them), so
  that focuswrap's own overhead on its default pipeline shows.

Every focuswrap run gets a fresh ``FOCUSWRAP_HOME``, so the user's config and
the aligned-frame cache never leak in.  ``--refuse`` adds the "instant re-fuse"
case: after a full run, a second focuswrap run with another contrast window
(a user preset with the same alignment), whose aligned frames come from the
cache, compared with the full run; and, for reference, ``enfuse`` alone on the
recipe's aligned frames.  The table gives median wall time, the ratio to the
recipe, peak memory (largest process in the command's tree) and the result's
sharpness (:func:`focuswrap.sharpness.gradient_energy`) against the recipe's.

The machine is shared: read medians, and compare only figures from one run.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from focuswrap import presets  # noqa: E402
from focuswrap.hugin import pto  # noqa: E402
from focuswrap.sharpness import gradient_energy  # noqa: E402

DEFAULT_STACK = REPO.parent / "shared" / "stacks" / "pcb"

# The recipe, word for word; "*" words are expanded like the shell does.
RECIPE = [
    "align_image_stack -m -e --use-given-order -a _huginoutput *.jpg",
    "enfuse --exposure-weight=0 --saturation-weight=0 --contrast-weight=1 --hard-mask"
    " --gray-projector=luminance --contrast-window-size=15 --output=output.tif _huginoutput*.tif",
]
REFUSE_RECIPE = RECIPE[1:]  # enfuse alone, on frames aligned beforehand


@dataclass
class Measure:
    seconds: list[float] = field(default_factory=list)
    peak_kb: list[int] = field(default_factory=list)
    sharpness: list[float] = field(default_factory=list)


@dataclass
class Run:
    seconds: float
    peak_kb: int
    output: Path


def run_tree(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, int]:
    """Run argv; (wall seconds, peak RSS in KiB of the largest process in its tree).

    os.wait4 reports the child's rusage including its waited-for descendants,
    so focuswrap's align_image_stack and enfuse are counted, not just Python.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with proc.stderr:  # type: ignore[union-attr]
        stderr = proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}\n{stderr.decode(errors='replace')[-2000:]}")
    return seconds, usage.ru_maxrss // (1024 if sys.platform == "darwin" else 1)  # macOS counts bytes


def shell_words(line: str, cwd: Path) -> list[str]:
    """Split a recipe line and expand its globs in ``cwd``, sorted, as bash would."""
    words: list[str] = []
    for word in line.split():
        words.extend(sorted(os.path.basename(p) for p in glob.glob(str(cwd / word))) if "*" in word else [word])
    return words


def fresh_folder(photos: list[Path]) -> Path:
    """A new temporary folder holding links to the photos (the recipe's '*.jpg')."""
    work = Path(tempfile.mkdtemp(prefix="bench."))
    for p in photos:
        os.symlink(p, work / p.name)
    return work


def run_recipe(lines: list[str], work: Path) -> Run:
    total, peak = 0.0, 0
    for line in lines:
        seconds, kb = run_tree(shell_words(line, work), work)
        total, peak = total + seconds, max(peak, kb)
    return Run(total, peak, work / "output.tif")


def focuswrap_argv() -> list[str]:
    exe = Path(sys.executable).with_name("focuswrap")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "focuswrap"]


def run_focuswrap(preset: str, photos: list[Path], work: Path, home: Path, suffix: str = "tif") -> Run:
    out = work / f"out.{suffix}"
    argv = focuswrap_argv() + ["stack", "--preset", preset, *map(str, photos), "-o", str(out), "--quiet", "--force"]
    seconds, kb = run_tree(argv, work, env={**os.environ, "FOCUSWRAP_HOME": str(home)})
    return Run(seconds, kb, out)


PLACEHOLDER = re.compile(r"/[^ ]*focuswrap\.XXXXXXXX")


def dry_run_lines(preset: str, photos: list[Path]) -> list[str]:
    """The commands ``focuswrap stack --dry-run`` prints for ``preset`` (TIFF output)."""
    with tempfile.TemporaryDirectory(prefix="bench-dry.") as tmp:
        argv = focuswrap_argv() + ["stack", "--preset", preset, *map(str, photos), "-o", f"{tmp}/out.tif", "--dry-run"]
        done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "FOCUSWRAP_HOME": tmp})
    if done.returncode != 0:
        raise SystemExit(f"focuswrap --dry-run failed: {done.stderr}")
    return done.stdout.splitlines()


def run_by_hand(lines: list[str], work: Path) -> Run:
    """Run the dry-run's commands in ``work``: align, the project edit, nona's parts side by side, enfuse."""
    import shlex

    folder = work / "by-hand"
    folder.mkdir()
    steps: list[list[tuple[dict[str, str], list[str]]]] = []
    for line in lines:
        words = shlex.split(PLACEHOLDER.sub(str(folder), line))
        env = {}
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            name, value = words.pop(0).split("=", 1)
            env[name] = value
        program = os.path.basename(words[0])
        if steps and program == "nona" and os.path.basename(steps[-1][0][1][0]) == "nona":
            steps[-1].append((env, words))  # nona's parts run together
        else:
            steps.append([(env, words)])
    start = time.perf_counter()
    peak = 0
    for step in steps:
        if os.path.basename(step[0][1][0]) == "nona":
            project = folder / "debug.pto"
            linear = pto.with_linear_response(project.read_text())
            if linear is not None:
                project.write_text(linear)
        children = [
            subprocess.Popen(
                argv, cwd=folder, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            for env, argv in step
        ]
        for child in children:
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
            if child.returncode != 0:
                raise SystemExit(f"failed ({child.returncode}): {' '.join(map(str, child.args))}")
            peak = max(peak, usage.ru_maxrss)
    return Run(time.perf_counter() - start, peak, folder / "fused.tif")


def refuse_preset(name: str, home: Path) -> None:
    """A user preset 'refuse': preset ``name`` with another fusion window, the same alignment.

    Running it after ``name`` is what a photographer tuning the fusion does:
    the aligned frames come from the cache.
    """
    text = presets.get(name).path.read_text(encoding="utf-8")
    text, n = re.subn(r"(?m)^contrast_window_size\s*=\s*\d+", "contrast_window_size = 11", text)
    if not n:
        text = text.replace("[fuse]\n", "[fuse]\ncontrast_window_size = 11\n", 1)
    folder = home / "config" / "presets"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "refuse.toml").write_text(text, encoding="utf-8")


def find_photos(stack_dir: Path) -> list[Path]:
    """The stack's JPEGs, leaving out a reference result and earlier focuswrap results."""
    found = sorted(stack_dir.glob("*.jpg"))
    return [p for p in found if not p.stem.startswith("reference") and not p.stem.endswith("-stacked")]


def median_of(argv: list[str], times: int = 10) -> float:
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def import_offenders(top: int = 6) -> list[tuple[int, str]]:
    """The slowest imports behind ``import focuswrap.cli`` (cumulative microseconds, module)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import focuswrap.cli"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    rows = []
    for line in done.stderr.splitlines():
        # import time:       735 |      38608 |     typer.main
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stack_dir", nargs="?", type=Path, default=DEFAULT_STACK)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--preset", help="Preset to compare (default: classic, else miniature).")
    parser.add_argument("--refuse", action="store_true", help="Also time a re-fuse on a warm aligned-frame cache.")
    parser.add_argument("--jpg", action="store_true", help="Also time focuswrap writing JPEG.")
    parser.add_argument(
        "--by-hand",
        action="store_true",
        help="Also time the default preset's commands (from --dry-run) run without focuswrap.",
    )
    peers_group = parser.add_argument_group("peers and breakdown (see benchmarks/peers.py)")
    peers_group.add_argument(
        "--peers",
        action="store_true",
        help="Run focuswrap's default against focus-stack and focusweave on the stacks given by --stacks.",
    )
    peers_group.add_argument(
        "--breakdown",
        action="store_true",
        help="Split the default's time per step and per process on the stacks given by --stacks.",
    )
    peers_group.add_argument("--focus-stack", metavar="PATH", help="focus-stack executable (default: on PATH).")
    peers_group.add_argument("--focusweave", metavar="PATH", help="focusweave executable (default: on PATH).")
    peers_group.add_argument(
        "--stacks",
        default="pcb,deep32,pcb21,16mp",
        help="Comma-separated subset of pcb, deep32, pcb21, 16mp (default: all four).",
    )
    peers_group.add_argument(
        "--stack-cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "focuswrap-bench-stacks",
        help="Where the derived stacks (pcb21, 16mp) are made once and kept.",
    )
    args = parser.parse_args()

    # An installed focuswrap has its bytecode (pip compiles it on install); a source
    # tree may not (PYTHONDONTWRITEBYTECODE), which would add about 20 ms of
    # compiling to every run.  Compile it first, as pip would.
    import compileall

    import focuswrap

    compileall.compile_dir(os.path.dirname(focuswrap.__file__), quiet=1)

    if args.peers or args.breakdown:
        import peers

        stacks = [s.strip() for s in args.stacks.split(",") if s.strip()]
        unknown = [s for s in stacks if s not in peers.STACKS]
        if unknown:
            raise SystemExit(f"unknown stack(s) {', '.join(unknown)}: choose from {', '.join(peers.STACKS)}")
        if args.breakdown:
            peers.breakdown(stacks, args.stack_cache, args.rounds)
        if args.peers:
            baseline = "focuswrap default"
            cases: dict[str, peers.Case] = {baseline: peers.focuswrap_case()}
            absent: dict[str, str] = {}
            for name, option, make in (
                ("focus-stack", args.focus_stack, peers.focus_stack_case),
                ("focusweave", args.focusweave, peers.focusweave_case),
            ):
                exe = peers.find_tool(option, name)
                if exe is None:
                    absent[name] = f"not at {option}" if option else "not on PATH"
                else:
                    cases[name] = make(exe)
            peers.compare(stacks, cases, args.rounds, args.stack_cache, absent, baseline)
        return

    photos = [p.resolve() for p in find_photos(args.stack_dir)]
    if len(photos) < 2:
        raise SystemExit(f"No stack in {args.stack_dir}: need two or more .jpg photos.")
    names = {p.name for p in presets.load_all()}
    compared = args.preset or ("classic" if "classic" in names else "miniature")
    default = presets.DEFAULT_PRESET

    cases = {
        "recipe": lambda w, h: run_recipe(RECIPE, w),
        f"focuswrap {compared}": lambda w, h: run_focuswrap(compared, photos, w, h),
    }
    if default != compared:
        cases[f"focuswrap {default} (default)"] = lambda w, h: run_focuswrap(default, photos, w, h)
    if args.by_hand:
        by_hand = dry_run_lines(default, photos)
        cases[f"{default} commands by hand"] = lambda w, h: run_by_hand(by_hand, w)
    if args.jpg:
        cases[f"focuswrap {compared} -> jpg"] = lambda w, h: run_focuswrap(compared, photos, w, h, "jpg")
    if args.refuse:
        cases["recipe enfuse only"] = lambda w, h: (run_recipe(RECIPE[:1], w), run_recipe(REFUSE_RECIPE, w))[1]
        cases[f"focuswrap {compared} re-fuse"] = lambda w, h: (
            run_focuswrap(compared, photos, w, h),
            refuse_preset(compared, h),
            run_focuswrap("refuse", photos, w, h),
        )[2]

    print(
        f"{len(photos)} photos in {args.stack_dir}, {args.rounds} rounds, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )
    print("recipe:    " + "\n           ".join(RECIPE))
    print(f"focuswrap: focuswrap stack --preset {compared} PHOTOS... -o out.tif --quiet")
    results = {name: Measure() for name in cases}
    for r in range(args.rounds):
        order = list(cases) if r % 2 == 0 else list(cases)[::-1]
        for name in order:
            work, home = fresh_folder(photos), Path(tempfile.mkdtemp(prefix="bench-home."))
            try:
                run = cases[name](work, home)
                m = results[name]
                m.seconds.append(run.seconds)
                m.peak_kb.append(run.peak_kb)
                m.sharpness.append(gradient_energy(run.output))
            finally:
                shutil.rmtree(work, ignore_errors=True)
                shutil.rmtree(home, ignore_errors=True)
            print(f"  round {r + 1}: {name:34} {run.seconds:6.2f} s", flush=True)

    base_t = statistics.median(results["recipe"].seconds)
    base_s = statistics.median(results["recipe"].sharpness)
    full_t = statistics.median(results[f"focuswrap {compared}"].seconds)
    print(
        f"\n{'case':36} {'median s':>8} {'min-max s':>13} {'x recipe':>8} {'peak MiB':>8}"
        f" {'sharpness':>9} {'x recipe':>8}"
    )
    for name, m in results.items():
        base = full_t if name.endswith("re-fuse") else base_t
        t = statistics.median(m.seconds)
        s = statistics.median(m.sharpness)
        spread = f"{min(m.seconds):.2f}-{max(m.seconds):.2f}"
        print(
            f"{name:36} {t:8.2f} {spread:>13} {t / base:8.2f} {max(m.peak_kb) / 1024:8.0f} {s:9.1f} {s / base_s:8.3f}"
        )
    hand = f"{default} commands by hand"
    if hand in results and f"focuswrap {default} (default)" in results:
        ours = statistics.median(results[f"focuswrap {default} (default)"].seconds)
        theirs = statistics.median(results[hand].seconds)
        print(
            f"(focuswrap's own overhead on its default pipeline: {ours - theirs:+.2f} s, "
            f"{ours / theirs:.3f}x the same commands run by hand.)"
        )
    if args.refuse:
        print(
            f"(the re-fuse row is compared with a full 'focuswrap {compared}' run: its second run fuses "
            "with another contrast window and takes the aligned frames from the cache.)"
        )

    python = median_of([sys.executable, "-c", "pass"])
    print("\nStart-up (median of 10):")
    print(f"  python -c pass         {python * 1000:6.0f} ms")
    for flag in ("--version", "--help"):
        t = median_of(focuswrap_argv() + [flag])
        print(f"  focuswrap {flag:12} {t * 1000:6.0f} ms  (+{(t - python) * 1000:.0f} ms over python)")
    print("Slowest imports behind 'import focuswrap.cli' (cumulative):")
    for us, module in import_offenders():
        print(f"  {us / 1000:7.1f} ms  {module.strip()}")


if __name__ == "__main__":
    main()

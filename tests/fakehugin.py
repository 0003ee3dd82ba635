"""Fake Hugin binaries: real executables that replay transcripts recorded from the real tools.

Each fake logs the argv it was given (one JSON line per call) and, call by
call, follows a plan: replay a recorded transcript (stdout, stderr, exit code
from ``tests/transcripts``), optionally write the files the real tool would
have written, or sleep (for interrupt and timeout tests).  Version probes
(``align_image_stack -h``, ``enfuse -V``) answer like the real tools.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts"
ALIGN = "align_image_stack"
ENFUSE = "enfuse"

_SCRIPT = r"""#!{python}
import json, os, sys, time
HERE = {here!r}
NAME = {name!r}
args = sys.argv[1:]
if NAME == "align_image_stack" and args == ["-h"]:
    print("align_image_stack: align overlapping images for HDR creation")
    print("align_image_stack version 2022.0.0.fake")
    sys.exit(1)
if NAME == "enfuse" and args in (["-V"], ["--version"]):
    print("enfuse 4.2")
    sys.exit(0)
log = os.path.join(HERE, NAME + ".calls.jsonl")
with open(log, "a") as fh:
    fh.write(json.dumps(args) + "\n")
with open(log) as fh:
    n = sum(1 for _ in fh) - 1
with open(os.path.join(HERE, NAME + ".plan.json")) as fh:
    plan = json.load(fh)
step = plan[min(n, len(plan) - 1)]
with open(os.path.join(HERE, NAME + ".pid"), "w") as fh:
    fh.write(str(os.getpid()))
if step.get("sleep"):
    time.sleep(step["sleep"])
if step.get("write"):
    from PIL import Image
    if NAME == "align_image_stack":
        prefix = args[args.index("-a") + 1]
        files = [a for a in args[args.index("-a") + 2:]]
        for i, f in enumerate(files):
            with Image.open(f) as im:
                im.convert("RGBA").save(f"{{prefix}}{{i:04d}}.tif")
    else:
        out = [a for a in args if a.startswith("--output=")][0].split("=", 1)[1]
        files = [a for a in args if not a.startswith("-")]
        with Image.open(files[-1]) as im:
            im.save(out)
t = step.get("transcript") or {{}}
work = os.getcwd()
sys.stdout.write(t.get("stdout", "").replace("{{work}}", work))
sys.stderr.write(t.get("stderr", "").replace("{{work}}", work))
sys.exit(t.get("returncode", 0))
"""


def transcript(tool: str, case: str) -> dict:
    """A recorded transcript: tool, case, argv, returncode, stdout, stderr."""
    return json.loads((TRANSCRIPTS / tool / f"{case}.json").read_text())


@dataclass
class Fake:
    """One fake tool in a bin folder."""

    bin_dir: Path
    name: str

    @property
    def calls(self) -> list[list[str]]:
        log = self.bin_dir / f"{self.name}.calls.jsonl"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    def plan(self, *steps: dict) -> Fake:
        """Set what the next calls do, in order (the last step repeats)."""
        (self.bin_dir / f"{self.name}.plan.json").write_text(json.dumps(list(steps)))
        return self

    @property
    def pid(self) -> int | None:
        p = self.bin_dir / f"{self.name}.pid"
        return int(p.read_text()) if p.exists() else None


def success(tool: str) -> dict:
    """A step that writes the tool's files and replays the recorded success."""
    return {"transcript": transcript(tool, "success"), "write": True}


def failure(tool: str, case: str) -> dict:
    """A step that replays a recorded failure and writes nothing."""
    return {"transcript": transcript(tool, case), "write": False}


def install(bin_dir: Path, name: str) -> Fake:
    """Write an executable fake ``name`` into ``bin_dir`` (succeeding by default)."""
    # Absolute: the fake finds its plan and log from inside the tool's cwd (the work folder).
    bin_dir = Path(bin_dir).resolve()
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / name
    exe.write_text(_SCRIPT.format(python=sys.executable, here=str(bin_dir), name=name))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    if os.name == "nt":  # a .bat shim so Windows can start it
        (bin_dir / f"{name}.bat").write_text(f'@"{sys.executable}" "{exe}" %*\n')
    fake = Fake(bin_dir, name)
    fake.plan(success(name))
    return fake


@dataclass
class Hugin:
    """Both fakes, side by side in one bin folder (what ``--hugin-dir`` is given)."""

    align: Fake
    enfuse: Fake
    bin_dir: Path


def install_hugin(bin_dir: Path) -> Hugin:
    """Install both fakes into ``bin_dir`` (both succeeding by default)."""
    align = install(bin_dir, ALIGN)
    return Hugin(align, install(bin_dir, ENFUSE), align.bin_dir)

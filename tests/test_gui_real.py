"""The page's API with real stacks: the real Hugin tools on the real pcb photos, through Starlette's test client.

Each stack is a real child process ``focuswrap stack ... --events``; its
events come back as the page's progress.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from PIL import Image
from test_gui import Page

from focuswrap.gui import security
from focuswrap.gui.jobs import Limits, Manager

pytestmark = pytest.mark.real

#: Seconds a real stack may take on a shared two-core machine (a limit for a hung test, not a speed check).
STACK_LIMIT = float(os.environ.get("FOCUSWRAP_TEST_STACK_LIMIT", 900))


@pytest.fixture
def manager(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    m = Manager(results_dir=tmp_path / "results", limits=Limits(grace=3600))
    yield m
    m.shutdown()


@pytest.fixture
def page(manager: Manager) -> Page:
    return Page(manager, security.new_token()).enter()


def _wait_run(page: Page, job: str, run: int, limit: float = STACK_LIMIT) -> dict:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        state = page.client.get(f"/api/jobs/{job}").json()
        found = next(r for r in state["runs"] if r["id"] == run)
        if found["state"] not in ("queued", "running"):
            return found
        time.sleep(0.5)
    raise AssertionError(
        f"the stack did not finish within {limit} s: {found}, last events {page.manager.jobs[job].events[-3:]}"
    )


def _events(page: Page, job: str) -> list[dict]:
    with page.client.stream("GET", f"/api/jobs/{job}/events?once=1") as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        body = "".join(answer.iter_text())
    return [json.loads(line[len("data: ") :]) for line in body.splitlines() if line.startswith("data: ")]


def _processes_in(folder: Path) -> list[int]:
    root = str(folder.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd").startswith(root):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _upload_all(page: Page, job: str, photos: list[Path]) -> None:
    for p in photos:
        answer = page.upload(job, p)
        assert answer.status_code == 201, answer.text


@pytest.mark.pcb
def test_stack_pcb_progress_result_and_refuse_from_the_cache(page: Page, manager: Manager, pcb_photos):
    job = page.new_job()
    _upload_all(page, job, pcb_photos)
    answer = page.post(f"/api/jobs/{job}/stack", json={"preset": "miniature", "format": "jpg", "crop": True})
    assert answer.status_code == 202, answer.text
    first = answer.json()["id"]
    # One stack at a time: a second start while it runs is refused with a sentence.
    again = page.post(f"/api/jobs/{job}/stack", json={"preset": "miniature"})
    assert again.status_code == 409 and "already being stacked" in again.json()["error"]
    run = _wait_run(page, job, first)
    assert run["state"] == "done", run
    done = run["brackets"][0]
    result = done["result"]
    assert result["preset"] == "miniature" and not result["cached"]
    assert result["gain"] > 1.0
    assert result["sharpest_name"] in [p.name for p in pcb_photos]

    events = _events(page, job)
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "run_queued" and "run_started" in kinds and kinds[-1] == "run_finished"
    words = [e["text"] for e in events if e["kind"] == "progress"]
    assert len(set(words)) >= 3, words  # progress in plain words, changing as it works
    assert any(p.name in w for w in words for p in pcb_photos), words  # naming the person's photos
    assert all("/" not in w for w in words), words  # never the copies' paths
    assert all(e["elapsed"] >= 0 for e in events if e["kind"] == "progress")

    base = f"/api/jobs/{job}/runs/{first}/0"
    image = page.client.get(f"{base}/image")
    assert image.status_code == 200 and image.content[:3] == b"\xff\xd8\xff"
    download = page.client.get(f"{base}/download")
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    saved = sorted(manager.results_dir.iterdir())
    assert [p.name for p in saved] == ["pcb_001-miniature-stacked.jpg"]
    assert download.content == saved[0].read_bytes()
    with Image.open(saved[0]) as im, Image.open(pcb_photos[0]) as original:
        assert im.format == "JPEG"
        assert im.getexif().get(0x010F) == original.getexif().get(0x010F)  # the photos' EXIF (Make) is kept
    map_png = page.client.get(f"{base}/map")
    assert map_png.status_code == 200 and map_png.content[:4] == b"\x89PNG"

    # Another preset with the same alignment: only blended again, from the cache; both results kept.
    answer = page.post(f"/api/jobs/{job}/stack", json={"preset": "halo-safe", "format": "jpg", "brackets": [0]})
    second = answer.json()["id"]
    run = _wait_run(page, job, second)
    assert run["state"] == "done", run
    assert run["brackets"][0]["result"]["cached"] is True
    # The same preset once more: saved beside the first, never over it.
    third = page.post(f"/api/jobs/{job}/stack", json={"preset": "miniature", "format": "png"}).json()["id"]
    assert _wait_run(page, job, third)["state"] == "done"
    names = sorted(p.name for p in manager.results_dir.iterdir())
    assert names == ["pcb_001-halo-safe-stacked.jpg", "pcb_001-miniature-stacked.jpg", "pcb_001-miniature-stacked.png"]
    assert page.client.get(f"/api/jobs/{job}/runs/{third}/0/image").content[:4] == b"\x89PNG"

    # Nothing of the stacks is left in the job's work folder, and closing it removes the uploads.
    folder = manager.jobs[job].folder
    assert list((folder / "tmp").iterdir()) == []
    assert page.post(f"/api/jobs/{job}/close").status_code == 200
    assert not folder.exists()


@pytest.mark.pcb
def test_cancel_stops_the_stack_at_once_and_leaves_nothing(page: Page, manager: Manager, pcb_photos):
    job = page.new_job()
    _upload_all(page, job, pcb_photos)
    run = page.post(f"/api/jobs/{job}/stack", json={"preset": "miniature"}).json()["id"]
    folder = manager.jobs[job].folder
    deadline = time.monotonic() + STACK_LIMIT
    # Wait for a Hugin tool to be at work: a process inside the stack's work folder.
    while time.monotonic() < deadline and not (list((folder / "tmp").iterdir()) and _processes_in(folder / "tmp")):
        time.sleep(0.2)
    assert _processes_in(folder / "tmp"), "no tool started"
    answer = page.post(f"/api/jobs/{job}/runs/{run}/cancel")
    assert answer.status_code == 200
    assert answer.json()["state"] == "cancelled"
    assert answer.json()["brackets"][0]["state"] == "cancelled"
    assert _processes_in(folder) == []
    assert list((folder / "tmp").iterdir()) == []
    assert [p for p in (folder / "results").rglob("*") if p.is_file()] == []
    assert not manager.results_dir.exists() or list(manager.results_dir.iterdir()) == []
    assert "run_finished" in [e["kind"] for e in _events(page, job)]


def test_a_failed_stack_shows_the_sentence_the_attempts_and_the_advice(page: Page, tmp_path: Path):
    # Two photos of nothing alike: alignment finds no match on any rung of the ladder.
    job = page.new_job()
    shots = []
    for i in range(2):
        path = tmp_path / f"IMG_{i + 1}.jpg"
        Image.effect_noise((160, 120), 90 + 40 * i).convert("RGB").save(path, quality=95)
        shots.append(path)
    _upload_all(page, job, shots)
    run = page.post(f"/api/jobs/{job}/stack", json={"preset": "miniature"}).json()["id"]
    found = _wait_run(page, job, run)
    assert found["state"] == "failed"
    failure = found["brackets"][0]["failure"]
    assert failure["message"].endswith(".") and "\n" not in failure["message"]
    assert failure["exit_code"] == 4  # ExitCode.ALIGN_FAILED, as on the command line
    assert len(failure["attempts"]) >= 2  # the retry ladder ran, as it does there
    assert failure["hint"]
    assert "Traceback" not in json.dumps(failure)

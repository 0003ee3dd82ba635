"""The web page's server, through Starlette's test client: security refusals, uploads, brackets, clean-up.

Stacks with the real tools are in ``test_gui_real.py``; what a person does
in a real browser is in ``tests/e2e``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import photo, photos
from starlette.testclient import TestClient

from focuswrap import paths
from focuswrap.errors import ConfigError
from focuswrap.gui import security, server
from focuswrap.gui.app import create_app
from focuswrap.gui.jobs import Limits, Manager, results_folder, safe_name

PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"


class Page:
    """A test client that entered through the printed address (it holds the cookie), and its server's manager."""

    def __init__(self, manager: Manager, token: str) -> None:
        self.manager = manager
        self.token = token
        self.client = TestClient(
            create_app(manager, token=token, hosts=security.allowed_hosts("127.0.0.1", PORT)), base_url=BASE
        )

    def enter(self) -> Page:
        answer = self.client.get(f"/?token={self.token}", follow_redirects=False)
        assert answer.status_code == 303, answer.text
        assert "HttpOnly" in answer.headers["set-cookie"] and "SameSite=Strict" in answer.headers["set-cookie"]
        self.client.cookies.set(security.COOKIE, self.token)
        return self

    def post(self, path: str, **kw):
        headers = {security.HEADER: self.token, **kw.pop("headers", {})}
        return self.client.post(path, headers=headers, **kw)

    def new_job(self) -> str:
        answer = self.post("/api/jobs")
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]

    def upload(self, job: str, path: Path, *, name: str | None = None, folder: str = ""):
        return self.post(
            f"/api/jobs/{job}/photos",
            content=path.read_bytes(),
            headers={"X-File-Name": name or path.name, "X-File-Folder": folder, "X-File-Modified": "1700000000000"},
        )


@pytest.fixture
def manager(tmp_path: Path):
    m = Manager(results_dir=tmp_path / "results", limits=Limits(photo_bytes=200_000, photos=6, grace=600))
    yield m
    m.shutdown()


@pytest.fixture
def page(manager: Manager) -> Page:
    return Page(manager, security.new_token()).enter()


# ---------------------------------------------------------------- security


def test_no_token_is_refused(manager: Manager):
    fresh = Page(manager, security.new_token())
    for path in ("/", "/api/info", "/static/app.js"):
        answer = fresh.client.get(path)
        assert answer.status_code == 403, path
        assert "full address" in answer.text
    assert fresh.client.post("/api/jobs").status_code == 403


def test_wrong_token_in_the_address_is_refused(manager: Manager):
    fresh = Page(manager, security.new_token())
    answer = fresh.client.get("/?token=guess", follow_redirects=False)
    assert answer.status_code == 403
    assert "set-cookie" not in answer.headers


def test_the_printed_address_gives_the_page_and_its_token(page: Page):
    answer = page.client.get("/")
    assert answer.status_code == 200
    assert page.token in answer.text  # for the page's own POSTs (the cookie is HttpOnly)
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    assert "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize("host", ["evil.example:8765", "127.0.0.1:9999", "localhost", "192.168.1.5:8765", ""])
def test_wrong_host_header_is_refused(page: Page, host: str):
    answer = page.client.get("/api/info", headers={"Host": host})
    assert answer.status_code == 403
    assert "127.0.0.1 or localhost" in answer.text


def test_localhost_name_is_accepted(page: Page):
    assert page.client.get("/api/info", headers={"Host": f"localhost:{PORT}"}).status_code == 200


def test_post_needs_the_token_header_as_well_as_the_cookie(page: Page):
    assert page.client.post("/api/jobs").status_code == 403
    assert page.client.post("/api/jobs", headers={security.HEADER: "wrong"}).status_code == 403
    assert page.post("/api/jobs").status_code == 201


def test_post_from_another_origin_is_refused(page: Page):
    answer = page.post("/api/jobs", headers={"Origin": "http://evil.example"})
    assert answer.status_code == 403
    assert page.post("/api/jobs", headers={"Origin": BASE}).status_code == 201


def test_wrong_method_is_refused(page: Page):
    job = page.new_job()
    assert page.client.get("/api/jobs").status_code == 405  # creating is POST only
    assert page.client.get(f"/api/jobs/{job}/stack").status_code == 405
    assert page.client.get(f"/api/jobs/{job}/close").status_code == 405
    assert page.post(f"/api/jobs/{job}").status_code == 405  # reading is GET only


def test_no_cors_preflight(page: Page):
    answer = page.client.options(
        "/api/jobs", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert answer.status_code in (403, 405)
    assert "access-control-allow-origin" not in answer.headers


def test_non_loopback_host_is_refused_unless_forced():
    from focuswrap.errors import BadInputError

    with pytest.raises(BadInputError, match="only listens on this computer"):
        server.check_host("0.0.0.0", force=False)
    assert "network" in server.check_host("0.0.0.0", force=True)
    assert server.check_host("127.0.0.1", force=False) is None
    assert server.check_host("localhost", force=False) is None
    assert server.check_host("::1", force=False) is None


# ---------------------------------------------------------------- uploads and brackets


def test_upload_forms_one_bracket_in_natural_order(page: Page, tmp_path: Path):
    job = page.new_job()
    shot = photos(tmp_path / "shots", 3)
    for p in reversed(shot):
        answer = page.upload(job, p)
        assert answer.status_code == 201, answer.text
    state = page.client.get(f"/api/jobs/{job}").json()
    assert len(state["brackets"]) == 1
    bracket = state["brackets"][0]
    names = {p["index"]: p["name"] for p in state["photos"]}
    assert [names[i] for i in bracket["photos"]] == ["IMG_1.jpg", "IMG_2.jpg", "IMG_3.jpg"]
    assert bracket["ready"] and bracket["refused"] == {}
    thumb = page.client.get(f"/api/jobs/{job}/photos/{bracket['photos'][0]}/thumb")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"


def test_names_are_never_used_as_paths(page: Page, manager: Manager, tmp_path: Path):
    job = page.new_job()
    shot = photos(tmp_path / "shots", 2)
    hostile = ["../../escape.jpg", "/etc/passwd.jpg", "..\\..\\win.jpg"]
    for name, p in zip(hostile, [*shot, shot[0]], strict=True):
        assert page.upload(job, p, name=name, folder="../../up").status_code == 201
    stored = [u.path for u in manager.jobs[job].uploads]
    folder = manager.jobs[job].folder
    for path in stored:
        assert path.resolve().is_relative_to(folder.resolve()), path
        assert all(part not in ("..", "") for part in path.relative_to(folder).parts)
    assert not (tmp_path / "escape.jpg").exists()
    names = [p["name"] for p in page.client.get(f"/api/jobs/{job}").json()["photos"]]
    assert names == hostile  # shown as given, only shown


def test_safe_name():
    taken: set[str] = set()
    assert safe_name("IMG_20240101_120000_3.jpg", taken) == "IMG_20240101_120000_3.jpg"
    assert safe_name("IMG_20240101_120000_3.JPG", taken) == "IMG_20240101_120000_3-2.jpg"
    assert safe_name("../../x y.png", taken) == "x_y.png"
    assert safe_name("...", taken) == "photo"
    assert safe_name("ü.tif", taken) == "photo.tif"


def test_oversize_photo_is_refused_and_nothing_kept(page: Page, manager: Manager, tmp_path: Path):
    job = page.new_job()
    big = photo(tmp_path / "big.jpg", (900, 900), sigma=120)
    assert big.stat().st_size > manager.limits.photo_bytes
    answer = page.upload(job, big)
    assert answer.status_code == 413
    assert "big.jpg is larger than" in answer.json()["error"]
    folder = manager.jobs[job].folder / "photos"
    assert [p for p in folder.rglob("*") if p.is_file()] == []


def test_oversize_photo_without_length_is_stopped_while_streaming(page: Page, manager: Manager, tmp_path: Path):
    job = page.new_job()
    big = photo(tmp_path / "big.jpg", (900, 900), sigma=120)

    def chunks():
        data = big.read_bytes()
        for i in range(0, len(data), 16_384):
            yield data[i : i + 16_384]

    answer = page.post(f"/api/jobs/{job}/photos", content=chunks(), headers={"X-File-Name": "big.jpg"})
    assert answer.status_code == 413
    assert "larger than" in answer.json()["error"]
    assert [p for p in (manager.jobs[job].folder / "photos").rglob("*") if p.is_file()] == []


def test_too_many_photos_are_refused(page: Page, manager: Manager, tmp_path: Path):
    job = page.new_job()
    shot = photos(tmp_path / "shots", manager.limits.photos + 1)
    codes = [page.upload(job, p).status_code for p in shot]
    assert codes[:-1] == [201] * manager.limits.photos
    answer = page.upload(job, shot[-1])
    assert answer.status_code == 413
    assert f"at most {manager.limits.photos} photos" in answer.json()["error"]


def _refusals(page: Page, job: str) -> dict[str, str]:
    state = page.client.get(f"/api/jobs/{job}").json()
    names = {p["index"]: p["name"] for p in state["photos"]}
    return {names[int(i)]: why for b in state["brackets"] for i, why in b["refused"].items()}


def test_bad_files_are_refused_with_the_reason_next_to_them(page: Page, tmp_path: Path):
    job = page.new_job()
    shot = photos(tmp_path / "shots", 3, size=(96, 72))
    for p in shot:
        page.upload(job, p)
    text = tmp_path / "notes.jpg"
    text.write_text("my shopping list\n")
    other = photo(tmp_path / "other.jpg", (64, 48))
    page.upload(job, text)
    page.upload(job, other)
    refused = _refusals(page, job)
    assert set(refused) == {"notes.jpg", "other.jpg"}
    assert refused["notes.jpg"] == "notes.jpg is not an image focuswrap can read; give JPEG, TIFF or PNG photos."
    assert refused["other.jpg"].startswith("other.jpg is 64x48 but the other photos are 96x72")
    assert str(tmp_path) not in json.dumps(refused)  # the person's names, not the copies' paths
    state = page.client.get(f"/api/jobs/{job}").json()
    assert state["brackets"][0]["ready"]


def test_a_single_photo_is_refused(page: Page, tmp_path: Path):
    job = page.new_job()
    page.upload(job, photos(tmp_path / "one", 1)[0])
    assert _refusals(page, job) == {"IMG_1.jpg": "focuswrap needs at least two photos to stack; got 1: IMG_1.jpg."}
    state = page.client.get(f"/api/jobs/{job}").json()
    assert not state["brackets"][0]["ready"]
    answer = page.post(f"/api/jobs/{job}/stack", json={"preset": "miniature"})
    assert answer.status_code == 400
    assert "no bracket of two or more" in answer.json()["error"]


def test_a_folder_is_split_into_brackets_as_batch_does(page: Page, tmp_path: Path):
    job = page.new_job()
    shots = tmp_path / "OpenCamera"
    for stamp in ("20240101_120000", "20240101_130000"):
        for i, p in enumerate(photos(tmp_path / stamp, 2)):
            target = shots / f"IMG_{stamp}_{i}.jpg"
            target.parent.mkdir(exist_ok=True)
            p.rename(target)
    (shots / "readme.txt").write_text("not a photo")
    for p in sorted(shots.iterdir()):
        assert page.upload(job, p, folder="OpenCamera").status_code == 201
    state = page.client.get(f"/api/jobs/{job}").json()
    named = {b["name"]: b for b in state["brackets"]}
    assert {"IMG_20240101_120000", "IMG_20240101_130000"} <= set(named)
    assert all(
        named[n]["ready"] and len(named[n]["photos"]) == 2 for n in ("IMG_20240101_120000", "IMG_20240101_130000")
    )
    assert "readme.txt is not a photo focuswrap can stack" in json.dumps(_refusals(page, job))


def test_unknown_preset_and_format_are_refused(page: Page, tmp_path: Path):
    job = page.new_job()
    for p in photos(tmp_path / "shots", 2):
        page.upload(job, p)
    answer = page.post(f"/api/jobs/{job}/stack", json={"preset": "nope"})
    assert answer.status_code == 400 and "nope" in answer.json()["error"]
    answer = page.post(f"/api/jobs/{job}/stack", json={"preset": "miniature", "format": "gif"})
    assert answer.status_code == 400 and "JPEG, TIFF or PNG" in answer.json()["error"]
    assert (
        page.post(f"/api/jobs/{job}/stack", content=b"{", headers={"Content-Type": "application/json"}).status_code
        == 400
    )


def test_info_lists_presets_with_descriptions_and_the_results_folder(page: Page, manager: Manager):
    info = page.client.get("/api/info").json()
    names = [p["name"] for p in info["presets"]]
    assert "miniature" in names and info["default_preset"] == "miniature"
    assert all(p["description"] for p in info["presets"])
    assert info["results_dir"] == str(manager.results_dir)
    assert [f["label"] for f in info["formats"]] == ["JPEG", "TIFF", "PNG"]


# ---------------------------------------------------------------- the results folder


def _config(text: str) -> None:
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text(text, encoding="utf-8")


def test_results_folder_from_config_toml_unless_given(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    _config('results_dir = "~/stacked"\n')
    assert results_folder() == tmp_path / "me" / "stacked"
    assert results_folder(tmp_path / "given") == tmp_path / "given"  # --results-dir wins
    m = Manager()
    try:
        assert m.results_dir == tmp_path / "me" / "stacked"
    finally:
        m.shutdown()


def test_results_folder_without_config_is_the_default(_isolated_home: Path):
    assert results_folder() == _isolated_home / "results"  # FOCUSWRAP_HOME stands in for Pictures/focuswrap


@pytest.mark.parametrize("value", ['""', '"/tmp/\\u0000x"', "3"])
def test_a_bad_results_dir_in_config_toml_is_one_sentence(value: str):
    _config(f"results_dir = {value}\n")
    with pytest.raises(ConfigError) as caught:
        results_folder()
    assert ": results_dir: " in caught.value.message and "\n" not in caught.value.message


# ---------------------------------------------------------------- clean-up


def test_closing_a_job_deletes_its_folder(page: Page, manager: Manager, tmp_path: Path):
    job = page.new_job()
    for p in photos(tmp_path / "shots", 2):
        page.upload(job, p)
    folder = manager.jobs[job].folder
    assert any(folder.rglob("*.jpg"))
    assert page.post(f"/api/jobs/{job}/close").status_code == 200
    assert not folder.exists()
    assert page.client.get(f"/api/jobs/{job}").status_code == 404


def test_a_job_whose_page_is_gone_is_removed_after_the_grace_period(tmp_path: Path):
    m = Manager(results_dir=tmp_path / "results", limits=Limits(grace=0.5))
    try:
        job = m.create_job()
        folder = job.folder
        import time

        deadline = time.monotonic() + 60
        while folder.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not folder.exists()
        assert job.id not in m.jobs
    finally:
        m.shutdown()


def test_shutdown_removes_every_work_folder(tmp_path: Path):
    m = Manager(results_dir=tmp_path / "results")
    job = m.create_job()
    (job.folder / "photos" / "x.jpg").write_bytes(b"x")
    m.shutdown()
    assert not m.root.exists()


def test_help_and_version_do_not_import_the_web_stack():
    code = (
        "import sys\n"
        "from focuswrap import cli\n"
        "for args in (['--help'], ['--version'], ['gui', '--help']):\n"
        "    try:\n"
        "        cli.app(args, prog_name='focuswrap')\n"
        "    except SystemExit:\n"
        "        pass\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn', 'anyio', 'httpx')"
        " or m.startswith('focuswrap.gui'))\n"
        "print('LOADED', loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "LOADED []" in out.stdout, out.stdout


@pytest.mark.parametrize("kind", ["grey16-alpha", "float-grey"])
def test_thumbnails_and_views_of_tiffs_pillow_cannot_show(tmp_path: Path, kind: str) -> None:
    """The page shows 16-bit grey (with alpha) and float TIFFs, which Pillow cannot open or shows black."""
    import numpy as np
    import tifffile
    from PIL import Image

    from focuswrap.gui import app as page

    ramp = np.linspace(0.0, 1.0, 64 * 48, dtype=np.float32).reshape(48, 64)
    source = tmp_path / f"{kind}.tif"
    if kind == "grey16-alpha":
        grey = (ramp * 65535).astype(np.uint16)
        alpha = np.full_like(grey, 65535)
        tifffile.imwrite(source, np.dstack([grey, alpha]), photometric="minisblack", extrasamples=["unassalpha"])
    else:
        tifffile.imwrite(source, ramp, photometric="minisblack")
    thumb = page._preview(source, tmp_path / "thumb.jpg", 32)
    view = page._viewable(source, tmp_path / "view.jpg")
    assert thumb is not None and view is not None
    for made in (thumb, view):
        with Image.open(made) as im:
            low, high = im.convert("L").getextrema()
        assert low < 40 and high > 215, (made.name, low, high)  # the ramp, not a black picture


def test_the_page_names_a_folder_under_home_with_a_tilde(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from focuswrap.gui.jobs import shown_path

    monkeypatch.setenv("HOME", str(tmp_path))
    assert shown_path(tmp_path / "Pictures" / "focuswrap" / "a.jpg") == "~/Pictures/focuswrap/a.jpg"
    assert shown_path(Path("/elsewhere/a.jpg")) == "/elsewhere/a.jpg"

"""A real ``focuswrap gui`` server and a real headless Chromium (Debian's chromium + chromium-driver) driving it.

Nothing is downloaded at run time: selenium is pointed at the system's
chromedriver and Chromium.  Screenshots go to the test's temporary folder;
with ``FOCUSWRAP_SCREENSHOTS=docs/img`` they replace the ones in the docs.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = ("chromium", "chromium-browser")
#: Generous: the machine is shared by other work (never a speed check).
START_LIMIT = 120


def _chromium() -> str | None:
    for name in CHROMIUM:
        found = shutil.which(name)
        if found:
            return found
    return None


def _need(what: str) -> None:
    msg = f"{what} is not installed (Debian packages chromium and chromium-driver)"
    if os.environ.get("FOCUSWRAP_REQUIRE_REAL"):
        pytest.fail(msg + " but FOCUSWRAP_REQUIRE_REAL is set")
    pytest.skip(msg)


@dataclass
class Server:
    """A running ``focuswrap gui --no-browser`` and the folders it was given."""

    process: subprocess.Popen[str]
    address: str
    tmp: Path  #: its TMPDIR: its job folders (and the stacks' work folders) are in there
    results: Path
    downloads: Path
    results_shown: str  #: how the page names the results folder

    def job_folders(self) -> list[Path]:
        return sorted(self.tmp.glob("focuswrap-gui.*/job.*"))

    def leftovers(self) -> list[Path]:
        """Files the stacks left in the job folders' tmp/ (their work folders): must be none after a stop."""
        return [p for job in self.job_folders() for p in (job / "tmp").rglob("*")]

    def processes_inside(self) -> list[int]:
        """Processes whose working folder is inside the server's TMPDIR (the stack and its Hugin tools)."""
        found = []
        root = str(self.tmp.resolve())
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cwd = os.readlink(entry / "cwd")
            except OSError:
                continue
            if cwd.startswith(root):
                found.append(int(entry.name))
        return found

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture
def gui_server(tmp_path: Path) -> Iterator[Server]:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    results = tmp_path / "results"
    shown = str(results)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"}
    if os.environ.get("FOCUSWRAP_SCREENSHOTS"):
        # The docs' pictures show a person's results folder, not the test's temporary one.
        env["HOME"] = str(tmp_path / "home")
        results = tmp_path / "home" / "Pictures" / "focuswrap"
        shown = "~/Pictures/focuswrap"
    process = subprocess.Popen(
        [sys.executable, "-m", "focuswrap", "gui", "--no-browser", "--results-dir", str(results)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert process.stdout is not None
    address = process.stdout.readline().strip()
    assert address.startswith("http://127.0.0.1:") and "/?token=" in address, address
    server = Server(process, address, tmp, results, downloads, shown)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def browser(gui_server: Server, tmp_path: Path):
    chromium = _chromium()
    if chromium is None:
        _need("Chromium")
    driver_path = shutil.which("chromedriver")
    if driver_path is None:
        _need("chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must never fetch a driver or a browser
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1280,1400",
    ):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(gui_server.downloads),
            "download.prompt_for_download": False,
            "safebrowsing.enabled": False,
        },
    )
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shoot(tmp_path: Path) -> Callable[[object, str], Path]:
    """Save a screenshot as gui-NAME.png (into FOCUSWRAP_SCREENSHOTS when set, else the test's folder)."""
    target = Path(os.environ.get("FOCUSWRAP_SCREENSHOTS") or tmp_path / "screenshots")
    if not target.is_absolute():
        target = REPO / target
    target.mkdir(parents=True, exist_ok=True)

    def shoot(what, name: str) -> Path:
        """``what``: the browser (its window) or one element of the page."""
        path = target / f"gui-{name}.png"
        time.sleep(0.3)  # let the last repaint land (a picture, not a check)
        if hasattr(what, "save_screenshot"):
            what.save_screenshot(str(path))
        else:
            what.parent.execute_script("arguments[0].scrollIntoView({block: 'start'})", what)
            what.screenshot(str(path))
        return path

    return shoot

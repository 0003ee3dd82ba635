"""What a person does on the page, in a real headless Chromium, with the real Hugin tools and the pcb photos."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image

pytestmark = [pytest.mark.real, pytest.mark.pcb]

#: Seconds a real stack may take on a shared two-core machine before the test gives up (not a speed check).
STACK_LIMIT = 900
STEP_LIMIT = 120

_EXIF_IFD = 0x8769


def _wait(driver, condition, limit: float = STEP_LIMIT, what: str = "the page"):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, limit, poll_frequency=0.2).until(condition, f"{what} did not happen within {limit} s")


def _by(testid: str) -> str:
    return f"[data-testid='{testid}']"


def _find(driver, testid: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, _by(testid))


def _all(driver, testid: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, _by(testid))


def _open(driver, server) -> None:
    driver.get(server.address)
    _wait(driver, lambda d: "token=" not in d.current_url, what="entering")  # the token moved into the cookie
    _wait(driver, lambda d: _all(d, "preset-miniature"), what="the preset list")
    assert _find(driver, "preset-miniature").is_selected()


def _add(driver, photos: list[Path]) -> None:
    _find(driver, "file-input").send_keys("\n".join(str(p) for p in photos))


def _loaded(driver, element) -> bool:
    return bool(driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", element))


def _added(driver) -> None:
    _wait(driver, lambda d: _find(d, "upload-status").text.startswith("Added"), what="adding the photos")


def test_stack_the_pcb_photos_see_the_result_and_the_map_and_download_it(gui_server, browser, pcb_photos, shoot):
    driver = browser
    _open(driver, gui_server)
    assert _find(driver, "results-dir").text == str(gui_server.results)
    shoot(driver, "start")

    _add(driver, pcb_photos)
    _added(driver)
    bracket = _find(driver, "bracket")
    assert f"{len(pcb_photos)} photos" in _find(driver, "bracket-title").text
    thumbs = bracket.find_elements("css selector", "[data-testid='photo'] img")
    assert len(thumbs) == len(pcb_photos)
    _wait(driver, lambda d: all(_loaded(d, t) for t in thumbs), what="the thumbnails")
    assert [t.get_attribute("alt") for t in thumbs] == [f"Photo {p.name}" for p in pcb_photos]
    shoot(driver, "photos")

    _find(driver, "stack").click()
    seen: list[str] = []

    def progressing(d) -> bool:
        for el in _all(d, "progress-text"):
            text = el.text.strip()
            if text and (not seen or seen[-1] != text):
                seen.append(text)
        return len(set(seen)) >= 3 or bool(_all(d, "result"))

    _wait(driver, progressing, STACK_LIMIT, "progress")
    if not _all(driver, "result"):
        shoot(driver, "progress")
    _wait(driver, lambda d: _all(d, "result") or _all(d, "failure"), STACK_LIMIT, "the result")
    assert not _all(driver, "failure"), _find(driver, "failure-message").text
    assert len(set(seen)) >= 2, seen  # the words changed while it worked
    image = _find(driver, "result-image")
    _wait(driver, lambda d: _loaded(d, image), what="the result image")
    width, height = driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", image)
    assert width > 1000 and height > 700
    assert "as sharp as the sharpest single photo" in _find(driver, "gain").text
    assert gui_server.results_shown in _find(driver, "saved").text
    shoot(_find(driver, "result"), "result")

    # The contribution map over the result, with its legend.
    overlay = _find(driver, "map-overlay")
    assert not overlay.is_displayed()
    _find(driver, "map-toggle").click()
    _wait(driver, lambda d: overlay.is_displayed() and _loaded(d, overlay), what="the map")
    legend = _find(driver, "map-legend")
    assert legend.is_displayed()
    assert pcb_photos[0].name in legend.text and "no photo was sharp here" in legend.text
    shoot(_find(driver, "result"), "map")
    _find(driver, "map-toggle").click()

    # Before/after against the sharpest single photo, and 100 % zoom.
    _find(driver, "before-after").click()
    before = _find(driver, "before-image")
    _wait(driver, lambda d: before.is_displayed() and _loaded(d, before), what="the sharpest photo")
    _find(driver, "before-after").click()
    frame = _find(driver, "result-frame")
    frame.click()
    assert "zoomed" in frame.get_attribute("class")
    frame.click()

    # Download: the stacked JPEG, carrying the photos' EXIF.
    _find(driver, "download").click()

    def downloaded(d):
        done = [p for p in gui_server.downloads.iterdir() if p.suffix == ".jpg"]
        return done[0] if done else None

    got = _wait(driver, downloaded, what="the download")
    saved = sorted(gui_server.results.glob("*.jpg"))
    assert len(saved) == 1 and got.read_bytes() == saved[0].read_bytes()
    with Image.open(got) as im, Image.open(pcb_photos[0]) as first:
        assert im.format == "JPEG" and im.size == (width, height)
        exif, original = im.getexif(), first.getexif()
        assert exif.get(0x010F) == original.get(0x010F)  # Make
        assert exif.get_ifd(_EXIF_IFD).get(0x9003) == original.get_ifd(_EXIF_IFD).get(0x9003)  # DateTimeOriginal
    # Phone-sized window: the same page, one column.
    driver.set_window_size(400, 900)
    shoot(driver, "phone")


def test_a_single_dropped_photo_is_refused_with_one_sentence(gui_server, browser, pcb_photos, shoot):
    driver = browser
    _open(driver, gui_server)
    # Files cannot be dragged from the desktop in a headless browser: a picker outside the page gives the
    # File, and the page's own drop handler receives it in a real drop event.
    driver.execute_script(
        "const i = document.createElement('input'); i.type = 'file'; i.id = 'e2e-picker';"
        "i.style.display = 'block'; document.body.append(i);"
    )
    driver.find_element("id", "e2e-picker").send_keys(str(pcb_photos[0]))
    driver.execute_script(
        "const files = document.getElementById('e2e-picker').files; const dt = new DataTransfer();"
        "for (const f of files) dt.items.add(f);"
        "document.querySelector(\"[data-testid='drop-zone']\")"
        ".dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));"
    )
    refusal = _wait(driver, lambda d: _all(d, "refusal"), what="the refusal")[0]
    assert refusal.text == f"focuswrap needs at least two photos to stack; got 1: {pcb_photos[0].name}."
    assert not _find(driver, "stack").is_enabled()
    shoot(_find(driver, "brackets"), "refused")


def test_cancel_stops_the_tools_and_leaves_nothing(gui_server, browser, pcb_photos, shoot):
    driver = browser
    _open(driver, gui_server)
    _add(driver, pcb_photos)
    _wait(
        driver, lambda d: d.find_elements("css selector", "[data-testid='bracket'][data-ready='yes']"), what="a bracket"
    )
    _find(driver, "stack").click()
    # Wait until a Hugin tool is really at work (a process inside the job's work folder).
    _wait(driver, lambda d: gui_server.leftovers() and gui_server.processes_inside(), STACK_LIMIT, "the tools starting")
    shoot(driver, "progress")
    _find(driver, "cancel").click()
    _wait(driver, lambda d: "Cancelled" in _find(d, "queue").text, STEP_LIMIT, "the cancel")
    assert not _all(driver, "result")
    deadline = time.monotonic() + 60
    while (gui_server.processes_inside() or gui_server.leftovers()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert gui_server.processes_inside() == []
    assert gui_server.leftovers() == []
    assert not gui_server.results.exists() or list(gui_server.results.iterdir()) == []
    # Stopping the server (Ctrl-C) removes the uploaded copies too.
    assert gui_server.job_folders()
    gui_server.stop()
    assert list(gui_server.tmp.iterdir()) == []

"""The page's HTTP routes (Starlette): the static page, the job API and its server-sent events.

Every route sits behind :class:`focuswrap.gui.security.Guard`.  Reads are
GET; everything that changes something is POST.  Answers are JSON; a refusal
is ``{"error": "one sentence"}`` with a 4xx status.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from focuswrap.errors import FocuswrapError
from focuswrap.gui import security
from focuswrap.gui.jobs import FORMATS, BracketRun, Job, JsonObject, Manager, Refused, Run, Upload

if TYPE_CHECKING:
    from PIL import Image

STATIC = Path(str(resources.files("focuswrap.gui") / "static"))
#: Seconds between two looks for new events of a job, and between keep-alive comments.
POLL = 0.25
KEEPALIVE = 10.0
#: Largest side of a thumbnail, in pixels.
THUMB = 240


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _header(request: Request, name: str) -> str:
    return unquote(request.headers.get(name, ""), errors="replace")


def create_app(manager: Manager, *, token: str, hosts: set[str]) -> security.Guard:
    """The ASGI app: routes for ``manager``'s jobs, guarded by ``token`` and ``hosts``."""

    async def page(request: Request) -> Response:
        html = (STATIC / "index.html").read_text(encoding="utf-8")
        return Response(html.replace("{{TOKEN}}", token), media_type="text/html; charset=utf-8")

    async def info(request: Request) -> Response:
        from focuswrap import contribution, presets

        def load() -> JsonObject:
            listed: list[JsonObject] = [
                {"name": p.name, "description": p.preset.description, "default": p.name == presets.DEFAULT_PRESET}
                for p in presets.load_all()
            ]
            return {
                "presets": listed,
                "default_preset": presets.DEFAULT_PRESET,
                "formats": [{"value": k, "label": v} for k, v in FORMATS.items()],
                "results_dir": str(manager.results_dir),
                "limits": {"photo_bytes": manager.limits.photo_bytes, "photos": manager.limits.photos},
                "no_frame_colour": "#6e6e6e",
                "palette": ["#{:02x}{:02x}{:02x}".format(*c) for c in contribution.PALETTE],
            }

        return JSONResponse(await run_in_threadpool(load))

    async def new_job(request: Request) -> Response:
        job = manager.create_job()
        return JSONResponse(job.state(), status_code=201)

    def job_of(request: Request) -> Job:
        return manager.job(request.path_params["job"])

    async def job_state(request: Request) -> Response:
        job = job_of(request)
        return JSONResponse(await run_in_threadpool(job.state))

    async def upload(request: Request) -> Response:
        job = job_of(request)
        name = _header(request, "x-file-name") or "photo"
        folder = _header(request, "x-file-folder")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > job.limits.photo_bytes:
            raise Refused(
                f"{name[:200]} is larger than {job.limits.photo_bytes // (1024 * 1024)} MB, the most one photo may "
                "be here; use the command line (focuswrap stack) for it.",
                413,
            )
        try:
            modified: float | None = float(request.headers.get("x-file-modified", "")) / 1000
        except ValueError:
            modified = None
        up = job.reserve(name, folder)
        try:
            fd = os.open(up.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
            with os.fdopen(fd, "wb") as fh:
                async for chunk in request.stream():
                    job.receive(up, chunk)
                    fh.write(chunk)
        except ClientDisconnect:
            job.discard(up)
            return Response(status_code=400)
        except BaseException:
            job.discard(up)
            raise
        job.finish(up, modified)
        state = await run_in_threadpool(job.state)
        return JSONResponse({"index": up.index, "state": state}, status_code=201)

    async def stack(request: Request) -> Response:
        job = job_of(request)
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Refused("The page sent a stack request focuswrap cannot read; reload the page.")
        crop = body.get("crop")
        brackets = body.get("brackets")
        run = await run_in_threadpool(
            manager.start,
            job,
            preset=str(body.get("preset") or "miniature"),
            crop=crop if isinstance(crop, bool) else None,
            fmt=str(body.get("format") or "jpg"),
            brackets=[int(b) for b in brackets] if isinstance(brackets, list) else None,
        )
        return JSONResponse(run.summary(), status_code=202)

    async def cancel(request: Request) -> Response:
        job = job_of(request)
        run = manager.find_run(job, int(request.path_params["run"]))
        await run_in_threadpool(manager.cancel, run, wait=True)
        return JSONResponse(run.summary())

    async def close(request: Request) -> Response:
        job = job_of(request)
        await run_in_threadpool(manager.close_job, job)
        return JSONResponse({"closed": job.id})

    async def events(request: Request) -> Response:
        job = job_of(request)
        try:
            start = int(request.headers.get("last-event-id") or request.query_params.get("after", "-1")) + 1
        except ValueError:
            start = 0
        once = request.query_params.get("once") == "1"

        async def stream() -> AsyncIterator[str]:
            sent = max(start, 0)
            quiet = 0.0
            job.watchers += 1
            try:
                while True:
                    new = job.events[sent:]
                    for event in new:
                        yield f"id: {event['id']}\nevent: {event['kind']}\ndata: {json.dumps(event)}\n\n"
                    sent += len(new)
                    job.last_seen = time.monotonic()
                    if once or job.closed:
                        return
                    if new:
                        quiet = 0.0
                    else:
                        quiet += POLL
                        if quiet >= KEEPALIVE:
                            quiet = 0.0
                            yield ": still here\n\n"
                    await asyncio.sleep(POLL)
            finally:
                job.watchers -= 1
                job.last_seen = time.monotonic()

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"x-accel-buffering": "no"})

    def _upload_of(job: Job, request: Request) -> Upload:
        try:
            up = job.uploads[int(request.path_params["photo"])]
        except (ValueError, IndexError):
            raise Refused("There is no such photo.", 404) from None
        if not up.complete:
            raise Refused("There is no such photo.", 404)
        return up

    async def thumb(request: Request) -> Response:
        job = job_of(request)
        up = _upload_of(job, request)
        target = job.folder / "previews" / f"thumb-{up.index}.jpg"
        made = await run_in_threadpool(_preview, up.path, target, THUMB)
        if made is None:
            return Response(status_code=404)
        return FileResponse(made, media_type="image/jpeg")

    async def photo(request: Request) -> Response:
        job = job_of(request)
        up = _upload_of(job, request)
        target = job.folder / "previews" / f"photo-{up.index}.jpg"
        made = await run_in_threadpool(_viewable, up.path, target)
        if made is None:
            return Response(status_code=404)
        return FileResponse(made)

    def _bracket_run(job: Job, request: Request) -> tuple[Run, BracketRun, Path]:
        """The run, the finished bracket and its result the address names."""
        run = manager.find_run(job, int(request.path_params["run"]))
        wanted = int(request.path_params["bracket"])
        for b in run.brackets:
            if b.bracket == wanted and b.state == "done" and b.output is not None:
                return run, b, b.output
        raise Refused("That result is not there (it failed, was cancelled or is not finished).", 404)

    async def result_view(request: Request) -> Response:
        job = job_of(request)
        run, b, output = _bracket_run(job, request)
        target = job.folder / "previews" / f"result-{run.id}-{b.bracket}.jpg"
        made = await run_in_threadpool(_viewable, output, target)
        if made is None:
            return Response(status_code=404)
        return FileResponse(made)

    async def result_download(request: Request) -> Response:
        job = job_of(request)
        _run, b, output = _bracket_run(job, request)
        # The name it was saved under in the results folder (result["download_name"]), else its own.
        name = b.saved.name if b.saved is not None else output.name
        return FileResponse(output, filename=name, content_disposition_type="attachment")

    async def result_map(request: Request) -> Response:
        job = job_of(request)
        _run, b, _output = _bracket_run(job, request)
        if b.map_output is None or not b.map_output.is_file():
            raise Refused("This result has no contribution map.", 404)
        return FileResponse(b.map_output, media_type="image/png")

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/api/info", info, methods=["GET"]),
        Route("/api/jobs", new_job, methods=["POST"]),
        Route("/api/jobs/{job}", job_state, methods=["GET"]),
        Route("/api/jobs/{job}/photos", upload, methods=["POST"]),
        Route("/api/jobs/{job}/photos/{photo:int}/thumb", thumb, methods=["GET"]),
        Route("/api/jobs/{job}/photos/{photo:int}", photo, methods=["GET"]),
        Route("/api/jobs/{job}/stack", stack, methods=["POST"]),
        Route("/api/jobs/{job}/close", close, methods=["POST"]),
        Route("/api/jobs/{job}/events", events, methods=["GET"]),
        Route("/api/jobs/{job}/runs/{run:int}/cancel", cancel, methods=["POST"]),
        Route("/api/jobs/{job}/runs/{run:int}/{bracket:int}/image", result_view, methods=["GET"]),
        Route("/api/jobs/{job}/runs/{run:int}/{bracket:int}/download", result_download, methods=["GET"]),
        Route("/api/jobs/{job}/runs/{run:int}/{bracket:int}/map", result_map, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return _error(exc.message, exc.status)

    async def library_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FocuswrapError)
        return _error(exc.message, 400)

    app = Starlette(
        routes=routes,
        exception_handlers={Refused: refused, FocuswrapError: library_error},
    )
    return security.Guard(app, token=token, hosts=hosts)


def _preview(source: Path, target: Path, side: int) -> Path | None:
    """A JPEG thumbnail of ``source`` (upright, at most ``side`` pixels), made once."""
    if target.is_file():
        return target
    from PIL import ImageOps

    try:
        with _open(source) as opened:
            opened.draft("RGB", (side, side))  # a JPEG decodes at the size it is shown
            im = ImageOps.exif_transpose(opened)
            im.thumbnail((side, side))
            _as_rgb(im).save(target, "JPEG", quality=85)
    except Exception:  # noqa: BLE001 - not an image: the page shows the refusal instead of a thumbnail
        return None
    return target


def _open(source: Path) -> Image.Image:
    """``source`` opened lazily by Pillow, or decoded by :func:`focuswrap.pixels.open_image` when it is a
    16-bit grey (with alpha) or float TIFF, which Pillow cannot open or shows black."""
    from PIL import Image, UnidentifiedImageError

    from focuswrap import pixels

    try:
        im = Image.open(source)
    except UnidentifiedImageError:
        return pixels.open_image(source)
    if im.mode == "F":
        im.close()
        return pixels.open_image(source)
    return im


def _as_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        im = im.point(lambda v: v / 256).convert("L")
    return im.convert("RGB")


def _viewable(source: Path, target: Path) -> Path | None:
    """``source`` itself when a browser can show it (JPEG, PNG), else a full-size JPEG made from it once."""
    if source.suffix.lower() in (".jpg", ".jpeg", ".png"):
        return source
    if target.is_file():
        return target
    try:
        with _open(source) as im:
            _as_rgb(im).save(target, "JPEG", quality=92)
    except Exception:  # noqa: BLE001 - not viewable: the page shows no picture rather than failing
        return None
    return target

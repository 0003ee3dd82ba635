"""Start the page's server (uvicorn) on this computer, print its address, open the browser.

The job folders live in one private temporary folder that is removed when
the server stops: normally, on Ctrl-C, or on SIGTERM (uvicorn turns both
into a graceful shutdown, and the ``finally`` below runs in every case).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from pathlib import Path

from focuswrap.errors import BadInputError
from focuswrap.gui import security


def check_host(host: str, *, force: bool) -> str | None:
    """Refuse a host other than this computer's loopback unless forced; a warning sentence if forced."""
    if security.is_loopback(host):
        return None
    if not force:
        raise BadInputError(
            f"focuswrap gui only listens on this computer (127.0.0.1), not on {host}; "
            "add --force-host if you really want other computers on the network to reach it."
        )
    return (
        f"Listening on {host}: anyone who can reach this computer on the network and learns the address "
        "can use the page and its photos."
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (0: a free port the system picks)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if sys.platform != "win32":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise BadInputError(
            f"focuswrap gui cannot listen on {host} port {port} ({exc.strerror or exc}); "
            "choose another --port, or leave it out to get a free one."
        ) from None
    sock.listen(64)
    return sock


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    open_browser: bool = True,
    force_host: bool = False,
    results_dir: Path | None = None,
    say: Callable[[str], None] = print,
) -> None:
    """Run the page's server until Ctrl-C; the first line said is the full address with its token."""
    warning = check_host(host, force=force_host)
    import uvicorn

    from focuswrap.gui.app import create_app
    from focuswrap.gui.jobs import Manager

    sock = bind(host, port)
    port = sock.getsockname()[1]
    token = security.new_token()
    shown_host = "127.0.0.1" if host in ("127.0.0.1", "localhost") else host
    address = f"http://{f'[{shown_host}]' if ':' in shown_host else shown_host}:{port}/?token={token}"
    manager = Manager(results_dir=results_dir)
    try:
        app = create_app(manager, token=token, hosts=security.allowed_hosts(host, port))
        say(address)
        if warning:
            say(f"Warning: {warning}")
        say(f"Results are saved into {manager.results_dir}")
        say("Keep this window open while you use the page; press Ctrl-C here to stop.")
        if open_browser:
            import webbrowser

            try:
                webbrowser.open(address)
            except Exception:  # noqa: BLE001 - no browser here: the printed address is enough
                say("Could not open a browser; paste the address above into one.")
        # The page's event stream never ends by itself: without a limit, a stop would wait for every open tab.
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        manager.shutdown()
        sock.close()

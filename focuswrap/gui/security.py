"""What keeps the page's server to this computer and this browser tab's owner.

An ASGI middleware in front of every route:

- the ``Host`` header must be ``127.0.0.1:PORT`` or ``localhost:PORT`` (a web
  page elsewhere that points its own name at 127.0.0.1, "DNS rebinding",
  sends its own name and is refused);
- every request needs the per-run token: the printed address carries it once
  (``/?token=...``), the answer turns it into an HttpOnly, SameSite=Strict
  cookie and sends the browser on to ``/`` so the token leaves the address bar;
- anything that changes state is a POST that also carries the token in the
  ``X-Focuswrap-Token`` header (which another site's form or script cannot
  set without CORS, which this server never grants), and an ``Origin``, when
  the browser sends one, must be this server's;
- everything else gets 403 with one sentence.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "focuswrap_token"
HEADER = "x-focuswrap-token"
LOOPBACK_NAMES = ("127.0.0.1", "localhost")

#: Sent with every answer: nothing is loaded from elsewhere, nothing framed, nothing cached.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


def new_token() -> str:
    """An unguessable token for one run of the server (256 bits)."""
    return secrets.token_urlsafe(32)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.1, ::1, other 127.x addresses and ``localhost``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, port: int) -> set[str]:
    """The ``Host`` header values this server answers to."""
    names = set(LOOPBACK_NAMES)
    if host not in names:
        names.add(f"[{host}]" if ":" in host else host)
    return {f"{name}:{port}" for name in names}


def _same(a: str | None, b: str) -> bool:
    return a is not None and hmac.compare_digest(a.encode(), b.encode())


class Guard:
    """The ASGI middleware described in the module docstring."""

    def __init__(self, app: ASGIApp, *, token: str, hosts: set[str]) -> None:
        self.app = app
        self.token = token
        self.hosts = {h.lower() for h in hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "").lower()
        if host not in self.hosts:
            await _refuse(send, "This page only answers at the address focuswrap gui printed (127.0.0.1 or localhost).")
            return
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed Cookie header is simply no cookie
            cookie = SimpleCookie()
        has_cookie = COOKIE in cookie and _same(cookie[COOKIE].value, self.token)
        method = scope.get("method", "GET")
        if method == "GET" and scope.get("path") == "/":
            given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [None])[0]
            if given is not None:
                if not _same(given, self.token):
                    await _refuse(send, "This address has an old or wrong token; use the one focuswrap gui printed.")
                    return
                await _enter(send, self.token)
                return
        if not has_cookie:
            await _refuse(send, "Open the full address that focuswrap gui printed (it includes the access token).")
            return
        if method not in ("GET", "HEAD"):
            origin = headers.get("origin")
            if not _same(headers.get(HEADER), self.token) or (
                origin is not None and origin.lower() not in {f"http://{h}" for h in self.hosts}
            ):
                await _refuse(send, "This request did not come from the focuswrap page; reload the page.")
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + SECURITY_HEADERS}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _refuse(send: Send, sentence: str) -> None:
    body = (sentence + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
            + SECURITY_HEADERS,
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _enter(send: Send, token: str) -> None:
    """Turn the token of the printed address into the cookie, and go on to the page without it."""
    cookie = f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", b"/"), (b"set-cookie", cookie.encode()), (b"content-length", b"0")]
            + SECURITY_HEADERS,
        }
    )
    await send({"type": "http.response.body", "body": b""})

"""Who may talk to the engine: only local processes that can read the user's token file.

One ASGI middleware in front of every route checks, in order:
1. Host is this server's own address (127.0.0.1:PORT, localhost:PORT, [::1]:PORT, or a name the
   user allowed) - a web page whose DNS name was rebound to 127.0.0.1 sends its own name, and is
   refused with 421;
2. Origin, when a browser sends one, is that same address - other web pages get 403;
3. Authorization: Bearer <token> matches (constant-time) - everything but the liveness route.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ..core import protocol

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def allowed_authorities(port: int, extra_names: Iterable[str] = ()) -> set[str]:
    """Host header values naming this server (lower case). Port 80 may be left out, as HTTP allows."""
    names = set(LOOPBACK_NAMES) | {n.lower() for n in extra_names}
    authorities = {f"{name}:{port}" for name in names}
    if port == 80:
        authorities |= names
    return authorities


class GuardMiddleware:
    """Host, Origin and bearer-token checks for every HTTP request."""

    def __init__(self, app: ASGIApp, *, token: str, extra_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self._token = token.encode("utf-8")
        self._extra_hosts = tuple(extra_hosts)
        self._cache: dict[int, set[str]] = {}

    def _authorities(self, port: int) -> set[str]:
        if port not in self._cache:
            self._cache[port] = allowed_authorities(port, self._extra_hosts)
        return self._cache[port]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008})
            return await self.app(scope, receive, send)
        refusal = self._refusal(scope)
        if refusal is not None:
            status, field, message, extra = refusal
            body = {"error": f"{field}: {message}", "field": field}
            return await JSONResponse(body, status, headers=extra)(scope, receive, send)
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> tuple[int, str, str, dict] | None:
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.lower(), value)
        server = scope.get("server") or (None, None)
        port = server[1] if server[1] is not None else 0
        authorities = self._authorities(port)

        host = headers.get(b"host", b"").decode("latin-1").strip().lower()
        if host not in authorities:
            shown = host or "(none)"
            return 421, "host", f"{shown!r} is not this engine's address; connect to http://127.0.0.1:{port}", {}

        origin = headers.get(b"origin")
        if origin is not None:
            origin_text = origin.decode("latin-1").strip().lower()
            if not any(origin_text == f"http://{a}" for a in authorities):
                return 403, "origin", f"{origin_text!r} may not use this engine", {}

        if scope["path"] == protocol.LIVENESS_PATH:
            return None
        auth = headers.get(b"authorization", b"")
        scheme, _, presented = auth.partition(b" ")
        if scheme.lower() != b"bearer" or not secrets.compare_digest(presented.strip(), self._token):
            why = "missing" if not auth else "wrong"
            return (
                401,
                "authorization",
                f"{why} bearer token; send 'Authorization: Bearer <token>' with the token "
                "from the file the server named at start",
                {"WWW-Authenticate": 'Bearer realm="inbetweener"'},
            )
        return None

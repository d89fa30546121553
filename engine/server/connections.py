"""Connection limits: no client can hold the engine's sockets by sending a request slowly.

uvicorn has no header or body timeout, so a client that sends half a request and waits keeps its
socket (and file descriptor) forever, and a few hundred such clients make the server unreachable.
GuardedH11Protocol (uvicorn's h11 protocol plus three rules) closes:
- a connection whose request headers are not complete `header_timeout_s` after it opened (or after
  its previous response), with 408;
- a connection whose request body is not complete `body_timeout_s` after its headers, with 408;
- the oldest connection still waiting for its headers, when more than `max_waiting` do and it has
  waited `waiting_grace_s` (a burst of ordinary clients is never cut off), or at once when the
  server holds `max_connections` connections (descriptors run out), so a flood of slow clients
  pushes out slow clients, never a request that has arrived.
The Host, Origin and token checks (security.GuardMiddleware) are unchanged: they run on every
request that completes its headers.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("engine.server")

_TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
#: File descriptors kept free for everything but client sockets (model files, logs, the job worker).
FD_RESERVE = 48


@dataclass
class ConnectionLimits:
    header_timeout_s: float = 10.0
    body_timeout_s: float = 120.0
    max_connections: int = 512
    max_waiting: int = 64
    #: Connections accepted per wake-up (and the listen backlog): small enough that a burst of them
    #: fits the free descriptors before the waiting rule above closes the oldest.
    accept_burst: int = 64
    #: How long a connection may wait for its headers before a flood may push it out.
    waiting_grace_s: float = 1.0
    #: Connections still waiting for their request headers, oldest first.
    waiting: OrderedDict = field(default_factory=OrderedDict, repr=False)
    last_warning: float = -1e9

    def warn_rarely(self, message: str) -> None:
        """Log a flood once per minute, not once per connection."""
        if time.monotonic() - self.last_warning > 60:
            self.last_warning = time.monotonic()
            log.warning(message)


def raise_descriptor_limit(wanted: int = 4096) -> int:
    """Raise this process's soft open-file limit towards `wanted` (up to the hard limit); the limit now."""
    try:
        import resource
    except ImportError:  # Windows: no per-process descriptor limit of this kind
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return wanted if soft == resource.RLIM_INFINITY else soft


def limits_for_this_process(header_timeout_s: float, body_timeout_s: float) -> ConnectionLimits:
    """Limits that fit the descriptors this process may open (raised first where allowed)."""
    descriptors = raise_descriptor_limit()
    max_connections = max(8, min(512, descriptors - FD_RESERVE - _open_descriptors()))
    max_waiting = max(4, min(64, max_connections // 3))
    return ConnectionLimits(header_timeout_s, body_timeout_s, max_connections, max_waiting, max_waiting)


def _open_descriptors() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 16


def guarded_protocol(limits: ConnectionLimits) -> type[H11Protocol]:
    """uvicorn's h11 protocol class bound to `limits` (uvicorn builds one instance per connection)."""

    class GuardedH11Protocol(H11Protocol):
        _timer = None
        _phase = "headers"

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._wait_for("headers", limits.header_timeout_s)
            oldest, since = next(iter(limits.waiting.items()))
            full = len(self.connections) > limits.max_connections
            if full or (len(limits.waiting) > limits.max_waiting and self.loop.time() - since >= limits.waiting_grace_s):
                limits.warn_rarely("more clients hold connections open without sending a request than allowed: "
                                   "closing the oldest ones (is something flooding the engine?)")
                oldest._close(b"")

        def connection_lost(self, exc) -> None:
            self._stop_waiting()
            super().connection_lost(exc)

        def handle_events(self) -> None:
            super().handle_events()
            state = self.conn.their_state
            if state is h11.SEND_BODY and self._phase == "headers":
                self._wait_for("body", limits.body_timeout_s)
            elif state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR) and self._phase != "handling":
                self._stop_waiting()
                self._phase = "handling"

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._wait_for("headers", limits.header_timeout_s)

        def _wait_for(self, phase: str, seconds: float) -> None:
            self._stop_waiting()
            self._phase = phase
            self._timer = self.loop.call_later(seconds, self._timed_out)
            if phase == "headers":
                limits.waiting[self] = self.loop.time()

        def _stop_waiting(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            limits.waiting.pop(self, None)

        def _timed_out(self) -> None:
            self._timer = None
            log.info("closing a connection that sent no complete request %s within the limit", self._phase)
            self._close(_TIMEOUT_RESPONSE)

        def _close(self, response: bytes) -> None:
            self._stop_waiting()
            if self.transport.is_closing():
                return
            if response and self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                self.transport.write(response)
            self.transport.close()

    return GuardedH11Protocol

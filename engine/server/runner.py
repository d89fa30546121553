"""Running the engine server: bind, write the token, advertise, serve, clean up.

The socket is bound before uvicorn starts, so port 0 ("any free port") is resolved up front and the
Host check, token file name and ready line all know the real port. EngineServer runs either in the
calling thread (`inbetween serve`) or in a background thread (embedding, tests).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from .. import __version__
from ..api import EngineError
from ..core import files, protocol
from .app import create_app
from .connections import guarded_protocol, limits_for_this_process
from .jobs import GenerateFn, JobQueue
from .security import new_token

log = logging.getLogger("engine.server")


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 0
    #: Where the bearer token is written (default: server-PORT.token in the state folder).
    token_file: Path | None = None
    #: Folder for the token and server.json (default: engine.core.protocol.state_dir()).
    state_dir: Path | None = None
    #: Write server.json so clients (connect_or_start) can find this server.
    advertise: bool = True
    #: More Host names accepted besides the loopback ones (e.g. a LAN name when bound elsewhere).
    allow_hosts: tuple[str, ...] = ()
    keep_seconds: float = 30 * 60
    keep_count: int = 32
    max_queued: int = protocol.MAX_QUEUED_JOBS
    log_level: str = "warning"
    access_log: bool = False
    #: A request's headers must be complete this long after the connection opened (else 408).
    header_timeout_s: float = 10.0
    #: A request's body must be complete this long after its headers (64 MiB over loopback: well under).
    body_timeout_s: float = 120.0


def _pipeline_generate(request, progress, cancel):
    """The pipeline, plus recovery from running out of memory: the cached models are dropped so the
    next job starts from a clean slate instead of failing the same way."""
    from ..pipeline import generate

    try:
        return generate(request, progress=progress, cancel=cancel)
    except Exception as exc:
        if not (isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"):
            raise
        from ..backends import unload_all

        unload_all()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise EngineError(
            f"out of memory ({exc}); the loaded model was unloaded. Try the low_vram setting, fewer "
            "in-betweens per job or smaller keyframes"
        ) from exc


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on host:port (port 0 = any free port)."""
    if host == "localhost":
        host = "127.0.0.1"  # one address, not whichever of IPv4/IPv6 the resolver lists first
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        if os.name == "nt":
            sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_EXCLUSIVEADDRUSE", socket.SO_REUSEADDR), 1)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


class EngineServer:
    """One engine server: its socket, token, job queue and uvicorn instance."""

    def __init__(self, config: ServerConfig | None = None, *, generate: GenerateFn | None = None) -> None:
        self.config = config or ServerConfig()
        self.token = new_token()
        self.state_dir = Path(self.config.state_dir) if self.config.state_dir else protocol.state_dir()
        files.ensure_private_folder(self.state_dir)
        if self.config.token_file is not None and os.path.lexists(self.config.token_file):
            # A file the user named is theirs: the server neither replaces it nor deletes it at exit.
            raise files.DestinationExists(Path(self.config.token_file))
        self.sock = bind_socket(self.config.host, self.config.port)
        address = self.sock.getsockname()
        self.address, self.port = address[0], address[1]
        self.loopback = is_loopback(self.address)
        wildcard = ipaddress.ip_address(self.address.split("%")[0]).is_unspecified
        if wildcard:
            url_host = "[::1]" if self.sock.family == socket.AF_INET6 else "127.0.0.1"
        else:
            url_host = f"[{self.address}]" if self.sock.family == socket.AF_INET6 else self.address
        self.url = f"http://{url_host}:{self.port}"
        extra_hosts = list(self.config.allow_hosts)
        if not self.loopback and not wildcard:
            extra_hosts.append(url_host)
        self.token_file = Path(self.config.token_file) if self.config.token_file else self.state_dir / f"server-{self.port}.token"
        self.queue = JobQueue(
            generate or _pipeline_generate,
            keep_seconds=self.config.keep_seconds,
            keep_count=self.config.keep_count,
            max_queued=self.config.max_queued,
        )
        self.app = create_app(self.queue, token=self.token, extra_hosts=extra_hosts)
        self.limits = limits_for_this_process(self.config.header_timeout_s, self.config.body_timeout_s)
        self._uvicorn = uvicorn.Server(
            uvicorn.Config(
                self.app,
                http=guarded_protocol(self.limits),
                backlog=self.limits.accept_burst,
                log_level=self.config.log_level,
                access_log=self.config.access_log,
                log_config=None,
                lifespan="off",
                timeout_graceful_shutdown=3,
                server_header=False,
            )
        )
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._cleaned = False

    @property
    def ready_info(self) -> dict:
        """What a client needs: the url and where to read the token. Printed as the ready line."""
        return {"url": self.url, "token_file": str(self.token_file), "pid": os.getpid()}

    def serve(self, on_ready=None) -> None:
        """Serve in this thread until stopped (signal, stop(), or the parent closing stdin)."""
        try:
            # The default token file (server-PORT.token in the private state folder) may be a stale one
            # of a crashed server on this port; a file named with --token-file must be new.
            files.atomic_write_bytes(self.token_file, self.token.encode("ascii"), private=True,
                                     overwrite=self.config.token_file is None)
            asyncio.run(self._serve(on_ready))
        finally:
            self.queue.shutdown()
            self._cleanup()

    async def _serve(self, on_ready) -> None:
        task = asyncio.create_task(self._uvicorn.serve(sockets=[self.sock]))
        while not self._uvicorn.started and not task.done():
            await asyncio.sleep(0.01)
        if self._uvicorn.started:
            if self.config.advertise:
                advert = {**self.ready_info, "version": __version__}
                protocol.write_private_file(
                    protocol.state_file(self.state_dir), json.dumps(advert).encode("utf-8")
                )
            self._ready.set()
            if on_ready is not None:
                on_ready(self.ready_info)
        await task

    def start_in_thread(self, timeout: float = 30.0) -> "EngineServer":
        """Serve from a background thread; returns once requests are answered."""
        self._thread = threading.Thread(target=self.serve, name="inbetween-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"the engine server did not start within {timeout} s")
        return self

    def request_stop(self) -> None:
        """Ask the server to stop soon (thread-safe, returns at once)."""
        self.queue.shutdown()
        self._uvicorn.should_exit = True

    def stop(self, timeout: float = 10.0) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def exit_with_stdin(self, grace_s: float = 10.0) -> None:
        """Stop when stdin reaches end-of-file: the parent that started us has exited or closed the
        pipe. Works on every OS, unlike Linux-only parent-death signals."""

        def watch() -> None:
            stream = sys.stdin.buffer if sys.stdin is not None else None
            try:
                while stream is not None and stream.read(4096):
                    pass
            except (OSError, ValueError):
                pass
            log.warning("the parent process has gone (stdin closed): stopping the engine server")
            self.request_stop()
            timer = threading.Timer(grace_s, self._force_exit)
            timer.daemon = True
            timer.start()

        threading.Thread(target=watch, name="inbetween-stdin-watch", daemon=True).start()

    def _force_exit(self) -> None:
        self._cleanup()
        os._exit(0)

    def _cleanup(self) -> None:
        if self._cleaned:
            return
        self._cleaned = True
        try:
            if self.token_file.read_bytes() == self.token.encode("ascii"):  # ours, not a file put there since
                self.token_file.unlink()
        except OSError:
            pass
        advert = protocol.read_advertisement(self.state_dir)
        if advert is not None and advert.get("url") == self.url and advert.get("pid") == os.getpid():
            try:
                protocol.state_file(self.state_dir).unlink()
            except OSError:
                pass
        try:
            self.sock.close()
        except OSError:
            pass

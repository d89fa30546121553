"""The engine client: talks to `inbetween serve` over HTTP. Standard library only (it runs in Krita).

    client = connect_or_start(python="/path/to/engine/venv/bin/python")
    job_id = client.submit(build_job(keyframes={0: png_a, 8: png_b}, settings={"backend": "rife"}))
    status = client.wait(job_id, on_progress=lambda s: print(s["stage"], s["progress"]))
    png = client.frame_png(job_id, 4)

Errors: EngineUnavailable (nothing answers: the message says how to start the engine), AuthError
(401: wrong or stale token), ServerError(status, message) for any other refusal, JobFailed (and
its subclass JobCancelled) when a waited-for job ends without frames.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from . import protocol

START_HINT = "start it with `inbetween serve` (or `python -m engine serve`)"


class ClientError(Exception):
    """Base of every error this client raises."""


class RemoteHostRefused(ClientError, ValueError):
    """The URL names another machine and the caller did not opt in: the token is not sent there."""


class EngineUnavailable(ClientError):
    """No engine answers at the address (not started, crashed, or stopped)."""


class AuthError(ClientError):
    """The engine refused the token (401): it belongs to another run of the server, or is missing."""


class ServerError(ClientError):
    """The engine refused a request; `message` names the field when the input was at fault."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(f"engine answered {status}: {message}")
        self.status = status
        self.message = message
        self.field = field


class JobFailed(ClientError):
    """A job ended as failed (or cancelled, see JobCancelled); `status` is its final status."""

    def __init__(self, message: str, status: dict | None = None) -> None:
        super().__init__(message)
        self.status = status or {}


class JobCancelled(JobFailed):
    """A job ended because it was cancelled."""


def read_token(token_file: str | os.PathLike) -> str:
    try:
        token = Path(token_file).read_text(encoding="ascii").strip()
    except OSError as exc:
        raise AuthError(f"cannot read the engine's token file {token_file}: {exc}") from None
    if not token:
        raise AuthError(f"the engine's token file {token_file} is empty")
    return token


def parse_sse(lines: Iterator[bytes]) -> Iterator[tuple[str, str | None, str]]:
    """Server-sent events from raw lines: (event type, last event id, data), per the SSE rules."""
    kind, last_id, data = "", None, []
    for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield kind or "message", last_id, "\n".join(data)
            kind, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            kind = value
        elif name == "id" and "\0" not in value:
            last_id = value


class EngineClient:
    """One engine server, addressed by its base URL and bearer token. Thread-safe: every call opens
    its own connection.

    The token only ever goes to this machine (localhost or a loopback address): a URL naming
    another host is refused unless `allow_remote=True` (the user's explicit choice, e.g.
    `inbetween --server URL --allow-remote-server`), because plain HTTP shows it to the network."""

    def __init__(self, base_url: str, token: str, timeout: float = 30, *, allow_remote: bool = False) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"engine URL {base_url!r} must look like http://127.0.0.1:PORT")
        if not allow_remote and not protocol.is_loopback_host(parts.hostname):
            raise RemoteHostRefused(
                f"engine URL {base_url!r} is not this machine: the engine's token is only sent to localhost or "
                "127.0.0.1; to use an engine on another machine opt in explicitly (--allow-remote-server)"
            )
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        #: The LocalServer this client started (connect_or_start), kept so the child lives as long as we do.
        self.local_server: LocalServer | None = None

    def __repr__(self) -> str:
        return f"EngineClient({self.base_url!r})"

    # -- HTTP ---------------------------------------------------------------------------------------

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=timeout or self.timeout)

    def _open(self, method: str, path: str, body: bytes | None = None, *, timeout: float | None = None,
              accept: str = "application/json", auth: bool = True, headers: dict | None = None):
        """Send a request; the open (connection, response) on 2xx, a ClientError otherwise."""
        headers = {"Accept": accept, **(headers or {})}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn = self._connection(timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
        except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError, socket.gaierror) as exc:
            conn.close()
            raise EngineUnavailable(f"no engine answers at {self.base_url} ({exc}); {START_HINT}") from None
        except TimeoutError:
            conn.close()
            raise EngineUnavailable(f"the engine at {self.base_url} did not answer within {timeout or self.timeout} s") from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise EngineUnavailable(f"lost the connection to the engine at {self.base_url} ({exc}); {START_HINT}") from None
        if response.status >= 400:
            try:
                raw = response.read()
            except (OSError, http.client.HTTPException):
                raw = b""
            finally:
                conn.close()
            message, field = _error_message(raw, response.reason)
            if response.status == 401:
                raise AuthError(f"the engine at {self.base_url} refused the token: {message}")
            raise ServerError(response.status, message, field)
        return conn, response

    def _call(self, method: str, path: str, body: bytes | None = None, *, timeout: float | None = None,
              accept: str = "application/json", auth: bool = True) -> bytes:
        conn, response = self._open(method, path, body, timeout=timeout, accept=accept, auth=auth)
        try:
            return response.read()
        except TimeoutError:
            raise EngineUnavailable(f"the engine at {self.base_url} stopped answering") from None
        except (OSError, http.client.HTTPException) as exc:
            raise EngineUnavailable(f"lost the connection to the engine at {self.base_url} ({exc})") from None
        finally:
            conn.close()

    def _json(self, method: str, path: str, body: bytes | None = None, **kw) -> dict:
        raw = self._call(method, path, body, **kw)
        try:
            return json.loads(raw)
        except ValueError:
            raise ServerError(200, f"the engine sent something that is not JSON: {raw[:80]!r}") from None

    # -- routes -------------------------------------------------------------------------------------

    def alive(self) -> bool:
        """True when an Inbetweener engine answers the (token-free) liveness check."""
        try:
            return self._json("GET", protocol.LIVENESS_PATH, auth=False, timeout=min(self.timeout, 5)).get(
                "service"
            ) == "inbetweener"
        except ClientError:
            return False

    def health(self) -> dict:
        """Version, backends (available or why not), device and loaded models."""
        return self._json("GET", f"{protocol.API_PREFIX}/health")

    def jobs(self) -> dict:
        """Every job the engine still knows: {"jobs": [status...], "running", "queued", "kept"}."""
        return self._json("GET", f"{protocol.API_PREFIX}/jobs")

    def submit(self, job: dict) -> str:
        """Queue a job (see protocol.build_job); its id."""
        body = json.dumps(job, separators=(",", ":"), allow_nan=False).encode("utf-8")
        if len(body) > protocol.MAX_BODY_BYTES:
            raise ServerError(
                413, f"the job is {len(body)} bytes; the engine accepts at most {protocol.MAX_BODY_BYTES}", "body"
            )
        return self._json("POST", f"{protocol.API_PREFIX}/jobs", body, timeout=max(self.timeout, 120))["id"]

    def status(self, job_id: str) -> dict:
        return self._json("GET", f"{protocol.API_PREFIX}/jobs/{_quote(job_id)}")

    def cancel(self, job_id: str) -> dict:
        """Cancel a queued or running job (a finished one is forgotten); its status afterwards."""
        return self._json("DELETE", f"{protocol.API_PREFIX}/jobs/{_quote(job_id)}")

    def frame_png(self, job_id: str, frame: int) -> bytes:
        """PNG (RGBA) of timeline frame `frame` of a finished job."""
        return self._call("GET", f"{protocol.API_PREFIX}/jobs/{_quote(job_id)}/frames/{int(frame)}", accept="image/png")

    def frames(self, job_id: str, status: dict | None = None) -> dict[int, bytes]:
        """PNG bytes of every frame of a finished job; each drawing is downloaded once, holds share it."""
        status = status or self.status(job_id)
        by_drawing: dict[int, bytes] = {}
        out: dict[int, bytes] = {}
        for info in status.get("frames", []):
            drawing = info["drawing"]
            if drawing not in by_drawing:
                by_drawing[drawing] = self.frame_png(job_id, drawing)
            out[info["frame"]] = by_drawing[drawing]
        return out

    def events(self, job_id: str, last_event_id: int | None = None) -> Iterator[dict]:
        """The job's progress as it happens: one dict per event (its status fields plus "event",
        "progress" or "state", and "seq"), ending with the final state event (with frames when done)."""
        resume = {} if last_event_id is None else {"Last-Event-ID": str(int(last_event_id))}
        conn, response = self._open(
            "GET", f"{protocol.API_PREFIX}/jobs/{_quote(job_id)}/events",
            timeout=max(self.timeout, 60), accept="text/event-stream", headers=resume,
        )
        try:
            for kind, seq, data in parse_sse(iter(response.readline, b"")):
                event = json.loads(data)
                event["event"] = kind
                event["seq"] = int(seq) if seq and seq.isdigit() else None
                yield event
                if kind == "state" and event.get("state") in protocol.TERMINAL_STATES:
                    return
        except TimeoutError:
            raise EngineUnavailable(f"the engine at {self.base_url} stopped sending progress") from None
        except (OSError, http.client.HTTPException) as exc:
            raise EngineUnavailable(f"lost the connection to the engine at {self.base_url} ({exc})") from None
        finally:
            conn.close()

    def wait(self, job_id: str, on_progress: Callable[[dict], None] | None = None, poll_interval: float = 0.5) -> dict:
        """Follow the job until it ends; its final status when done. `on_progress(event)` gets every
        event (a dict with state, stage, progress, message). Raises JobFailed / JobCancelled."""
        final = None
        last_seq = None
        for _ in range(3):  # a dropped stream is resumed where it stopped
            try:
                for event in self.events(job_id, last_seq):
                    last_seq = event.get("seq") or last_seq
                    if on_progress is not None:
                        on_progress(event)
                    if event.get("state") in protocol.TERMINAL_STATES and event.get("event") == "state":
                        final = event
                break
            except EngineUnavailable:
                if not self.alive():
                    raise
        while final is None:
            status = self.status(job_id)
            if status["state"] in protocol.TERMINAL_STATES:
                final = status
            else:
                time.sleep(poll_interval)
        if final["state"] == "failed":
            raise JobFailed(final.get("error") or "the job failed", final)
        if final["state"] == "cancelled":
            raise JobCancelled(final.get("message") or "the job was cancelled", final)
        return final


def _quote(job_id: str) -> str:
    return urllib.parse.quote(str(job_id), safe="")


def _error_message(raw: bytes, reason: str) -> tuple[str, str | None]:
    try:
        body = json.loads(raw)
        return str(body.get("error") or reason), body.get("field")
    except (ValueError, AttributeError):
        text = raw.decode("utf-8", "replace").strip()
        return text[:300] or reason, None


class LocalServer:
    """An engine server this process started as its child. It watches its stdin: when this process
    exits (or stop() closes the pipe) the server stops too, on every OS."""

    def __init__(self, process: subprocess.Popen, info: dict, log_path: Path | None) -> None:
        self.process = process
        self.url: str = info["url"]
        self.token_file: str = info["token_file"]
        self.pid: int = int(info.get("pid") or process.pid)
        self.log_path = log_path
        self.token = read_token(self.token_file)

    def client(self, timeout: float = 30) -> EngineClient:
        client = EngineClient(self.url, self.token, timeout=timeout)
        client.local_server = self
        return client

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10) -> int:
        """Close the server's stdin (it stops gracefully), escalating to terminate/kill; its exit code."""
        try:
            if self.process.stdin is not None and not self.process.stdin.closed:
                self.process.stdin.close()
        except OSError:
            pass
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            try:
                return self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait()

    def __enter__(self) -> "LocalServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _log_tail(path: Path | None, lines: int = 15) -> str:
    if path is None:
        return ""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return ("\n" + "\n".join(text[-lines:])) if text else ""


def default_engine_python() -> str:
    """The program that runs `-m engine`: this interpreter, or in a PyInstaller bundle (where
    sys.executable is the app itself) the bundled `inbetween` executable beside it, which accepts
    a leading `-m engine`."""
    if getattr(sys, "frozen", False):
        launcher = Path(sys.executable).with_name("inbetween.exe" if sys.platform == "win32" else "inbetween")
        if launcher.exists():
            return str(launcher)
    return sys.executable


def start_local_server(
    python: str | None = None,
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    state_dir: str | os.PathLike | None = None,
    engine_root: str | os.PathLike | None = None,
    extra_args: Sequence[str] = (),
    env: dict | None = None,
    log_path: str | os.PathLike | None = None,
    startup_timeout: float = 120,
) -> LocalServer:
    """Start `python -m engine serve` as a child that exits with this process; wait for its ready line.

    `python` is the interpreter that has the engine installed (default: this one - right for the
    desktop app, but inside Krita pass the engine's own Python). `engine_root` is added to its
    PYTHONPATH when the engine is not installed but checked out there. The child's log goes to
    `log_path` (default: server.log in the state folder) and is quoted when it fails to start.
    """
    folder = Path(state_dir) if state_dir else protocol.state_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = Path(log_path) if log_path else folder / "server.log"
    command = [python or default_engine_python(), "-m", "engine", "serve", "--port", str(int(port)), "--host", host,
               "--exit-with-stdin", "--state-dir", str(folder), *extra_args]
    child_env = dict(os.environ if env is None else env)
    child_env["PYTHONUNBUFFERED"] = "1"
    if engine_root:
        child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(engine_root), child_env.get("PYTHONPATH")]))
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0) if sys.platform == "win32" else 0
    with open(log_path, "wb") as log:
        try:
            process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=child_env,
                creationflags=flags,
            )
        except OSError as exc:
            raise EngineUnavailable(f"cannot start the engine with {command[0]}: {exc}") from None

    ready: dict = {}
    got_line = threading.Event()

    def read_stdout() -> None:
        for raw in iter(process.stdout.readline, b""):
            if not got_line.is_set():
                try:
                    info = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(info, dict) and "url" in info and "token_file" in info:
                    ready.update(info)
                    got_line.set()
        got_line.set()  # stdout closed: the child has exited

    threading.Thread(target=read_stdout, name="inbetween-server-stdout", daemon=True).start()
    deadline = time.monotonic() + startup_timeout
    while not got_line.wait(0.1):
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise EngineUnavailable(
                f"the engine did not start within {startup_timeout:.0f} s ({' '.join(command)}){_log_tail(log_path)}"
            )
    if not ready:
        code = process.wait()
        raise EngineUnavailable(
            f"the engine exited with code {code} before it was ready ({' '.join(command)}){_log_tail(log_path)}"
        )
    return LocalServer(process, ready, log_path)


def connect(state_dir: str | os.PathLike | None = None, timeout: float = 30) -> EngineClient:
    """A client for the server advertised in the state folder; EngineUnavailable/AuthError if none works."""
    folder = Path(state_dir) if state_dir else None
    advert = protocol.read_advertisement(folder)
    if advert is None:
        raise EngineUnavailable(f"no engine is advertised in {protocol.state_file(folder)}; {START_HINT}")
    client = EngineClient(advert["url"], read_token(advert["token_file"]), timeout=timeout)
    client.jobs()  # proves both that it answers and that the token is right
    return client


def connect_or_start(
    python: str | None = None,
    *,
    state_dir: str | os.PathLike | None = None,
    timeout: float = 30,
    start: bool = True,
    **start_options,
) -> EngineClient:
    """Reuse the running server this user's state folder advertises, else start one as our child
    (see start_local_server; the started server is kept as `client.local_server`)."""
    try:
        return connect(state_dir, timeout=timeout)
    except (EngineUnavailable, AuthError, ServerError):
        if not start:
            raise
    server = start_local_server(python, state_dir=state_dir, **start_options)
    return server.client(timeout=timeout)

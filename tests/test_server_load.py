"""Bounded load tests: 100 concurrent status polls while 5 jobs queue (every job completes, nothing
lost), and slow clients holding half-sent requests (the server keeps answering, stalled requests are
closed). Loopback only; every test stops by itself within its own time limit."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from engine import pipeline
from engine.backends import availability
from engine.core.client import EngineClient
from engine.core.protocol import build_job
from engine.imaging import decode_png_rgba, encode_png_rgba
from engine.server.runner import EngineServer, ServerConfig
from tests.helpers import disc_keyframe

requires_rife = pytest.mark.skipif(not availability("rife")[0], reason="the rife backend is not available here")

JOBS = 5
POLLERS = 100
FIFO = re.compile(r"^(done,)*(running,)?(queued,)*$")


class HoldFirstJob:
    """The real pipeline, with the first job held at its first progress report until released,
    so the first round of polls certainly sees one job running and four waiting."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()

    def generate(self, request, progress, cancel):
        def held(stage, fraction, message):
            progress(stage, fraction, message)
            if not self.reached.is_set():
                self.reached.set()
                assert self.release.wait(120)

        return pipeline.generate(request, progress=held, cancel=cancel)


@requires_rife
@pytest.mark.slow
def test_polls_while_jobs_queue(tmp_path):
    hold = HoldFirstJob()
    server = EngineServer(ServerConfig(state_dir=tmp_path), generate=hold.generate).start_in_thread()
    client = EngineClient(server.url, server.token, timeout=120)
    try:
        keys = {0: encode_png_rgba(disc_keyframe(20, 32)), 2: encode_png_rgba(disc_keyframe(70, 32))}
        ids = [client.submit(build_job(keyframes=keys, settings={"backend": "rife", "seed": i})) for i in range(JOBS)]
        assert len(set(ids)) == JOBS
        assert hold.reached.wait(120)

        def poll(i: int) -> tuple[dict, dict]:
            return client.status(ids[i % JOBS]), client.jobs()

        with ThreadPoolExecutor(POLLERS) as pool:
            held_round = list(pool.map(poll, range(POLLERS)))
        for status, listing in held_round:
            states = [j["state"] for j in listing["jobs"]]
            assert states == ["running"] + ["queued"] * (JOBS - 1)
            assert [j["id"] for j in listing["jobs"]] == ids
            assert status["state"] in ("running", "queued")
            if status["state"] == "queued":
                assert status["queue_position"] == ids.index(status["id"]) - 1

        finals: dict[str, dict] = {}

        def follow(job_id: str) -> None:
            finals[job_id] = client.wait(job_id)

        followers = [threading.Thread(target=follow, args=(job_id,)) for job_id in ids]
        for t in followers:
            t.start()
        hold.release.set()
        with ThreadPoolExecutor(POLLERS) as pool:
            busy_round = list(pool.map(poll, range(POLLERS)))
        for status, listing in busy_round:
            states = "".join(j["state"] + "," for j in listing["jobs"])
            assert FIFO.match(states), states
            assert status["id"] in ids
        for t in followers:
            t.join(300)

        assert set(finals) == set(ids)
        listing = client.jobs()
        assert [j["state"] for j in listing["jobs"]] == ["done"] * JOBS
        assert listing["running"] is None and listing["queued"] == 0
        for job_id in ids:
            assert [f["kind"] for f in finals[job_id]["frames"]] == ["key", "inbetween", "key"]
            image = decode_png_rgba(client.frame_png(job_id, 1), source=f"{job_id} frame 1")
            assert image.shape == (64, 96, 4)
    finally:
        hold.release.set()
        server.stop()


# --- slow clients --------------------------------------------------------------------------------

SLOW_CLIENTS = 200


def _half_sent(url: str, token: str = "") -> socket.socket:
    """A connection that sends part of a request (with a token: all headers and part of the body)
    and then nothing more."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    if token:
        sock.sendall(f"POST /v1/jobs HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{".encode())
    else:
        sock.sendall(f"GET /v1/health HTTP/1.1\r\nHost: {host}:{port}\r\nX-Slow: ".encode())
    return sock


def _read_until_closed(sock: socket.socket, limit_s: float) -> bytes:
    sock.settimeout(limit_s)
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


@pytest.mark.parametrize("phase", ["headers", "body"])
def test_a_stalled_request_is_closed_with_408(tmp_path, phase):
    server = EngineServer(ServerConfig(state_dir=tmp_path, advertise=False, header_timeout_s=0.5,
                                       body_timeout_s=0.5)).start_in_thread()
    try:
        sock = _half_sent(server.url, server.token if phase == "body" else "")
        started = time.monotonic()
        answer = _read_until_closed(sock, 20)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert time.monotonic() - started < 10
        sock.close()
        assert EngineClient(server.url, server.token).health()["version"]  # still serving
    finally:
        server.stop()


SERVE_WITH_FEW_DESCRIPTORS = """
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (160, 160))
from engine.server.cli import main
sys.exit(main(["--state-dir", sys.argv[1], "--no-advertise", "--exit-with-stdin", "--keep-jobs", "4"]))
"""


@pytest.mark.slow
def test_health_answers_while_200_half_sent_requests_are_held(tmp_path):
    """200 clients each send half a request and stall, against a server allowed 160 open files
    (a modest descriptor limit): the health route still answers, then the slow ones are let go."""
    repo = Path(__file__).resolve().parents[1]
    server = subprocess.Popen([sys.executable, "-c", SERVE_WITH_FEW_DESCRIPTORS, str(tmp_path)], cwd=repo,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    slow: list[socket.socket] = []
    try:
        ready = json.loads(server.stdout.readline())
        client = EngineClient(ready["url"], Path(ready["token_file"]).read_text().strip(), timeout=120)
        assert client.health()["version"]  # the first call loads the backends' reports: slow, once
        for _ in range(SLOW_CLIENTS):
            try:
                slow.append(_half_sent(ready["url"]))
            except OSError:  # the server already let an older one go and the backlog is full: fine
                break
        assert len(slow) >= 150
        deadline = time.monotonic() + 60
        answered = None
        while answered is None and time.monotonic() < deadline:
            try:
                answered = client.health()
            except Exception:  # noqa: BLE001 - retried until the deadline, then reported below
                time.sleep(0.5)
        assert answered is not None and answered["version"], "the server stopped answering"
    finally:
        for sock in slow:
            sock.close()
        server.stdin.close()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server.stdout.close()
        server.stderr.close()

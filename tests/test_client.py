"""The stdlib-only engine client and protocol: job building, SSE parsing, errors, and starting /
reusing a local server that exits with its parent."""

from __future__ import annotations

import ast
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine.core import protocol
from engine.core.client import (
    AuthError,
    EngineClient,
    EngineUnavailable,
    JobFailed,
    ServerError,
    connect,
    connect_or_start,
    parse_sse,
    start_local_server,
)
from engine.core.protocol import build_job, png_dimensions, read_advertisement, write_private_file
from engine.imaging import encode_png_rgba
from engine.server.runner import EngineServer, ServerConfig
from tests.helpers import disc_keyframe

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "engine" / "core"


def png(x: float = 20, width: int = 96, height: int = 64) -> bytes:
    return encode_png_rgba(disc_keyframe(x, height / 2, width=width, height=height))


@pytest.fixture
def served(tmp_path):
    server = EngineServer(ServerConfig(state_dir=tmp_path)).start_in_thread()
    yield server, EngineClient(server.url, server.token)
    server.stop()


def test_client_and_protocol_use_the_standard_library_only():
    allowed = set(sys.stdlib_module_names)
    for path in (CORE / "client.py", CORE / "protocol.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: must stay inside engine/core
                    assert node.level == 1, f"{path.name} imports from outside engine/core"
                    continue
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed | {"__future__"}, f"{path.name} imports {name}"


def test_parse_sse_follows_the_event_stream_rules():
    raw = (
        b": a comment\n"
        b"id: 1\nevent: progress\ndata: {\"a\": 1}\n\n"
        b"data: line one\r\ndata:line two\r\n\r\n"
        b"event: state\nid: 7\ndata: {}\n\n"
        b"event: ignored-without-data\n\n"
    )
    events = list(parse_sse(iter(raw.splitlines(keepends=True))))
    assert events == [("progress", "1", '{"a": 1}'), ("message", "1", "line one\nline two"), ("state", "7", "{}")]


def test_build_job_matches_the_contract():
    a, b, sketch = png(20), png(70), png(40)
    job = build_job(keyframes={8: b, 0: a}, sketches={4: sketch}, exposure=2, spacing=(0.2, 0.5, 0.8), count=3,
                    segments=[0], settings={"backend": "rife", "seed": 7})
    assert [k["frame"] for k in job["keyframes"]] == [0, 8]
    assert base64.b64decode(job["keyframes"][1]["png"]) == b
    assert job["sketches"] == [{"frame": 4, "png": base64.b64encode(sketch).decode()}]
    assert job["timing"] == {"exposure": 2, "spacing": [0.2, 0.5, 0.8], "count": 3}
    assert job["segments"] == [0] and job["settings"] == {"backend": "rife", "seed": 7}
    json.dumps(job, allow_nan=False)

    placed = build_job(keyframes={0: a, 4: b}, inbetweens=[(1, 0.1), (3, 0.9)])
    assert "timing" not in placed and placed["inbetweens"] == [{"frame": 1, "tau": 0.1}, {"frame": 3, "tau": 0.9}]


def test_build_job_refuses_what_the_server_would_refuse():
    with pytest.raises(ValueError, match="keyframe at frame 3: not a PNG image"):
        build_job(keyframes={0: png(), 3: b"GIF89a"})
    too_wide = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (protocol.MAX_IMAGE_SIDE + 1).to_bytes(4, "big") + (8).to_bytes(4, "big")
    with pytest.raises(ValueError, match="larger than the limit"):
        build_job(keyframes={0: png(), 3: too_wide})
    with pytest.raises(TypeError, match="whole numbers"):
        build_job(keyframes={0: png(), True: png()})
    assert png_dimensions(png(width=40, height=24)) == (40, 24)


def test_private_files_are_atomic_and_user_only(tmp_path):
    target = tmp_path / "state" / "server.json"
    write_private_file(target, b'{"url": "http://127.0.0.1:1", "token_file": "t"}')
    write_private_file(target, b'{"url": "http://127.0.0.1:2", "token_file": "t"}')
    assert read_advertisement(target.parent)["url"] == "http://127.0.0.1:2"
    assert [p.name for p in target.parent.iterdir()] == ["server.json"]  # no temp files left behind
    if os.name == "posix":
        assert target.stat().st_mode & 0o777 == 0o600 and target.parent.stat().st_mode & 0o777 == 0o700
    target.write_text("{broken")
    assert read_advertisement(target.parent) is None
    assert read_advertisement(tmp_path / "nowhere") is None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_nothing_listening_is_engine_unavailable_with_a_hint():
    client = EngineClient(f"http://127.0.0.1:{_closed_port()}", "token", timeout=5)
    with pytest.raises(EngineUnavailable, match="inbetween serve"):
        client.health()
    assert client.alive() is False


def test_wrong_token_is_auth_error_and_refusals_are_server_errors(served):
    server, client = served
    with pytest.raises(AuthError):
        EngineClient(server.url, "not-the-token").health()
    with pytest.raises(ServerError) as err:
        client.submit(build_job(keyframes={0: png(), 2: png()}, count=-1))
    assert err.value.status == 422 and err.value.field == "timing.count"
    assert "timing.count" in str(err.value)
    assert client.alive()


def test_a_job_too_big_to_send_is_refused_before_sending(served):
    _, client = served
    job = build_job(keyframes={0: png(), 2: png()})
    job["settings"] = {"prompt": "x" * protocol.MAX_BODY_BYTES}
    with pytest.raises(ServerError) as err:
        client.submit(job)
    assert err.value.status == 413
    assert client.jobs()["jobs"] == []


def test_wait_raises_job_failed_with_the_engines_message(served):
    _, client = served
    job_id = client.submit(build_job(keyframes={0: png(20), 2: png(70)},
                                     settings={"backend": "tooncrafter", "checkpoint": "/nonexistent.ckpt"}))
    seen = []
    with pytest.raises(JobFailed) as err:
        client.wait(job_id, on_progress=seen.append)
    assert err.value.status["state"] == "failed" and str(err.value) == err.value.status["error"]
    assert seen[-1]["state"] == "failed" and seen[-1]["event"] == "state"


def test_start_reuse_and_stop_a_local_server(tmp_path):
    server = start_local_server(state_dir=tmp_path, engine_root=REPO, startup_timeout=120)
    try:
        assert server.running()
        client = server.client()
        assert client.local_server is server
        assert client.jobs()["jobs"] == [] and client.alive()
        advert = read_advertisement(tmp_path)
        assert advert["url"] == server.url and advert["pid"] == server.pid == server.process.pid

        again = connect_or_start(state_dir=tmp_path, start=False)  # reuses the advertised server
        assert again.base_url == server.url and again.local_server is None
        assert connect(tmp_path).token == server.token
    finally:
        code = server.stop()
    assert code == 0
    assert not Path(server.token_file).exists() and read_advertisement(tmp_path) is None
    with pytest.raises(EngineUnavailable):
        connect_or_start(state_dir=tmp_path, start=False)
    assert "stopping the engine server" in server.log_path.read_text()


def test_a_stale_advertisement_starts_a_fresh_server(tmp_path):
    dead = f"http://127.0.0.1:{_closed_port()}"
    write_private_file(tmp_path / "old.token", b"old-token")
    write_private_file(protocol.state_file(tmp_path),
                       json.dumps({"url": dead, "token_file": str(tmp_path / "old.token"), "pid": 1}).encode())
    client = connect_or_start(state_dir=tmp_path, engine_root=REPO)
    try:
        assert client.base_url != dead and client.local_server is not None
        assert client.jobs()["jobs"] == []
    finally:
        client.local_server.stop()


def test_a_server_that_cannot_start_says_why(tmp_path):
    with pytest.raises(EngineUnavailable, match="exited with code 2"):
        start_local_server(state_dir=tmp_path, engine_root=REPO, extra_args=["--port", "not-a-number"])


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # an exited child of a parent that was killed may linger as a zombie until reaped
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return False


@pytest.mark.skipif(os.name != "posix", reason="kills the parent with SIGKILL")
def test_the_server_exits_when_its_parent_dies(tmp_path):
    parent_code = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from engine.core.client import start_local_server
        server = start_local_server(state_dir={str(tmp_path)!r}, engine_root={str(REPO)!r})
        print(server.pid, server.url, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True)
    try:
        pid_text, url = parent.stdout.readline().split()
        server_pid = int(pid_text)
        assert EngineClient(url, "x").alive()
        parent.send_signal(signal.SIGKILL)  # no cleanup code runs in the parent
        parent.wait(30)
        deadline = time.monotonic() + 60
        while not _gone(server_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _gone(server_pid), "the engine server outlived its parent"
        assert read_advertisement(tmp_path) is None  # and it cleaned up on the way out
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.wait()


def test_bundled_app_starts_the_engine_with_its_inbetween_launcher(tmp_path, monkeypatch):
    from engine.core import client as client_module

    app = tmp_path / "inbetween-studio"
    launcher = tmp_path / "inbetween"
    app.write_text("")
    assert client_module.default_engine_python() == sys.executable
    monkeypatch.setattr(client_module.sys, "frozen", True, raising=False)
    monkeypatch.setattr(client_module.sys, "executable", str(app))
    assert client_module.default_engine_python() == str(app)  # no launcher: fall back, the log will say why
    launcher.write_text("")
    assert client_module.default_engine_python() == str(launcher)


# --- hardening: the token stays on this machine; state folders and token files are kept safe --------


@pytest.fixture
def no_connections(monkeypatch):
    """Every HTTP request the client tries, recorded and refused (nothing leaves the machine)."""
    import http.client

    tried = []

    def request(self, method, url, body=None, headers=None, **kw):
        tried.append((self.host, dict(headers or {})))
        raise ConnectionRefusedError("test: no network")

    monkeypatch.setattr(http.client.HTTPConnection, "request", request)
    return tried


@pytest.mark.parametrize("url", ["http://10.1.2.3:8000", "http://engine.example.com:80", "http://127.0.0.1.nip.io:9",
                                 "http://[2001:db8::1]:8000", "http://0.0.0.0:8000"])
def test_the_token_is_never_sent_to_another_host(url, no_connections):
    with pytest.raises(ValueError, match="not this machine"):
        EngineClient(url, "secret-token").health()
    assert no_connections == []


def test_a_remote_engine_needs_an_explicit_opt_in(no_connections):
    client = EngineClient("http://10.1.2.3:8000", "secret-token", allow_remote=True)
    with pytest.raises(EngineUnavailable):
        client.health()
    assert [host for host, _ in no_connections] == ["10.1.2.3"]
    for url in ("http://127.0.0.1:1", "http://localhost:1", "http://[::1]:1", "http://127.8.9.10:1"):
        EngineClient(url, "t")  # loopback needs no opt-in


def test_the_token_from_the_environment_goes_nowhere_but_loopback(monkeypatch, no_connections):
    from engine.api import EngineError, GenerationRequest, GenerationSettings
    from engine.server.remote import run_remote_job

    monkeypatch.setenv(protocol.TOKEN_ENV, "secret-token")
    request = GenerationRequest(keyframes=[], segments=[], settings=GenerationSettings(backend="rife"))
    with pytest.raises(EngineError, match="not this machine"):
        run_remote_job("http://192.168.1.20:8000", request)
    assert no_connections == []


def test_an_advertised_remote_url_is_not_trusted(tmp_path, no_connections):
    write_private_file(tmp_path / "s.token", b"secret-token")
    write_private_file(protocol.state_file(tmp_path),
                       json.dumps({"url": "http://10.9.9.9:80", "token_file": str(tmp_path / "s.token")}).encode())
    with pytest.raises((ValueError, EngineUnavailable)):
        connect(tmp_path)
    assert no_connections == []


def test_a_world_writable_state_folder_is_made_private(tmp_path, capsys):
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    write_private_file(state / "server-1.token", b"token")
    assert state.stat().st_mode & 0o777 == 0o700
    assert "made it private" in capsys.readouterr().err


def test_a_state_folder_of_another_user_is_refused(tmp_path, monkeypatch):
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setattr(os, "geteuid", lambda: os.stat(state).st_uid + 4242)
    with pytest.raises(OSError, match="belongs to another user"):
        write_private_file(state / "server-1.token", b"token")
    assert list(state.iterdir()) == []


def test_an_advertisement_in_a_folder_others_can_write_is_ignored(tmp_path):
    write_private_file(protocol.state_file(tmp_path), b'{"url": "http://127.0.0.1:1", "token_file": "t"}')
    assert read_advertisement(tmp_path) is not None
    tmp_path.chmod(0o777)
    assert read_advertisement(tmp_path) is None


def test_an_existing_token_file_is_never_overwritten_or_deleted(tmp_path):
    precious = tmp_path / "notes.txt"
    precious.write_text("the user's own file")
    with pytest.raises(FileExistsError, match="notes.txt"):
        EngineServer(ServerConfig(state_dir=tmp_path / "state", token_file=precious, advertise=False))
    assert precious.read_text() == "the user's own file"


def test_a_token_file_replaced_while_serving_is_left_alone(tmp_path):
    server = EngineServer(ServerConfig(state_dir=tmp_path / "state", token_file=tmp_path / "t.token",
                                       advertise=False)).start_in_thread()
    assert (tmp_path / "t.token").read_text() == server.token
    (tmp_path / "t.token").write_text("someone else's file now")
    server.stop()
    assert (tmp_path / "t.token").read_text() == "someone else's file now"

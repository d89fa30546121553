"""Who may use the engine server, and what it does with bad input: token, Host/Origin (DNS rebinding),
upload limits, and job JSON errors that name the field - never a 500 - fuzzed with hypothesis."""

from __future__ import annotations

import base64
import io
import json
import os
import socket

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from engine.core import protocol
from engine.core.protocol import build_job
from engine.imaging import encode_png_rgba
from engine.server.runner import EngineServer, ServerConfig, is_loopback
from tests.helpers import disc_keyframe


def png(x: float, width: int = 96, height: int = 64) -> bytes:
    return encode_png_rgba(disc_keyframe(x, height / 2, width=width, height=height))


def tiny_png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", (width, height), (0, 0, 0, 0)).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def valid_job() -> dict:
    return build_job(keyframes={0: png(20), 2: png(70)}, count=1, settings={"backend": "rife"})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = EngineServer(ServerConfig(state_dir=tmp_path_factory.mktemp("state"))).start_in_thread()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=60) as client:
        yield client


def post_job(http, job) -> httpx.Response:
    body = job if isinstance(job, (bytes, str)) else json.dumps(job)
    response = http.post("/v1/jobs", content=body, headers={"Content-Type": "application/json"})
    if response.status_code == 202:
        http.delete(f"/v1/jobs/{response.json()['id']}")  # accidentally valid: do not keep the engine busy
    return response


ROUTES = [
    ("GET", "/v1/health"),
    ("GET", "/v1/jobs"),
    ("POST", "/v1/jobs"),
    ("GET", "/v1/jobs/1-abc"),
    ("GET", "/v1/jobs/1-abc/events"),
    ("GET", "/v1/jobs/1-abc/frames/0"),
    ("DELETE", "/v1/jobs/1-abc"),
    ("GET", "/no/such/route"),
]


@pytest.mark.parametrize("method,path", ROUTES)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Basic dXNlcjpwYXNz", "Bearer", "bearer x" + "y" * 40])
def test_every_route_but_liveness_needs_the_token(server, method, path, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = httpx.request(method, server.url + path, headers=headers, content=b"{}" if method == "POST" else None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"].startswith("authorization:")


def test_liveness_needs_no_token_and_says_nothing_more(server):
    response = httpx.get(server.url + protocol.LIVENESS_PATH)
    assert response.status_code == 200 and response.json() == {"status": "ok", "service": "inbetweener"}


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "127.0.0.2:{port}", "0.0.0.0:{port}"])
def test_a_foreign_host_is_refused_even_with_the_token(server, http, host):
    for path in ("/v1/health", protocol.LIVENESS_PATH):
        response = http.get(path, headers={"Host": host.format(port=server.port)})
        assert response.status_code == 421
        assert response.json()["field"] == "host"


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "[::1]:{port}"])
def test_the_servers_own_loopback_names_are_accepted(server, http, host):
    assert http.get("/v1/health", headers={"Host": host.format(port=server.port)}).status_code == 200


def test_a_request_without_host_is_refused(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(f"GET /v1/health HTTP/1.0\r\nAuthorization: Bearer {server.token}\r\n\r\n".encode())
        reply = sock.makefile("rb").read()
    assert reply.split(b"\r\n", 1)[0].split()[1] == b"421"


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1:{port}",
                                    "http://evil.example:{port}"])
def test_a_foreign_origin_is_refused(server, http, origin):
    response = http.get("/v1/health", headers={"Origin": origin.format(port=server.port)})
    assert response.status_code == 403 and response.json()["field"] == "origin"
    response = http.post("/v1/jobs", content=json.dumps(valid_job()), headers={"Origin": origin.format(port=server.port)})
    assert response.status_code == 403


def test_the_servers_own_origin_is_accepted(server, http):
    for name in ("127.0.0.1", "localhost"):
        assert http.get("/v1/health", headers={"Origin": f"http://{name}:{server.port}"}).status_code == 200


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_token_file_is_private(server):
    assert server.token_file.stat().st_mode & 0o777 == 0o600
    assert server.token_file.parent.stat().st_mode & 0o077 == 0
    assert server.token_file.read_text() == server.token and len(server.token) >= 40


def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("127.8.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4") and not is_loopback("::")


def test_an_oversized_upload_is_refused_before_it_is_read(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        head = (
            f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nAuthorization: Bearer {server.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {protocol.MAX_BODY_BYTES + 1}\r\n\r\n{{"
        )
        sock.sendall(head.encode())
        status_line = sock.makefile("rb").readline()
    assert status_line.split()[1] == b"413"


def test_an_oversized_streamed_upload_is_refused_while_streaming(http):
    chunk = b" " * (1 << 20)

    def body():
        for _ in range(protocol.MAX_BODY_BYTES // len(chunk) + 1):
            yield chunk

    response = http.post("/v1/jobs", content=body(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["field"] == "body"


def test_too_many_pixels_together_are_refused_before_decoding(http):
    big = tiny_png(protocol.MAX_IMAGE_SIDE, protocol.MAX_IMAGE_SIDE)
    count = protocol.MAX_JOB_PIXELS // protocol.MAX_IMAGE_SIDE**2 + 1
    job = {"keyframes": [{"frame": i * 2, "png": b64(big)} for i in range(count)]}
    response = post_job(http, job)
    assert response.status_code == 413 and response.json()["field"] == "keyframes"


def with_(job: dict, path: tuple, value) -> dict:
    """A copy of `job` with the value at `path` replaced (or removed when value is DELETE)."""
    job = json.loads(json.dumps(job))
    target = job
    for part in path[:-1]:
        target = target[part]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return job


DELETE = object()
GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
       b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

BAD_JOBS = [
    # (job or raw body, status, field, words in the message)
    (b"this is not json", 400, "body", "invalid json"),
    (b"", 400, "body", ""),
    (b"[1, 2]", 422, "body", "json object"),
    ({"keyframes": "x"}, 422, "keyframes", "array"),
    (("keyframes",), [], 422, "keyframes", "at least 2"),
    (("keyframes", 0, "frame"), "0", 422, "keyframes[0].frame", "integer"),
    (("keyframes", 0, "frame"), -1, 422, "keyframes[0].frame", "greater than or equal to 0"),
    (("keyframes", 0, "frame"), True, 422, "keyframes[0].frame", "integer"),
    (("keyframes", 0, "frame"), 1.0, 422, "keyframes[0].frame", "integer"),
    (("keyframes", 1, "frame"), 0, 422, "keyframes[1].frame", "given twice"),
    (("keyframes", 1, "png"), "@@not base64@@", 422, "keyframes[1].png", "base64"),
    (("keyframes", 1, "png"), b64(GIF), 422, "keyframes[1].png", "not a png"),
    (("keyframes", 1, "png"), "", 422, "keyframes[1].png", "not a png"),
    (("keyframes", 0, "png"), b64(tiny_png(protocol.MAX_IMAGE_SIDE + 1, 2)), 422, "keyframes[0].png", "larger than"),
    (("keyframes", 0, "png"), b64(png(20)[:90]), 422, "keyframes[0].png", ""),
    (("keyframes", 0, "png"), None, 422, "keyframes[0].png", "string"),
    (("keyframes", 0, "colour"), "red", 422, "keyframes[0].colour", "extra"),
    (("timing", "count"), -3, 422, "timing.count", "greater than or equal to 1"),
    (("timing", "count"), 0, 422, "timing.count", ""),
    (("timing", "count"), "7", 422, "timing.count", "integer"),
    (("timing", "exposure"), "fours", 422, "timing.exposure", "exposure"),
    (("timing", "exposure"), 0, 422, "timing.exposure", "1 to 12"),
    (("timing", "spacing"), "bouncy", 422, "timing.spacing", "unknown spacing"),
    (("timing", "spacing"), [0.6, 0.2], 422, "timing.spacing", "increase"),
    (("timing", "spacing"), [0.5, True], 422, "timing.spacing", "not a number"),
    (("timing", "spacing"), 3, 422, "timing.spacing", ""),
    (("settings", "steps"), 0, 422, "settings", "steps"),
    (("settings", "steps"), "50", 422, "settings.steps", "integer"),
    (("settings", "seed"), -1, 422, "settings.seed", ""),
    (("settings", "seed"), 2**70, 422, "settings.seed", ""),
    (("settings", "backend"), "magic", 422, "settings", "unknown backend"),
    (("settings", "cfg_scale"), "high", 422, "settings.cfg_scale", "number"),
    (("settings", "turbo"), True, 422, "settings.turbo", "extra"),
    (("segments",), [5], 422, None, "segment 5"),
    (("segments",), [-1], 422, "segments[0]", ""),
    (("colour",), "red", 422, "colour", "extra"),
    (("sketches",), [{"frame": 0, "png": b64(png(30))}], 422, None, "sketch at frame 0"),
    (("sketches",), [{"frame": 1, "png": b64(png(30, width=40))}], 422, None, "sketch at frame 1"),
    (("keyframes", 1, "png"), b64(png(30, width=40)), 422, None, "keyframes[1].png"),
    (build_job(keyframes={0: png(20), protocol.MAX_FRAME: png(70)}), 422, "timing", "in-betweens"),
    (("inbetweens",), [{"frame": 1, "tau": 0.5}], 422, "inbetweens", "either timing or inbetweens"),
]


def _bad_job(case):
    if len(case) == 4:
        body, status, field, words = case
        return body, status, field, words
    path, value, status, field, words = case
    return with_(valid_job(), path, value), status, field, words


@pytest.mark.parametrize("case", BAD_JOBS, ids=lambda c: str(c[0])[:40] + "=" + str(c[1])[:20])
def test_bad_jobs_get_a_4xx_naming_the_field(http, case):
    job, status, field, words = _bad_job(case)
    response = post_job(http, job)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["field"] == field
    assert body["error"].startswith(f"{field}: ") if field else body["error"]
    assert words.lower() in body["error"].lower()


@pytest.mark.parametrize(
    "inbetweens,field,words",
    [
        ([{"frame": 1, "tau": 1.5}], "inbetweens[0].tau", "outside (0, 1)"),
        ([{"frame": 2, "tau": 0.5}], "inbetweens[0].frame", "not strictly between"),
        ([{"frame": 1, "tau": 0.5}, {"frame": 1, "tau": 0.6}], "inbetweens[1].frame", "twice"),
        ([], "inbetweens", "no in-between"),
        ([{"frame": 1, "tau": "half"}], "inbetweens[0].tau", "number"),
    ],
)
def test_explicitly_placed_inbetweens_are_checked(http, inbetweens, field, words):
    job = build_job(keyframes={0: png(20), 2: png(70)}, inbetweens=[])
    job["inbetweens"] = inbetweens
    response = post_job(http, job)
    assert response.status_code == 422 and response.json()["field"] == field
    assert words in response.json()["error"]


def test_explicit_taus_must_increase_with_frames(http):
    job = build_job(keyframes={0: png(20), 4: png(70)}, inbetweens=[(1, 0.5), (2, 0.4)])
    response = post_job(http, job)
    assert response.status_code == 422 and response.json()["field"] == "inbetweens[1].tau"


def test_path_parameter_errors_name_the_parameter(http):
    response = http.get("/v1/jobs/x/frames/first")
    assert response.status_code == 422 and response.json()["field"] == "n"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values)
def test_fuzz_any_json_body_is_never_a_server_error(http, body):
    response = post_job(http, body)
    assert 400 <= response.status_code < 500, response.text
    assert isinstance(response.json()["error"], str) and response.json()["error"]


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _paths(child, prefix + (i,))


VALID = valid_job()
JOB_PATHS = [p for p in _paths(VALID) if p]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(JOB_PATHS), value=json_values | st.just(DELETE))
def test_fuzz_mutated_jobs_get_202_or_a_4xx_naming_a_field(http, path, value):
    job = with_(VALID, path, value)
    response = post_job(http, job)
    assert response.status_code == 202 or 400 <= response.status_code < 500, response.text
    if response.status_code != 202:
        body = response.json()
        assert body["error"]
        if body["field"]:
            assert body["error"].startswith(body["field"] + ": ")


@pytest.mark.parametrize("hostile", ["text_bomb", "claims_60000"])
def test_hostile_pngs_are_a_422_naming_the_image(http, hostile):
    from tests.helpers import png_claiming, png_with_text_bomb

    bad = png_with_text_bomb() if hostile == "text_bomb" else png_claiming(60000, 60000)
    job = valid_job()
    job["keyframes"][1]["png"] = b64(bad)
    response = post_job(http, job)
    assert response.status_code == 422, response.text
    assert response.json()["field"].startswith("keyframes[1]")


@pytest.mark.parametrize("device", ["meta", "xpu", "cuda:", "cuda:-1", "cpu;rm"])
def test_unknown_devices_are_a_422(http, device):
    job = valid_job()
    job["settings"]["device"] = device
    response = post_job(http, job)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "settings" and "device" in response.json()["error"]

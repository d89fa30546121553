"""The engine server end to end on loopback: real uvicorn, real pipeline, real RIFE backend."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from engine import pipeline
from engine.api import Cancelled, GenerationSettings, Keyframe
from engine.backends import availability
from engine.core.client import EngineClient, JobCancelled, JobFailed, ServerError
from engine.core.planning import frame_assignments, plan_timeline
from engine.core.protocol import build_job, read_advertisement
from engine.imaging import decode_png_rgba, encode_png_rgba
from engine.server.jobs import JobQueue, UnknownJob
from engine.server.remote import run_remote_job
from engine.server.runner import EngineServer, ServerConfig
from tests.helpers import disc_keyframe

REPO = Path(__file__).resolve().parents[1]

requires_rife = pytest.mark.skipif(not availability("rife")[0], reason="the rife backend is not available here")


def png(x: float, **kw) -> bytes:
    return encode_png_rgba(disc_keyframe(x, 32, **kw))


def rife_job(keys=((0, 20), (2, 70)), **kw) -> dict:
    """A RIFE job, by default the smallest there is: two keys, one in-between."""
    return build_job(keyframes={f: png(x) for f, x in keys}, settings={"backend": "rife"}, **kw)


class Gate:
    """Runs the real pipeline but holds it at its first progress report until released, so a test
    can act (cancel, queue more jobs) while a job is certainly running."""

    def __init__(self, fail_first_with: BaseException | None = None) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()
        self.fail_first_with = fail_first_with
        self.calls = 0

    def generate(self, request, progress, cancel):
        self.calls += 1
        if self.calls == 1 and self.fail_first_with is not None:
            raise self.fail_first_with

        def gated(stage, fraction, message):
            progress(stage, fraction, message)
            if not self.reached.is_set():
                self.reached.set()
                assert self.release.wait(60), "the test never released the gate"

        return pipeline.generate(request, progress=gated, cancel=cancel)


def start(tmp_path, **kw) -> tuple[EngineServer, EngineClient]:
    generate = kw.pop("generate", None)
    server = EngineServer(ServerConfig(state_dir=tmp_path, **kw), generate=generate).start_in_thread()
    return server, EngineClient(server.url, server.token, timeout=60)


@pytest.fixture
def served(tmp_path):
    server, client = start(tmp_path)
    yield server, client
    server.stop()


@pytest.fixture
def gated(tmp_path):
    gate = Gate()
    server, client = start(tmp_path, generate=gate.generate)
    yield gate, client
    gate.release.set()
    server.stop()


@requires_rife
def test_full_rife_job_from_submit_to_frames(served):
    server, client = served
    keys = {0: png(20), 6: png(50), 12: png(76)}
    job_id = client.submit(build_job(keyframes=keys, exposure=2, settings={"backend": "rife"}))
    status = client.wait(job_id)
    assert status["state"] == "done" and status["error"] is None and status["progress"] == 1.0

    expected = frame_assignments(plan_timeline([0, 6, 12], exposure=2))
    assert [f["frame"] for f in status["frames"]] == list(range(13))
    for info in status["frames"]:
        slot = expected[info["frame"]]
        assert (info["kind"], info["drawing"], info["segment"]) == (slot.kind, slot.drawing, slot.segment)
        assert info["tau"] == pytest.approx(slot.tau) if slot.tau is not None else info["tau"] is None
    assert status["provenance"]["backend"] == "rife"

    frames = client.frames(job_id, status)
    for number, data in frames.items():
        image = decode_png_rgba(data, source=f"frame {number}")
        assert image.shape == (64, 96, 4)
    for frame, data in keys.items():  # keys come back pixel for pixel
        np.testing.assert_array_equal(decode_png_rgba(frames[frame], source="k"), decode_png_rgba(data, source="k"))
    assert frames[3] == frames[2] and frames[1] == frames[0]  # holds show their drawing
    # the in-betweens are new drawings between the keys
    ib = decode_png_rgba(frames[2], source="ib").astype(int)
    assert not np.array_equal(ib, decode_png_rgba(keys[0], source="k")) and ib.std() > 0
    assert client.frame_png(job_id, 4) == frames[4]


@requires_rife
def test_events_arrive_in_order_and_end_with_the_final_state(served):
    _, client = served
    job_id = client.submit(rife_job(count=2, keys=((0, 20), (6, 76))))
    events = list(client.events(job_id))
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(events) + 1)), "events lost or reordered"
    order = {"queued": 0, "running": 1, "done": 2}
    ranks = [order[e["state"]] for e in events]
    assert ranks == sorted(ranks) and events[0]["state"] == "queued"
    assert any(e["event"] == "progress" and e["stage"] for e in events)
    final = events[-1]
    assert final["event"] == "state" and final["state"] == "done" and len(final["frames"]) == 7
    assert all(e["event"] != "state" or e["state"] != "done" for e in events[:-1])

    # a reader that reconnects with Last-Event-ID gets the rest, again ending with the final state
    rest = list(client.events(job_id, last_event_id=seqs[-3]))
    assert [e["seq"] for e in rest] == seqs[-2:] and rest[-1]["state"] == "done"
    # a reader that comes after the end still gets the final state
    late = list(client.events(job_id, last_event_id=seqs[-1]))
    assert len(late) == 1 and late[0]["state"] == "done"


@requires_rife
def test_cancel_stops_a_running_job_and_the_next_job_runs(gated):
    gate, client = gated
    job_id = client.submit(rife_job(count=2, keys=((0, 20), (6, 50), (12, 76))))
    assert gate.reached.wait(60)
    assert client.status(job_id)["state"] == "running"
    after_cancel = client.cancel(job_id)
    assert after_cancel["state"] == "running" and after_cancel["message"] == "cancelling"
    gate.release.set()
    with pytest.raises(JobCancelled):
        client.wait(job_id)
    status = client.status(job_id)
    assert status["state"] == "cancelled" and status["frames"] == []
    with pytest.raises(ServerError) as err:
        client.frame_png(job_id, 0)
    assert err.value.status == 409

    next_id = client.submit(rife_job())
    assert client.wait(next_id)["state"] == "done"


@requires_rife
def test_cancel_removes_a_queued_job_and_the_queue_stays_fifo(gated):
    gate, client = gated
    first = client.submit(rife_job())
    assert gate.reached.wait(60)
    second = client.submit(rife_job())
    third = client.submit(rife_job())
    assert client.status(second)["queue_position"] == 0 and client.status(third)["queue_position"] == 1
    cancelled = client.cancel(second)
    assert cancelled["state"] == "cancelled"
    assert client.status(third)["queue_position"] == 0
    gate.release.set()
    assert client.wait(first)["state"] == "done"
    assert client.wait(third)["state"] == "done"
    assert client.status(second)["state"] == "cancelled"


@requires_rife
def test_a_full_queue_answers_429_until_it_drains(tmp_path):
    gate = Gate()
    server, client = start(tmp_path, generate=gate.generate, max_queued=1)
    try:
        running = client.submit(rife_job())
        assert gate.reached.wait(60)
        waiting = client.submit(rife_job())
        with pytest.raises(ServerError) as err:
            client.submit(rife_job())
        assert err.value.status == 429 and err.value.field == "jobs"
        gate.release.set()
        assert client.wait(running)["state"] == "done" and client.wait(waiting)["state"] == "done"
        assert client.wait(client.submit(rife_job()))["state"] == "done"
    finally:
        gate.release.set()
        server.stop()


@requires_rife
def test_a_failing_job_fails_alone(served):
    _, client = served
    bad = rife_job()
    bad["settings"] = {"backend": "tooncrafter", "checkpoint": "/nonexistent/tooncrafter.ckpt"}
    bad_id = client.submit(bad)
    with pytest.raises(JobFailed) as err:
        client.wait(bad_id)
    status = client.status(bad_id)
    assert status["state"] == "failed" and "tooncrafter" in status["error"].lower()
    assert str(err.value) == status["error"]
    good_id = client.submit(rife_job())
    assert client.wait(good_id)["state"] == "done"
    assert client.health()["jobs"]["running"] is None


@requires_rife
def test_a_crash_inside_generation_is_reported_and_the_server_keeps_serving(tmp_path):
    gate = Gate(fail_first_with=MemoryError("CUDA out of memory"))
    gate.release.set()
    server, client = start(tmp_path, generate=gate.generate)
    try:
        crashed = client.submit(rife_job())
        with pytest.raises(JobFailed, match="MemoryError: CUDA out of memory"):
            client.wait(crashed)
        assert client.wait(client.submit(rife_job()))["state"] == "done"
    finally:
        server.stop()


@requires_rife
def test_out_of_memory_unloads_the_models_and_the_next_job_runs(served, monkeypatch):
    from engine.backends import get_backend, loaded_backends

    _, client = served
    get_backend("rife", GenerationSettings(backend="rife"))
    assert loaded_backends()
    real_generate = pipeline.generate

    def out_of_memory(request, progress, cancel):
        monkeypatch.setattr(pipeline, "generate", real_generate)
        raise MemoryError("cannot allocate 9 GiB")

    monkeypatch.setattr(pipeline, "generate", out_of_memory)
    with pytest.raises(JobFailed, match="out of memory .*cannot allocate 9 GiB.*low_vram"):
        client.wait(client.submit(rife_job()))
    assert loaded_backends() == []
    assert client.wait(client.submit(rife_job()))["state"] == "done"


def test_health_lists_backends_with_reasons(served):
    _, client = served
    health = client.health()
    assert health["version"] and health["api"] == 1
    assert set(health["backends"]) >= {"rife", "tooncrafter"}
    for info in health["backends"].values():
        assert isinstance(info["available"], bool)
        assert info["available"] or info["reason"]
    assert health["device"]["type"] in ("cpu", "cuda")
    assert isinstance(health["loaded_models"], list)
    assert health["limits"]["max_image_side"] == 4096


def test_unknown_job_and_frame_are_404_with_a_json_error(served):
    _, client = served
    for call in (lambda: client.status("nope"), lambda: client.frame_png("nope", 0), lambda: client.cancel("nope")):
        with pytest.raises(ServerError) as err:
            call()
        assert err.value.status == 404 and err.value.field == "id"


@requires_rife
def test_finished_jobs_are_evicted_by_count_and_deleted_on_request(tmp_path):
    server, client = start(tmp_path, keep_count=1)
    try:
        ids = [client.submit(rife_job()) for _ in range(2)]
        for job_id in ids:
            client.wait(job_id)
        with pytest.raises(ServerError) as err:
            client.status(ids[0])
        assert err.value.status == 404
        assert client.status(ids[1])["state"] == "done"
        with pytest.raises(ServerError, match="not in this job"):
            client.frame_png(ids[1], 99)
        client.cancel(ids[1])  # DELETE on a finished job forgets it
        with pytest.raises(ServerError):
            client.status(ids[1])
    finally:
        server.stop()


@requires_rife
def test_finished_jobs_are_evicted_after_their_time():
    queue = JobQueue(lambda request, progress, cancel: pipeline.generate(request, progress, cancel), keep_seconds=0.05)
    try:
        keys = [Keyframe(0, disc_keyframe(20, 32)), Keyframe(2, disc_keyframe(70, 32))]
        job = queue.submit(pipeline.build_request(keys, settings=GenerationSettings(backend="rife")))
        while not job.terminal:
            time.sleep(0.02)
        assert job.state == "done" and job.request is None  # the uploads are let go as soon as it ends
        time.sleep(0.1)
        with pytest.raises(UnknownJob):
            queue.get(job.id)
    finally:
        queue.shutdown()


@requires_rife
def test_remote_run_matches_the_in_process_run(served, monkeypatch):
    server, _ = served
    keys = [Keyframe(0, disc_keyframe(20, 32), "a.png"), Keyframe(9, disc_keyframe(76, 40), "b.png")]
    request = pipeline.build_request(keys, count=2, spacing="ease-in", settings=GenerationSettings(backend="rife"))
    local = pipeline.generate(request)
    stages = []
    remote = run_remote_job(server.url, request, token_file=server.token_file,
                            progress=lambda s, f, m: stages.append((s, f)))
    assert sorted(remote.frames) == sorted(local.frames)
    for number, fr in local.frames.items():
        other = remote.frames[number]
        assert (other.kind, other.drawing, other.segment) == (fr.kind, fr.drawing, fr.segment)
        np.testing.assert_array_equal(other.image, fr.image)
    assert remote.provenance["backend"] == "rife" and remote.provenance["server"] == server.url
    assert stages and all(0.0 <= f <= 1.0 for _, f in stages)

    # the token is also found through the server's advertisement
    monkeypatch.setenv("INBETWEENER_STATE_DIR", str(server.state_dir))
    monkeypatch.delenv("INBETWEENER_TOKEN", raising=False)
    assert sorted(run_remote_job(server.url, request).frames) == sorted(local.frames)


@requires_rife
def test_remote_run_reports_cancel_and_refusals(gated, tmp_path):
    from engine.api import CancelToken, EngineError

    gate, client = gated
    keys = [Keyframe(0, disc_keyframe(20, 32)), Keyframe(2, disc_keyframe(70, 32))]
    request = pipeline.build_request(keys, settings=GenerationSettings(backend="rife"))
    cancel = CancelToken()
    cancel.cancel()  # cancelled from the start: the relay asks the server to cancel at the first event
    outcome = {}

    def run():
        try:
            run_remote_job(client.base_url, request, token=client.token, cancel=cancel)
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion below
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    # hold the job until the server has the cancel request, whether it came while queued or running
    for _ in range(600):
        jobs = client.jobs()["jobs"]
        if jobs and (jobs[0]["state"] == "cancelled" or jobs[0]["message"] == "cancelling"):
            break
        threading.Event().wait(0.05)
    gate.release.set()
    worker.join(60)
    assert isinstance(outcome.get("error"), Cancelled)

    with pytest.raises(EngineError, match="refused the token"):
        run_remote_job(client.base_url, request, token="wrong")


def test_serve_command_prints_one_ready_line_and_cleans_up(tmp_path):
    env = {**os.environ, "INBETWEENER_STATE_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.server", "--port", "0"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        info = json.loads(proc.stdout.readline())
        assert set(info) == {"url", "token_file", "pid"} and info["pid"] == proc.pid
        assert info["url"].startswith("http://127.0.0.1:")
        token_file = Path(info["token_file"])
        assert token_file.parent == tmp_path
        if os.name == "posix":
            assert token_file.stat().st_mode & 0o777 == 0o600
        advert = read_advertisement(tmp_path)
        assert advert["url"] == info["url"] and advert["token_file"] == str(token_file)
        client = EngineClient(info["url"], token_file.read_text().strip())
        assert client.alive() and client.jobs()["jobs"] == []
    finally:
        proc.send_signal(signal.SIGINT if os.name == "nt" else signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out == "", "only the ready line may go to stdout"
    assert not token_file.exists() and read_advertisement(tmp_path) is None


def test_serve_refuses_a_bad_port_and_a_busy_port(tmp_path):
    from engine.server.cli import main

    assert main(["--port", "70000", "--state-dir", str(tmp_path)]) == 2
    server, _ = start(tmp_path)
    try:
        assert main(["--port", str(server.port), "--state-dir", str(tmp_path)]) == 1
    finally:
        server.stop()

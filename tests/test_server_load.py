"""A bounded load test: 100 concurrent status polls while 5 jobs queue; every job completes, nothing lost."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from engine import pipeline
from engine.backends import availability
from engine.core.client import EngineClient
from engine.core.protocol import build_job
from engine.imaging import decode_png_rgba, encode_png_rgba
from engine.server.runner import EngineServer, ServerConfig
from tests.helpers import disc_keyframe

pytestmark = pytest.mark.skipif(not availability("rife")[0], reason="the rife backend is not available here")

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

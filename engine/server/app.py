"""The HTTP routes of the engine server (FastAPI). See docs/server.md for the protocol.

Every error is JSON {"error": "<field>: <what is wrong>", "field": "<field>"}; bad input is a 4xx,
never a 500. Heavy work (JSON parsing, PNG decoding, health probes) runs in the thread pool so the
event loop keeps answering status polls while a job runs on the worker thread.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import platform
from collections.abc import Iterable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response, StreamingResponse

from .. import __version__
from ..core import protocol
from .jobs import JobQueue, QueueFull, UnknownJob
from .schema import JobInputError, field_path, parse_job
from .security import GuardMiddleware

log = logging.getLogger("engine.server")

#: Seconds between SSE keep-alive comments, so idle streams are not taken for dead connections.
SSE_KEEPALIVE_S = 10.0


class RequestTooLarge(Exception):
    pass


def error_response(status: int, message: str, field: str | None = None, headers: dict | None = None) -> JSONResponse:
    body = {"error": f"{field}: {message}" if field else message, "field": field or None}
    return JSONResponse(body, status, headers=headers)


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The request body, refused before reading when Content-Length says it is too big, and while
    streaming when the bytes actually sent (chunked or lying) pass the limit."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise RequestTooLarge
        except ValueError:
            raise JobInputError("content-length", f"{declared!r} is not a number", status=400) from None
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestTooLarge
            chunks.append(chunk)
    except ClientDisconnect:  # gone, or closed for sending too slowly (connections.py): not a server error
        raise JobInputError("body", "the client stopped sending the request", status=408) from None
    return b"".join(chunks)


@functools.lru_cache(maxsize=1)
def device_info() -> dict:
    """Where generation runs; asked once (importing torch is slow)."""
    try:
        import torch
    except ImportError:
        return {"type": "cpu", "name": platform.processor() or platform.machine(), "torch": None}
    info = {"type": "cpu", "name": platform.processor() or platform.machine(), "torch": torch.__version__}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(type="cuda", name=props.name, memory_gib=round(props.total_memory / 2**30, 1))
    info["threads"] = torch.get_num_threads()
    return info


def runtime_report() -> dict:
    """What can run the ToonCrafter model here (torch, onnx) and why not, plus what auto picks."""
    from ..api import GenerationSettings
    from ..tooncrafter.runtimes import runtime_report as report
    from ..tooncrafter.weights.store import ModelStore

    return report(GenerationSettings(), ModelStore())


def health(queue: JobQueue) -> dict:
    from ..api import EngineError, GenerationSettings
    from ..backends import availability_report, loaded_backends, resolve_backend_name

    try:
        default_backend = resolve_backend_name(GenerationSettings())
    except EngineError:
        default_backend = None
    return {
        "version": __version__,
        "api": protocol.API_VERSION,
        "backends": availability_report(),
        "default_backend": default_backend,
        "runtimes": runtime_report(),
        "device": device_info(),
        "loaded_models": loaded_backends(),
        "jobs": queue.summary(),
        "limits": {
            "max_body_bytes": protocol.MAX_BODY_BYTES,
            "max_image_side": protocol.MAX_IMAGE_SIDE,
            "max_keyframes": protocol.MAX_KEYFRAMES,
            "max_inbetweens_per_job": protocol.MAX_INBETWEENS_PER_JOB,
            "max_queued_jobs": queue.max_queued,
        },
    }


def _sse(seq: int, kind: str, data: dict) -> str:
    return f"id: {seq}\nevent: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def create_app(queue: JobQueue, *, token: str, extra_hosts: Iterable[str] = ()) -> FastAPI:
    app = FastAPI(title="Inbetweener engine", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(GuardMiddleware, token=token, extra_hosts=tuple(extra_hosts))
    prefix = protocol.API_PREFIX

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return error_response(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        loc = tuple(p for p in first.get("loc", ()) if p not in ("path", "query", "body"))
        return error_response(422, str(first.get("msg", "invalid")).lower(), field_path(loc) or "request")

    @app.exception_handler(JobInputError)
    async def _job_input_error(request: Request, exc: JobInputError):
        return error_response(exc.status, exc.message, exc.field or None)

    @app.exception_handler(RequestTooLarge)
    async def _too_large(request: Request, exc: RequestTooLarge):
        return error_response(
            413, f"the request is larger than {protocol.MAX_BODY_BYTES} bytes; send fewer or smaller images", "body"
        )

    @app.exception_handler(UnknownJob)
    async def _unknown_job(request: Request, exc: UnknownJob):
        return error_response(404, f"no job {exc.args[0]!r} (finished jobs are kept for a while, then forgotten)", "id")

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):
        log.exception("unexpected error serving %s", request.url.path)
        return error_response(500, f"internal error: {type(exc).__name__}: {exc}")

    @app.get(protocol.LIVENESS_PATH)
    async def livez():
        return {"status": "ok", "service": "inbetweener"}

    @app.get(f"{prefix}/health")
    def get_health():
        return health(queue)

    @app.post(f"{prefix}/jobs", status_code=202)
    async def submit(request: Request):
        body = await read_limited_body(request, protocol.MAX_BODY_BYTES)
        generation_request = await run_in_threadpool(parse_job, body)
        try:
            job = queue.submit(generation_request)
        except QueueFull as exc:
            return error_response(exc.status, str(exc), "jobs", headers={"Retry-After": "5"})
        return JSONResponse(queue.status(job), 202)

    @app.get(f"{prefix}/jobs")
    async def list_jobs():
        return {"jobs": queue.all_statuses(), **queue.summary()}

    @app.get(f"{prefix}/jobs/{{job_id}}")
    async def status(job_id: str):
        return queue.status(queue.get(job_id))

    @app.delete(f"{prefix}/jobs/{{job_id}}")
    async def cancel(job_id: str):
        return queue.cancel(job_id)

    @app.get(f"{prefix}/jobs/{{job_id}}/frames/{{n}}")
    async def frame(job_id: str, n: int):
        job = queue.get(job_id)
        if job.state != "done":
            detail = job.error if job.state == "failed" else f"the job is {job.state}"
            return error_response(409, f"{detail}; frames are ready when it is done", "frames")
        png = job.pngs.get(n)
        if png is None:
            have = f"{min(job.pngs)}-{max(job.pngs)}" if job.pngs else "none"
            return error_response(404, f"frame {n} is not in this job's result (frames {have})", "n")
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get(f"{prefix}/jobs/{{job_id}}/events")
    async def events(job_id: str, request: Request):
        job = queue.get(job_id)
        try:
            seen = int(request.headers.get("last-event-id", "0"))
        except ValueError:
            seen = 0

        async def stream():
            wake = queue.subscribe(job)
            last_seen = seen
            try:
                while True:
                    wake.clear()
                    batch = queue.events_since(job, last_seen)
                    for seq, kind, data in batch:
                        last_seen = seq
                        yield _sse(seq, kind, data)
                    if batch and batch[-1][1] == "state" and batch[-1][2]["state"] in protocol.TERMINAL_STATES:
                        return
                    if not batch and job.terminal:
                        yield _sse(job.event_count, "state", queue.status(job))
                        return
                    try:
                        await asyncio.wait_for(wake.wait(), SSE_KEEPALIVE_S)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
            finally:
                queue.unsubscribe(job, wake)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )

    return app

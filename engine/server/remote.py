"""`inbetween ... --server URL`: run an already planned request on a running engine server.

The request travels with its own plan (explicit in-between frames and taus), so the server draws
exactly the frames the CLI planned and checked its output folder for. The result comes back as a
GenerationResult with RGBA arrays, the same as an in-process run, so exports do not care where it ran.
"""

from __future__ import annotations

import dataclasses
import os

from ..api import Cancelled, CancelToken, EngineError, FrameResult, GenerationRequest, GenerationResult, ProgressFn, no_progress
from ..core import protocol
from ..core.client import AuthError, ClientError, EngineClient, JobCancelled, JobFailed, read_token
from ..imaging import decode_png_rgba, encode_png_rgba


def resolve_token(url: str, token: str | None = None, token_file: str | os.PathLike | None = None) -> str:
    """The token for `url`: given, from --token-file, from $INBETWEENER_TOKEN, or from the server's
    advertisement when it is the one at `url`."""
    if token:
        return token
    if token_file:
        return read_token(token_file)
    if os.environ.get(protocol.TOKEN_ENV):
        return os.environ[protocol.TOKEN_ENV].strip()
    advert = protocol.read_advertisement()
    if advert is not None and advert["url"].rstrip("/") == url.rstrip("/"):
        return read_token(advert["token_file"])
    raise EngineError(
        f"no token for the engine at {url}: pass --token-file (the server printed it when it started) "
        f"or set {protocol.TOKEN_ENV}"
    )


def request_to_job(request: GenerationRequest) -> dict:
    """The job JSON of a planned request: its images, its exact in-between placement, its settings."""
    return protocol.build_job(
        keyframes={k.frame: encode_png_rgba(k.image) for k in request.keyframes},
        sketches={frame: encode_png_rgba(image) for frame, image in request.sketches.items()},
        inbetweens=[(ib.frame, ib.tau) for seg in request.segments for ib in seg.inbetweens],
        segments=None if request.only_segments is None else list(request.only_segments),
        settings=dataclasses.asdict(request.settings),
    )


def run_remote_job(
    url: str,
    request: GenerationRequest,
    *,
    token: str | None = None,
    token_file: str | os.PathLike | None = None,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
    timeout: float = 30,
    allow_remote: bool = False,
) -> GenerationResult:
    """Submit `request` to the server at `url`, report its progress, download its frames.

    Raises EngineError for anything the user can act on (server not running, wrong token, job
    refused or failed) and Cancelled when `cancel` was set or the job was cancelled; Ctrl-C
    cancels the job on the server before it propagates. The token goes to another machine only
    with `allow_remote` (see EngineClient).
    """
    try:
        client = EngineClient(url, "", timeout=timeout, allow_remote=allow_remote)  # checks the URL first
        client.token = resolve_token(url, token, token_file)
    except (ValueError, AuthError) as exc:
        raise EngineError(str(exc)) from None
    try:
        job_id = client.submit(request_to_job(request))
    except ClientError as exc:
        raise EngineError(str(exc)) from None
    try:
        final = client.wait(job_id, on_progress=_progress_relay(client, job_id, progress, cancel))
        images = _download(client, job_id, final, request)
    except KeyboardInterrupt:
        _cancel_quietly(client, job_id)
        raise
    except JobCancelled:
        raise Cancelled("generation cancelled") from None
    except JobFailed as exc:
        raise EngineError(f"the engine at {url} could not run the job: {exc}") from None
    except ClientError as exc:
        raise EngineError(str(exc)) from None
    provenance = {**final.get("provenance", {}), "server": url, "job": job_id}
    return GenerationResult(frames=images, provenance=provenance, warnings=list(final.get("warnings", [])))


def _progress_relay(client: EngineClient, job_id: str, progress: ProgressFn, cancel: CancelToken | None):
    asked = False

    def relay(event: dict) -> None:
        nonlocal asked
        if cancel is not None and cancel.cancelled and not asked:
            asked = True
            _cancel_quietly(client, job_id)
        if event.get("state") == "running" and event.get("stage"):
            progress(event["stage"], float(event.get("progress") or 0.0), event.get("message") or "")

    return relay


def _cancel_quietly(client: EngineClient, job_id: str) -> None:
    try:
        client.cancel(job_id)
    except ClientError:
        pass


def _download(client: EngineClient, job_id: str, final: dict, request: GenerationRequest) -> dict[int, FrameResult]:
    """Frames of the finished job as arrays: keys are the request's own images, each drawing is
    downloaded once and its holds share the array."""
    keys = {k.frame: k.image for k in request.keyframes}
    drawings: dict[int, object] = dict(keys)
    frames: dict[int, FrameResult] = {}
    for info in sorted(final.get("frames", []), key=lambda f: f["frame"]):
        drawing = info["drawing"]
        if drawing not in drawings:
            drawings[drawing] = decode_png_rgba(
                client.frame_png(job_id, drawing), source=f"frame {drawing} from the engine", max_pixels=protocol.MAX_IMAGE_PIXELS
            )
        frames[info["frame"]] = FrameResult(
            info["frame"], drawings[drawing], info["kind"], drawing, info.get("segment"), info.get("tau")
        )
    return frames


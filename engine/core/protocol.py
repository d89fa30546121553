"""The engine server's wire protocol: job JSON, limits, and where a running server advertises itself.

Standard library only: the Krita plugin and the desktop app build jobs with exactly this code, and
the server checks uploads against exactly these limits, so a job the client accepts is never
refused for a limit the client did not know about.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import struct
import sys
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path

from .files import atomic_write_bytes, is_private_folder

API_VERSION = 1
API_PREFIX = "/v1"
#: Liveness route: answers without a token so a client can tell "nothing listens" from "wrong token".
LIVENESS_PATH = "/livez"

#: Largest request body the server reads (base64 PNGs inflate by 4/3: ~48 MiB of PNG files).
MAX_BODY_BYTES = 64 * 1024 * 1024
#: Largest width or height of a keyframe or sketch.
MAX_IMAGE_SIDE = 4096
MAX_IMAGE_PIXELS = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE
#: Decoded pixels of all images of one job together (1 GiB of RGBA), checked before any decoding.
MAX_JOB_PIXELS = 1 << 28
MAX_KEYFRAMES = 256
MAX_SKETCHES = 1024
#: Highest timeline frame number a job may use.
MAX_FRAME = 100_000
#: In-between drawings one job may ask for (all segments together).
MAX_INBETWEENS_PER_JOB = 4096
#: Jobs waiting behind the running one; more are refused with 429 until the queue drains.
MAX_QUEUED_JOBS = 32

JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
TERMINAL_STATES = ("done", "failed", "cancelled")
FRAME_KINDS = ("key", "inbetween", "hold")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: Name of the file in the state folder where a running server advertises its url and token file.
STATE_FILE_NAME = "server.json"
STATE_DIR_ENV = "INBETWEENER_STATE_DIR"
TOKEN_ENV = "INBETWEENER_TOKEN"


def is_loopback_host(host: str | None) -> bool:
    """True for a name that always means this machine: 'localhost' or a loopback address literal
    (127.0.0.0/8, ::1). Other names are not resolved: DNS could point them anywhere."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def png_dimensions(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header, without decoding it; ValueError when it is not a PNG."""
    if not isinstance(data, (bytes, bytearray)) or not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG image")
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ValueError("not a PNG image (no IHDR header)")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def check_png(data: bytes, what: str) -> tuple[int, int]:
    """The PNG's size, or ValueError naming `what` when it is not a PNG or exceeds the limits."""
    try:
        width, height = png_dimensions(data)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None
    if width < 1 or height < 1:
        raise ValueError(f"{what}: image has no pixels ({width}x{height})")
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE:
        raise ValueError(f"{what}: {width}x{height} is larger than the limit of {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE}")
    return width, height


def _images(items: Mapping[int, bytes], field: str) -> list[dict]:
    out = []
    for frame, png in sorted(items.items()):
        if isinstance(frame, bool) or not isinstance(frame, int):
            raise TypeError(f"{field}: frame numbers must be whole numbers, got {frame!r}")
        check_png(png, f"{field} at frame {frame}")
        out.append({"frame": frame, "png": base64.b64encode(png).decode("ascii")})
    return out


def build_job(
    keyframes: Mapping[int, bytes],
    sketches: Mapping[int, bytes] | None = None,
    exposure: int = 1,
    spacing: str | Sequence[float] = "linear",
    count: int | None = None,
    segments: Sequence[int] | None = None,
    settings: Mapping | None = None,
    inbetweens: Sequence[tuple[int, float]] | None = None,
) -> dict:
    """The JSON body of POST /v1/jobs.

    `keyframes` and `sketches` map timeline frames to PNG bytes. Timing is either exposure /
    spacing / count (the server plans the segments), or `inbetweens`: an explicit list of
    (timeline frame, tau) drawings, for callers that planned the segments themselves.
    `segments` restricts the work to some segment indices; `settings` holds GenerationSettings
    fields (backend, motion, seed, steps, ...).
    """
    job: dict = {"keyframes": _images(keyframes, "keyframe"), "sketches": _images(sketches or {}, "sketch")}
    if inbetweens is not None:
        job["inbetweens"] = [{"frame": int(frame), "tau": float(tau)} for frame, tau in inbetweens]
    else:
        job["timing"] = {
            "exposure": exposure,
            "spacing": spacing if isinstance(spacing, str) else [float(t) for t in spacing],
            "count": count,
        }
    job["segments"] = None if segments is None else [int(s) for s in segments]
    job["settings"] = dict(settings or {})
    return job


def state_dir() -> Path:
    """Per-user folder for the server's token file and its advertisement (server.json).

    $INBETWEENER_STATE_DIR overrides; otherwise the platform's per-user runtime or state folder.
    """
    override = os.environ.get(STATE_DIR_ENV)
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "Inbetweener"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "Inbetweener"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "inbetweener"
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "inbetweener"


def state_file(folder: Path | None = None) -> Path:
    return (folder or state_dir()) / STATE_FILE_NAME


def write_private_file(path: Path, data: bytes) -> None:
    """Write `data` readable by this user only (0600), atomically: temp file in the folder + rename."""
    atomic_write_bytes(path, data, private=True)


def read_advertisement(folder: Path | None = None) -> dict | None:
    """The running server's {"url", "token_file", "pid", "version"} from the state folder, if any.

    Ignored when others could have written it (a state folder open to other users) and when its
    URL is not this machine's loopback address (the token is never sent anywhere else)."""
    if not is_private_folder(state_file(folder).parent):
        return None
    try:
        data = json.loads(state_file(folder).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("url"), str) or not isinstance(data.get("token_file"), str):
        return None
    if not is_loopback_host(urllib.parse.urlsplit(data["url"]).hostname):
        return None
    return data

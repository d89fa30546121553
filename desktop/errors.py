"""Problems in the artist's words: what went wrong and what to do about it.

The engine's own messages already name the file, frame or field; this adds the next step for the
common cases (engine not reachable, weights missing, image sizes differ, out of memory).
"""

from __future__ import annotations

from engine.core import client as engine_client
from engine.core import frontends

from .project import ProjectError

HINTS = (
    (
        ("weights not installed", "models download", "checkpoint", "model.ckpt"),
        "The ToonCrafter weights are not installed. Run `inbetween models download` once (about 10 GB), "
        "or choose the RIFE backend, which needs no download.",
    ),
    (
        ("out of memory", "cuda oom", "cannot allocate", "memoryerror"),
        "The engine ran out of memory. Generate fewer segments at once, use fewer in-betweens per segment, "
        "turn on low VRAM, or choose the RIFE backend.",
    ),
    (
        ("sizes differ", "same size", "but earlier frames are", "is larger than the limit"),
        "All keyframes and sketches must share one canvas size. Export them again at the same size.",
    ),
    (
        ("do not fit between", "leave no frame", "closer than one exposure", "has no in-between"),
        "Give the keys more frames between them (drag a key), or time the segment on ones.",
    ),
)


def hint_for(text: str) -> str:
    lowered = text.lower()
    for needles, hint in HINTS:
        if any(n in lowered for n in needles):
            return hint
    return ""


def plain_message(exc: BaseException) -> str:
    """One or two sentences for a dialog or status bar: the problem, then what to do."""
    if isinstance(exc, engine_client.EngineUnavailable):
        known = frontends.known_engine_problem(str(exc))
        if known:
            known = known[:1].lower() + known[1:].rstrip(".")
            return f"The engine could not start: {known}. Set it in Engine ▸ Engine Python…, then Engine ▸ Reconnect."
        return (
            f"The engine is not reachable ({exc}). The app starts it by itself; if that failed, start it "
            "in a terminal with `inbetween serve` and press Engine ▸ Reconnect."
        )
    if isinstance(exc, engine_client.AuthError):
        return f"The engine refused this app's key ({exc}). Restart the engine (`inbetween serve`) and reconnect."
    if isinstance(exc, engine_client.ServerError):
        text = exc.message
        if exc.status == 413:
            return f"The job is too large for the engine: {text}. Generate fewer segments at once."
        if exc.status == 429:
            return "The engine is busy with other jobs. Wait for them to finish, then try again."
    elif isinstance(exc, engine_client.JobCancelled):
        return "Generation was cancelled."
    elif isinstance(exc, engine_client.JobFailed):
        text = str(exc)
    elif isinstance(exc, (ProjectError, ValueError, OSError)):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    hint = hint_for(text)
    text = text[:1].upper() + text[1:]
    if not text.endswith("."):
        text += "."
    return f"{text} {hint}".strip()

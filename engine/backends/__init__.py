"""Backend registry: which interpolation backends exist, whether they can run here, and one cached
instance per backend so a long-lived server loads a model once.

Each backend module exposes `availability(settings) -> (ok, reason)`, its backend class (named in
BACKEND_MODULES) constructed from the settings, and optionally `instance_key(settings)` naming what forces a reload (checkpoint, device).
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from ..api import Backend, EngineError, GenerationSettings

BACKEND_MODULES = {
    "tooncrafter": ("engine.backends.tooncrafter", "ToonCrafterBackend"),
    "cel": ("engine.backends.cel", "CelBackend"),
    "rife": ("engine.backends.rife", "RifeBackend"),
}
#: `auto` picks the first available backend in this order. The cel in-betweener hands art it cannot
#: take apart (not flat cel) to RIFE itself; RIFE comes after it only for when cel cannot run at all.
AUTO_ORDER = ("tooncrafter", "cel", "rife")

_lock = threading.Lock()
_instances: dict[str, tuple[Any, Backend]] = {}


def _module(name: str):
    if name not in BACKEND_MODULES:
        raise EngineError(f"unknown backend {name!r}: choose one of auto, {', '.join(BACKEND_MODULES)}")
    return importlib.import_module(BACKEND_MODULES[name][0])


def availability(name: str, settings: GenerationSettings | None = None) -> tuple[bool, str]:
    """(True, "") when `name` can run now, else (False, what is missing and how to get it)."""
    settings = settings or GenerationSettings()
    try:
        module = _module(name)
    except ImportError as exc:
        return False, f"the {name} backend cannot be imported: {exc}"
    return module.availability(settings)


def availability_report(settings: GenerationSettings | None = None) -> dict[str, dict]:
    """For health pages and `--help`-style messages: every backend, available or why not."""
    report = {}
    for name in BACKEND_MODULES:
        ok, reason = availability(name, settings)
        report[name] = {"available": ok, "reason": reason}
    return report


def resolve_backend_name(settings: GenerationSettings) -> str:
    """The backend that will run: the one asked for, or for `auto` the best one available."""
    if settings.backend != "auto":
        ok, reason = availability(settings.backend, settings)
        if not ok:
            raise EngineError(f"backend {settings.backend} is not available: {reason}")
        return settings.backend
    explicit = [f"{flag} {value}" for flag, value in (("--checkpoint", settings.checkpoint),
                                                       ("--sketch-checkpoint", settings.sketch_checkpoint)) if value]
    if explicit:  # weights the user named are meant to be used: never fall back past them
        ok, reason = availability("tooncrafter", settings)
        if not ok:
            raise EngineError(f"the weights given ({', '.join(explicit)}) cannot be used: {reason}")
        return "tooncrafter"
    reasons = []
    for name in AUTO_ORDER:
        ok, reason = availability(name, settings)
        if ok:
            return name
        reasons.append(f"{name}: {reason}")
    raise EngineError("no backend can run here (" + "; ".join(reasons) + ")")


def get_backend(name: str, settings: GenerationSettings) -> Backend:
    """The cached backend instance for `name`, rebuilt when its instance key changes."""
    module = _module(name)
    key_fn = getattr(module, "instance_key", None)
    key = key_fn(settings) if key_fn else None
    with _lock:
        cached = _instances.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        _instances.pop(name, None)  # free the old model before loading another one
        backend = getattr(module, BACKEND_MODULES[name][1])(settings)
        _instances[name] = (key, backend)
        return backend


def loaded_backends() -> list[dict]:
    """What is in memory now (for the server's health route)."""
    with _lock:
        return [{"backend": name, **inst.describe()} for name, (_, inst) in _instances.items()]


def unload_all() -> None:
    with _lock:
        _instances.clear()

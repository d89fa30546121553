"""Finding, starting and describing the engine from inside Krita.

Krita's Python has no torch, so the engine runs in the animator's own engine install: the plugin
starts `<engine python> -m engine serve` as a child of Krita when no engine answers (it stops when
Krita exits), or reuses the one the desktop app or `inbetween serve` already runs. Which Python that
is, is a setting kept in Krita's configuration; when empty, the `inbetween` command on PATH tells.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from ._shared import client as engine_client

SETTINGS_GROUP = "inbetweener"
STARTUP_TIMEOUT_S = 300  # a first start may import torch and load weights


class EngineSetupError(Exception):
    """The plugin does not know how to start the engine; the message says which setting to fill."""


def guess_engine_python(which=shutil.which) -> str | None:
    """The interpreter behind the `inbetween` command on PATH (its launcher's shebang, or the Python
    next to it on Windows), or None."""
    script = which("inbetween")
    if not script:
        return None
    path = Path(script)
    if sys.platform == "win32":
        candidate = path.parent / "python.exe"
        return str(candidate) if candidate.exists() else None
    try:
        with open(path, "rb") as fh:
            first = fh.readline(512).decode("utf-8", "replace").strip()
    except OSError:
        return None
    if not first.startswith("#!"):
        return None
    parts = first[2:].split()
    if not parts or Path(parts[0]).name == "env":
        return None
    return parts[0] if os.access(parts[0], os.X_OK) else None


@dataclass
class EngineSetup:
    """How to reach the engine: the engine install's Python and, for a source checkout that is not
    installed, the folder that holds its `engine` package."""

    python: str = ""
    engine_root: str = ""

    @classmethod
    def load(cls, app) -> "EngineSetup":
        return cls(
            python=app.readSetting(SETTINGS_GROUP, "engine_python", ""),
            engine_root=app.readSetting(SETTINGS_GROUP, "engine_root", ""),
        )

    def save(self, app) -> None:
        app.writeSetting(SETTINGS_GROUP, "engine_python", self.python)
        app.writeSetting(SETTINGS_GROUP, "engine_root", self.engine_root)

    def resolved_python(self) -> str:
        python = self.python.strip() or guess_engine_python()
        if not python:
            raise EngineSetupError(
                "No engine is running and the plugin does not know how to start one: set 'Engine Python' in "
                "the Inbetweener docker to the Python of your engine install (Krita's own Python cannot run it), "
                "or start `inbetween serve` yourself"
            )
        if not Path(python).exists():
            raise EngineSetupError(f"Engine Python {python} does not exist: fix it in the Inbetweener docker")
        return python


class EngineLink:
    """The session's connection to the engine; a server started here lives as long as Krita."""

    def __init__(self) -> None:
        self._client: engine_client.EngineClient | None = None
        self._lock = threading.Lock()

    @property
    def started_here(self) -> bool:
        return self._client is not None and self._client.local_server is not None

    def client(self, setup: EngineSetup, start: bool = True) -> engine_client.EngineClient:
        """A working client: the known one, an advertised running server, or (with `start`) a new
        server started from `setup`. Raises EngineUnavailable / EngineSetupError."""
        with self._lock:
            if self._client is not None and self._client.alive():
                return self._client
            try:
                self._client = engine_client.connect()
                return self._client
            except (engine_client.EngineUnavailable, engine_client.AuthError, engine_client.ServerError):
                if not start:
                    raise
            server = engine_client.start_local_server(
                setup.resolved_python(),
                engine_root=setup.engine_root.strip() or None,
                startup_timeout=STARTUP_TIMEOUT_S,
            )
            self._client = server.client()
            return self._client


def describe_health(health: dict) -> str:
    """One line for the docker: backends that run here, and why the others do not."""
    backends = health.get("backends") or {}
    ready = [name for name, info in backends.items() if info.get("available")]
    missing = [f"{name}: {info.get('reason')}" for name, info in backends.items() if not info.get("available")]
    device = (health.get("device") or {}).get("type", "?")
    text = f"ready (v{health.get('version', '?')}, {device}) · backends: {', '.join(ready) or 'none'}"
    if missing:
        text += " · unavailable: " + "; ".join(missing)
    return text


#: One link per Krita session, shared by the docker and the menu action.
LINK = EngineLink()

"""The engine client, job protocol, timing planner, settings vocabulary and front-end choices that the desktop app
and the engine use too.

The installed plugin carries a copy of `engine/core` as `inbetweener.engine_core` (the zip built by
installer/build.py puts it there); run from a checkout, the repository's own `engine.core` is used.
Either way the code is the standard-library-only package, so it runs in Krita's Python.
"""

from __future__ import annotations

try:
    from .engine_core import client, frontends, planning, protocol, timing, vocabulary
except ImportError:
    from engine.core import client, frontends, planning, protocol, timing, vocabulary

__all__ = ["client", "frontends", "planning", "protocol", "timing", "vocabulary"]

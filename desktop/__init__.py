"""Inbetweener Studio: a desktop timeline for drawing keys, sketching and timing in-betweens.

The app reaches the engine only through the stdlib client (engine.core.client); it never imports
torch. Its document model (desktop.project) is plain Python + numpy so it can be tested without Qt.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"

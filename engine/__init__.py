"""Inbetweener engine: plans segments and timing, runs an interpolation backend, post-processes.

Importing this package must stay cheap: heavy dependencies (torch, onnxruntime, OpenCV) are imported
by the modules that need them, so the stdlib-only `engine.core` can be reused by the front ends.
"""

__version__ = "0.1.0"

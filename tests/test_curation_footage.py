"""Synthetic cartoon footage for the curation tests, written with PyAV: flat-colour shots joined by
hard cuts, one static shot, one shot with a large caption, and a corrupt file. Other curation tests
import the makers from here; the tests below check the footage is what they assume."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np

WIDTH, HEIGHT, FPS, SHOT = 256, 160, 12, 30
#: Shot kinds in order; cuts fall at multiples of SHOT.
SHOTS = ("moving", "static", "text", "moving_alt")


def _background(kind: str) -> np.ndarray:
    colours = {"moving": (90, 160, 230), "static": (235, 210, 80), "text": (40, 60, 70), "moving_alt": (230, 150, 190)}
    frame = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    frame[:] = colours[kind]
    ramp = np.linspace(-25, 25, HEIGHT, dtype=np.float32)[:, None, None]
    return np.clip(frame.astype(np.float32) + ramp, 0, 255).astype(np.uint8)


def shot_frame(kind: str, t: int) -> np.ndarray:
    """Frame t of a shot: cel-like shapes with black outlines over a flat gradient."""
    frame = _background(kind)
    move = 0 if kind == "static" else t
    if kind == "moving_alt":
        cv2.rectangle(frame, (20 + 5 * move, 40), (70 + 5 * move, 110), (60, 200, 90), -1)
        cv2.rectangle(frame, (20 + 5 * move, 40), (70 + 5 * move, 110), (0, 0, 0), 2)
    else:
        centre = (30 + 6 * move, 70 + (move % 10))
        cv2.circle(frame, centre, 22, (220, 60, 50), -1, cv2.LINE_AA)
        cv2.circle(frame, centre, 22, (0, 0, 0), 2, cv2.LINE_AA)
        cv2.ellipse(frame, (200 - 3 * move, 40), (18, 10), 0, 0, 360, (250, 250, 250), -1, cv2.LINE_AA)
    if kind == "text":
        for text, y in (("THE END OF", 112), ("PART ONE", 146)):
            cv2.putText(frame, text, (18, y), cv2.FONT_HERSHEY_SIMPLEX, 1.05, (0, 0, 0), 6, cv2.LINE_AA)
            cv2.putText(frame, text, (18, y), cv2.FONT_HERSHEY_SIMPLEX, 1.05, (255, 255, 255), 2, cv2.LINE_AA)
    return frame


def write_video(path: Path, frames, fps: int = FPS) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "12", "preset": "veryfast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_episode(path: Path, shots=SHOTS) -> Path:
    """A video of `shots` (SHOT frames each) joined by hard cuts."""
    return write_video(path, (shot_frame(kind, t) for kind in shots for t in range(SHOT)))


def make_corrupt(path: Path) -> Path:
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return path


def test_footage_has_the_frames_the_tests_assume(tmp_path):
    from curation.video import probe

    info = probe(make_episode(tmp_path / "ep.mp4"))
    assert (info.frames, info.width, info.height, info.fps) == (len(SHOTS) * SHOT, WIDTH, HEIGHT, FPS)

"""Reading footage with PyAV: what a video is (fps, size, frame count) and the frames of a range.

Frame numbers are decode order from 0, which is what PySceneDetect counts and what the manifest's
`start_frame`/`end_frame` mean; a reader of the manifest seeks the same way (`read_frames`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".gif")


class UnreadableVideo(Exception):
    """The file cannot be opened or decoded as a video; the message names the file and the cause."""


@dataclass(frozen=True)
class VideoInfo:
    path: str
    fps: float
    width: int
    height: int
    frames: int  # decoded frame count (exact: counted, not taken from the container header)


def probe(path: str | Path) -> VideoInfo:
    """Open `path`, check it has a decodable video stream and count its frames by decoding them."""
    path = str(path)
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise UnreadableVideo(f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else 0.0
            frames = 0
            width = height = 0
            for frame in container.decode(stream):
                if frames == 0:
                    width, height = frame.width, frame.height
                frames += 1
    except UnreadableVideo:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise UnreadableVideo(f"{path}: {exc}") from None
    if frames == 0:
        raise UnreadableVideo(f"{path}: no decodable frames")
    if fps <= 0:
        raise UnreadableVideo(f"{path}: the video stream has no frame rate")
    return VideoInfo(path, fps, width, height, frames)


def _rgb(frame, width: int | None) -> np.ndarray:
    if width and frame.width != width:
        height = max(2, round(frame.height * width / frame.width / 2) * 2)
        frame = frame.reformat(width=width, height=height)
    return frame.to_ndarray(format="rgb24")


def read_frames(path: str | Path, indices, width: int | None = None) -> dict[int, np.ndarray]:
    """RGB uint8 frames at the given frame indices, optionally scaled to `width` (aspect kept).

    Frame i is the i-th decoded frame. A frame more than two seconds ahead is reached by seeking to
    the keyframe before it and decoding forward, its number coming from its timestamp (constant
    frame rate); a stream without timestamps is decoded from the start."""
    wanted = sorted(set(int(i) for i in indices))
    out: dict[int, np.ndarray] = {}
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            use_seek = fps > 0 and stream.time_base is not None
            origin = stream.start_time or 0
            far = 2 * fps + 1
            decoder, position, i, sought = container.decode(stream), -1, 0, -1
            while i < len(wanted):
                target = wanted[i]
                if use_seek and target != sought and position is not None and target - position > far:
                    container.seek(origin + int(target / fps / stream.time_base), stream=stream, backward=True)
                    decoder, position, sought = container.decode(stream), None, target
                frame = next(decoder, None)
                if frame is None:
                    break
                if position is None:
                    if frame.pts is None:  # no timestamps: count from the first frame instead
                        use_seek = False
                        container.seek(origin, stream=stream, backward=True)
                        decoder, position = container.decode(stream), -1
                        continue
                    position = round(float((frame.pts - origin) * stream.time_base) * fps)
                else:
                    position += 1
                while i < len(wanted) and wanted[i] < position:
                    i += 1  # passed without being decoded (reported as missing below)
                if i < len(wanted) and wanted[i] == position:
                    out[position] = _rgb(frame, width)
                    i += 1
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise UnreadableVideo(f"{path}: {exc}") from None
    missing = sorted(set(wanted) - set(out))
    if missing:
        raise UnreadableVideo(f"{path}: frames {missing[:5]} could not be decoded")
    return out


def find_videos(inputs) -> list[str]:
    """The video files named or found (recursively) in the folders named, sorted, each once."""
    found: list[str] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            found.extend(str(p) for p in sorted(item.rglob("*")) if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        else:
            found.append(str(item))
    return sorted(dict.fromkeys(found))

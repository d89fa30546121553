"""The batch's resumable state: one small JSON record per segment, written atomically.

One file per segment (not one file for the whole batch) so that render-farm workers running
different segments at the same time never write the same file. A record says whether the segment is
`writing` (its files are being put in place: a rerun may replace exactly these), `done` (with the
sha256 of every file it wrote, so a rerun can tell a finished frame from one the artist changed since)
or `failed` (with the error and the number of attempts).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..core.files import atomic_write_bytes

WRITING, DONE, FAILED = "writing", "done", "failed"


@dataclass
class SegmentRecord:
    shot: str
    segment: int
    status: str
    files: dict[str, str] = field(default_factory=dict)  # file path -> sha256 ('' while writing)
    attempts: int = 0
    error: str = ""
    backend: str = ""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class BatchState:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _path(self, shot: str, segment: int) -> Path:
        return self.folder / shot / f"segment_{segment:03d}.json"

    def get(self, shot: str, segment: int) -> SegmentRecord | None:
        path = self._path(shot, segment)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return SegmentRecord(**data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            # A damaged record is treated as unfinished work; its files are then protected as the
            # artist's, which errs on the side of never overwriting.
            return SegmentRecord(shot, segment, FAILED, error=f"unreadable state record {path}: {exc}")

    def put(self, record: SegmentRecord) -> None:
        data = json.dumps(asdict(record), indent=1, sort_keys=True).encode("utf-8")
        atomic_write_bytes(self._path(record.shot, record.segment), data)

"""Saving and opening projects: a JSON manifest plus PNGs, as a folder or as one zip file.

A folder project is `<name>/project.json` with `keys/`, `sketches/` and `inbetweens/` PNGs named by
their content hash: a save writes only new drawings, then the manifest (atomically), then removes
files nothing refers to. A crash at any point leaves a manifest whose files all exist.
A zip project (`*.inbetween`) holds the same tree and is written to a temporary name then renamed.
Opening checks the manifest field by field (check_manifest), reads only files inside the project,
under size limits fixed before reading, and removes what a crashed save left behind.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import stat
import zipfile
from pathlib import Path

import numpy as np

from engine.api import EngineError
from engine.core.files import atomic_write_bytes, recover_interrupted
from engine.core.planning import PlanningError
from engine.core.protocol import MAX_FRAME, MAX_IMAGE_SIDE
from engine.imaging import decode_png_rgba, encode_png_rgba

from .project import (
    INBETWEEN_STATES,
    KEY_KINDS,
    CleanupCell,
    Drawing,
    InbetweenCell,
    KeyCell,
    Project,
    ProjectError,
    SketchCell,
    Timing,
)

MANIFEST = "project.json"
FORMAT = "inbetweener-project"
VERSION = 1
ZIP_SUFFIX = ".inbetween"
TRACK_FOLDERS = ("keys", "sketches", "inbetweens", "cleanups")
#: Limits checked before anything is read: a manifest, one drawing's PNG, cells per track.
MAX_MANIFEST_BYTES = 8 << 20
MAX_DRAWING_BYTES = 64 << 20
MAX_CELLS = 20_000
#: A drawing's file name inside the project: `<track>/<name>.png`, nothing else (no folders up, no absolute paths).
_MEMBER = re.compile(rf"^({'|'.join(TRACK_FOLDERS)})/[0-9A-Za-z][0-9A-Za-z_.-]*\.png$")


def encode_png(image: np.ndarray) -> bytes:
    return encode_png_rgba(np.asarray(image), compress_level=3)


def decode_png(data: bytes, what: str) -> np.ndarray:
    try:
        return decode_png_rgba(data, source=what)
    except EngineError as exc:
        raise ProjectError(str(exc)) from None


def _file_name(track: str, frame: int, drawing: Drawing) -> str:
    return f"{track}/{frame:04d}-{drawing.digest}.png"


def manifest_of(project: Project) -> tuple[dict, dict[str, Drawing]]:
    """The manifest and the drawings it refers to, by relative file name."""
    files: dict[str, Drawing] = {}

    def ref(track: str, frame: int, drawing: Drawing) -> str:
        name = _file_name(track, frame, drawing)
        files[name] = drawing
        return name

    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "name": project.name,
        "fps": project.fps,
        "size": list(project.size) if project.size else None,
        "loop": project.loop,
        "playback": list(project.playback) if project.playback else None,
        "timing": project.timing.to_json(),
        "segment_timing": {str(f): t.to_json() for f, t in sorted(project.segment_timing.items())},
        "settings": project.settings,
        "keys": [
            {"frame": f, "kind": c.kind, "source": c.source, "file": ref("keys", f, c.drawing)}
            for f, c in sorted(project.keys.items())
        ],
        "sketches": [{"frame": f, "file": ref("sketches", f, c.drawing)} for f, c in sorted(project.sketches.items())],
        "inbetweens": [
            {
                "frame": f,
                "tau": c.tau,
                "segment": list(c.segment),
                "status": c.status,
                "provenance": c.provenance,
                "file": ref("inbetweens", f, c.drawing),
            }
            for f, c in sorted(project.inbetweens.items())
        ],
        "cleanups": [
            {"frame": f, "file": ref("cleanups", f, c.paint), "cut": ref("cleanups", f, c.cut) if c.cut else None}
            for f, c in sorted(project.cleanups.items())
        ],
    }
    return manifest, files


def _whole(value, field: str, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ProjectError(f"{where}: {field} must be a whole number from {low} to {high}, got {value!r}")
    return value


def _of_type(value, kinds, field: str, where: str, what: str):
    if not isinstance(value, kinds):
        raise ProjectError(f"{where}: {field} must be {what}, got {value!r}")
    return value


def _member(value, field: str, where: str) -> str:
    if not isinstance(value, str) or not _MEMBER.match(value) or ".." in value:
        raise ProjectError(
            f"{where}: {field} {value!r} is not a drawing inside the project (expected e.g. 'keys/0000-ab12.png'); "
            "files outside the project are never read"
        )
    return value


def check_manifest(manifest, where: str) -> None:
    """Every field of a project manifest has the type and range the app uses (ProjectError naming
    the field otherwise), and every file it names lies inside the project."""
    _of_type(manifest, dict, "the manifest", where, "a JSON object")
    _whole(manifest.get("version", VERSION), "version", where, 0, 1_000_000)
    _of_type(manifest.get("name", ""), str, "name", where, "text")
    _whole(manifest.get("fps", 12), "fps", where, 1, 1000)
    _of_type(manifest.get("loop", True), bool, "loop", where, "true or false")
    for field, low, high in (("size", 1, MAX_IMAGE_SIDE), ("playback", 0, MAX_FRAME)):
        value = manifest.get(field)
        if value is not None:
            if not isinstance(value, list) or len(value) != 2:
                raise ProjectError(f"{where}: {field} must be two whole numbers, got {value!r}")
            for i, item in enumerate(value):
                _whole(item, f"{field}[{i}]", where, low, high)
    _of_type(manifest.get("timing", {}), dict, "timing", where, "an object")
    _of_type(manifest.get("settings", {}), dict, "settings", where, "an object")
    for frame, timing in _of_type(manifest.get("segment_timing", {}), dict, "segment_timing", where, "an object").items():
        if not frame.isdigit() or not isinstance(timing, dict):
            raise ProjectError(f"{where}: segment_timing must map frame numbers to timings, got {frame!r}")
    for track in TRACK_FOLDERS:
        entries = _of_type(manifest.get(track, []), list, track, where, "a list")
        if len(entries) > MAX_CELLS:
            raise ProjectError(f"{where}: {track} lists {len(entries)} drawings; at most {MAX_CELLS}")
        for i, entry in enumerate(entries):
            field = f"{track}[{i}]"
            _of_type(entry, dict, field, where, "an object")
            _whole(entry.get("frame"), f"{field}.frame", where, 0, MAX_FRAME)
            _member(entry.get("file"), f"{field}.file", where)
            for text in ("kind", "source", "status"):
                _of_type(entry.get(text, ""), str, f"{field}.{text}", where, "text")
            if track == "cleanups" and entry.get("cut") is not None:
                _member(entry["cut"], f"{field}.cut", where)
            if track == "inbetweens":
                tau = entry.get("tau")
                if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not math.isfinite(tau) or not 0 < tau < 1:
                    raise ProjectError(f"{where}: {field}.tau must be a number between 0 and 1, got {tau!r}")
                segment = entry.get("segment")
                if not isinstance(segment, list) or len(segment) != 2:
                    raise ProjectError(f"{where}: {field}.segment must be two key frames, got {segment!r}")
                for j, key in enumerate(segment):
                    _whole(key, f"{field}.segment[{j}]", where, 0, MAX_FRAME)
                _of_type(entry.get("provenance", {}), dict, f"{field}.provenance", where, "an object")


def project_from_manifest(manifest: dict, read_file, where: str) -> Project:
    """Rebuild a Project; `read_file(name) -> bytes` reads the manifest's PNGs (names already
    checked to lie inside the project; the reader confines them again)."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ProjectError(f"{where} is not an Inbetweener project (no '{FORMAT}' manifest)")
    check_manifest(manifest, where)
    if int(manifest.get("version", 0)) > VERSION:
        raise ProjectError(f"{where} was saved by a newer Inbetweener (format {manifest['version']}); update the app")

    def drawing(entry: dict) -> Drawing:
        name = entry["file"]
        try:
            data = read_file(name)
        except (KeyError, FileNotFoundError):
            raise ProjectError(f"{where} is missing {name} (frame {entry['frame']})") from None
        return Drawing(decode_png(data, f"{where}/{name}"))

    try:
        timing = Timing.from_json(manifest.get("timing", {}))
        segment_timing = {int(f): Timing.from_json(t) for f, t in manifest.get("segment_timing", {}).items()}
    except (PlanningError, TypeError, ValueError) as exc:
        raise ProjectError(f"{where}: bad timing in the project manifest ({exc})") from None
    project = Project(
        name=manifest.get("name", "Untitled"),
        fps=int(manifest.get("fps", 12)),
        size=tuple(manifest["size"]) if manifest.get("size") else None,
        loop=bool(manifest.get("loop", True)),
        playback=tuple(manifest["playback"]) if manifest.get("playback") else None,
        timing=timing,
        segment_timing=segment_timing,
    )
    project.settings.update(manifest.get("settings", {}))
    for entry in manifest.get("keys", []):
        kind = entry.get("kind", "key")
        if kind not in KEY_KINDS:
            raise ProjectError(f"{where}: key at frame {entry['frame']} has unknown kind {kind!r}")
        project.keys[int(entry["frame"])] = KeyCell(drawing(entry), kind, entry.get("source", ""))
    for entry in manifest.get("sketches", []):
        project.sketches[int(entry["frame"])] = SketchCell(drawing(entry))
    for entry in manifest.get("inbetweens", []):
        status = entry.get("status", "generated")
        if status not in INBETWEEN_STATES:
            raise ProjectError(f"{where}: in-between at frame {entry['frame']} has unknown status {status!r}")
        project.inbetweens[int(entry["frame"])] = InbetweenCell(
            drawing(entry),
            float(entry["tau"]),
            tuple(entry["segment"]),
            status,
            entry.get("provenance", {}),
        )
    for entry in manifest.get("cleanups", []):
        cut = drawing(dict(entry, file=entry["cut"])) if entry.get("cut") else None
        project.cleanups[int(entry["frame"])] = cell = CleanupCell(drawing(entry), cut)
        for layer in (cell.paint, cell.cut or cell.paint):
            project.check_size(layer, f"{where}: the clean-up layer at frame {entry['frame']}")
    for frame, cell in [*project.keys.items(), *project.sketches.items(), *project.inbetweens.items()]:
        if project.size is None:
            project.size = cell.drawing.size
        project.check_size(cell.drawing, f"{where}: the drawing at frame {frame}")
    return project


def is_zip_path(path: Path) -> bool:
    return Path(path).suffix.lower() == ZIP_SUFFIX or (Path(path).is_file() and zipfile.is_zipfile(path))


def save_project(project: Project, path: Path) -> Path:
    """Save as a zip (`*.inbetween`) or a folder (any other path). Returns the path written."""
    path = Path(path)
    manifest, files = manifest_of(project)
    if path.suffix.lower() == ZIP_SUFFIX:
        _clean_up_after_crashes(path.parent)
        _save_zip(path, manifest, files)
    else:
        if path.is_dir():
            _clean_up_after_crashes(path)
        _save_folder(path, manifest, files)
    return path


def _save_zip(path: Path, manifest: dict, files: dict[str, Drawing]) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:  # PNGs are compressed already
        zf.writestr(MANIFEST, json.dumps(manifest, indent=1))
        for name, drawing in files.items():
            zf.writestr(name, encode_png(drawing.image))
    atomic_write_bytes(path, buf.getvalue())


def _save_folder(path: Path, manifest: dict, files: dict[str, Drawing]) -> None:
    if path.exists() and not path.is_dir():
        raise ProjectError(f"{path} is a file, not a project folder")
    if path.is_dir() and any(path.iterdir()) and not (path / MANIFEST).exists():
        raise ProjectError(f"{path} is a folder with other files in it: choose an empty or new folder")
    for name, drawing in files.items():
        target = path / name
        if not target.exists():  # content-hashed names: an existing file already holds this drawing
            atomic_write_bytes(target, encode_png(drawing.image))
    atomic_write_bytes(path / MANIFEST, json.dumps(manifest, indent=1).encode())
    for folder in TRACK_FOLDERS:
        for old in (path / folder).glob("*.png") if (path / folder).is_dir() else []:
            if f"{folder}/{old.name}" not in files:
                old.unlink(missing_ok=True)


def load_project(path: Path) -> Project:
    """Open a folder or zip project. Every file it names must lie inside it, be a regular file and
    stay under the size limits; a crashed save's temporary files are cleaned up first."""
    path = Path(path)
    if path.is_dir():
        manifest_path = path / MANIFEST
        if not manifest_path.exists():
            raise ProjectError(f"{path} has no {MANIFEST}: it is not an Inbetweener project folder")
        _clean_up_after_crashes(path)
        read = _folder_reader(path)
        manifest = _read_json(read(MANIFEST, MAX_MANIFEST_BYTES), manifest_path)
        return _rebuild(manifest, read, str(path))
    if path.name == MANIFEST:
        return load_project(path.parent)
    if not path.exists():
        raise ProjectError(f"{path} does not exist")
    if not zipfile.is_zipfile(path):
        raise ProjectError(f"{path} is neither a project folder nor a .inbetween project file")
    _clean_up_after_crashes(path.parent)
    with zipfile.ZipFile(path) as zf:
        read = _zip_reader(zf, path)
        try:
            manifest = _read_json(read(MANIFEST, MAX_MANIFEST_BYTES), path)
        except KeyError:
            raise ProjectError(f"{path} has no {MANIFEST}: it is not an Inbetweener project") from None
        return _rebuild(manifest, read, str(path))


def _rebuild(manifest, read, where: str) -> Project:
    try:
        return project_from_manifest(manifest, lambda name: read(name, MAX_DRAWING_BYTES), where)
    except ProjectError:
        raise
    except (TypeError, KeyError, ValueError, OverflowError) as exc:  # a check_manifest did not foresee
        raise ProjectError(f"{where} is damaged: its manifest has a value the app cannot use ({exc})") from None


def _clean_up_after_crashes(folder: Path) -> None:
    for place in (folder, *(folder / track for track in TRACK_FOLDERS)):
        recover_interrupted(place)


def _folder_reader(folder: Path):
    """read(name, limit) for files inside `folder` only: no way out through '..', links or devices."""
    root = folder.resolve()

    def read(name: str, limit: int) -> bytes:
        real = (folder / name).resolve()
        if not real.is_relative_to(root):
            raise ProjectError(f"{folder}: {name} leads outside the project folder; files outside are never read")
        info = os.stat(real)  # FileNotFoundError: reported as missing
        if not stat.S_ISREG(info.st_mode):
            raise ProjectError(f"{folder}: {name} is not a regular file")
        if info.st_size > limit:
            raise ProjectError(f"{folder}: {name} is {info.st_size} bytes, larger than the limit of {limit}")
        with open(real, "rb") as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise ProjectError(f"{folder}: {name} is larger than the limit of {limit} bytes")
        return data

    return read


def _zip_reader(zf: zipfile.ZipFile, where: Path):
    """read(name, limit) from the zip, refusing a member whose inflated size passes the limit."""

    def read(name: str, limit: int) -> bytes:
        info = zf.getinfo(name)  # KeyError: reported as missing
        if info.file_size > limit:
            raise ProjectError(f"{where}: {name} inflates to {info.file_size} bytes, larger than the limit of {limit}")
        with zf.open(info) as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise ProjectError(f"{where}: {name} is larger than the limit of {limit} bytes")
        return data

    return read


def _read_json(data: bytes, where) -> dict:
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise ProjectError(f"{where} is damaged: its manifest is not valid JSON ({exc})") from None

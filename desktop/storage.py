"""Saving and opening projects: a JSON manifest plus PNGs, as a folder or as one zip file.

A folder project is `<name>/project.json` with `keys/`, `sketches/` and `inbetweens/` PNGs named by
their content hash: a save writes only new drawings, then the manifest (atomically), then removes
files nothing refers to. A crash at any point leaves a manifest whose files all exist.
A zip project (`*.inbetween`) holds the same tree and is written to a temporary name then renamed.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from engine.api import EngineError
from engine.core.files import atomic_write_bytes
from engine.core.planning import PlanningError
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


def project_from_manifest(manifest: dict, read_file, where: str) -> Project:
    """Rebuild a Project; `read_file(name) -> bytes` reads the manifest's PNGs."""
    if manifest.get("format") != FORMAT:
        raise ProjectError(f"{where} is not an Inbetweener project (no '{FORMAT}' manifest)")
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
        _save_zip(path, manifest, files)
    else:
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
    path = Path(path)
    if path.is_dir():
        manifest_path = path / MANIFEST
        if not manifest_path.exists():
            raise ProjectError(f"{path} has no {MANIFEST}: it is not an Inbetweener project folder")
        manifest = _read_json(manifest_path.read_bytes(), manifest_path)
        return project_from_manifest(manifest, lambda name: (path / name).read_bytes(), str(path))
    if path.name == MANIFEST:
        return load_project(path.parent)
    if not path.exists():
        raise ProjectError(f"{path} does not exist")
    if not zipfile.is_zipfile(path):
        raise ProjectError(f"{path} is neither a project folder nor a .inbetween project file")
    with zipfile.ZipFile(path) as zf:
        try:
            manifest = _read_json(zf.read(MANIFEST), path)
        except KeyError:
            raise ProjectError(f"{path} has no {MANIFEST}: it is not an Inbetweener project") from None
        return project_from_manifest(manifest, zf.read, str(path))


def _read_json(data: bytes, where) -> dict:
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise ProjectError(f"{where} is damaged: its manifest is not valid JSON ({exc})") from None

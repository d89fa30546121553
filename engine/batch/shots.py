"""A shot batch file (YAML): the shots a studio in-betweens at once, checked before any work starts.

    version: 1
    defaults:                      # merged into every shot (settings merge key by key)
      backend: auto
      exposure: twos               # on ones / twos / threes (YAML reads a bare `on` as true)
      settings: {seed: 7}
    shots:
      - name: arm_swing             # file prefix; unique in the batch
        keys: [arm/key_a.png, arm/key_b.png]
        at: [0, 16]                 # timeline frames of the keys (or count: 7)
        spacing: ease-in-out        # or a timing chart [0.1, 0.3, ...]
        sketches: {8: arm/rough_08.png}
        out: renders/arm_swing      # default: out/<name> beside the batch file
      - name: hop
        source: hop_keys/           # a folder of numbered PNGs (the number is the timeline frame)
      - name: walk
        source: walk_keys.psd       # a layered PSD: one key per layer (our own PSDs: keys only)

Relative paths are relative to the batch file's folder. Every problem is a BatchError naming the
file, the shot and the field, raised before any frame is drawn.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..api import EngineError, GenerationSettings
from ..core.planning import PlanningError, SegmentPlan, key_frames_for_count, parse_exposure, parse_spacing, plan_timeline

SHOT_FIELDS = {"name", "keys", "source", "at", "count", "exposure", "spacing", "sketches", "backend", "settings", "out",
               "padding", "start_number"}
SETTING_FIELDS = {f.name for f in dataclasses.fields(GenerationSettings)}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class BatchError(EngineError):
    """The batch file cannot be run as written; the message names the file, shot and field."""


@dataclass(frozen=True)
class Shot:
    """One shot: its keys on the timeline, timing, settings and where its PNG sequence goes."""

    name: str
    key_paths: tuple[Path, ...]  # one file per key (a PSD source lists the PSD once per layer)
    key_frames: tuple[int, ...]
    key_layers: tuple[int | None, ...]  # layer index inside a PSD source, else None
    exposure: int
    spacing: str | tuple[float, ...]
    count: int | None
    sketches: dict[int, Path] = field(default_factory=dict)
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    out: Path = Path("out")
    padding: int = 4
    start_number: int = 1

    def segments(self) -> list[SegmentPlan]:
        return plan_timeline(list(self.key_frames), exposure=self.exposure, spacing=self.spacing, count=self.count)

    def frame_number(self, frame: int) -> int:
        """File number of a timeline frame: the first key gets the start number."""
        return self.start_number + frame - self.key_frames[0]


@dataclass(frozen=True)
class Batch:
    path: Path
    shots: tuple[Shot, ...]


def load_batch(path: str | Path) -> Batch:
    """Read and check a batch file; raises BatchError naming the first problem."""
    import yaml

    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise BatchError(f"{path}: batch file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise BatchError(f"{path}: not a readable YAML file ({exc})") from None
    if not isinstance(data, dict):
        raise BatchError(f"{path}: expected a mapping with 'shots', got {type(data).__name__}")
    unknown = set(data) - {"version", "defaults", "shots"}
    if unknown:
        raise BatchError(f"{path}: unknown top-level field(s) {', '.join(sorted(map(str, unknown)))}")
    if data.get("version", 1) != 1:
        raise BatchError(f"{path}: version {data.get('version')!r} is not supported (this engine reads version 1)")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise BatchError(f"{path}: defaults: expected a mapping")
    shots = data.get("shots")
    if not isinstance(shots, list) or not shots:
        raise BatchError(f"{path}: shots: expected a non-empty list of shots")
    parsed: list[Shot] = []
    for index, raw in enumerate(shots):
        where = f"{path}: shots[{index}]"
        if not isinstance(raw, dict):
            raise BatchError(f"{where}: expected a mapping, got {type(raw).__name__}")
        merged = {**defaults, **raw, "settings": {**(defaults.get("settings") or {}), **(raw.get("settings") or {})}}
        shot = _parse_shot(merged, path.parent, where)
        if any(s.name == shot.name for s in parsed):
            raise BatchError(f"{where}.name: {shot.name!r} is used by an earlier shot; names must be unique")
        parsed.append(shot)
    return Batch(path, tuple(parsed))


def _parse_shot(raw: dict[str, Any], base: Path, where: str) -> Shot:
    if True in raw:
        raise BatchError(f"{where}: YAML reads `on:` as true; write the drawings' exposure as `exposure: twos`")
    unknown = set(raw) - SHOT_FIELDS
    if unknown:
        raise BatchError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise BatchError(f"{where}.name: {name!r} is not usable as a file prefix (letters, digits, '-', '_', '.')")
    where = f"{where} ({name})"

    if ("keys" in raw) == ("source" in raw):
        raise BatchError(f"{where}: give either keys (a list of files) or source (a PNG folder or PSD), not both or neither")
    if "keys" in raw:
        keys = raw["keys"]
        if not isinstance(keys, list) or len(keys) < 2 or not all(isinstance(k, str) for k in keys):
            raise BatchError(f"{where}.keys: expected a list of at least two file paths")
        key_paths = tuple(_existing(base, k, f"{where}.keys[{i}]") for i, k in enumerate(keys))
        key_layers: tuple[int | None, ...] = (None,) * len(key_paths)
        source_frames = None
    else:
        from .sources import keys_from_source

        source = raw["source"]
        if not isinstance(source, str):
            raise BatchError(f"{where}.source: expected a path")
        found = keys_from_source(_existing(base, source, f"{where}.source"), f"{where}.source")
        key_paths = tuple(k.path for k in found)
        key_layers = tuple(k.layer for k in found)
        source_frames = [k.frame for k in found]

    try:
        exposure = parse_exposure(raw.get("exposure", 1))
        spacing = raw.get("spacing", "linear")
        spacing = parse_spacing(spacing) if isinstance(spacing, str) else tuple(float(t) for t in spacing)
    except (PlanningError, TypeError, ValueError) as exc:
        raise BatchError(f"{where}: timing: {exc}") from None
    count = raw.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
        raise BatchError(f"{where}.count: expected a whole number, got {count!r}")
    at = raw.get("at")
    if at is not None:
        if not isinstance(at, list) or len(at) != len(key_paths) or not all(
            isinstance(f, int) and not isinstance(f, bool) for f in at
        ):
            raise BatchError(f"{where}.at: expected {len(key_paths)} whole frame numbers, one per key")
        key_frames = tuple(at)
    elif source_frames is not None and count is None:
        key_frames = tuple(source_frames)
    else:
        if count is None:
            count = len(spacing) if isinstance(spacing, tuple) else 7
        key_frames = tuple(key_frames_for_count(len(key_paths), count, exposure))
        count = None

    sketches_raw = raw.get("sketches") or {}
    if not isinstance(sketches_raw, dict):
        raise BatchError(f"{where}.sketches: expected a mapping of frame number to file")
    sketches = {}
    for frame, sketch in sketches_raw.items():
        if isinstance(frame, bool) or not isinstance(frame, int) or not isinstance(sketch, str):
            raise BatchError(f"{where}.sketches: {frame!r}: expected FRAME: PATH with a whole frame number")
        sketches[frame] = _existing(base, sketch, f"{where}.sketches[{frame}]")

    settings_raw = dict(raw.get("settings") or {})
    if "backend" in raw:
        settings_raw["backend"] = raw["backend"]
    unknown = set(settings_raw) - SETTING_FIELDS
    if unknown:
        raise BatchError(f"{where}.settings: unknown setting(s) {', '.join(sorted(map(str, unknown)))}; "
                         f"known: {', '.join(sorted(SETTING_FIELDS))}")
    try:
        settings = GenerationSettings(**settings_raw)
    except (EngineError, TypeError) as exc:
        raise BatchError(f"{where}.settings: {exc}") from None

    padding, start_number = raw.get("padding", 4), raw.get("start_number", 1)
    if not isinstance(padding, int) or not 1 <= padding <= 9:
        raise BatchError(f"{where}.padding: expected 1 to 9 digits, got {padding!r}")
    if not isinstance(start_number, int) or start_number < 0:
        raise BatchError(f"{where}.start_number: expected a whole number >= 0, got {start_number!r}")
    out = raw.get("out", f"out/{name}")
    if not isinstance(out, str):
        raise BatchError(f"{where}.out: expected a folder path")

    shot = Shot(name, key_paths, key_frames, key_layers, exposure, spacing, count, sketches, settings,
                (base / out).resolve(), padding, start_number)
    try:
        segments = shot.segments()
    except PlanningError as exc:
        raise BatchError(f"{where}: timing: {exc}") from None
    last_number = shot.frame_number(segments[-1].end_frame)
    if len(str(last_number)) > padding:
        raise BatchError(f"{where}.padding: frame numbers run to {last_number}, which needs more than {padding} digits")
    for frame in sketches:
        if not key_frames[0] < frame < key_frames[-1] or frame in key_frames:
            raise BatchError(f"{where}.sketches[{frame}]: a sketch must sit on an in-between between the first and last key")
    return shot


def _existing(base: Path, text: str, where: str) -> Path:
    path = (base / Path(text).expanduser()).resolve()
    if not path.exists():
        raise BatchError(f"{where}: {path} not found")
    return path

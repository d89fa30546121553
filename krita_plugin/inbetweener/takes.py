"""Landing generated frames in Krita as a new layer (a "take"), and remembering how it was made.

Krita's Python API creates keyframes only through Document.importAnimation(files, first, step):
one file every `step` frames on a new layer, added at the top of the layer stack as a single undo
step. The layer's timeline is therefore laid out on the coarsest regular grid that hits every
drawing change; a drawing held longer than one grid step repeats its file. On ones/twos/threes the
grid is the exposure itself, so holds are real holds. An empty keyframe after the last key stops the
take from covering later frames of the keys layer.

How each take was made (layers, segments, timing, engine settings, provenance) is stored in the
document as an annotation, saved inside the .kra, so a take can be regenerated later.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from .document import DocumentError, node_uid

ANNOTATION_TYPE = "inbetweener"
ANNOTATION_DESCRIPTION = "Inbetweener: how each in-between layer was generated"
LAYER_PREFIX = "[In-betweens]"


@dataclass(frozen=True)
class ImportPlan:
    """What importAnimation gets: `sources[i]` is shown from frame `first + i * step` (a drawing's
    timeline frame, or None for an empty frame)."""

    first: int
    step: int
    sources: tuple[int | None, ...]

    def keyframe_times(self) -> list[int]:
        return [self.first + i * self.step for i in range(len(self.sources))]

    def changes(self) -> dict[int, int | None]:
        """Frame -> what the take shows from there on, only where it changes."""
        out: dict[int, int | None] = {}
        previous = object()
        for time_, source in zip(self.keyframe_times(), self.sources):
            if source != previous:
                out[time_] = source
            previous = source
        return out


def shown_drawings(frames: list[dict], include_keys: bool = True) -> dict[int, int | None]:
    """Timeline frame -> drawing the take shows there, from the engine's frame list (key,
    in-between or hold of either); None where the take is empty (keys when they are not copied)."""
    shown: dict[int, int | None] = {}
    kinds = {f["frame"]: f["kind"] for f in frames}
    for info in frames:
        drawing = int(info["drawing"])
        is_key = kinds.get(drawing) == "key"
        shown[int(info["frame"])] = drawing if include_keys or not is_key else None
    return shown


def plan_import(shown: dict[int, int | None]) -> ImportPlan:
    """Lay `shown` (frame -> drawing or None; frames missing between are empty) onto a regular grid."""
    if not shown:
        raise ValueError("nothing to place: the engine returned no frames")
    first, last = min(shown), max(shown)
    timeline = [shown.get(t) for t in range(first, last + 1)]
    changes = [i for i, source in enumerate(timeline) if i == 0 or source != timeline[i - 1]]
    step = 0
    for offset in changes:
        step = math.gcd(step, offset)
    step = step or 1
    sources = [timeline[i] for i in range(0, len(timeline), step)]
    if sources[-1] is not None:
        sources.append(None)
    return ImportPlan(first, step, tuple(sources))


def layer_name(spans: list[tuple[int, int]], seed: int) -> str:
    """'[In-betweens] f12–f24 seed 123': the range of keys the take covers and its seed."""
    start = min(a for a, _ in spans)
    end = max(b for _, b in spans)
    return f"{LAYER_PREFIX} f{start}–f{end} seed {seed}"


def unique_layer_name(base: str, existing: list[str]) -> str:
    """`base`, or `base take N` with the next take number when the document already has that name
    (a regenerated take with the same keys and seed stays distinguishable in the Layers docker)."""
    pattern = re.compile(re.escape(base) + r"(?: take (\d+))?")
    numbers = [int(m.group(1) or 1) for name in existing if (m := pattern.fullmatch(name))]
    return f"{base} take {max(numbers) + 1}" if numbers else base


def layer_names(doc) -> list[str]:
    """Every layer name in the document, groups included."""
    names: list[str] = []

    def walk(parent) -> None:
        for node in parent.childNodes():
            names.append(node.name())
            walk(node)

    walk(doc.rootNode())
    return names


ImportGuard = Callable[[object], AbstractContextManager]


def import_take(doc, files: list[str], plan: ImportPlan, name: str, guard: ImportGuard | None = None):
    """Import the frame files as one new animated layer (one undo step) and name it; the new node.

    `guard(doc)` wraps Krita's import (inside Krita: import_pacing.paced_import)."""
    if len(files) != len(plan.sources):
        raise ValueError(f"{len(files)} files for {len(plan.sources)} timeline positions")
    before = {node_uid(n) for n in doc.topLevelNodes()}
    doc.waitForDone()  # Krita's importer edits the layer tree directly: let running strokes finish first
    with (guard or (lambda _doc: contextlib.nullcontext()))(doc):
        imported = doc.importAnimation(files, plan.first, plan.step)
    if not imported:
        raise DocumentError(f"Krita could not import the generated frames ({files[0]} …)")
    doc.waitForDone()
    added = [n for n in doc.topLevelNodes() if node_uid(n) not in before]
    if len(added) != 1:
        raise DocumentError(f"expected Krita's import to add one layer, found {len(added)}")
    layer = added[0]
    layer.setName(name)
    return layer


# ---- takes remembered in the document -----------------------------------------------------------


def read_takes(doc) -> list[dict]:
    """Every take recorded in the document (oldest first); an unreadable annotation reads as none."""
    raw = bytes(doc.annotation(ANNOTATION_TYPE) or b"")
    if not raw:
        return []
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return []
    takes = data.get("takes") if isinstance(data, dict) else None
    return [t for t in takes if isinstance(t, dict)] if isinstance(takes, list) else []


def record_take(doc, take: dict) -> None:
    """Append a take to the document's annotation (saved with the .kra)."""
    takes = read_takes(doc) + [dict(take, recorded=time.strftime("%Y-%m-%dT%H:%M:%S"))]
    payload = json.dumps({"version": 1, "takes": takes}, indent=1).encode("utf-8")
    doc.setAnnotation(ANNOTATION_TYPE, ANNOTATION_DESCRIPTION, payload)


def takes_on_layers(doc, uids: set[str]) -> list[dict]:
    """Recorded takes whose layer still exists (newest first), for the Regenerate list."""
    return [t for t in reversed(read_takes(doc)) if t.get("layer_uid") in uids]

"""Reading an animator's Krita document: which layers exist, where their keyframes are, their pixels.

Pixels are read per layer (Node.pixelDataAtTime), never from the composite, so onion skins, the
background and other layers never leak into the keys or sketches the engine sees. Everything here
uses Krita's Python API only (no Qt), so it is tested with a fake `krita` document.
"""

from __future__ import annotations

from dataclasses import dataclass

from .pixels import is_blank

SUPPORTED_MODEL = "RGBA"
SUPPORTED_DEPTH = "U8"


class DocumentError(Exception):
    """The document, a layer or the timeline is not something the plugin can work with; the message
    says what to change."""


def node_uid(node) -> str:
    """A layer's unique id as text (Krita gives a QUuid; it survives saving and reopening)."""
    uid = node.uniqueId()
    return uid.toString() if hasattr(uid, "toString") else str(uid)


def check_document(doc) -> None:
    if doc is None:
        raise DocumentError("Open a document first: in-betweens are drawn from its animation timeline")
    model, depth = doc.colorModel(), doc.colorDepth()
    if (model, depth) != (SUPPORTED_MODEL, SUPPORTED_DEPTH):
        raise DocumentError(
            f"The document is {model} {depth}; Inbetweener works on 8-bit RGBA documents. Convert it with "
            "Image › Convert Image Color Space… (RGB/Alpha, 8-bit integer/channel) or work on a copy."
        )


def check_layer(node, role: str) -> None:
    """The keys (or sketch) layer must be an animated 8-bit RGBA paint layer."""
    name = node.name()
    if node.type() != "paintlayer":
        raise DocumentError(f"The {role} layer '{name}' is a {node.type()}: pick the paint layer that holds the drawings")
    model, depth = node.colorModel(), node.colorDepth()
    if (model, depth) != (SUPPORTED_MODEL, SUPPORTED_DEPTH):
        raise DocumentError(f"The {role} layer '{name}' is {model} {depth}; only 8-bit RGBA layers can be read")
    if not node.animated():
        raise DocumentError(
            f"The {role} layer '{name}' is not animated: make its drawings keyframes on the timeline first"
        )


@dataclass(frozen=True)
class LayerInfo:
    """A paint layer the animator can pick, named by its place in the layer stack."""

    uid: str
    label: str
    animated: bool


def paint_layers(doc) -> list[LayerInfo]:
    """Every paint layer, top of the stack first (as Krita's Layers docker lists them)."""
    found: list[LayerInfo] = []

    def walk(parent, prefix: str) -> None:
        for node in reversed(parent.childNodes()):
            label = f"{prefix}{node.name()}"
            if node.type() == "paintlayer":
                found.append(LayerInfo(node_uid(node), label, bool(node.animated())))
            if node.childNodes():
                walk(node, f"{label} / ")

    walk(doc.rootNode(), "")
    return found


def find_layer(doc, uid: str):
    """The node with this unique id, anywhere in the layer stack, or None."""

    def walk(parent):
        for node in parent.childNodes():
            if node_uid(node) == uid:
                return node
            found = walk(node)
            if found is not None:
                return found
        return None

    return walk(doc.rootNode())


def playback_range(doc) -> tuple[int, int]:
    return int(doc.playBackStartTime()), int(doc.playBackEndTime())


def keyframe_times(node, start: int, end: int) -> list[int]:
    """Frames in [start, end] where the layer has a keyframe of its own (not a hold)."""
    return [t for t in range(start, end + 1) if node.hasKeyframeAtTime(t)]


def read_frame(doc, node, frame: int) -> bytes:
    """The layer's own BGRA pixels of its keyframe at `frame`, over the whole canvas."""
    width, height = doc.width(), doc.height()
    data = bytes(node.pixelDataAtTime(0, 0, width, height, frame))
    if len(data) != width * height * 4:
        raise DocumentError(
            f"Could not read frame {frame} of layer '{node.name()}' ({len(data)} bytes for a {width}x{height} canvas)"
        )
    return data


@dataclass(frozen=True)
class KeyScan:
    """The keyframes of one layer in the playback range; empty keyframes are told apart because they
    end a drawing rather than anchor a motion."""

    layer_name: str
    start: int
    end: int
    frames: tuple[int, ...]
    blanks: frozenset[int]

    @property
    def keys(self) -> list[int]:
        return [f for f in self.frames if f not in self.blanks]

    def describe(self) -> str:
        keys = ", ".join(f"f{f}" for f in self.keys) or "none"
        text = f"keys in f{self.start}–f{self.end}: {keys}"
        if self.blanks:
            text += "; empty frames: " + ", ".join(f"f{f}" for f in sorted(self.blanks))
        return text


def scan_keys(doc, node) -> KeyScan:
    """Find the layer's keyframes in the playback range and which of them are empty."""
    check_layer(node, "keys")
    start, end = playback_range(doc)
    frames = keyframe_times(node, start, end)
    blanks = frozenset(f for f in frames if is_blank(read_frame(doc, node, f)))
    return KeyScan(node.name(), start, end, tuple(frames), blanks)


def check_keys(scan: KeyScan) -> None:
    """Refuse timelines with nothing to in-between, naming the layer and the range."""
    keys = scan.keys
    where = f"in the playback range f{scan.start}–f{scan.end}"
    if not keys:
        raise DocumentError(f"Layer '{scan.layer_name}' has no keyframes with a drawing {where}")
    if len(keys) == 1:
        raise DocumentError(
            f"Layer '{scan.layer_name}' has a single keyframe (f{keys[0]}) {where}: "
            "in-betweens need a second key to move towards"
        )


def sketch_frames(doc, node, inside: list[tuple[int, int]]) -> list[int]:
    """Frames of the sketch layer's non-empty keyframes strictly inside the given segments."""
    check_layer(node, "sketch")
    frames = []
    for start, end in inside:
        for frame in keyframe_times(node, start + 1, end - 1):
            if not is_blank(read_frame(doc, node, frame)):
                frames.append(frame)
    return frames

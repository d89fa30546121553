"""What the docker decides and remembers, kept apart from its widgets (tested without Qt or Krita).

- Which layer holds the keys: the one the artist picked in this document, else the layer with the
  most keyframes that is not a take (a take that just landed is the active layer, never the keys).
- A document's signature (which document, which layers) tells the docker when to re-read its lists
  and when a status line belongs to another document.
"""

from __future__ import annotations

import json

from .document import LayerInfo, find_layer, keyframe_times, node_uid, paint_layers, playback_range
from .takes import LAYER_PREFIX

SETTINGS_GROUP = "inbetweener"


def document_key(doc) -> str:
    """Stable identity of a document: its file, or its root layer's id while it is unsaved."""
    if doc is None:
        return ""
    name = doc.fileName() or ""
    return name or f"unsaved:{node_uid(doc.rootNode())}"


def document_signature(doc) -> tuple:
    """Changes when the document, or its paint layers (added, removed by undo, renamed), change."""
    if doc is None:
        return ()
    return (document_key(doc), tuple((info.uid, info.label) for info in paint_layers(doc)))


def is_take(info: LayerInfo, take_uids: set[str]) -> bool:
    return info.uid in take_uids or info.label.rsplit(" / ", 1)[-1].startswith(LAYER_PREFIX)


def default_keys_layer(doc, layers: list[LayerInfo], take_uids: set[str]) -> str | None:
    """The animated paint layer with the most keyframes in the playback range that is not a take
    (the top-most one on a tie); None when no such layer has a keyframe."""
    start, end = playback_range(doc)
    best, best_count = None, 0
    for info in layers:
        if not info.animated or is_take(info, take_uids):
            continue
        node = find_layer(doc, info.uid)
        count = len(keyframe_times(node, start, end)) if node is not None else 0
        if count > best_count:
            best, best_count = info.uid, count
    return best


class LayerMemory:
    """The layers the artist picked, per document: for this session, and in Krita's settings for
    saved documents (so reopening a .kra picks them again)."""

    def __init__(self, app) -> None:
        self.app = app
        self._session: dict[str, dict] = {}

    def _setting(self, key: str) -> str:
        return "layers:" + key

    def recall(self, doc) -> dict:
        key = document_key(doc)
        if key in self._session:
            return dict(self._session[key])
        if key and not key.startswith("unsaved:"):
            raw = self.app.readSetting(SETTINGS_GROUP, self._setting(key), "")
            try:
                data = json.loads(raw) if raw else {}
            except ValueError:
                data = {}
            if isinstance(data, dict):
                return data
        return {}

    def remember(self, doc, **choice) -> None:
        key = document_key(doc)
        if not key:
            return
        data = {**self.recall(doc), **choice}
        self._session[key] = data
        if not key.startswith("unsaved:"):
            self.app.writeSetting(SETTINGS_GROUP, self._setting(key), json.dumps(data))

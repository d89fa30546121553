"""Fakes of the Krita API parts the plugin uses: one place, for the unit tests and the docker scripts.

They mirror what Krita 5.1 does, as observed in real Krita: pixelDataAtTime returns BGRA bytes only
at a keyframe (empty elsewhere), importAnimation adds one animated layer at the top of the stack with
an empty keyframe at frame 0 and a file every `step` frames, annotations are bytes. Standard library
only at import time, so the PyQt5 docker scripts (Krita's system Python) can use them too.
"""

from __future__ import annotations

W, H = 96, 64  # the tests' canvas


class FakeUuid:
    def __init__(self, n: int) -> None:
        self.text = f"{{00000000-0000-0000-0000-{n:012d}}}"

    def toString(self) -> str:
        return self.text


class FakeNode:
    _next = 0

    def __init__(self, name, kind="paintlayer", frames=None, children=(), model="RGBA", depth="U8", animated=True):
        FakeNode._next += 1
        self._uid = FakeUuid(FakeNode._next)
        self._name, self._kind, self._model, self._depth = name, kind, model, depth
        self.frames: dict[int, bytes] = dict(frames or {})
        self._animated = animated
        self.children = list(children)
        self.doc = None

    def name(self):
        return self._name

    def setName(self, name):
        self._name = name

    def type(self):
        return self._kind

    def colorModel(self):
        return self._model

    def colorDepth(self):
        return self._depth

    def animated(self):
        return self._animated

    def uniqueId(self):
        return self._uid

    def childNodes(self):
        return list(self.children)

    def hasKeyframeAtTime(self, t):
        return self._animated and t in self.frames

    def pixelDataAtTime(self, x, y, w, h, t):
        assert (x, y, w, h) == (0, 0, self.doc.width(), self.doc.height()), "reads the whole canvas"
        return self.frames.get(t, b"") if self._animated else b""


class FakeDocument:
    def __init__(self, layers, width=W, height=H, model="RGBA", depth="U8", path="", playback=(0, 100), active=None):
        self.root = FakeNode("root", "grouplayer", children=layers)
        self._w, self._h, self._model, self._depth, self.path = width, height, model, depth, path
        self.playback = playback
        self.active = active
        self.annotations: dict[str, bytes] = {}
        self.imports: list[tuple[list[str], int, int]] = []
        self._adopt(self.root)

    def _adopt(self, node):
        node.doc = self
        for child in node.children:
            self._adopt(child)

    def width(self):
        return self._w

    def height(self):
        return self._h

    def colorModel(self):
        return self._model

    def colorDepth(self):
        return self._depth

    def rootNode(self):
        return self.root

    def topLevelNodes(self):
        return list(self.root.children)

    def activeNode(self):
        return self.active

    def playBackStartTime(self):
        return self.playback[0]

    def playBackEndTime(self):
        return self.playback[1]

    def fileName(self):
        return self.path

    def annotation(self, kind):
        return self.annotations.get(kind, b"")

    def setAnnotation(self, kind, description, data):
        self.annotations[kind] = bytes(data)

    def waitForDone(self):
        pass

    def importAnimation(self, files, first, step):
        import numpy as np  # only the unit tests import frames (the docker scripts never do)
        from PIL import Image

        self.imports.append((list(files), first, step))
        frames = {0: bytes(self._w * self._h * 4)}
        for i, path in enumerate(files):
            rgba = np.asarray(Image.open(path).convert("RGBA"))
            assert rgba.shape == (self._h, self._w, 4)
            frames[first + i * step] = rgba[..., [2, 1, 0, 3]].tobytes()
        layer = FakeNode(f"Paint Layer {len(self.root.children) + 1}", frames=frames)
        layer.doc = self
        self.root.children.append(layer)
        return True


class FakeKrita:
    """Krita.instance(): settings, and the document the active view shows."""

    def __init__(self):
        self.settings = {}
        self.active = None

    def activeDocument(self):
        return self.active

    def readSetting(self, group, name, default):
        return self.settings.get((group, name), default)

    def writeSetting(self, group, name, value):
        self.settings[(group, name)] = value

"""Reading sketches and posing a part on their lines."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.api import EngineError
from engine.cel import arcs
from engine.cel.parts import Part
from engine.cel.sketch_pose import SketchLines, fit_to_sketch
from tests import cel_drawings as art


def test_sketch_lines_on_transparent_paper():
    sketch = np.zeros((40, 60, 4), np.uint8)
    sketch[20, 10:50] = (20, 20, 20, 255)
    lines = SketchLines.read(sketch)
    assert lines.lines[20, 10:50].all() and lines.lines.sum() == 40
    assert lines.distance[25, 30] == pytest.approx(5.0, abs=0.5)


def test_blank_or_malformed_sketches_are_named():
    with pytest.raises(EngineError, match="no lines"):
        SketchLines.read(np.full((10, 10, 4), 255, np.uint8), source="sketch at frame 4")
    with pytest.raises(EngineError, match="sketch at frame 4"):
        SketchLines.read(np.zeros((10, 10), np.float32), source="sketch at frame 4")


def test_limb_turns_about_its_joint_onto_the_sketch():
    key = art.arm_figure(10)
    limb = art.capsule(key.shape[:2], art.SHOULDER, 10, art.ARM_LENGTH, 7) > 0
    part = Part(0, [0], [0], limb, limb, joint=np.array(art.SHOULDER), pivot=np.array(art.SHOULDER))
    lines = SketchLines.read(art.sketch_of_arm(70))
    relative, turn = fit_to_sketch(lines, part, np.eye(3), np.eye(3), 0.0)
    # image y points down, so a turn toward +x from hanging straight down is a negative angle
    assert math.degrees(-turn) == pytest.approx(60.0, abs=3.0)
    assert arcs.apply(relative, np.array([art.SHOULDER]))[0] == pytest.approx(art.SHOULDER, abs=3.5)

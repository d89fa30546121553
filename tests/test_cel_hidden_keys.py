"""A key that hides the figure behind scenery: its segments are drawn across it from the keys
around it, with the hidden key's scenery over the figure, and only if that redraws the hidden key."""

from __future__ import annotations

import numpy as np
import pytest

from engine.api import CancelToken, GenerationSettings, InbetweenTask, no_progress
from engine.backends import cel
from engine.cel.hidden_keys import bridge, hidden_key
from engine.cel.interpolator import CelInterpolator
from tests import cel_drawings as art

TRUNK = (128, 86, 52)  # the tree trunk's paint in tools/synthetic_cel.py


@pytest.fixture(scope="module")
def walk_behind_tree():
    """The synthetic walk behind a tree (tools/synthetic_cel.py): frame 4 shows only a sliver of
    the figure beside the trunk; frames 2 and 6 show it whole on either side."""
    from tools import synthetic_cel

    scene = synthetic_cel.build("occlusion", 0)
    frames = [synthetic_cel.render(scene, t) for t in synthetic_cel.taus(9)]
    keys = [np.dstack([f.image, np.full(f.image.shape[:2], 255, np.uint8)]) for f in frames]
    return frames, keys


@pytest.mark.slow
def test_the_key_showing_a_sliver_is_the_hidden_one(walk_behind_tree):
    _, keys = walk_behind_tree
    assert hidden_key(CelInterpolator().prepare(keys[4], keys[6])) == "a"
    assert hidden_key(CelInterpolator().prepare(keys[2], keys[6])) is None


@pytest.mark.parametrize("start, before, after", [(2, None, 6), (4, 2, None)])
def test_segments_beside_a_hidden_key_are_drawn_across_it(walk_behind_tree, start, before, after):
    """2 -> 4 (key 4 hides the figure; key 6 comes after) and 4 -> 6 (key 2 comes before): the
    in-between lands on the walking figure, behind the trunk as the keys paint it."""
    frames, keys = walk_behind_tree
    settings = GenerationSettings(backend="cel")
    task = InbetweenTask(keys[start], keys[start + 2], [0.5], settings,
                         key_before=None if before is None else keys[before], tau_before=None if before is None else -1.0,
                         key_after=None if after is None else keys[after], tau_after=None if after is None else 2.0)
    backend = cel.CelBackend(settings)
    out = backend.interpolate(task, no_progress, CancelToken())[0]
    assert backend.describe()["bridged_hidden_key"] is True
    truth = frames[start + 1]
    assert art.figure_iou(out, truth) > 0.8
    trunk = np.all(truth.plate == TRUNK, axis=2)
    assert trunk.sum() > 2000 and np.array_equal(out[trunk, :3], truth.image[trunk])  # painted over the figure


def test_without_a_key_beyond_the_hidden_one_the_segment_is_drawn_from_its_own_keys(walk_behind_tree):
    """2 -> 4 alone: nothing to bridge across, but the figure's parts still pair (its pieces go
    with their neighbours), so the cel method draws the segment itself: the figure slides behind
    the trunk, where a flow method dissolves it (RIFE scores about 0.3 here)."""
    frames, keys = walk_behind_tree
    settings = GenerationSettings(backend="cel")
    backend = cel.CelBackend(settings)

    def no_flow():
        raise AssertionError("the segment should not be handed to RIFE")

    backend._fallback = no_flow
    out = backend.interpolate(InbetweenTask(keys[2], keys[4], [0.5], settings), no_progress, CancelToken())[0]
    info = backend.describe()
    assert info["method"] == "cel" and not info.get("bridged_hidden_key")
    assert art.figure_iou(out, frames[3]) > 0.6
    trunk = np.all(frames[3].plate == TRUNK, axis=2)
    assert np.array_equal(out[trunk, :3], frames[3].image[trunk])  # the trunk stays in front


@pytest.mark.slow
def test_a_bridge_that_does_not_redraw_the_hidden_key_is_refused(walk_behind_tree):
    """A key that shows something else where the figure should be (here the figure back at frame
    0's place) is not a hidden key: the segment keeps its own drawing."""
    _, keys = walk_behind_tree
    across = CelInterpolator().prepare(keys[2], keys[6])
    assert bridge(across, 0.5, keys[4], 0.0, 0.5) is not None
    assert bridge(across, 0.5, keys[0], 0.0, 0.5) is None

"""The shared timing choice both front ends store (desktop project files, Krita annotations)."""

import pytest

from engine.core.planning import PlanningError
from engine.core.timing import DRAWING_MODES, SPACING_CHOICES, Timing


def test_round_trips_through_json():
    for timing in (Timing(), Timing(exposure=2, spacing="ease-in"), Timing(count=3, spacing=(0.1, 0.5, 0.9))):
        assert Timing.from_json(timing.to_json()) == timing


def test_plans_a_segment():
    plan = Timing(exposure=2).plan(0, 0, 8)
    assert [ib.frame for ib in plan.inbetweens] == [2, 4, 6]
    assert Timing(count=3).plan(1, 8, 16).index == 1


def test_describes_itself_in_animation_words():
    assert Timing(exposure=2, spacing="ease-in-out").describe() == "on twos, ease-in-out"
    assert Timing(count=2, spacing=(0.2, 0.6)).describe() == "exactly 2 in-betweens, chart 0.2,0.6"


@pytest.mark.parametrize("bad", [dict(exposure=0), dict(count=0), dict(spacing="wobbly"), dict(spacing=(0.6, 0.2))])
def test_refuses_what_cannot_be_planned(bad):
    with pytest.raises(PlanningError):
        Timing(**bad)


def test_ui_vocabulary_covers_the_planner():
    assert [value for value, _ in SPACING_CHOICES][:4] == ["linear", "ease-in", "ease-out", "ease-in-out"]
    assert [n for _, n in DRAWING_MODES] == [1, 2, 3, None]

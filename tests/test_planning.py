"""The planning core: spacing curves, exposure, segment plans and timeline assignments."""

import subprocess
import sys

import pytest

from engine.core.planning import (
    PlanningError,
    frame_assignments,
    key_frames_for_count,
    nearest_model_frame,
    parse_exposure,
    parse_spacing,
    plan_segment,
    plan_timeline,
    spacing_taus,
)


def test_linear_spacing_is_even():
    assert spacing_taus(3, "linear") == pytest.approx([0.25, 0.5, 0.75])


def test_eases_bunch_drawings_towards_the_slow_key():
    ease_in = spacing_taus(5, "ease-in")
    ease_out = spacing_taus(5, "ease-out")
    both = spacing_taus(5, "ease-in-out")
    linear = spacing_taus(5, "linear")
    assert all(a < b for a, b in zip(ease_in, linear))  # slow out of the first key
    assert all(a > b for a, b in zip(ease_out, linear))  # slow into the second key
    assert both[2] == pytest.approx(0.5)
    assert both[0] < linear[0] and both[-1] > linear[-1]
    for taus in (ease_in, ease_out, both):
        assert all(0 < t < 1 for t in taus)
        assert taus == sorted(taus)


def test_ease_in_and_out_mirror_each_other():
    ease_in = spacing_taus(4, "ease-in")
    ease_out = spacing_taus(4, "ease-out")
    assert [1 - t for t in reversed(ease_out)] == pytest.approx(ease_in)


def test_custom_timing_chart():
    assert parse_spacing("0.1, 0.3,0.8") == (0.1, 0.3, 0.8)
    assert spacing_taus(3, (0.1, 0.3, 0.8)) == [0.1, 0.3, 0.8]
    with pytest.raises(PlanningError, match="increase"):
        parse_spacing("0.5,0.2")
    with pytest.raises(PlanningError, match="outside"):
        parse_spacing("0.5,1.0")
    with pytest.raises(PlanningError, match="2 taus but the segment has 3"):
        spacing_taus(3, (0.2, 0.4))
    with pytest.raises(PlanningError, match="neither"):
        parse_spacing("bouncy")


@pytest.mark.parametrize("bad", [0, -1, 241])
def test_absurd_counts_are_refused(bad):
    with pytest.raises(PlanningError, match="count"):
        spacing_taus(bad)


def test_exposure_names():
    assert [parse_exposure(x) for x in ("ones", "twos", "threes", "4", 2)] == [1, 2, 3, 4, 2]
    with pytest.raises(PlanningError):
        parse_exposure("fours")
    with pytest.raises(PlanningError):
        parse_exposure(0)


def test_on_twos_places_a_drawing_every_second_frame():
    seg = plan_segment(0, 0, 12, exposure=2)
    assert [ib.frame for ib in seg.inbetweens] == [2, 4, 6, 8, 10]
    assert seg.taus == pytest.approx([2 / 12, 4 / 12, 6 / 12, 8 / 12, 10 / 12])
    assert seg.drawing_at(0) == 0 and seg.drawing_at(1) == 0
    assert seg.drawing_at(3) == 2 and seg.drawing_at(11) == 10


def test_uneven_gap_on_twos_uses_actual_time_for_tau():
    seg = plan_segment(0, 10, 15, exposure=2)
    assert [ib.frame for ib in seg.inbetweens] == [12, 14]
    assert seg.taus == pytest.approx([0.4, 0.8])


def test_explicit_count_spreads_drawings_and_spacing_orders_them():
    seg = plan_segment(0, 0, 8, count=3, spacing="ease-in")
    assert [ib.frame for ib in seg.inbetweens] == [2, 4, 6]
    assert seg.taus == pytest.approx([1 / 16, 1 / 4, 9 / 16])
    with pytest.raises(PlanningError, match="do not fit"):
        plan_segment(0, 0, 3, count=3)


def test_keys_too_close_are_refused():
    with pytest.raises(PlanningError, match="no frame"):
        plan_segment(0, 4, 5)
    with pytest.raises(PlanningError, match="closer than one exposure"):
        plan_segment(0, 0, 3, exposure=3)
    with pytest.raises(PlanningError, match="increase"):
        plan_timeline([0, 12, 12])
    with pytest.raises(PlanningError, match="two keyframes"):
        plan_timeline([0])


def test_count_mode_key_positions():
    assert key_frames_for_count(3, 7) == [0, 8, 16]
    assert key_frames_for_count(2, 7, exposure=2) == [0, 16]


def test_frame_assignments_cover_every_frame_once():
    segments = plan_timeline([0, 12, 24], exposure=2)
    slots = frame_assignments(segments)
    assert sorted(slots) == list(range(25))
    kinds = {f: s.kind for f, s in slots.items()}
    assert [f for f, k in kinds.items() if k == "key"] == [0, 12, 24]
    assert [f for f, k in kinds.items() if k == "inbetween"] == [2, 4, 6, 8, 10, 14, 16, 18, 20, 22]
    assert slots[1].kind == "hold" and slots[1].drawing == 0 and slots[1].segment is None
    assert slots[15].kind == "hold" and slots[15].drawing == 14 and slots[15].segment == 1
    assert slots[14].tau == pytest.approx(2 / 12)


def test_nearest_model_frame():
    assert nearest_model_frame(0.0) == 0
    assert nearest_model_frame(1.0) == 15
    assert nearest_model_frame(0.5) == 7  # exactly between 7 and 8: the lower one
    assert nearest_model_frame(8 / 15 + 0.01) == 8


def test_planning_core_imports_without_heavy_dependencies():
    code = (
        "import sys, engine.core.planning; "
        "bad = [m for m in ('torch', 'numpy', 'PySide6', 'PyQt5', 'cv2') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

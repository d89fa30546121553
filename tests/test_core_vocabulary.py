"""The settings vocabulary is the one source the engine, CLI, server schema and both UIs read."""

from __future__ import annotations

import pytest

from engine.api import EngineError, GenerationSettings
from engine.core import vocabulary


def test_every_backend_choice_has_a_label_and_auto_comes_first():
    assert vocabulary.BACKENDS[0] == "auto"
    assert all(label for _, label in vocabulary.BACKEND_CHOICES)
    assert set(vocabulary.CLASSICAL_BACKENDS) < set(vocabulary.BACKENDS)
    assert vocabulary.PRESETS == tuple(name for name, _ in vocabulary.PRESET_CHOICES)


@pytest.mark.parametrize(
    ("field", "allowed"),
    [("steps", vocabulary.STEPS), ("motion", vocabulary.MOTION), ("cfg_scale", vocabulary.CFG_SCALE),
     ("sketch_strength", vocabulary.SKETCH_STRENGTH)],
)
def test_settings_accept_the_range_ends_and_refuse_just_outside(field, allowed):
    cast = int if isinstance(getattr(GenerationSettings(), field), int) else float
    for value in (allowed.low, allowed.high, allowed.default):
        assert getattr(GenerationSettings(**{field: cast(value)}), field) == cast(value)
    step = 1 if cast is int else 0.01
    for value in (allowed.low - step, allowed.high + step):
        with pytest.raises(EngineError, match=field.replace("_", " ")):
            GenerationSettings(**{field: cast(value)})


def test_settings_defaults_are_the_vocabulary_defaults():
    s = GenerationSettings()
    assert (s.steps, s.motion, s.cfg_scale, s.sketch_strength, s.seed) == (
        vocabulary.STEPS.default, vocabulary.MOTION.default, vocabulary.CFG_SCALE.default,
        vocabulary.SKETCH_STRENGTH.default, vocabulary.SEED.default)


def test_cli_choices_come_from_the_vocabulary():
    from engine.cli import build_parser

    actions = {a.dest: a for a in build_parser()._actions}
    assert tuple(actions["backend"].choices) == vocabulary.BACKENDS
    assert tuple(actions["preset"].choices) == vocabulary.PRESETS
    assert tuple(actions["precision"].choices) == vocabulary.PRECISIONS

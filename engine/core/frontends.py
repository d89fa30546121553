"""What the desktop app and the Krita docker share beyond the vocabulary.

Both front ends build the same engine settings from these descriptions (labels and choices come
from `engine.core.vocabulary`), grey out the same settings for the same backend, and tell the
artist about engine problems in the same words. Standard library only: the Krita plugin carries a
copy of `engine/core`.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import vocabulary

AUTO_ON_OFF_LABELS = {"auto": "Auto", "on": "On", "off": "Off"}


@dataclass(frozen=True)
class ChoiceSetting:
    """A GenerationSettings field shown as a drop-down: (value, label) choices and a tooltip."""

    field: str
    label: str
    choices: tuple[tuple[str, str], ...]
    tooltip: str
    default: str = "auto"


CHOICE_SETTINGS = (
    ChoiceSetting(
        "runtime", "Runtime", vocabulary.RUNTIME_CHOICES,
        "What runs the ToonCrafter networks: PyTorch, or the exported ONNX models in ONNX Runtime "
        "(Auto picks what this engine has)",
    ),
    ChoiceSetting(
        "restore_detail", vocabulary.RESTORE_DETAIL_LABEL,
        tuple((v, AUTO_ON_OFF_LABELS[v]) for v in vocabulary.AUTO_ON_OFF),
        "In-betweens drawn below the keys' size are brought back to full resolution with the keys' own "
        "line detail (Auto: when the keys are larger than the model's canvas)",
    ),
    ChoiceSetting(
        "keep_palette", vocabulary.KEEP_PALETTE_LABEL,
        tuple((v, AUTO_ON_OFF_LABELS[v]) for v in vocabulary.AUTO_ON_OFF),
        "Snap flat colours of the in-betweens to the colours used in the keys (Auto: for flat-colour art)",
    ),
)
CHOICE_SETTING_BY_FIELD = {s.field: s for s in CHOICE_SETTINGS}

#: Settings that steer a diffusion model; classical backends (cel, RIFE) ignore them.
GENERATIVE_ONLY = ("motion", "seed", "steps", "cfg_scale", "sketch_strength", "runtime", "restore_detail")
#: How each classical backend draws, for the note under the settings.
CLASSICAL_METHODS = {"cel": "moves the keys' flat-colour parts along arcs", "rife": "draws by optical flow"}


def setting_applies(field: str, backend: str) -> bool:
    """Whether `field` changes what `backend` draws (both front ends grey out the others)."""
    return backend not in vocabulary.CLASSICAL_BACKENDS or field not in GENERATIVE_ONLY


def reads_sketches(backend: str, health: dict) -> bool:
    """Whether a run with `backend` follows sketches; `auto` is the backend the engine resolves it
    to (its /v1/health `default_backend`)."""
    if backend == "auto":
        backend = str(health.get("default_backend") or "")
    return backend in vocabulary.SKETCH_BACKENDS


def backend_note(backend: str) -> str:
    """One line under the settings saying what the chosen backend ignores ("" when nothing)."""
    if backend in vocabulary.CLASSICAL_BACKENDS:
        label = dict(vocabulary.BACKEND_CHOICES).get(backend, backend).split(" (")[0]
        how = CLASSICAL_METHODS.get(backend, "draws without a diffusion model")
        if backend in vocabulary.SKETCH_BACKENDS:
            return f"{label} {how}: motion, seed, steps, CFG and runtime do not apply; sketches pose the parts."
        return f"{label} {how}: motion, seed, steps, CFG, runtime and sketches do not apply."
    return ""


def runtime_availability(health: dict) -> dict[str, tuple[bool, str]]:
    """Runtime name -> (available, reason) from /v1/health's `runtimes` (all available when absent)."""
    runtimes = health.get("runtimes") or {}
    out = {}
    for name in vocabulary.RUNTIMES:
        info = runtimes.get(name)
        if isinstance(info, dict):
            out[name] = (bool(info.get("available", True)), str(info.get("reason") or ""))
        elif isinstance(info, bool):
            out[name] = (info, "" if info else "not available in this engine")
        else:
            out[name] = (True, "")
    return out


#: Engine start-up problems as (text the engine or Python prints, what the artist should do).
ENGINE_PROBLEMS = (
    (
        ("no module named engine", "no module named 'engine'", "no module named \"engine\""),
        "this Python has no Inbetweener engine installed: choose the .venv/bin/python of your Inbetweener "
        "folder (or the folder's engine Python on Windows: .venv\\Scripts\\python.exe)",
    ),
    (
        ("no module named torch", "no module named 'torch'"),
        "this Python has the engine but not its dependencies: run `make demo` in your Inbetweener folder, "
        "then choose its .venv/bin/python",
    ),
    (
        ("does not exist", "no such file"),
        "that Engine Python does not exist: choose the .venv/bin/python of your Inbetweener folder",
    ),
    (
        ("permission denied",),
        "that Engine Python cannot be run (permission denied): choose the .venv/bin/python of your Inbetweener folder",
    ),
    (
        ("address already in use",),
        "another program holds the engine's port: close the other engine, or press Reconnect to use it",
    ),
)


def known_engine_problem(text: str) -> str | None:
    """The advice for a known engine start-up problem in `text`, or None."""
    lowered = text.lower()
    for needles, advice in ENGINE_PROBLEMS:
        if any(n in lowered for n in needles):
            return advice[:1].upper() + advice[1:] + "."
    return None


def explain_engine_problem(text: str) -> str:
    """An engine start-up or connection problem in the artist's words, with the next step.

    Known causes get one sentence saying what to do; anything else keeps the engine's own first
    line (never a cut-off path) after "the engine did not start:".
    """
    known = known_engine_problem(text)
    if known:
        return known
    first = next((line.strip() for line in text.splitlines() if line.strip()), "no reason given")
    return f"The engine did not start: {first}"

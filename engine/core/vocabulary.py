"""The settings vocabulary: every choice and range a user can set, with the words animators see.

One home for these facts: the engine's settings check (`engine.api.GenerationSettings`), the CLI's
choices, the server's job schema, the desktop app's panel and the Krita docker all read them from
here. Standard library only: the Krita plugin carries a copy of `engine/core`.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Backends as (name, label). `auto` picks the best one that can run here.
BACKEND_CHOICES = (
    ("auto", "Auto (best available)"),
    ("cel", "Cel in-betweener (no download)"),
    ("rife", "RIFE (fast, no download)"),
    ("tooncrafter", "ToonCrafter (generative)"),
)
BACKENDS = tuple(name for name, _ in BACKEND_CHOICES)
#: Backends that draw without a diffusion model: motion, seed, steps, CFG, prompt and runtime do not apply.
CLASSICAL_BACKENDS = ("cel", "rife")
#: Backends that follow the artist's rough sketches of in-betweens; the others refuse sketches.
SKETCH_BACKENDS = ("cel", "tooncrafter")

#: ToonCrafter presets as (name, label).
PRESET_CHOICES = (
    ("parity", "Parity (the official sampler)"),
    ("fast", "Fast (fewer passes, changes numbers)"),
    ("quality", "Quality (extra passes between anchors)"),
)
PRESETS = tuple(name for name, _ in PRESET_CHOICES)

#: Numeric precision of the ToonCrafter model; auto = fp32 on CPU, fp16 on CUDA.
PRECISIONS = ("auto", "fp32", "fp16", "bf16")

#: What runs the ToonCrafter networks, as (name, label). auto = PyTorch unless only ONNX can run.
RUNTIME_CHOICES = (
    ("auto", "Auto"),
    ("torch", "PyTorch"),
    ("onnx", "ONNX Runtime (exported models)"),
)
RUNTIMES = tuple(name for name, _ in RUNTIME_CHOICES)

#: Where the networks run: auto, cpu, cuda (the current GPU) or cuda:N (GPU number N).
DEVICES = ("auto", "cpu", "cuda", "cuda:N")


def is_device(name: object) -> bool:
    """True for a device name the engine accepts (see DEVICES)."""
    if not isinstance(name, str):
        return False
    kind, sep, index = name.partition(":")
    if not sep:
        return name in ("auto", "cpu", "cuda")
    return kind == "cuda" and index.isdigit() and index.isascii() and len(index) <= 3


#: Full-resolution finishing of in-betweens drawn below the keys' size, and palette fidelity:
#: auto decides from the keys (larger than the model canvas; flat-colour art), on/off force it.
AUTO_ON_OFF = ("auto", "on", "off")
RESTORE_DETAIL_LABEL = "Detail from the keys at full resolution"
KEEP_PALETTE_LABEL = "Keep the keys' palette"


@dataclass(frozen=True)
class Range:
    """An inclusive numeric range with its default and the step a spin box uses."""

    low: float
    high: float
    default: float
    step: float = 1

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def describe(self) -> str:
        return f"between {self.low:g} and {self.high:g}"


#: The model's fs ("frame stride") conditioning: how much motion it puts between keys. Not a frame rate.
MOTION = Range(1, 100, 10)
STEPS = Range(1, 1000, 50)
CFG_SCALE = Range(1.0, 30.0, 7.5, 0.5)
SKETCH_STRENGTH = Range(0.0, 2.0, 0.6, 0.1)
SEED = Range(0, 2**31 - 1, 123)

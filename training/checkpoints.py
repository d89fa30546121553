"""Training checkpoints for an EXACT resume, and the weights files a run hands to the engine.

A checkpoint folder `OUT/checkpoints/step-0000500/` holds, for the step it was taken after:
`state.pt` (trained parameters, the buffers of trained modules, EMA, optimizers, LR schedulers,
the next step — which is also the data position, see `training.data` — and the run's fingerprint)
and `rng-<rank>.pt` (every random generator of that process). Under FSDP the model and optimizer
state are saved sharded with torch.distributed.checkpoint in `sharded/`. Folders appear under
their final name only when complete.

Weights files use the official key layout: `model.safetensors` is the starting checkpoint with the
trained tensors replaced (everything else copied unchanged), `sketch_encoder.safetensors` the whole
sketch encoder; `*-ema.safetensors` carry the EMA of the trained tensors instead.
"""

from __future__ import annotations

import io
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save as safetensors_bytes

from engine.core.files import atomic_write_bytes

STEP_PREFIX = "step-"


def _save(obj, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _load(path: Path):
    return torch.load(path, map_location="cpu", weights_only=True)


def rng_state() -> dict:
    numpy_state = np.random.get_state(legacy=False)
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {"bit_generator": numpy_state["bit_generator"], "key": numpy_state["state"]["key"].tolist(),
                  "pos": int(numpy_state["state"]["pos"]), "has_gauss": int(numpy_state["has_gauss"]),
                  "gauss": float(numpy_state["gauss"])},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state({"bit_generator": n["bit_generator"], "state": {"key": np.array(n["key"], dtype=np.uint32),
                         "pos": n["pos"]}, "has_gauss": n["has_gauss"], "gauss": n["gauss"]})
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list | tuple) else value


def checkpoint_root(out: Path) -> Path:
    return out / "checkpoints"


def latest_checkpoint(out: Path) -> Path | None:
    root = checkpoint_root(out)
    if not root.is_dir():
        return None
    done = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(STEP_PREFIX) and p.name[len(STEP_PREFIX):].isdigit())
    return done[-1] if done else None


def begin_checkpoint(out: Path, step: int) -> tuple[Path, Path]:
    """(temporary folder to fill, final folder name)."""
    final = checkpoint_root(out) / f"{STEP_PREFIX}{step:07d}"
    temporary = final.with_name(final.name + ".partial")
    if temporary.exists():
        shutil.rmtree(temporary)
    temporary.mkdir(parents=True)
    return temporary, final


def finish_checkpoint(temporary: Path, final: Path, keep: int) -> None:
    if final.exists():
        shutil.rmtree(final)
    os.replace(temporary, final)
    old = sorted(p for p in final.parent.iterdir() if p.is_dir() and p.name.startswith(STEP_PREFIX) and p.name[len(STEP_PREFIX):].isdigit())
    for stale in old[:-keep] if keep > 0 else []:
        shutil.rmtree(stale, ignore_errors=True)


def save_state(folder: Path, state: dict) -> None:
    _save(state, folder / "state.pt")


def save_rng(folder: Path, rank: int) -> None:
    _save(rng_state(), folder / f"rng-{rank}.pt")


def load_state(folder: Path) -> dict:
    path = folder / "state.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: not a training checkpoint (no state.pt)")
    return _load(path)


def load_rng(folder: Path, rank: int) -> None:
    path = folder / f"rng-{rank}.pt"
    if path.is_file():
        set_rng_state(_load(path))


def write_weights(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """A safetensors file, written atomically."""
    data = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write_bytes(path, safetensors_bytes(data, metadata=metadata))

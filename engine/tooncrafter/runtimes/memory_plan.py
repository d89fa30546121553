"""How the PyTorch runtime sizes its chunks: the fastest exact setting whose activations fit.

Every chunking the networks offer is exact (the same frames within float rounding), so the only
question is speed against memory. The plan estimates the activation memory of the two parts that
dominate a pass and picks, from the memory the device has free once the weights are placed:

- the dual-reference decode: the whole clip at once if it fits, else the exact lean decode
  (`DualRefDecoder.set_frames_at_once`) with as many frames at once as fit (the tightest setting:
  one frame at a time, in bands of rows);
- the UNet's attention: one kernel call for all sequences and query tokens if the largest attention
  matrix (spatial attention over a whole frame, every frame of both guidance branches) fits in a
  quarter of that memory, else query chunks that bound it (`set_attention_chunk`). Fused kernels
  may never materialise the matrix; the plan assumes one that does.

"Tightest" (low-memory mode, `--low-vram`) takes the smallest attention chunks and decodes one frame
at a time whatever is free, splitting frames into bands of rows too. Where the parts visit a GPU
only while they run, the UNet's visit (its weights alone 2.6 GiB in float16) sets the peak, not the
decode: there the bands are taken only if one frame at a time would not fit in the free memory (on
an H200 in float16 they saved 0.19 GiB of a 1.35 GiB decode and made it 6.5x slower). The
decode's figures are the measured ones of BENCHMARKS.md (16 x 320x512, float32, CPU), in units of
one full-resolution frame of the decoder's first level (ch x H x W elements).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..model import ToonCrafterModel
from ..networks.config import ToonCrafterConfig

#: Whole-clip decode: activations per frame of the clip, in full-resolution first-level frames
#: (measured 8.77 GiB for 16 frames of 128 x 320x512 float32 = 7.0 frames each; 7.5 keeps a margin).
WHOLE_DECODE_FRAMES_PER_FRAME = 7.5
#: Lean decode: besides the one clip-sized first-level activation it holds, the transient memory of
#: each frame computed at once (2-D block temporaries, the upsampled input); measured 1.76 GiB at
#: 16 frames one at a time = 16 + 6.5 frames.
LEAN_DECODE_FRAMES_PER_FRAME_AT_ONCE = 7.0
#: Share of the free memory the largest attention matrix may take in the automatic plan.
ATTENTION_SHARE = 0.25
#: Attention matrix bound of the tightest plan.
TIGHTEST_ATTENTION_BYTES = 256 * 1024**2
#: Sequences per attention call when chunked (keeps CUDA grid sizes legal for temporal attention,
#: whose sequences are every pixel of every frame).
ATTENTION_SEQUENCES = 4096
#: Share of the free memory the plan lets activations use (the rest: allocator slack, other programs).
USABLE_SHARE = 0.8


@dataclass(frozen=True)
class ChunkPlan:
    """Chunk sizes for one loaded model; None everywhere is the plain whole-at-once computation."""

    #: Frames the dual-reference decoder computes at once (None: the whole clip).
    decode_frames_at_once: int | None = None
    #: Sequences (frames, or pixels for temporal attention) per UNet attention call (None: all).
    attention_sequences: int | None = None
    #: Query tokens per UNet attention call (None: all).
    attention_queries: int | None = None
    #: The streamed decode also splits each frame into bands of rows (the tightest setting).
    decode_in_row_bands: bool = False

    def apply(self, model: ToonCrafterModel) -> None:
        model.unet.set_attention_chunk(self.attention_sequences, self.attention_queries)
        decoder = model.first_stage_model.decoder
        decoder.set_frames_at_once(self.decode_frames_at_once, self.decode_in_row_bands)
        decoder.set_attention_chunk(self.decode_frames_at_once)

    def describe(self) -> dict:
        return asdict(self)


def _first_level_frame_bytes(config: ToonCrafterConfig, itemsize: int) -> int:
    stage = config.first_stage
    return stage.ch * stage.ch_mult[0] * config.height * config.width * itemsize


def decode_activation_bytes(config: ToonCrafterConfig, itemsize: int, frames_at_once: int | None) -> int:
    """Estimated peak activations of decoding one chunk of the model's frames."""
    frames = min(config.frames, config.first_stage.decode_chunk_frames)
    unit = _first_level_frame_bytes(config, itemsize)
    if frames_at_once is None or frames_at_once >= frames:
        return int(WHOLE_DECODE_FRAMES_PER_FRAME * frames * unit)
    return int((frames + LEAN_DECODE_FRAMES_PER_FRAME_AT_ONCE * frames_at_once) * unit)


def _spatial_attention_shape(config: ToonCrafterConfig, guidance_batch: int) -> tuple[int, int, int]:
    """(sequences, heads, tokens) of the UNet's largest spatial attention (its first level)."""
    unet = config.unet
    down = 2 ** (len(config.first_stage.ch_mult) - 1)
    tokens = (config.height // down) * (config.width // down)
    heads = max(1, unet.model_channels // unet.num_head_channels)
    return guidance_batch * config.frames, heads, tokens


def attention_matrix_bytes(
    config: ToonCrafterConfig, itemsize: int, sequences: int | None, queries: int | None, guidance_batch: int = 2
) -> int:
    """Bytes of the largest UNet attention matrix one kernel call would hold if materialised."""
    all_sequences, heads, tokens = _spatial_attention_shape(config, guidance_batch)
    per_call = min(sequences or all_sequences, all_sequences)
    return per_call * heads * min(queries or tokens, tokens) * tokens * itemsize


def _attention_chunks(config: ToonCrafterConfig, itemsize: int, budget: int) -> tuple[int | None, int | None]:
    if attention_matrix_bytes(config, itemsize, None, None) <= budget:
        return None, None
    sequences, heads, tokens = _spatial_attention_shape(config, 2)
    per_call = min(ATTENTION_SEQUENCES, sequences)
    queries = max(1, budget // (per_call * heads * tokens * itemsize))
    return ATTENTION_SEQUENCES, min(queries, tokens)


def plan_chunks(
    config: ToonCrafterConfig, itemsize: int, free_bytes: int | None, tightest: bool = False, parts_visit: bool = False
) -> ChunkPlan:
    """The fastest chunk sizes whose estimated activations fit in `free_bytes` (None: unknown, plan
    for whole-at-once), or the tightest ones (`parts_visit`: the networks visit the device one at a
    time, so row bands only where one frame at a time does not fit or `free_bytes` is unknown)."""
    usable = None if free_bytes is None else int(free_bytes * USABLE_SHARE)
    if tightest:
        sequences, queries = _attention_chunks(config, itemsize, TIGHTEST_ATTENTION_BYTES)
        bands = not parts_visit or usable is None or decode_activation_bytes(config, itemsize, 1) > usable
        return ChunkPlan(1, sequences or ATTENTION_SEQUENCES, queries, decode_in_row_bands=bands)
    if usable is None:
        return ChunkPlan()
    frames = min(config.frames, config.first_stage.decode_chunk_frames)
    decode = None
    if decode_activation_bytes(config, itemsize, None) > usable:
        fitting = [n for n in range(frames - 1, 0, -1) if decode_activation_bytes(config, itemsize, n) <= usable]
        decode = fitting[0] if fitting else 1
    sequences, queries = _attention_chunks(config, itemsize, int(usable * ATTENTION_SHARE))
    return ChunkPlan(decode, sequences, queries)


def free_memory_bytes(device: str) -> int | None:
    """Memory free for activations on `device`: the CUDA allocator's free bytes, or the system's
    available memory (MemAvailable) for the CPU; None when it cannot be read."""
    if device.startswith("cuda"):
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    with contextlib.suppress(OSError):  # no /proc (macOS, Windows): sysconf below
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None

"""The whole-pipeline memory budget of the PyTorch runtime (runtimes/memory_plan.py): chunk sizes chosen
from the free memory, the tightest ones in low-memory mode giving the default's frames on the tiny
model, and the fast preset VAE-encoding only the two keyframes."""

from __future__ import annotations

import pytest
import torch

from engine.api import GenerationSettings
from engine.tooncrafter.interpolation import InterpolationNoise, interpolate
from engine.tooncrafter.networks.attention import Attention
from engine.tooncrafter.networks.config import ToonCrafterConfig
from engine.tooncrafter.networks.key_maps import RecomputedKeyMap
from engine.tooncrafter.runtimes.memory_plan import (
    TIGHTEST_ATTENTION_BYTES,
    ChunkPlan,
    attention_matrix_bytes,
    decode_activation_bytes,
    free_memory_bytes,
    plan_chunks,
)
from engine.tooncrafter.runtimes.runner import interpolation_settings
from engine.tooncrafter.runtimes.torch_runtime import TorchRunner
from engine.tooncrafter.weights.store import WeightFiles

GIB = 1024**3

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- the plan for the released model's size (no weights needed) ----------------------------------


def test_full_size_estimates_follow_the_measurements():
    full = ToonCrafterConfig()
    whole = decode_activation_bytes(full, 4, None)
    lean = decode_activation_bytes(full, 4, 1)
    # BENCHMARKS.md: about 9.2 GiB whole, under 2 GiB lean (16 x 320x512, float32)
    assert 8.5 * GIB < whole < 10.5 * GIB
    assert 1.0 * GIB < lean < 2.0 * GIB
    assert decode_activation_bytes(full, 2, 1) == lean // 2
    assert decode_activation_bytes(full, 4, 16) == whole  # all frames at once is the whole clip
    # the spatial attention of the first level: 32 frames (both guidance branches) x 5 heads x 2560^2
    assert attention_matrix_bytes(full, 2, None, None) == 32 * 5 * 2560 * 2560 * 2
    assert attention_matrix_bytes(full, 2, 4096, 256) == 32 * 5 * 256 * 2560 * 2


def test_the_plan_is_the_fastest_setting_that_fits():
    full = ToonCrafterConfig()
    assert plan_chunks(full, 4, 64 * GIB) == ChunkPlan()  # room for everything: nothing chunked
    assert plan_chunks(full, 4, None) == ChunkPlan()  # unknown free memory: the plain computation
    plans = [plan_chunks(full, 4, free * GIB) for free in (12, 8, 6, 4, 3, 1)]
    frames = [p.decode_frames_at_once or 16 for p in plans]
    assert frames == sorted(frames, reverse=True) and frames[0] == 16 and frames[-1] == 1
    for plan, free in zip(plans, (12, 8, 6, 4, 3, 1)):
        usable = 0.8 * free * GIB
        if plan.decode_frames_at_once not in (None, 1):
            assert decode_activation_bytes(full, 4, plan.decode_frames_at_once) <= usable
            assert decode_activation_bytes(full, 4, plan.decode_frames_at_once + 1) > usable
        matrix = attention_matrix_bytes(full, 4, plan.attention_sequences, plan.attention_queries)
        assert matrix <= 0.25 * usable
    assert plans[-1].attention_queries is not None  # 1 GiB free: the 4 GiB matrix is split


def test_the_tightest_plan_bounds_everything_whatever_is_free():
    full = ToonCrafterConfig()
    for itemsize in (2, 4):
        plan = plan_chunks(full, itemsize, 1000 * GIB, tightest=True)
        assert plan.decode_frames_at_once == 1
        assert attention_matrix_bytes(full, itemsize, plan.attention_sequences, plan.attention_queries) <= TIGHTEST_ATTENTION_BYTES
        assert plan.decode_in_row_bands  # on the CPU the decode tops the low-memory pass: every saving counts
    assert free_memory_bytes("cpu") > 0


def test_where_parts_visit_a_gpu_the_tightest_plan_bands_rows_only_if_one_frame_does_not_fit():
    full = ToonCrafterConfig()
    one_frame = decode_activation_bytes(full, 2, 1)  # about 1 GiB in float16, under the UNet's visit
    assert not plan_chunks(full, 2, 6 * GIB, tightest=True, parts_visit=True).decode_in_row_bands  # a 6 GB card
    assert not plan_chunks(full, 2, int(one_frame / 0.8) + 1, tightest=True, parts_visit=True).decode_in_row_bands
    assert plan_chunks(full, 2, int(one_frame / 0.8) - 1, tightest=True, parts_visit=True).decode_in_row_bands
    assert plan_chunks(full, 4, 1 * GIB, tightest=True, parts_visit=True).decode_in_row_bands  # float32: twice as much
    assert plan_chunks(full, 2, None, tightest=True, parts_visit=True).decode_in_row_bands  # unknown: the safe side
    assert plan_chunks(full, 2, 6 * GIB, tightest=True, parts_visit=True).decode_frames_at_once == 1


# -- the tiny model -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_runner(tiny_reference):
    settings = GenerationSettings(backend="tooncrafter", checkpoint=str(tiny_reference["weights"]), device="cpu", steps=2)
    return TorchRunner(settings, WeightFiles(tiny_reference["weights"], None, None), tiny_reference["config"])


def _keyframes(config: ToonCrafterConfig) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(11)
    ramp = torch.linspace(-1, 1, config.width).expand(1, 3, config.height, config.width)
    first = (ramp + 0.3 * torch.randn(1, 3, config.height, config.width, generator=generator)).clamp(-1, 1)
    return first, first.flip(-1) * 0.8


def _frames(runner: TorchRunner, plan: ChunkPlan, preset: str = "parity", low_vram: bool = False) -> torch.Tensor:
    plan.apply(runner.model)
    settings = GenerationSettings(backend="tooncrafter", device="cpu", steps=2, preset=preset, seed=5, low_vram=low_vram)
    first, last = _keyframes(runner.config)
    with torch.inference_mode():
        result = interpolate(
            runner.net, first, last, interpolation_settings(settings), InterpolationNoise.seeded(5, runner.config)
        )
    return result.frames


@pytest.mark.slow
def test_the_tightest_settings_draw_the_default_frames(tiny_runner):
    default = _frames(tiny_runner, ChunkPlan())
    tightest = plan_chunks(tiny_runner.config, 4, None, tightest=True)
    # everything split as far as it goes: one frame decoded at once, one sequence and three query
    # tokens per attention call
    smallest = ChunkPlan(decode_frames_at_once=1, attention_sequences=1, attention_queries=3, decode_in_row_bands=True)
    try:
        for plan in (tightest, smallest):
            frames = _frames(tiny_runner, plan)
            decoder = tiny_runner.model.first_stage_model.decoder
            attention = next(m for m in tiny_runner.model.unet.modules() if isinstance(m, Attention))
            assert decoder.frames_at_once == 1 and decoder.in_row_bands
            assert attention.chunk_size == plan.attention_sequences
            assert attention.query_chunk_size == plan.attention_queries
            assert (frames - default).abs().max().item() < 1e-4, plan
    finally:
        ChunkPlan().apply(tiny_runner.model)
    assert default.abs().max().item() > 0.1  # real frames, not an empty result


def test_low_memory_mode_takes_the_tightest_chunks_on_the_cpu_too(tiny_reference):
    settings = GenerationSettings(
        backend="tooncrafter", checkpoint=str(tiny_reference["weights"]), device="cpu", low_vram=True
    )
    runner = TorchRunner(settings, WeightFiles(tiny_reference["weights"], None, None), tiny_reference["config"])
    assert runner.chunks == plan_chunks(runner.config, 4, free_memory_bytes("cpu"), tightest=True)
    assert runner.model.first_stage_model.decoder.frames_at_once == 1
    assert runner.model.first_stage_model.decoder.in_row_bands
    assert runner.describe()["chunks"]["decode_frames_at_once"] == 1
    assert runner.describe()["chunks"]["decode_in_row_bands"] is True
    # the two full-resolution keyframe maps are recomputed when the decode reads them, not held
    _, hidden = runner.net.encode_frames(torch.zeros(2, 3, runner.config.height, runner.config.width))
    recomputed = [isinstance(h, RecomputedKeyMap) for h in hidden]
    assert recomputed[0] and recomputed[-1] and not any(recomputed[1:-1])
    assert not runner.low_vram  # no GPU: nothing to move between devices


@pytest.mark.slow
def test_the_fast_preset_and_low_memory_vae_encode_only_the_two_keyframes(tiny_runner, monkeypatch):
    encoded = []
    real = tiny_runner.net.encode_frames

    def counting(frames):
        encoded.append(frames.shape[0])
        return real(frames)

    monkeypatch.setattr(tiny_runner.net, "encode_frames", counting)
    parity = _frames(tiny_runner, ChunkPlan(), preset="parity")
    assert encoded == [tiny_runner.config.frames]  # the original encodes all T frames of the key video
    encoded.clear()
    fast = _frames(tiny_runner, ChunkPlan(), preset="fast")
    assert encoded == [2]
    assert fast.shape == parity.shape
    encoded.clear()
    low_memory = _frames(tiny_runner, ChunkPlan(), preset="parity", low_vram=True)
    assert encoded == [2]  # the key video's 16 frames are 2 drawings: encoding them alone is exact
    assert (low_memory - parity).abs().max().item() < 1e-4

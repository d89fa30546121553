"""Toon rectification on the tiny reference model: what trains, that it learns, that it resumes
exactly, that two DDP processes equal one, and that the result loads and draws in the engine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from engine.tooncrafter.weights.checkpoint import load_tooncrafter, verify_file
from tests.helpers import make_training_clips
from training.data import ClipDataset, SampleSpec, collate, discover_clips
from training.jobs import build_job
from training.parameters import split_temporal
from training.settings import TrainSettings
from training.trainer import train

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")
UNET = "model.diffusion_model."


@pytest.fixture(scope="module")
def tiny(tiny_reference):
    return tiny_reference


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return make_training_clips(tmp_path_factory.mktemp("clips"), clips=4, frames=10, seed=3)


def settings(tiny, clips, out, **overrides) -> TrainSettings:
    values = dict(job="rectify", data=clips, out=out, init=tiny["weights"], model_config=tiny["config_path"], steps=2,
                  batch=1, device="cpu", ema_decay=0.9, save_every=100, progress=False)
    values.update(overrides)
    return TrainSettings(**values)


@pytest.fixture(scope="module")
def rectified(tiny, clips, tmp_path_factory, one_torch_thread):
    out = tmp_path_factory.mktemp("rectify")
    result = train(settings(tiny, clips, out, steps=2, batch=2, micro_batch=1))
    return out, result


def test_rectify_trains_spatial_layers_and_projector_only(rectified, tiny):
    out, result = rectified
    start, trained = load_file(tiny["weights"]), load_file(out / "model.safetensors")
    assert set(start) == set(trained)
    model = load_tooncrafter(out / "model.safetensors", config=tiny["config"])  # passes the manifest check
    spatial, temporal = split_temporal(model.unet)
    assert len(temporal) > 100
    for name, _ in temporal:
        assert torch.equal(start[UNET + name], trained[UNET + name]), f"temporal parameter {name} changed"
    unchanged_spatial = [n for n, _ in spatial if torch.equal(start[UNET + n], trained[UNET + n])]
    assert not unchanged_spatial, f"spatial parameters that did not train: {unchanged_spatial[:5]}"
    projector = [k for k in start if k.startswith("image_proj_model.")]
    assert all(not torch.equal(start[k], trained[k]) for k in projector)
    frozen = [k for k in start if not k.startswith((UNET, "image_proj_model."))]
    assert frozen and all(torch.equal(start[k], trained[k]) for k in frozen)  # VAE, CLIP, schedule
    ema = load_file(out / "model-ema.safetensors")
    key = UNET + spatial[0][0]
    # EMA (decay 0.9) lies strictly between the start and the trained value
    assert 0 < (ema[key] - start[key]).abs().sum() < (trained[key] - start[key]).abs().sum()
    assert result.trained_parameters == sum(p.numel() for _, p in spatial) + sum(
        start[k].numel() for k in projector)
    log = (out / "logs" / "train.csv").read_text().splitlines()
    assert log[0].startswith("step,loss,lr") and len(log) == 3


def test_rectified_weights_load_in_the_engine_and_draw(rectified, tiny):
    from engine.api import CancelToken, GenerationSettings, InbetweenTask
    from engine.backends.tooncrafter import ToonCrafterBackend
    from engine.tooncrafter.weights.store import ModelStore
    from tests.helpers import disc_keyframe

    out, _ = rectified
    info = verify_file(out / "model.safetensors", tiny["config"])
    assert info.kind == "tooncrafter"
    settings = GenerationSettings(backend="tooncrafter", steps=1, checkpoint=str(out / "model.safetensors"),
                                  sketch_checkpoint=str(tiny["sketch"]))
    backend = ToonCrafterBackend(settings, config=tiny["config"], store=ModelStore(out / "store"))
    frames = backend.interpolate(InbetweenTask(disc_keyframe(30, 30, width=128), disc_keyframe(90, 34, width=128), [0.2], settings),
                                 lambda *e: None, CancelToken())
    assert frames[0].shape == (64, 128, 4) and frames[0].dtype == np.uint8 and frames[0][..., :3].std() > 1


def test_loss_falls_when_overfitting_one_batch(tiny, clips):
    s = settings(tiny, clips, clips / "unused", lr=1e-3)
    job = build_job(s, tiny["config"], torch.device("cpu"))
    clip_list, _ = discover_clips(clips, 6)
    batch = collate([ClipDataset(clip_list, SampleSpec(6, 128, 64), seed=0)[0]])
    batch["seed"] = [7]  # fixed noise, step and dropout draws: a fixed objective to memorise
    optimizer = torch.optim.AdamW([p for p in job.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(12):
        loss, _ = job(batch, 0)
        losses.append(float(loss.detach()))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    print(f"overfit loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    assert losses[-1] < 0.3 * losses[0]


@pytest.mark.slow
def test_resume_after_kill_reproduces_the_uninterrupted_run(tiny, clips, tmp_path):
    whole = tmp_path / "whole"
    train(settings(tiny, clips, whole, steps=3, save_every=1))
    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "training", "rectify", "--init", str(tiny["weights"]), "--model-config",
               str(tiny["config_path"]), "--data", str(clips), "--out", str(killed), "--steps", "3", "--batch", "1",
               "--device", "cpu", "--ema-decay", "0.9", "--save-every", "1", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = killed / "checkpoints" / "step-0000001"
    deadline = time.monotonic() + 600
    while not first.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert first.exists(), "the run was killed before its first checkpoint"
    assert not (killed / "model.safetensors").exists()
    result = train(settings(tiny, clips, killed, steps=3, save_every=1, resume="auto"))
    assert result.losses and len(result.losses) <= 2  # only the steps after the checkpoint ran here
    for name in ("model.safetensors", "model-ema.safetensors"):
        a, b = load_file(whole / name), load_file(killed / name)
        diff = max(float((a[k] - b[k]).abs().max()) for k in a)
        print(f"resume {name}: max diff {diff:.3g}")
        assert diff == 0.0
    whole_log = (whole / "logs" / "train.csv").read_text()
    assert (killed / "logs" / "train.csv").read_text().count("\n") == whole_log.count("\n")


def _ddp_worker(rank: int, world: int, port: int, values: dict) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    train(TrainSettings(**values))


@pytest.mark.slow
def test_two_ddp_processes_match_one_process_with_the_same_global_batch(tiny, clips, tmp_path):
    import socket

    import torch.multiprocessing as mp

    single = tmp_path / "single"
    train(settings(tiny, clips, single, steps=2, batch=2, micro_batch=1))  # accumulation 2
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    values = dict(job="rectify", data=clips, out=tmp_path / "ddp", init=tiny["weights"], model_config=tiny["config_path"],
                  steps=2, batch=2, micro_batch=1, device="cpu", ema_decay=0.9, save_every=100, progress=False)
    mp.start_processes(_ddp_worker, args=(2, port, values), nprocs=2, join=True, start_method="spawn")
    a, b = load_file(single / "model.safetensors"), load_file(tmp_path / "ddp" / "model.safetensors")
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    start = load_file(tiny["weights"])
    moved = max(float((a[k] - start[k]).abs().max()) for k in a)
    print(f"DDP vs single: max diff {diff:.3g} (training moved weights by up to {moved:.3g})")
    assert diff < 1e-6 < moved


def test_activation_checkpointing_gives_the_same_gradients(tiny, clips):
    from training.trainer import enable_activation_checkpointing

    job = build_job(settings(tiny, clips, clips / "unused"), tiny["config"], torch.device("cpu"))
    clip_list, _ = discover_clips(clips, 6)
    batch = collate([ClipDataset(clip_list, SampleSpec(6, 128, 64), seed=1)[0]])
    grads = []
    for checkpointed in (False, True):
        if checkpointed:
            assert enable_activation_checkpointing(job, job.checkpoint_types) > 10
        loss, _ = job(batch, 0)
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in job.named_parameters() if p.requires_grad})
        job.zero_grad(set_to_none=True)
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-4, atol=1e-7, msg=name)

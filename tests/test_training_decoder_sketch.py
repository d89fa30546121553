"""The decoder and sketch-encoder jobs on the tiny reference model, LPIPS from local files, the CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from engine.tooncrafter.model import build_sketch_encoder
from engine.tooncrafter.weights.checkpoint import load_sketch_encoder, load_tooncrafter, verify_file
from tests.helpers import make_training_clips
from training.cli import main
from training.jobs.sketch import init_from_unet
from training.perceptual import LPIPS, LPIPS_CHANNELS, _vgg16_features
from training.settings import TrainSettings
from training.trainer import train

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(tiny_reference):
    return tiny_reference


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return make_training_clips(tmp_path_factory.mktemp("clips"), clips=2, frames=8, seed=4)


def _settings(job, tiny, clips, out, **overrides) -> TrainSettings:
    values = dict(job=job, data=clips, out=out, init=tiny["weights"], model_config=tiny["config_path"], steps=2, batch=1,
                  device="cpu", ema_decay=0.0, save_every=100, progress=False)
    values.update(overrides)
    return TrainSettings(**values)


@pytest.fixture(scope="module")
def lpips_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lpips")
    torch.manual_seed(0)
    features = _vgg16_features()
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()} | {"classifier.0.weight": torch.zeros(2, 2)},
               folder / "vgg16.pth")
    torch.save({f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(LPIPS_CHANNELS)}, folder / "vgg.pth")
    return folder / "vgg16.pth", folder / "vgg.pth"


def test_lpips_loads_local_files_and_measures_distance(lpips_files, tmp_path):
    lpips = LPIPS.from_files(*lpips_files)
    a = torch.rand(2, 3, 32, 32) * 2 - 1
    same = lpips(a, a)
    assert same.shape == (2,) and float(same.abs().max()) == 0.0
    assert float(lpips(a, a.flip(-1)).min()) > 0.0
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not torchvision VGG16"):
        LPIPS.from_files(tmp_path / "bad.pth", lpips_files[1])


@pytest.mark.slow
def test_decoder_job_trains_the_decoder_only_with_the_adaptive_adversarial_weight(tiny, clips, tmp_path, lpips_files):
    out = tmp_path / "decoder"
    train(_settings("decoder", tiny, clips, out, disc_start=1, lpips_vgg=lpips_files[0], lpips_heads=lpips_files[1]))
    start, trained = load_file(tiny["weights"]), load_file(out / "model.safetensors")
    decoder = [k for k in start if k.startswith("first_stage_model.decoder.")]
    changed = [k for k in decoder if not torch.equal(start[k], trained[k])]
    assert len(changed) > 0.9 * len(decoder)  # every layer on the decode path (mix factors too)
    assert all(torch.equal(start[k], trained[k]) for k in start if k not in decoder)  # encoder, UNet, CLIP, ...
    load_tooncrafter(out / "model.safetensors", config=tiny["config"])
    rows = list(csv.DictReader((out / "logs" / "train.csv").open()))
    assert float(rows[0]["d_weight"]) == 0.0  # step 0: before disc_start
    assert float(rows[1]["d_weight"]) > 0.0 and float(rows[1]["lpips"]) > 0.0


def test_sketch_encoder_starts_from_the_unet_with_no_effect(tiny):
    model = load_tooncrafter(tiny["weights"], config=tiny["config"])
    encoder = build_sketch_encoder(tiny["config"], "cpu")
    copied = init_from_unet(encoder, model)
    assert "input_blocks.1.0.in_layers.2.weight" in copied
    assert torch.equal(encoder.input_blocks[1][0].in_layers[2].weight, model.unet.input_blocks[1][0].in_layers[2].weight)
    assert torch.equal(encoder.input_blocks[0][0].weight, model.unet.input_blocks[0][0].weight[:, :4])
    x = torch.randn(1, 4, 6, 8, 16)
    context = torch.randn(1, 77 + 16 * 6, tiny["config"].unet.context_dim)
    residuals = encoder(x, torch.rand(1, 1, 6, 64, 128), torch.tensor([500]), context)
    assert all(float(r.abs().max()) == 0.0 for r in residuals)


@pytest.mark.slow
def test_sketch_job_writes_a_sketch_encoder_the_engine_loads(tiny, clips, tmp_path):
    out = tmp_path / "sketch"
    train(_settings("sketch", tiny, clips, out, steps=1, lr=1e-3))
    info = verify_file(out / "sketch_encoder.safetensors", tiny["config"])
    assert info.kind == "sketch_encoder"
    encoder = load_sketch_encoder(out / "sketch_encoder.safetensors", tiny["config"])
    assert float(encoder.zero_convs[0][0].weight.abs().max()) > 0.0  # learned away from the zero start
    assert not (out / "model.safetensors").exists()  # the denoiser was frozen: nothing else to write


def test_cli_names_what_is_missing(tmp_path, capsys, tiny):
    assert main(["rectify", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--device", "cpu"]) == 2
    assert "--init" in capsys.readouterr().err
    assert main(["sketch", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--init", str(tmp_path / "no.ckpt")]) == 2
    assert "no.ckpt" in capsys.readouterr().err

"""The sketch encoder (ControlNet) against the community code's goldens (tiny_a), its full-size key
manifest, and the sketch → hint conversion."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from engine.tooncrafter.networks.sketch_encoder import SketchEncoder, SketchEncoderConfig
from engine.tooncrafter.networks.unet import UNET_KEY_PREFIX, ToonCrafterUNet, UNetConfig
from engine.tooncrafter.sketch_hints import sketch_hint_clip, sketch_to_hint

CASE = "unet_with_sketch"


@pytest.fixture(scope="module")
def tiny(reference_dir):
    folder = reference_dir / "tiny_a"
    config = json.loads((folder / "config.json").read_text())
    spec = json.loads((folder / "cases.json").read_text())["cases"][CASE]
    cases = load_file(str(folder / "cases.safetensors"))
    weights = load_file(str(folder / "weights.safetensors"))
    unet = ToonCrafterUNet(UNetConfig.from_dict(config["unet"])).eval()
    unet.load_state_dict(
        {k[len(UNET_KEY_PREFIX) :]: v for k, v in weights.items() if k.startswith(UNET_KEY_PREFIX)}, strict=True
    )
    encoder = SketchEncoder(SketchEncoderConfig.from_dict(config["sketch_controlnet"])).eval()
    encoder.load_state_dict(load_file(str(folder / "sketch_weights.safetensors")), strict=True)
    inputs = {name: cases[entry["key"]] for name, entry in spec["inputs"].items()}
    outputs = {name: cases[entry["key"]] for name, entry in spec["outputs"].items()}
    return {"unet": unet, "encoder": encoder, "spec": spec, "inputs": inputs, "outputs": outputs}


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a.double() - b.double()).abs().max().item()


@torch.no_grad()
def test_residuals_and_controlled_output_match_golden(tiny):
    i, want, atol = tiny["inputs"], tiny["outputs"], tiny["spec"]["suggested_atol"]
    residuals = tiny["encoder"](i["x_noisy"], i["sketch"], i["timesteps"], i["context"])
    assert len(residuals) == 13
    for n, residual in enumerate(residuals):
        assert max_diff(residual, want[f"control_{n:02d}"]) <= atol, f"control_{n:02d}"
    scale = tiny["spec"]["params"]["control_scale"]
    scaled = tiny["encoder"](i["x_noisy"], i["sketch"], i["timesteps"], i["context"], strength=scale)
    assert all(torch.allclose(s, r * scale) for s, r in zip(scaled, residuals))
    x = torch.cat([i["x_noisy"], i["c_concat"]], dim=1)
    controlled = tiny["unet"](x, i["timesteps"], i["context"], i["fs"], control=scaled)
    assert max_diff(controlled, want["model_output"]) <= atol
    plain = tiny["unet"](x, i["timesteps"], i["context"], i["fs"])
    assert max_diff(plain, want["model_output_without_control"]) <= atol
    assert max_diff(controlled, plain) > 100 * atol  # the sketch really steers


@torch.no_grad()
def test_batches_are_independent_clips(tiny):
    """B = 2 (e.g. conditional and unconditional passes together) equals two B = 1 runs."""
    i, encoder = tiny["inputs"], tiny["encoder"]
    x = torch.cat([i["x_noisy"], i["x_noisy"].flip(2)])
    hint = torch.cat([i["sketch"], torch.zeros_like(i["sketch"])])
    context = torch.cat([i["context"], i["context"].flip(1)])
    both = encoder(x, hint, torch.tensor([637, 200]), context)
    first = encoder(x[:1], hint[:1], torch.tensor([637]), context[:1])
    second = encoder(x[1:], hint[1:], torch.tensor([200]), context[1:])
    t = x.shape[2]
    for joint, a, b in zip(both, first, second):
        assert max_diff(joint[:t], a) < 1e-4 and max_diff(joint[t:], b) < 1e-4


def test_clear_errors_for_wrong_inputs(tiny):
    i, encoder = tiny["inputs"], tiny["encoder"]
    x8 = torch.cat([i["x_noisy"], i["c_concat"]], dim=1)
    with pytest.raises(ValueError, match="noisy channels only"):
        encoder(x8, i["sketch"], i["timesteps"], i["context"])
    with pytest.raises(ValueError, match="sketch hint must be"):
        encoder(i["x_noisy"], i["sketch"][..., :32, :], i["timesteps"], i["context"])


def test_config_from_reference_dict_and_refusals(reference_dir):
    params = json.loads((reference_dir / "tiny_a" / "config.json").read_text())["sketch_controlnet"]
    config = SketchEncoderConfig.from_dict(params)
    assert (config.model_channels, config.hint_channels, config.num_residuals) == (32, 1, 13)
    with pytest.raises(ValueError, match="use_linear_in_transformer"):
        SketchEncoderConfig.from_dict({**params, "use_linear_in_transformer": False})
    with pytest.raises(ValueError, match="residuals"):
        SketchEncoderConfig.from_dict({**params, "n_control_residuals": 12})


def test_full_size_matches_reference_manifest(reference_dir):
    manifest = json.loads((reference_dir / "manifest_sketch_encoder.json").read_text())
    expected = [(e["key"], tuple(e["shape"])) for e in manifest["entries"]]
    with torch.device("meta"):
        encoder = SketchEncoder(SketchEncoderConfig.from_dict(manifest["source"]["params"]))
    built = [(k, tuple(v.shape)) for k, v in encoder.state_dict().items()]
    assert built == expected
    assert sum(p.numel() for p in encoder.parameters()) == manifest["totals"]["elements"]


def test_full_size_defaults_match_bundled_manifest():
    from engine.tooncrafter.weights.manifest import bundled_manifest, compare_keys

    with torch.device("meta"):
        encoder = SketchEncoder()
    built = {k: v.shape for k, v in encoder.state_dict().items()}
    report = compare_keys(bundled_manifest("sketch_encoder").shapes, built)
    assert report.ok, report.summary()


def test_hint_is_inverted_grey_lines_bright_on_black():
    sketch = np.full((4, 6, 4), 255, np.uint8)  # white paper
    sketch[1, :] = (0, 0, 0, 255)  # a black line
    sketch[2, 0] = (255, 0, 0, 255)  # a red dot: grey 76 (BT.601 weights, as OpenCV)
    sketch[3, :] = (0, 0, 0, 0)  # transparent: counts as paper
    sketch[0, 0] = (0, 0, 0, 128)  # half-transparent black: composited over white -> grey 127
    hint = sketch_to_hint(sketch)
    assert hint.dtype == np.float32 and hint.shape == (4, 6)
    assert np.all(hint[1] == 1.0)
    assert hint[2, 0] == np.float32(255 - 76) / np.float32(255)
    assert np.all(hint[3] == 0.0) and np.all(hint[2, 1:] == 0.0)
    assert hint[0, 0] == np.float32(128) / np.float32(255)
    grey = np.array([[0, 255], [100, 7]], np.uint8)
    assert np.array_equal(sketch_to_hint(grey), (255 - grey).astype(np.float32) / 255)
    assert np.array_equal(sketch_to_hint(np.dstack([grey] * 3)), sketch_to_hint(grey))


def test_hint_clip_leaves_frames_without_sketch_blank():
    line = np.full((8, 16, 4), 255, np.uint8)
    line[4] = (0, 0, 0, 255)
    clip = sketch_hint_clip({2: line, 5: line}, num_frames=6, height=8, width=16)
    assert clip.shape == (1, 1, 6, 8, 16) and clip.dtype == torch.float32
    assert [bool(clip[0, 0, f].any()) for f in range(6)] == [False, False, True, False, False, True]
    with pytest.raises(ValueError, match="sketch for frame 1 is 16x4, the canvas is 16x8"):
        sketch_hint_clip({1: line[:4]}, num_frames=6, height=8, width=16)
    with pytest.raises(ValueError, match="frame 6"):
        sketch_hint_clip({6: line}, num_frames=6, height=8, width=16)

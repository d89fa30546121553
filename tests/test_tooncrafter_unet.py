"""The video UNet against the original's golden outputs (tiny_a), its full-size key/shape manifest,
and the semantics that the goldens alone would not pin down (image-token routing, sketch residual
routing, dtype handling)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from engine.tooncrafter.networks.attention import Attention
from engine.tooncrafter.networks.unet import UNET_KEY_PREFIX, ToonCrafterUNet, UNetConfig


@pytest.fixture(scope="module")
def tiny(reference_dir):
    folder = reference_dir / "tiny_a"
    config = json.loads((folder / "config.json").read_text())
    spec = json.loads((folder / "cases.json").read_text())
    weights = load_file(str(folder / "weights.safetensors"))
    unet = ToonCrafterUNet(UNetConfig.from_dict(config["unet"])).eval()
    unet.load_state_dict(
        {k[len(UNET_KEY_PREFIX) :]: v for k, v in weights.items() if k.startswith(UNET_KEY_PREFIX)}, strict=True
    )
    return {"unet": unet, "spec": spec, "cases": load_file(str(folder / "cases.safetensors")), "config": config}


def golden(tiny, case: str, kind: str, name: str) -> torch.Tensor:
    return tiny["cases"][tiny["spec"]["cases"][case][kind][name]["key"]]


def unet_input(tiny, case: str) -> torch.Tensor:
    return torch.cat([golden(tiny, case, "inputs", "x_noisy"), golden(tiny, case, "inputs", "c_concat")], dim=1)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a.double() - b.double()).abs().max().item()


def tiny_unet(seed: int = 0) -> ToonCrafterUNet:
    """A small random UNet (2 levels) for semantic tests that need no golden."""
    config = UNetConfig(
        model_channels=32,
        channel_mult=(1, 2),
        attention_resolutions=(1, 2),
        num_head_channels=8,
        context_dim=16,
        image_tokens_per_frame=2,
        text_context_len=3,
    )
    torch.manual_seed(seed)
    return ToonCrafterUNet(config).eval()  # torch's default init: no layer is zero, every path is live


@torch.no_grad()
def test_unet_matches_golden_per_frame_image_context(tiny):
    case = "unet"
    i = lambda n: golden(tiny, case, "inputs", n)  # noqa: E731
    assert i("context").shape[1] == 77 + 16 * i("x_noisy").shape[2]  # the per-frame branch is exercised
    v = tiny["unet"](unet_input(tiny, case), i("timesteps"), i("context"), i("fs"))
    atol = tiny["spec"]["cases"][case]["suggested_atol"]
    assert max_diff(v, golden(tiny, case, "outputs", "model_output")) <= atol


@torch.no_grad()
def test_unet_matches_golden_broadcast_context_and_default_fs(tiny):
    case = "unet_context_broadcast"
    i = lambda n: golden(tiny, case, "inputs", n)  # noqa: E731
    atol = tiny["spec"]["cases"][case]["suggested_atol"]
    x = unet_input(tiny, case)
    v = tiny["unet"](x, i("timesteps"), i("context"), i("fs"))
    assert max_diff(v, golden(tiny, case, "outputs", "model_output")) <= atol
    v_default = tiny["unet"](x, i("timesteps"), i("context"), None)
    assert max_diff(v_default, golden(tiny, case, "outputs", "model_output_fs_none")) <= atol
    v_24 = tiny["unet"](x, i("timesteps"), i("context"), torch.tensor([24]))
    assert torch.equal(v_default, v_24)


@torch.no_grad()
def test_unet_output_without_control_matches_sketch_case(tiny):
    case = "unet_with_sketch"
    i = lambda n: golden(tiny, case, "inputs", n)  # noqa: E731
    v = tiny["unet"](unet_input(tiny, case), i("timesteps"), i("context"), i("fs"))
    want = golden(tiny, case, "outputs", "model_output_without_control")
    assert max_diff(v, want) <= tiny["spec"]["cases"][case]["suggested_atol"]


def test_full_size_unet_matches_reference_manifest(reference_dir):
    manifest = json.loads((reference_dir / "manifest_tooncrafter_512_interp.json").read_text())
    expected = [
        (e["key"][len(UNET_KEY_PREFIX) :], tuple(e["shape"]))
        for e in manifest["entries"]
        if e["key"].startswith(UNET_KEY_PREFIX)
    ]
    with torch.device("meta"):
        unet = ToonCrafterUNet(UNetConfig())
    built = [(k, tuple(v.shape)) for k, v in unet.state_dict().items()]
    assert dict(built) == dict(expected)
    assert [k for k, _ in built] == [k for k, _ in expected]  # even the checkpoint's order
    assert sum(p.numel() for p in unet.parameters()) == manifest["per_prefix"]["model.diffusion_model"]["numel"]


def test_full_size_unet_matches_bundled_manifest():
    from engine.tooncrafter.weights.manifest import bundled_manifest, compare_keys

    manifest = bundled_manifest("tooncrafter_512_interp").only_prefixes((UNET_KEY_PREFIX,))
    with torch.device("meta"):
        unet = ToonCrafterUNet()
    built = {UNET_KEY_PREFIX + k: tuple(v.shape) for k, v in unet.state_dict().items()}
    report = compare_keys(manifest.shapes, built)
    assert report.ok, report.summary()


def test_config_from_reference_dict_and_refusals(tiny):
    config = UNetConfig.from_dict(tiny["config"]["unet"])
    assert (config.model_channels, config.channel_mult, config.context_dim) == (32, (1, 1, 1, 2), 16)
    assert UNetConfig().channel_mult == (1, 2, 4, 4) and UNetConfig().context_dim == 1024
    with pytest.raises(ValueError, match="use_scale_shift_norm"):
        UNetConfig.from_dict({**tiny["config"]["unet"], "use_scale_shift_norm": True})
    with pytest.raises(ValueError, match="unknown UNet option 'num_clases'"):
        UNetConfig.from_dict({"num_clases": 3})


def test_frame_context_gives_each_frame_its_own_image_tokens():
    unet = tiny_unet()
    t, text, per_frame = 4, 3, 2
    context = torch.randn(2, text + per_frame * t, 16)
    per_frame_ctx = unet.frame_context(context, t)
    assert per_frame_ctx.shape == (2 * t, text + per_frame, 16)
    for b in range(2):
        for f in range(t):
            row = per_frame_ctx[b * t + f]
            assert torch.equal(row[:text], context[b, :text])
            assert torch.equal(row[text:], context[b, text + per_frame * f : text + per_frame * (f + 1)])
    other = torch.randn(2, text + 5, 16)  # any other length: every frame sees all of it
    broadcast = unet.frame_context(other, t)
    assert broadcast.shape == (2 * t, text + 5, 16)
    assert all(torch.equal(broadcast[b * t + f], other[b]) for b in range(2) for f in range(t))


def test_image_cross_attention_is_two_softmaxes_added():
    torch.manual_seed(1)
    attn = Attention(8, 6, heads=2, dim_head=4, image_cross_attention=True, text_context_len=3).eval()
    x, context = torch.randn(2, 5, 8), torch.randn(2, 7, 6)

    def plain(q, k, v):
        q, k, v = (t.reshape(2, t.shape[1], 2, 4).transpose(1, 2) for t in (q, k, v))
        w = torch.softmax(q @ k.transpose(-1, -2) / 2.0, dim=-1)
        return (w @ v).transpose(1, 2).reshape(2, -1, 8)

    q = attn.to_q(x)
    text, image = context[:, :3], context[:, 3:]
    want = plain(q, attn.to_k(text), attn.to_v(text)) + plain(q, attn.to_k_ip(image), attn.to_v_ip(image))
    with torch.no_grad():
        assert max_diff(attn(x, context), attn.to_out(want)) < 1e-5
        attn.chunk_size = 1  # batch chunking is exact
        assert max_diff(attn(x, context), attn.to_out(want)) < 1e-5
        text_only = attn(x, context[:, :3])  # no image tokens: the image branch adds nothing
        assert max_diff(text_only, attn.to_out(plain(q, attn.to_k(text), attn.to_v(text)))) < 1e-5


@torch.no_grad()
def test_control_residuals_are_added_to_the_mirrored_skip_before_concatenation():
    unet = tiny_unet()
    n_in = len(unet.input_blocks)  # 6 here (13 residuals in the released model: 12 + middle)
    t = 2
    x, ctx = torch.randn(1, 8, t, 8, 8), torch.randn(1, 3 + 2 * t, 16)
    ts, fs = torch.tensor([500]), torch.tensor([10])
    outputs = []
    hooks = [blk.register_forward_hook(lambda m, a, out: outputs.append(out)) for blk in unet.input_blocks]
    hooks.append(unet.middle_block.register_forward_hook(lambda m, a, out: outputs.append(out)))
    concat_inputs = []
    hooks += [blk.register_forward_pre_hook(lambda m, a: concat_inputs.append(a[0])) for blk in unet.output_blocks]
    base = unet(x, ts, ctx, fs)
    base_concat = list(concat_inputs)
    shapes = [o.shape for o in outputs]
    outputs.clear()

    zeros = [torch.zeros(s) for s in shapes]
    concat_inputs.clear()
    assert torch.equal(unet(x, ts, ctx, fs, control=zeros), base)
    for index in range(n_in + 1):
        residual = torch.randn(shapes[index])
        control = [residual if k == index else z for k, z in enumerate(zeros)]
        concat_inputs.clear()
        controlled = unet(x, ts, ctx, fs, control=control)
        assert not torch.equal(controlled, base)
        if index == n_in:  # middle block residual: the first output block's h half
            got = concat_inputs[0][:, : residual.shape[1]] - base_concat[0][:, : residual.shape[1]]
            assert max_diff(got, residual) < 1e-4
            continue
        j = n_in - 1 - index  # the output block that takes this skip
        width = residual.shape[1]
        assert all(torch.equal(concat_inputs[k], base_concat[k]) for k in range(j))
        assert torch.equal(concat_inputs[j][:, :-width], base_concat[j][:, :-width])
        assert max_diff(concat_inputs[j][:, -width:] - base_concat[j][:, -width:], residual) < 1e-4
    for hook in hooks:
        hook.remove()
    with pytest.raises(ValueError, match=f"{n_in + 1} residuals"):
        unet(x, ts, ctx, fs, control=zeros[:-1])


@torch.no_grad()
def test_attention_chunking_keeps_the_golden(tiny):
    case = "unet"
    i = lambda n: golden(tiny, case, "inputs", n)  # noqa: E731
    unet = tiny["unet"]
    try:
        unet.set_attention_chunk(5)
        v = unet(unet_input(tiny, case), i("timesteps"), i("context"), i("fs"))
    finally:
        unet.set_attention_chunk(None)
    assert max_diff(v, golden(tiny, case, "outputs", "model_output")) <= 1e-4


@torch.no_grad()
def test_bfloat16_weights_run_and_stay_close():
    """Cast weights: inputs are cast in, norms run in float32, the output comes back in x's dtype."""
    unet = tiny_unet()
    x, ctx = torch.randn(1, 8, 2, 8, 8), torch.randn(1, 7, 16)
    args = (torch.tensor([500]), ctx, torch.tensor([10]))
    want = unet(x, *args)
    got = unet.to(torch.bfloat16)(x, *args)
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    assert max_diff(got, want) < 0.1 * want.abs().max().item()


@torch.no_grad()
def test_full_size_forward_shapes_on_meta_device_with_sketch_control():
    """The released layout end to end (512×320, 16 frames, 77 + 256 tokens), shapes only."""
    from engine.tooncrafter.networks.sketch_encoder import SketchEncoder

    with torch.device("meta"):
        unet, encoder = ToonCrafterUNet().eval(), SketchEncoder().eval()
        x, context = torch.randn(1, 8, 16, 40, 64), torch.randn(1, 77 + 16 * 16, 1024)
        timesteps, fs = torch.tensor([999]), torch.tensor([10])
        residuals = encoder(x[:, :4], torch.zeros(1, 1, 16, 320, 512), timesteps, context, strength=0.6)
        v = unet(x, timesteps, context, fs, control=residuals)
    assert [r.shape[1:] for r in residuals] == [
        (320, 40, 64), (320, 40, 64), (320, 40, 64), (320, 20, 32), (640, 20, 32), (640, 20, 32),
        (640, 10, 16), (1280, 10, 16), (1280, 10, 16), (1280, 5, 8), (1280, 5, 8), (1280, 5, 8), (1280, 5, 8),
    ]
    assert all(r.shape[0] == 16 for r in residuals)
    assert v.shape == (1, 4, 16, 40, 64)

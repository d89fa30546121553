"""First stage (VAE + dual-reference decoder), CLIP towers, CLIP preprocessing and the Resampler:
against the original's golden outputs (tiny_a), against the full-size key/shape manifest (built on
the meta device), and for the behaviour the goldens alone do not pin down (chunking, posterior,
config errors), plus the torchvision import workaround."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from engine.tooncrafter.clip_preprocess import antialias_blur_parameters, clip_preprocess
from engine.tooncrafter.networks.autoencoder import (
    AUTOENCODER_KEY_PREFIX,
    DualRefAutoencoder,
    DualRefAutoencoderConfig,
    LatentPosterior,
    keyframe_references,
    video_references,
)
from engine.tooncrafter.networks.clip_towers import (
    IMAGE_ENCODER_KEY_PREFIX,
    TEXT_ENCODER_KEY_PREFIX,
    CLIPImageEncoder,
    CLIPTextEncoder,
)
from engine.tooncrafter.networks.resampler import RESAMPLER_KEY_PREFIX, Resampler, ResamplerConfig

ATOL = 1e-4


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def strip(weights: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (tuple(a.shape), tuple(b.shape))
    return (a.double() - b.double()).abs().max().item()


@pytest.fixture(scope="module")
def tiny(reference_dir):
    folder = reference_dir / "tiny_a"
    config = json.loads((folder / "config.json").read_text())
    spec = json.loads((folder / "cases.json").read_text())
    return {
        "config": config,
        "spec": spec,
        "weights": load_file(str(folder / "weights.safetensors")),
        "cases": load_file(str(folder / "cases.safetensors")),
    }


def golden(tiny, case: str, kind: str, name: str) -> torch.Tensor:
    return tiny["cases"][tiny["spec"]["cases"][case][kind][name]["key"]]


@pytest.fixture(scope="module")
def autoencoder(tiny) -> DualRefAutoencoder:
    diffusion = tiny["config"]["diffusion"]
    config = DualRefAutoencoderConfig.from_dict(
        tiny["config"]["first_stage"],
        scale_factor=diffusion["scale_factor"],
        decode_chunk_frames=diffusion["temporal_length"],
    )
    model = DualRefAutoencoder(config).eval()
    model.load_state_dict(strip(tiny["weights"], AUTOENCODER_KEY_PREFIX), strict=True)
    return model


@pytest.fixture(scope="module")
def references(tiny):
    hidden = [golden(tiny, "vae_encode", "outputs", f"hidden_{i}") for i in range(5)]
    return keyframe_references([h[0:1] for h in hidden], [h[1:2] for h in hidden])


@pytest.fixture(scope="module")
def text_encoder(tiny) -> CLIPTextEncoder:
    model = CLIPTextEncoder(tiny["config"]["open_clip_model_config"], device="meta")
    model.load_state_dict(strip(tiny["weights"], TEXT_ENCODER_KEY_PREFIX), strict=True, assign=True)
    return model.eval()


@pytest.fixture(scope="module")
def image_encoder(tiny) -> CLIPImageEncoder:
    model = CLIPImageEncoder(tiny["config"]["open_clip_model_config"], device="meta")
    model.load_state_dict(strip(tiny["weights"], IMAGE_ENCODER_KEY_PREFIX), strict=True, assign=True)
    return model.eval()


@pytest.fixture(scope="module")
def resampler(tiny) -> Resampler:
    model = Resampler(ResamplerConfig.from_dict(tiny["config"]["image_proj"])).eval()
    model.load_state_dict(strip(tiny["weights"], RESAMPLER_KEY_PREFIX), strict=True)
    return model


# --- goldens -------------------------------------------------------------------------------------


@torch.no_grad()
def test_vae_encode_matches_golden(tiny, autoencoder):
    encoding = autoencoder.encode(golden(tiny, "vae_encode", "inputs", "keyframes"))
    posterior = encoding.posterior
    noise = golden(tiny, "vae_encode", "inputs", "posterior_noise")
    assert max_diff(posterior.mean, golden(tiny, "vae_encode", "outputs", "posterior_mean")) < ATOL
    assert max_diff(posterior.logvar, golden(tiny, "vae_encode", "outputs", "posterior_logvar")) < ATOL
    assert max_diff(posterior.std, golden(tiny, "vae_encode", "outputs", "posterior_std")) < ATOL
    assert max_diff(autoencoder.scaled_latents(posterior, noise), golden(tiny, "vae_encode", "outputs", "z")) < ATOL
    assert len(encoding.hidden_states) == 5
    for i, hidden in enumerate(encoding.hidden_states):
        assert max_diff(hidden, golden(tiny, "vae_encode", "outputs", f"hidden_{i}")) < ATOL


@torch.no_grad()
def test_dualref_two_pass_decode_matches_golden(tiny, autoencoder, references):
    latents = golden(tiny, "dualref_decode", "inputs", "latents")
    decoded = autoencoder.decode_two_pass(latents, references)
    assert max_diff(decoded.single_pass, golden(tiny, "dualref_decode", "outputs", "frames_single_pass")) < ATOL
    assert max_diff(decoded.middle_pass, golden(tiny, "dualref_decode", "outputs", "frames_middle_pass")) < ATOL
    assert max_diff(decoded.frames, golden(tiny, "dualref_decode", "outputs", "frames")) < ATOL


def test_clip_preprocess_matches_golden_and_blur_rule(tiny):
    image = golden(tiny, "clip_preprocess", "inputs", "image_large")
    params = tiny["spec"]["cases"]["clip_preprocess"]["params"]
    sigmas, sizes = antialias_blur_parameters(tuple(image.shape[-2:]), (224, 224))
    assert sigmas == pytest.approx(params["sigmas"]) and list(sizes) == params["kernel_size"]
    assert antialias_blur_parameters((160, 200), (224, 224)) is None
    out = clip_preprocess(image)
    assert max_diff(out, golden(tiny, "clip_preprocess", "outputs", "large_preprocessed")) < ATOL


@torch.no_grad()
def test_text_encoder_matches_golden(tiny, text_encoder):
    tokens = text_encoder.tokenize(tiny["spec"]["cases"]["text_encode"]["params"]["prompts"])
    assert torch.equal(tokens, golden(tiny, "text_encode", "inputs", "tokens"))
    context = text_encoder(tokens)
    assert max_diff(context, golden(tiny, "text_encode", "outputs", "context")) < ATOL


@torch.no_grad()
def test_text_encoder_skips_the_last_block(tiny, text_encoder):
    tokens = golden(tiny, "text_encode", "inputs", "tokens")
    every_block = CLIPTextEncoder(tiny["config"]["open_clip_model_config"], layer="last", device="meta")
    every_block.load_state_dict(text_encoder.state_dict(), strict=True, assign=True)
    assert max_diff(every_block.eval()(tokens), text_encoder(tokens)) > 1e-2
    with pytest.raises(ValueError, match="tokens"):
        text_encoder(tokens[:, :10])


@torch.no_grad()
def test_image_tokens_and_context_match_golden(tiny, image_encoder, resampler):
    tokens = image_encoder.encode(golden(tiny, "image_encode", "inputs", "images"))
    assert max_diff(tokens, golden(tiny, "image_encode", "outputs", "clip_tokens")) < ATOL
    assert max_diff(resampler(tokens), golden(tiny, "image_encode", "outputs", "image_context")) < ATOL
    uncond = image_encoder.encode(torch.zeros(1, 3, 224, 224))
    assert max_diff(uncond, golden(tiny, "image_encode", "outputs", "uncond_clip_tokens")) < ATOL
    assert max_diff(resampler(uncond), golden(tiny, "image_encode", "outputs", "uncond_image_context")) < ATOL


def test_conformance_plugin_passes_its_cases(reference_dir):
    from engine.conformance.runner import run_folder

    names = ["clip_preprocess", "text_encode", "image_encode", "vae_encode", "dualref_decode"]
    results = run_folder(reference_dir / "tiny_a", cases=names, echo=lambda line: None)
    assert [r.case for r in results if not r.passed] == []


# --- behaviour the goldens do not pin down -------------------------------------------------------


@torch.no_grad()
def test_attention_chunking_is_exact(tiny, autoencoder, references):
    latents = golden(tiny, "dualref_decode", "inputs", "latents")
    whole = autoencoder.decode(latents, references)
    autoencoder.decoder.set_attention_chunk(2)
    try:
        chunked = autoencoder.decode(latents, references)
    finally:
        autoencoder.decoder.set_attention_chunk(None)
    assert max_diff(chunked, whole) < 1e-5
    with pytest.raises(ValueError):
        autoencoder.decoder.set_attention_chunk(0)


@torch.no_grad()
def test_decode_chunks_get_the_references_at_their_own_ends(tiny, autoencoder, references):
    latents = golden(tiny, "dualref_decode", "inputs", "latents")
    chunked = autoencoder.decode(latents, references, chunk_frames=4)
    separately = torch.cat(
        [autoencoder.decode(latents[:, :, :4], references), autoencoder.decode(latents[:, :, 4:], references)], dim=2
    )
    assert max_diff(chunked, separately) < 1e-5
    assert max_diff(chunked, autoencoder.decode(latents, references)) > 1e-3


@torch.no_grad()
def test_references_change_the_decode_and_batches_are_independent(tiny, autoencoder, references):
    latents = golden(tiny, "dualref_decode", "inputs", "latents")
    swapped = [ref.flip(2) for ref in references]
    one = autoencoder.decode(latents, references)
    assert max_diff(autoencoder.decode(latents, swapped), one) > 1e-2
    both = [torch.cat([r, s]) for r, s in zip(references, swapped, strict=True)]
    pair = autoencoder.decode(torch.cat([latents, latents.flip(2)]), both)
    assert max_diff(pair[:1], one) < 1e-5
    assert max_diff(pair[1:], autoencoder.decode(latents.flip(2), swapped)) < 1e-5
    with pytest.raises(ValueError, match="batch size"):
        autoencoder.decode(torch.cat([latents, latents]), references)


@torch.no_grad()
def test_video_references_pick_first_and_last_frame(autoencoder):
    frames = torch.rand(2 * 3, 3, 16, 16) * 2 - 1
    hidden = autoencoder.encode(frames).hidden_states
    refs = video_references(hidden, num_frames=3)
    assert torch.equal(refs[0][1, :, 0], hidden[0][3]) and torch.equal(refs[0][1, :, 1], hidden[0][5])
    assert [tuple(r.shape[:3]) for r in refs] == [(2, h.shape[1], 2) for h in hidden]


def test_posterior_clamps_logvar_and_samples_with_given_noise():
    moments = torch.cat([torch.full((1, 4, 2, 2), 0.5), torch.full((1, 4, 2, 2), 50.0)], dim=1)
    posterior = LatentPosterior.from_moments(moments)
    assert torch.all(posterior.logvar == 20.0)
    noise = torch.randn(1, 4, 2, 2)
    assert torch.allclose(posterior.sample(noise), 0.5 + torch.exp(torch.tensor(10.0)) * noise)
    with pytest.raises(ValueError, match="shape"):
        posterior.sample(torch.zeros(1, 4, 3, 3))


def test_autoencoder_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="attn_resolutions"):
        DualRefAutoencoderConfig.from_dict({"ddconfig": {"attn_resolutions": [32]}})
    with pytest.raises(ValueError, match="unknown"):
        DualRefAutoencoderConfig.from_dict({"chunk": 3})
    with pytest.raises(ValueError, match="post_quant_conv"):
        DualRefAutoencoderConfig(embed_dim=8)
    model = DualRefAutoencoder(DualRefAutoencoderConfig(ch=32, ch_mult=(1, 2), fusion_levels=(1,)))
    with pytest.raises(ValueError, match="multiple of 2"):
        model.encode(torch.zeros(1, 3, 15, 16))


def test_resampler_emits_frame_major_queries(resampler, tiny):
    cfg = tiny["config"]["image_proj"]
    out = resampler(torch.randn(3, 50, cfg["embedding_dim"]))
    assert out.shape == (3, cfg["num_queries"] * cfg["video_length"], cfg["output_dim"])
    with pytest.raises(ValueError, match="CLIP tokens"):
        resampler(torch.randn(3, 50, cfg["embedding_dim"] + 1))


# --- full size against the checkpoint manifest ---------------------------------------------------


@pytest.fixture(scope="module")
def manifest(reference_dir) -> dict[str, tuple[int, ...]]:
    data = json.loads((reference_dir / "manifest_tooncrafter_512_interp.json").read_text())
    return {entry["key"]: tuple(entry["shape"]) for entry in data["entries"]}


def assert_matches_manifest(module: torch.nn.Module, manifest: dict, prefix: str) -> None:
    expected = {k[len(prefix) :]: shape for k, shape in manifest.items() if k.startswith(prefix)}
    got = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    assert sorted(set(expected) - set(got)) == [], "missing keys"
    assert sorted(set(got) - set(expected)) == [], "unexpected keys"
    assert {k: s for k, s in got.items() if expected[k] != s} == {}, "shape mismatches"
    assert list(module.buffers()) == [], "buffers that a meta-device build would keep on meta"


def test_full_size_autoencoder_matches_manifest(manifest):
    with torch.device("meta"):
        model = DualRefAutoencoder()
    assert_matches_manifest(model, manifest, AUTOENCODER_KEY_PREFIX)


def test_full_size_resampler_matches_manifest(manifest):
    with torch.device("meta"):
        model = Resampler()
    assert_matches_manifest(model, manifest, RESAMPLER_KEY_PREFIX)
    assert model.config.total_queries == 256


def test_full_size_clip_towers_match_manifest(manifest):
    assert_matches_manifest(CLIPTextEncoder(device="meta"), manifest, TEXT_ENCODER_KEY_PREFIX)
    assert_matches_manifest(CLIPImageEncoder(device="meta"), manifest, IMAGE_ENCODER_KEY_PREFIX)


# --- torchvision / open_clip import ----------------------------------------------------------------


@pytest.mark.slow
def test_open_clip_imports_in_a_fresh_interpreter(repo_dir):
    """The workaround acts only when torchvision's compiled operators are missing."""
    script = (
        "import torch\n"
        "from engine import torch_compat\n"
        "open_clip = torch_compat.import_open_clip()\n"
        "import torchvision\n"
        "ops = torchvision.extension._has_ops()\n"
        "assert (torch_compat._declared_library is None) == ops, ops\n"
        "assert hasattr(torch.ops.torchvision, 'nms')\n"
        "print(open_clip.__version__, ops)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=repo_dir, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]

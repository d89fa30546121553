"""Full-resolution keyframe maps recomputed from the keys when read: the encoder's maps, in any
batch slice and keyframe pair, and the decode that reads them gives the decode of the held maps."""

from __future__ import annotations

import pytest
import torch

from engine.tooncrafter.networks.autoencoder import DualRefAutoencoder, DualRefAutoencoderConfig, keyframe_references
from engine.tooncrafter.networks.key_maps import RecomputedKeyMap, as_tensor, pair_maps, slot_map
from tests.test_tooncrafter_lean_decode import EXACT, max_diff, randomise

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def autoencoder():
    config = DualRefAutoencoderConfig(ch=32, ch_mult=(1, 2), num_res_blocks=2, fusion_levels=(1,), fusion_heads=2, fusion_dim_head=16)
    return randomise(DualRefAutoencoder(config), seed=31)


def recomputed(autoencoder, frames: torch.Tensor, hidden: list[torch.Tensor]) -> list:
    """The encoder's five maps with the two full-resolution ones recomputed when read."""
    encoder = autoencoder.encoder
    return [RecomputedKeyMap.of_frames(encoder, frames, 0), *hidden[1:-1], RecomputedKeyMap.of_frames(encoder, frames, None)]


def keys(count: int = 2, seed: int = 32) -> torch.Tensor:
    return torch.rand(count, 3, 24, 40, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@torch.no_grad()
def test_recomputed_maps_are_the_encoders_full_resolution_maps(autoencoder):
    frames = keys(3)
    hidden = autoencoder.encode(frames).hidden_states
    for level, index in [(0, 0), (None, -1)]:
        lazy = RecomputedKeyMap.of_frames(autoencoder.encoder, frames, level)
        assert lazy.shape == hidden[index].shape
        assert max_diff(lazy.materialise(), hidden[index]) < EXACT
        assert max_diff(lazy[1:3].materialise(), hidden[index][1:3]) < EXACT
    with pytest.raises(ValueError, match="full-resolution"):
        RecomputedKeyMap.of_frames(autoencoder.encoder, frames, 1)
    with pytest.raises(TypeError, match="batch"):
        RecomputedKeyMap.of_frames(autoencoder.encoder, frames, 0)[0]


@torch.no_grad()
def test_a_recomputed_keyframe_pair_is_the_reference_of_the_held_maps(autoencoder):
    frames = keys()
    hidden = autoencoder.encode(frames).hidden_states
    held = keyframe_references([h[0:1] for h in hidden], [h[1:2] for h in hidden])
    lazy_hidden = recomputed(autoencoder, frames, hidden)
    lazy = keyframe_references([h[0:1] for h in lazy_hidden], [h[1:2] for h in lazy_hidden])
    assert isinstance(lazy[0], RecomputedKeyMap) and isinstance(lazy[-1], RecomputedKeyMap)
    for a, b in zip(lazy, held, strict=True):
        assert a.shape == b.shape
        assert max_diff(as_tensor(a), b) < EXACT
        for slot in (0, 1):
            assert max_diff(slot_map(a, slot), b[:, :, slot]) < EXACT
    # the keys' order matters: slot 0 is the first key's map
    assert max_diff(slot_map(lazy[0], 1), held[0][:, :, 0]) > 1e-2
    with pytest.raises(ValueError, match="pair"):
        pair_maps(lazy[0], lazy[0])


@torch.no_grad()
def test_the_tightest_decode_reads_recomputed_maps_as_it_reads_held_ones(autoencoder):
    frames = keys()
    encoding = autoencoder.encode(frames)
    hidden = encoding.hidden_states
    held = keyframe_references([h[0:1] for h in hidden], [h[1:2] for h in hidden])
    lazy_hidden = recomputed(autoencoder, frames, hidden)
    lazy = keyframe_references([h[0:1] for h in lazy_hidden], [h[1:2] for h in lazy_hidden])
    latents = torch.randn(1, 4, 5, 12, 20, generator=torch.Generator().manual_seed(33))
    expected = autoencoder.decode(latents, held)
    # the whole-clip decode reads them whole; the tightest reads each key's map when its frame comes
    assert max_diff(autoencoder.decode(latents, lazy), expected) < EXACT
    autoencoder.decoder.set_frames_at_once(1, in_row_bands=True)
    try:
        assert max_diff(autoencoder.decode(latents, lazy), expected) < EXACT
        assert max_diff(autoencoder.decode(latents, [held[0], *lazy[1:]]), expected) < EXACT
    finally:
        autoencoder.decoder.set_frames_at_once(None)

"""Training data and sketch selection without any network: fast checks of what each sample holds."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from engine.tooncrafter.networks.config import tiny_from_reference
from engine.tooncrafter.networks.temporal_conv import TemporalConvBlock
from engine.tooncrafter.networks.transformer import TemporalTransformer
from engine.tooncrafter.networks.unet import ToonCrafterUNet
from training.data import ClipDataset, DataError, GlobalOrder, SampleSpec, collate, discover_clips
from training.parameters import split_temporal
from training.sketches import Anime2SketchGenerator, LineExtractor, bisection_frames, select_sketch_frames, xdog_sketch

REPO = Path(__file__).resolve().parents[1]


def synthetic_clips():
    spec = importlib.util.spec_from_file_location("make_synthetic_clips", REPO / "tools" / "make_synthetic_clips.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- sketch selection (paper 4.3) --------------------------------------------------------------


def test_bisection_gives_the_papers_frame_sets_for_16_frames():
    # 1-based (1, 16): depth 1 -> {8}; depth 2 -> {4, 8, 12}; depth 3 -> every even frame; depth 4 -> all in-betweens
    one_based = {d: [f + 1 for f in bisection_frames(16, d)] for d in (1, 2, 3, 4)}
    assert one_based[1] == [8]
    assert one_based[2] == [4, 8, 12]
    assert one_based[3] == [2, 4, 6, 8, 10, 12, 14]
    assert one_based[4] == list(range(2, 16))
    assert bisection_frames(6, 1) == [2] and bisection_frames(6, 2) == [1, 2, 3]
    with pytest.raises(ValueError, match="no in-between"):
        bisection_frames(2, 1)


def test_selection_mixes_bisection_and_random_subsets_without_keyframes():
    rng = np.random.default_rng(0)
    bisection_sets = [tuple(bisection_frames(16, d)) for d in (1, 2, 3, 4)]
    draws = [tuple(select_sketch_frames(16, rng)) for _ in range(2000)]
    assert all(d and 0 not in d and 15 not in d and list(d) == sorted(set(d)) for d in draws)
    share = np.mean([d in bisection_sets for d in draws])
    # 80 % bisection plus the few random subsets that happen to equal a bisection set
    assert 0.77 < share < 0.86
    depth_counts = [sum(d == s for d in draws) for s in bisection_sets]
    assert min(depth_counts) > 300  # depths 1..4 drawn uniformly


def test_xdog_draws_the_ink_lines_and_leaves_flat_colour_white():
    frame = np.full((64, 96, 3), (240, 230, 210), np.uint8)
    cv2.circle(frame, (48, 32), 20, (220, 60, 50), -1)
    cv2.circle(frame, (48, 32), 20, (20, 20, 30), 2)
    sketch = xdog_sketch(frame)
    ring = np.zeros((64, 96), bool)
    cv2.circle(ring.view(np.uint8), (48, 32), 20, 1, 2)
    assert sketch[ring].mean() < 100  # dark where the outline is
    assert sketch[30:35, 45:50].mean() > 240 and sketch[:5, :5].mean() > 240  # white inside the fill and on the paper


def test_anime2sketch_weights_load_strictly_and_map_to_a_sketch(tmp_path):
    torch.manual_seed(0)
    state = {f"module.{k}": v for k, v in Anime2SketchGenerator().state_dict().items()}
    path = tmp_path / "netG.pth"
    torch.save(state, path)
    extractor = LineExtractor(path)
    assert extractor.name == "anime2sketch"
    out = extractor(np.full((40, 70, 3), 128, np.uint8))
    assert out.shape == (40, 70) and out.dtype == np.uint8
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not Anime2Sketch"):
        LineExtractor(tmp_path / "bad.pth")


# -- which parameters are temporal ---------------------------------------------------------------


def test_temporal_parameters_are_chosen_by_module_type(reference_dir):
    import json

    config = tiny_from_reference(json.loads((reference_dir / "tiny_a" / "config.json").read_text()))
    with torch.device("meta"):
        unet = ToonCrafterUNet(config.unet)
    spatial, temporal = split_temporal(unet)
    expected = set()
    for module in unet.modules():
        if isinstance(module, TemporalTransformer | TemporalConvBlock):
            expected |= {id(p) for p in module.parameters()}
    assert {id(p) for _, p in temporal} == expected
    names = [n for n, _ in temporal]
    assert any(n.startswith("init_attn.") for n in names)
    assert any(".temopral_conv." in n for n in names)
    assert not any(".temopral_conv." in n or n.startswith("init_attn.") for n, _ in spatial)
    assert len(spatial) + len(temporal) == len(list(unet.parameters()))


# -- clips, samples and the global order ---------------------------------------------------------


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    synthetic_clips().make_clips(folder, clips=3, frames=14, width=96, height=48, seed=1, manifest=True)
    return folder


def test_png_folders_cut_into_strided_samples_on_the_canvas(clip_folder):
    clips, skipped = discover_clips(clip_folder, 6)
    assert [c.clip_id for c in clips] == ["clip_000", "clip_001", "clip_002"] and not skipped
    assert clips[0].caption == "a cartoon of simple shapes moving"
    dataset = ClipDataset(clips, SampleSpec(6, 128, 64, 1, 2), seed=5)
    sample = dataset[4]
    assert sample["video"].shape == (3, 6, 64, 128)
    assert -1.0 <= float(sample["video"].min()) and float(sample["video"].max()) <= 1.0
    assert sample["fs"] in (24, 12)  # 24 fps clips at stride 1 or 2
    again = ClipDataset(clips, SampleSpec(6, 128, 64, 1, 2), seed=5)[4]
    assert torch.equal(sample["video"], again["video"]) and sample["seed"] == again["seed"]
    batch = collate([dataset[0], dataset[1]])
    assert batch["video"].shape == (2, 3, 6, 64, 128) and batch["fs"].dtype == torch.long
    with pytest.raises(DataError, match="no clip has the 20 frames"):
        discover_clips(clip_folder, 20)


def test_manifest_rows_kept_and_train_only_with_clear_errors(clip_folder, tmp_path):
    clips, _ = discover_clips(clip_folder / "manifest.parquet", 6)
    assert [c.clip_id for c in clips] == ["clip_000", "clip_001"]  # clip_002 is the eval split
    table = pd.read_parquet(clip_folder / "manifest.parquet")
    table.loc[0, "kept"] = False
    table.loc[0, "reject_reason"] = "scene cut"
    table.to_parquet(tmp_path / "m.parquet")
    (tmp_path / "clip_001").symlink_to(clip_folder / "clip_001")
    clips, _ = discover_clips(tmp_path / "m.parquet", 6)
    assert [c.clip_id for c in clips] == ["clip_001"]
    table.drop(columns=["fps"]).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DataError, match="lacks column.*fps"):
        discover_clips(tmp_path / "bad.parquet", 6)
    with pytest.raises(DataError, match="not found"):
        discover_clips(tmp_path / "nowhere", 6)


def test_video_files_read_through_pyav(tmp_path):
    synthetic_clips().make_clips(tmp_path, clips=1, frames=10, width=128, height=64, seed=2, video=True, fps=12)
    clips, _ = discover_clips(tmp_path, 6)
    assert clips[0].frames == 10 and clips[0].fps == pytest.approx(12)
    sample = ClipDataset(clips, SampleSpec(6, 128, 64, 1, 1), seed=0)[0]
    pngs = tmp_path / "png"
    synthetic_clips().make_clips(pngs, clips=1, frames=10, width=128, height=64, seed=2)
    reference = ClipDataset(discover_clips(pngs, 6)[0], SampleSpec(6, 128, 64, 1, 1), seed=0)[0]
    assert (sample["video"] - reference["video"]).abs().mean() < 0.05  # same drawing through H.264


def test_global_order_gives_every_process_layout_the_same_step_batches():
    single = GlobalOrder(micro_batch=1, accumulation=4, world_size=1, rank=0)
    ranks = [GlobalOrder(micro_batch=2, accumulation=1, world_size=2, rank=r) for r in (0, 1)]
    for step in range(3):
        one = sorted(p for m in range(4) for p in single.positions(step, m))
        two = sorted(p for r in ranks for p in r.positions(step, 0))
        assert one == two == list(range(step * 4, step * 4 + 4))
    stream = GlobalOrder(1, 2, 1, 0).batches(start_step=3)
    assert [next(stream) for _ in range(3)] == [[6], [7], [8]]

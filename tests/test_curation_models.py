"""The curation stages that need weights, on small random networks saved to local files (the real
CLIP ViT-L-14, LAION head and CRAFT weights cannot be fetched here): they load from the given paths,
fill their columns with the values their definitions give, and are skipped with a reason when absent."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from curation.config import CurationConfig
from curation.runner import MANIFEST_NAME, curate
from curation.stages import AestheticHead, plan_stages
from curation.text import Craft, CraftDetector
from tests.test_curation_footage import SHOTS, make_episode

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def make_tiny_clip(folder) -> tuple[str, str]:
    """(weights path, config JSON path) of a random 32-d OpenCLIP model."""
    from engine.torch_compat import import_open_clip

    torch.manual_seed(0)
    model = import_open_clip().CLIP(**TINY_CLIP)
    weights, config = folder / "tiny_clip.bin", folder / "tiny_clip.json"
    torch.save(model.state_dict(), weights)
    config.write_text(json.dumps({"model_cfg": TINY_CLIP}))
    return str(weights), str(config)


def make_aesthetic_head(path, width: int = 32):
    """A LAION-layout head (layers.0/2/4/6/7 Linear, Dropouts between) with random weights."""
    torch.manual_seed(1)
    sizes = [(0, width, 64), (2, 64, 16), (4, 16, 8), (6, 8, 4), (7, 4, 1)]
    state = {}
    for index, cin, cout in sizes:
        state[f"layers.{index}.weight"] = torch.randn(cout, cin) * 0.5
        state[f"layers.{index}.bias"] = torch.randn(cout) * 0.1
    torch.save(state, path)
    return state


def test_model_stages_are_skipped_with_their_reasons_when_weights_are_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("INBETWEENER_MODELS", str(tmp_path / "empty-store"))
    stages, skipped = plan_stages(CurationConfig())
    assert [s.__name__ for s in stages] == ["SampleFrames", "StaticFilter", "TextFilter"]
    assert set(skipped) == {"text (CRAFT)", "captions", "aesthetic", "caption alignment"}
    assert "craft_mlt_25k.pth" in skipped["text (CRAFT)"] and "stroke detector ran instead" in skipped["text (CRAFT)"]
    assert str(tmp_path / "empty-store" / "curation") in skipped["aesthetic"]


def test_aesthetic_head_reads_the_laion_layout(tmp_path):
    state = make_aesthetic_head(tmp_path / "head.pth")
    head = AestheticHead(tmp_path / "head.pth")
    x = np.random.default_rng(0).normal(size=32).astype(np.float32)
    expected = torch.from_numpy(x)[None]
    for index in (0, 2, 4, 6, 7):
        expected = expected @ state[f"layers.{index}.weight"].T + state[f"layers.{index}.bias"]
    assert head(x) == pytest.approx(float(expected[0, 0]), rel=1e-5)


@pytest.mark.slow
def test_clip_stage_scores_every_kept_clip_with_the_local_weights(tmp_path, monkeypatch):
    from curation.clip_model import ClipEmbedder
    from curation.video import read_frames

    monkeypatch.setenv("INBETWEENER_MODELS", str(tmp_path / "empty-store"))
    clip_weights, clip_config = make_tiny_clip(tmp_path)
    make_aesthetic_head(tmp_path / "head.pth")
    video = make_episode(tmp_path / "episode.mp4")
    config = CurationConfig(clip_weights=clip_weights, clip_architecture=clip_config, aesthetic_weights=str(tmp_path / "head.pth"),
                            min_aesthetic=-1e9)
    summary = curate([str(video)], tmp_path / "dataset", config, progress=False)
    manifest = pd.read_parquet(tmp_path / "dataset" / MANIFEST_NAME)
    assert "aesthetic" not in summary["skipped_stages"] and summary["clips_kept"] == 2
    kept = manifest[manifest["kept"]]
    assert kept["aesthetic"].notna().all() and manifest.loc[~manifest["kept"], "aesthetic"].isna().all()
    # The stored score is the head on the normalised mean CLIP embedding of first/middle/last frame.
    row = kept.iloc[0]
    frames = read_frames(row["source"], [row["start_frame"], (row["start_frame"] + row["end_frame"] - 1) // 2, row["end_frame"] - 1],
                         width=config.analysis_width)
    embeddings = ClipEmbedder(clip_weights, clip_config).images(list(frames.values()))
    mean = embeddings.mean(0)
    assert row["aesthetic"] == pytest.approx(AestheticHead(tmp_path / "head.pth")(mean / np.linalg.norm(mean)), abs=1e-4)
    assert summary["skipped_stages"]["caption alignment"].startswith("no captions")
    assert "_frames" not in manifest.columns and list(manifest["reject_reason"]) == ["", "static", "text", ""][: len(SHOTS)]


def test_craft_detector_loads_the_easyocr_layout(tmp_path):
    torch.manual_seed(0)
    net = Craft()
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, tmp_path / "craft.pth")  # EasyOCR saves from DataParallel
    detector = CraftDetector(tmp_path / "craft.pth", canvas=128)
    frame = np.random.default_rng(0).integers(0, 255, (100, 160, 3), dtype=np.uint8)
    score = detector.region_score(frame)
    assert score.shape == (32, 64)  # half of the 64x128 canvas (160 px wide scaled to 128, sides multiples of 32)
    assert 0.0 <= detector.text_fraction(frame) <= 1.0
    assert sum(p.numel() for p in net.parameters()) == 20_770_466

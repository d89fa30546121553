"""`inbetween-eval` end to end: every metric computed with small random networks standing in for
the real weights, the table and contact sheets written, predictions read from folders, methods and
metrics that cannot run reported with their reasons, and cases cut from a curation manifest."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from evaluation.cases import Case, cases_from_manifest
from evaluation.cli import main
from evaluation.i3d import I3DFeatures
from evaluation.methods import Crossfade, FolderMethod, crossfade
from evaluation.networks import MetricNetworks
from evaluation.report import write_report
from evaluation.suite import METRICS, evaluate

pytestmark = pytest.mark.slow  # random AlexNet + CLIP + I3D stand-ins: about a minute on 2 cores

TRIPLETS = Path(__file__).resolve().parents[2] / "shared" / "cartoon" / "triplets.json"


class TinyVideoFeatures(nn.Module):
    """A random 3D conv net standing in for I3D: (N, 3, T, H, W) in [-1, 1] -> (N, 16)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv3d(3, 16, (3, 7, 7), stride=(1, 4, 4))

    def forward(self, x):
        return torch.tanh(self.conv(x)).mean(dim=(2, 3, 4))


def _cases(count: int = 6, gap: int = 2) -> list[Case]:
    rng = np.random.default_rng(0)
    cases = []
    for i in range(count):
        start = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
        end = np.roll(start, 4 + i, axis=1)
        gt = [crossfade(start, end, k / gap) for k in range(1, gap)]
        cases.append(Case(f"seq{i}/g{gap}/i00", gap, "synthetic", start, end, gt, [k / gap for k in range(1, gap)],
                          [f"frame_{k:02d}.png" for k in range(1, gap)], prompt="a test scene"))
    return cases


@pytest.fixture(scope="module")
def networks(tmp_path_factory):
    from curation.clip_model import ClipEmbedder
    from engine.torch_compat import import_torchvision
    from evaluation.lpips import CHANNELS, Lpips
    from tests.test_curation_models import make_tiny_clip

    torch.manual_seed(0)
    lpips = Lpips(import_torchvision().models.alexnet(weights=None).state_dict(),
                  {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate(CHANNELS)})
    weights, config = make_tiny_clip(tmp_path_factory.mktemp("clip"))
    return MetricNetworks(i3d=I3DFeatures.from_network(TinyVideoFeatures()), lpips=lpips, clip=ClipEmbedder(weights, config))


class Darkened(Crossfade):
    name = "darkened"

    def predict(self, case):
        return [frame // 2 for frame in super().predict(case)]


def test_ground_truth_scores_perfectly_and_a_worse_method_worse(networks, tmp_path):
    cases = _cases()
    result = evaluate(cases, [Crossfade(), Darkened()], networks)
    rows = {row["method"]: row for row in result["table"] if row["gap"] == "all"}
    perfect, worse = rows["crossfade"], rows["darkened"]
    assert perfect["FVD"] == pytest.approx(0.0, abs=1e-6) and worse["FVD"] > 1e-4
    assert perfect["LPIPS"] == pytest.approx(0.0, abs=1e-6) and worse["LPIPS"] > 0
    assert perfect["CLIP-img"] == pytest.approx(1.0, abs=1e-5) and worse["CLIP-img"] < 1.0
    assert perfect["PSNR"] == 100.0 and perfect["SSIM"] == pytest.approx(1.0) and worse["PSNR"] < 40
    assert all(perfect[m] is not None for m in METRICS) and not result["not_computed"]
    written = write_report(result, cases, tmp_path)
    table = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [(r["method"], r["gap"]) for r in table] == [("crossfade", "2"), ("crossfade", "all"), ("darkened", "2"), ("darkened", "all")]
    assert "| crossfade | all | 6 | 6 |" in (tmp_path / "metrics.md").read_text()
    sheets = [p for p in written if p.suffix == ".png"]
    assert len(sheets) == 2
    import cv2

    sheet = cv2.imread(str(sheets[0]))
    assert sheet.shape == (3 * 171, 3 * 256, 3)  # ground truth + 2 methods; key, 1 in-between, key


def test_predictions_from_a_folder_score_as_if_made_here(networks, tmp_path):
    cases = _cases(3)
    import cv2

    for case in cases:
        for name, frame in zip(case.gt_names, Crossfade().predict(case)):
            folder = tmp_path / "preds" / case.case_id
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / name), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    made = evaluate(cases, [Crossfade()], networks)["table"]
    read = evaluate(cases, [FolderMethod("crossfade", tmp_path / "preds")], networks)["table"]
    for a, b in zip(made, read):
        for metric in METRICS:
            assert a[metric] == pytest.approx(b[metric], abs=1e-9), metric


@pytest.mark.skipif(not TRIPLETS.exists(), reason="shared/cartoon is absent")
def test_cli_prints_the_table_and_names_what_was_not_computed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INBETWEENER_MODELS", str(tmp_path / "empty-store"))
    code = main(["--triplets", str(TRIPLETS), "--method", "crossfade", "--method", "no-such-backend", "--gaps", "2",
                 "--limit", "2", "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| crossfade | 2 | 2 | 2 | n/c | n/c | n/c | n/c | n/c |" in printed
    assert "FVD: not computed: no i3d_torchscript.pt" in printed and "method no-such-backend: not run" in printed
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(saved["not_computed"]) == {"FVD", "KVD", "LPIPS", "CLIP-img", "CLIP-txt"}
    baseline = json.loads((TRIPLETS.parent / "baseline_crossfade_scores.json").read_text())
    assert saved["table"][0]["PSNR"] > 15 and baseline["all_cases"]["n_cases"] == 334


def test_cases_from_a_curation_manifest(tmp_path):
    from curation.config import CurationConfig
    from curation.runner import MANIFEST_NAME, curate
    from tests.test_curation_footage import make_episode

    video = make_episode(tmp_path / "episode.mp4")
    curate([str(video)], tmp_path / "dataset", CurationConfig(eval_fraction=1.0), progress=False)
    cases = cases_from_manifest(tmp_path / "dataset" / MANIFEST_NAME, gaps=(2, 4))
    assert [c.case_id.split("/", 1)[1] for c in cases] == ["g2/i00", "g4/i00"] * 2
    four = cases[1]
    assert four.gt_t == [0.25, 0.5, 0.75] and four.start.shape == (160, 256, 3) and len(four.gt) == 3

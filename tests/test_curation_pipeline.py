"""The curation pipeline end to end on synthetic footage: cuts, filters, manifest contract, the
trainer reading the manifest, resuming, and unreadable files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from curation.cli import main
from curation.config import CurationConfig
from curation.runner import MANIFEST_NAME, SUMMARY_NAME, curate
from curation.stages import eval_share
from curation.video import read_frames
from tests.test_curation_footage import SHOT, SHOTS, make_corrupt, make_episode

CONTRACT = {
    "clip_id": str, "source": str, "start_frame": np.integer, "end_frame": np.integer, "fps": np.floating,
    "width": np.integer, "height": np.integer, "split": str, "kept": np.bool_, "reject_reason": str, "caption": str,
}


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("footage")
    make_episode(folder / "episode.mp4")
    make_corrupt(folder / "broken.mp4")
    return folder


@pytest.fixture(scope="module")
def curated(footage, tmp_path_factory):
    out = tmp_path_factory.mktemp("dataset")
    code = main(["curate", str(footage), "--out", str(out), "--workers", "1", "--no-progress"])
    assert code == 0
    return out, pd.read_parquet(out / MANIFEST_NAME), json.loads((out / SUMMARY_NAME).read_text())


def test_cuts_are_found_at_the_shot_boundaries(curated):
    _, manifest, _ = curated
    assert list(manifest["start_frame"]) == [i * SHOT for i in range(len(SHOTS))]
    assert list(manifest["end_frame"]) == [(i + 1) * SHOT for i in range(len(SHOTS))]
    assert list(manifest["shot_index"]) == list(range(len(SHOTS)))


def test_static_and_text_shots_are_rejected_with_their_reasons(curated):
    _, manifest, summary = curated
    reasons = dict(zip(SHOTS, manifest["reject_reason"]))
    assert reasons == {"moving": "", "static": "static", "text": "text", "moving_alt": ""}
    assert list(manifest["kept"]) == [True, False, False, True]
    motion = dict(zip(SHOTS, manifest["motion"]))
    assert motion["static"] < 0.01 and motion["moving"] > 0.3 and motion["moving_alt"] > 0.3
    text = manifest.set_index(pd.Index(SHOTS))["text_area"]
    assert text["text"] > 0.1 and text["moving"] == 0.0 and text["moving_alt"] == 0.0
    stages = {s["stage"]: s for s in summary["stages"]}
    assert stages["static filter"]["rejected"] == 1 and stages["text filter"]["rejected"] == 1
    assert summary["clips_kept"] == 2
    assert summary["hours_kept"] == pytest.approx(2 * SHOT / 12 / 3600, abs=1e-4)


def test_manifest_keeps_the_training_contract(curated):
    _, manifest, _ = curated
    for column, kind in CONTRACT.items():
        assert column in manifest.columns, column
        value = manifest[column].iloc[0]
        assert isinstance(value, kind), (column, type(value))
    assert set(manifest["split"]) <= {"train", "eval"}
    assert (manifest.loc[manifest["kept"], "reject_reason"] == "").all()
    assert (manifest.loc[~manifest["kept"], "reject_reason"] != "").all()
    assert manifest["clip_id"].is_unique
    assert (manifest[["width", "height"]].to_numpy() == [256, 160]).all() and (manifest["fps"] == 12.0).all()


def test_corrupt_file_is_reported_by_name_and_skipped(curated):
    _, manifest, summary = curated
    assert summary["videos"] == 2 and summary["videos_unreadable"] == 1
    assert "broken.mp4" in summary["unreadable"][0]["error"]
    assert not manifest["source"].str.contains("broken").any()


def test_the_trainer_reads_the_manifest(curated):
    data = pytest.importorskip("training.data")
    out, manifest, _ = curated
    clips, skipped = data.discover_clips(out / MANIFEST_NAME, min_frames=16)
    kept_train = manifest[manifest["kept"] & (manifest["split"] == "train")]
    assert [c.clip_id for c in clips] == list(kept_train["clip_id"]) and not skipped
    clip = clips[-1]
    frames = data.read_frames(clip, [0, clip.frames - 1])
    ours = read_frames(clip.source, [clip.start_frame, clip.end_frame - 1])
    assert np.array_equal(frames[0], ours[clip.start_frame]) and np.array_equal(frames[1], ours[clip.end_frame - 1])


def test_rerun_resumes_and_redoes_only_what_changed(curated, footage, tmp_path):
    out, manifest, _ = curated
    copy = tmp_path / "dataset"
    shutil.copytree(out, copy)
    config = CurationConfig()
    sources = sorted(str(p) for p in footage.iterdir())
    summary = curate(sources, copy, config, progress=False)
    assert summary["videos_reused_from_previous_run"] == 2
    pd.testing.assert_frame_equal(pd.read_parquet(copy / MANIFEST_NAME), manifest)
    # An interrupted run leaves some videos without work files: only those are redone.
    for work in (copy / ".work").iterdir():
        if pd.read_parquet(work)["source"].str.contains("episode").any():
            work.unlink()
    summary = curate(sources, copy, config, progress=False)
    assert summary["videos_reused_from_previous_run"] == 1
    pd.testing.assert_frame_equal(pd.read_parquet(copy / MANIFEST_NAME), manifest)
    # Other thresholds make the old scores stale: everything is redone.
    summary = curate(sources, copy, CurationConfig(min_motion=1.0), progress=False)
    assert summary["videos_reused_from_previous_run"] == 0
    assert summary["clips_kept"] == 1  # moving (0.85 px/frame) now counts as static, moving_alt does not


def test_split_is_deterministic_and_by_shot():
    shares = [eval_share("/a/episode.mp4", shot) for shot in range(200)]
    assert shares == [eval_share("/elsewhere/episode.mp4", shot) for shot in range(200)]
    assert all(0 <= s < 1 for s in shares)
    assert 0.02 < np.mean(np.array(shares) < 0.1) < 0.2  # about the asked share


def test_seeking_reader_matches_sequential_decoding(tmp_path):
    import av

    path = make_episode(tmp_path / "long.mp4", SHOTS * 3)
    with av.open(str(path)) as container:
        every = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    wanted = [0, 29, 30, 101, 250, 300, len(every) - 1]
    frames = read_frames(path, wanted)
    assert all(np.array_equal(frames[i], every[i]) for i in wanted)

"""The Ray Data path gives the same manifest as the local run (one local Ray instance on loopback
for the whole module: starting Ray costs seconds on the shared cores)."""

from __future__ import annotations

import pandas as pd
import pytest

from curation.config import CurationConfig
from curation.runner import MANIFEST_NAME, curate
from tests.test_curation_footage import make_corrupt, make_episode

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_run_gives_the_local_manifest(ray_local, tmp_path):
    sources = [
        str(make_episode(tmp_path / "episode.mp4")),
        str(make_episode(tmp_path / "reversed.mp4", ("text", "moving_alt", "static", "moving"))),
        str(make_corrupt(tmp_path / "broken.mp4")),
    ]
    config = CurationConfig(eval_fraction=0.5)
    local = curate(sources, tmp_path / "local", config, workers=1, progress=False)
    remote = curate(sources, tmp_path / "ray", config, ray_address="auto", progress=False)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "ray" / MANIFEST_NAME), pd.read_parquet(tmp_path / "local" / MANIFEST_NAME))
    assert remote["stages"] == local["stages"] and remote["unreadable"] == local["unreadable"]
    assert remote["clips_kept"] == 4 and remote["videos_unreadable"] == 1
    # The Ray run's work files resume a local run: nothing is redone.
    again = curate(sources, tmp_path / "ray", config, workers=1, progress=False)
    assert again["videos_reused_from_previous_run"] == 3

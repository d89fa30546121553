"""`make demo`: every sample shot drawn without weights, and the report says what drew each."""

from __future__ import annotations

import numpy as np

from engine import demo
from engine.imaging import read_image


def test_drawn_by_names_the_method_that_drew_the_shot():
    assert demo.drawn_by({"backend": "cel", "method": "cel"}) == "cel"
    assert demo.drawn_by({"backend": "rife"}) == "rife"
    handed_on = {"backend": "cel", "method": "rife", "fallback": "the parts' motions fit poorly"}
    assert demo.drawn_by(handed_on) == "rife (cel: the parts' motions fit poorly)"


def test_the_demo_draws_every_sample_shot_with_the_cel_in_betweener(tmp_path, capsys):
    assert demo.main(["--out", str(tmp_path), "--backend", "cel"]) == 0
    report = capsys.readouterr().err
    assert "arm_swing: 7 in-betweens by cel ->" in report
    assert "three_keys: 10 in-betweens by cel ->" in report
    for shot in demo.SHOTS:
        folder = tmp_path / shot.folder
        frames = sorted(folder.glob(f"{shot.folder}_*.png"))
        frames = [f for f in frames if not f.name.endswith("_contact.png")]
        assert len(frames) == shot.key_frames[-1] + 1  # every frame of the shot, held ones too
        assert (folder / f"{shot.folder}_contact.png").is_file() and (folder / f"{shot.folder}.gif").is_file()
        # the first key comes back as drawn; the first in-between (one exposure on) differs from it
        first = read_image(frames[0])
        assert np.array_equal(first, read_image(demo.SAMPLES / shot.folder / shot.keys[0]))
        assert not np.array_equal(read_image(frames[shot.exposure]), first)

"""Shot batches: the batch file is checked up front, runs resume, finished or foreign frames are never
overwritten, and the Open Job Description export runs the same segments to the same frames."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.batch.openjd import group_commands, job_template
from engine.batch.runner import BatchRunner, default_state_folder, group_jobs, segment_jobs
from engine.batch.shots import BatchError, load_batch
from engine.batch.state import DONE, BatchState
from engine.cli import main
from engine.exports import ExportFrame, write_psd
from engine.imaging import read_image

REPO = Path(__file__).resolve().parents[1]


def _key(x: int, size=(160, 96)) -> np.ndarray:
    """A flat cel: grey ground, a red ball with a black outline at column x."""
    w, h = size
    img = np.zeros((h, w, 4), np.uint8)
    img[...] = (200, 210, 220, 255)
    yy, xx = np.mgrid[:h, :w]
    d = np.hypot(xx - x, yy - h / 2)
    img[d < 16] = (20, 20, 20, 255)
    img[d < 13] = (220, 40, 40, 255)
    return img


def _save(path: Path, image: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image, "RGBA").save(path)
    return str(path)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Two shots: a two-key ball (one segment) and a three-key sequence folder (two segments)."""
    _save(tmp_path / "ball" / "a.png", _key(30))
    _save(tmp_path / "ball" / "b.png", _key(120))
    for frame, x in ((0, 30), (4, 80), (8, 130)):
        _save(tmp_path / "roll" / f"roll_{frame:04d}.png", _key(x))
    (tmp_path / "shots.yaml").write_text(
        "version: 1\n"
        "defaults:\n  backend: rife\n  exposure: twos\n"
        "shots:\n"
        "  - name: ball\n    keys: [ball/a.png, ball/b.png]\n    at: [0, 6]\n    spacing: ease-in-out\n"
        "  - name: roll\n    source: roll\n    exposure: ones\n",
        encoding="utf-8",
    )
    return tmp_path / "shots.yaml"


def _frames(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def test_batch_file_plans_segments_from_keys_and_sequence_folders(shots):
    batch = load_batch(shots)
    assert [s.name for s in batch.shots] == ["ball", "roll"]
    assert batch.shots[1].key_frames == (0, 4, 8)  # the numbers in the file names are the timeline
    jobs = segment_jobs(batch)
    assert [(j.shot.name, j.segment.index, j.last) for j in jobs] == [("ball", 0, True), ("roll", 0, False), ("roll", 1, True)]
    # each segment owns its first key up to the next key; the last one owns the shot's last key too
    assert jobs[1].frames() == [0, 1, 2, 3] and jobs[2].frames() == [4, 5, 6, 7, 8]
    assert [len(g) for g in group_jobs(jobs, 2)] == [2, 1]
    assert jobs[0].files()[6].name == "ball_0007.png"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("shots:\n  - name: a\n    keys: [missing.png, b.png]\n", r"shots\[0\] \(a\)\.keys\[0\]: .*missing.png not found"),
        ("shots:\n  - name: a\n    keys: [k.png, k.png]\n    on: twos\n", "exposure: twos"),
        ("shots:\n  - name: a\n    keys: [k.png, k.png]\n    settings: {stepz: 3}\n", r"settings: unknown setting\(s\) stepz"),
        ("shots:\n  - name: a\n    keys: [k.png, k.png]\n    settings: {steps: 0}\n", "steps must be between"),
        ("shots:\n  - name: a\n    keys: [k.png, k.png]\n  - name: a\n    keys: [k.png, k.png]\n", "used by an earlier shot"),
        ("shots:\n  - name: ../a\n    keys: [k.png, k.png]\n", "not usable as a file prefix"),
        ("shots:\n  - name: a\n    keys: [k.png, k.png]\n    at: [0]\n", r"\.at: expected 2 whole frame numbers"),
        ("shots:\n  - name: a\n    keys: [k.png, k.png]\n    sketches: {0: k.png}\n", "a sketch must sit on an in-between"),
        ("shots: []\n", "non-empty list"),
        ("version: 2\nshots: []\n", "version 2 is not supported"),
    ],
)
def test_batch_file_problems_name_the_shot_and_field(tmp_path, text, message):
    _save(tmp_path / "k.png", _key(40))
    (tmp_path / "b.png").write_bytes((tmp_path / "k.png").read_bytes())
    (tmp_path / "shots.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(BatchError, match=message):
        load_batch(tmp_path / "shots.yaml")


def test_psd_source_takes_the_keys_of_our_own_psd_at_their_frames(tmp_path):
    keys = {0: _key(30), 6: _key(120)}
    frames = [ExportFrame(0, keys[0], "key", 0), ExportFrame(3, _key(70), "inbetween", 3), ExportFrame(6, keys[6], "key", 6)]
    write_psd(frames, tmp_path / "take.psd")
    (tmp_path / "shots.yaml").write_text("shots:\n  - name: take\n    source: take.psd\n", encoding="utf-8")
    shot = load_batch(tmp_path / "shots.yaml").shots[0]
    assert shot.key_frames == (0, 6) and shot.key_layers == (0, 2)
    runner = BatchRunner(load_batch(tmp_path / "shots.yaml"), BatchState(tmp_path / "state"))
    loaded = runner._keyframes(shot)
    assert np.array_equal(loaded[0].image, keys[0]) and np.array_equal(loaded[1].image, keys[6])


def test_run_writes_every_frame_once_and_a_rerun_skips_finished_segments(shots, capsys):
    assert main(["batch", str(shots), "--quiet"]) == 0
    out = shots.parent / "out"
    names = sorted(p.name for p in (out / "ball").iterdir())
    assert names == [f"ball_{n:04d}.png" for n in range(1, 8)]
    assert len(list((out / "roll").iterdir())) == 9
    # keys are copied exactly; in-betweens are new drawings
    assert np.array_equal(read_image(out / "ball" / "ball_0001.png"), read_image(shots.parent / "ball" / "a.png"))
    assert np.array_equal(read_image(out / "roll" / "roll_0005.png"), read_image(shots.parent / "roll" / "roll_0004.png"))
    assert not np.array_equal(read_image(out / "ball" / "ball_0004.png"), read_image(out / "ball" / "ball_0001.png"))
    state = BatchState(default_state_folder(load_batch(shots)))
    assert state.get("roll", 1).status == DONE and len(state.get("roll", 1).files) == 5
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    capsys.readouterr()

    assert main(["batch", str(shots), "--quiet"]) == 0
    assert "0 segment(s) drawn, 3 already finished" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == before


def test_a_changed_frame_is_kept_and_a_deleted_one_redrawn(shots, capsys):
    assert main(["batch", str(shots), "--quiet"]) == 0
    out = shots.parent / "out"
    touched = out / "ball" / "ball_0003.png"
    _save(touched, np.full((96, 160, 4), 7, np.uint8))  # the artist fixed this in-between by hand
    deleted = out / "roll" / "roll_0003.png"
    original = deleted.read_bytes()
    deleted.unlink()
    capsys.readouterr()
    assert main(["batch", str(shots), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "kept 1 frame(s) changed" in err and "1 segment(s) drawn" in err
    assert read_image(touched)[0, 0, 0] == 7
    assert deleted.read_bytes() == original


def test_a_foreign_file_fails_only_its_segment_and_is_left_alone(shots, capsys):
    foreign = shots.parent / "out" / "roll" / "roll_0007.png"
    _save(foreign, _key(10))
    content = foreign.read_bytes()
    assert main(["batch", str(shots), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "roll segment 1" in err and "not written by this batch" in err and "2 segment(s) drawn" in err
    assert foreign.read_bytes() == content
    assert not (shots.parent / "out" / "roll" / "roll_0009.png").exists()
    record = BatchState(default_state_folder(load_batch(shots))).get("roll", 1)
    assert record.status == "failed" and record.attempts == 1
    foreign.unlink()  # the artist moves their file away: the retry draws the segment
    assert main(["batch", str(shots), "--quiet"]) == 0


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_frames_without_redrawing_finished_segments(shots, tmp_path):
    reference = tmp_path / "reference"
    shutil.copytree(shots.parent, reference, ignore=shutil.ignore_patterns("reference"))
    assert main(["batch", str(reference / "shots.yaml"), "--quiet"]) == 0

    state = default_state_folder(load_batch(shots))
    proc = subprocess.Popen([sys.executable, "-m", "engine", "batch", str(shots), "--quiet"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    first = state / "ball" / "segment_000.json"
    while time.monotonic() < deadline and proc.poll() is None:
        if first.exists() and json.loads(first.read_text())["status"] == DONE:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads(first.read_text())["status"] == DONE
    finished = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (shots.parent / "out" / "ball").iterdir()}

    assert main(["batch", str(shots), "--quiet"]) == 0
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in finished} == finished
    assert _frames(shots.parent / "out") == _frames(reference / "out")
    assert not [p for p in (shots.parent / "out").rglob("*") if p.name.startswith(".")]


def test_openjd_template_has_one_task_per_group_and_validates(shots, tmp_path):
    batch = load_batch(shots)
    template = job_template(batch, 2, tmp_path)
    step = template["steps"][0]
    assert step["parameterSpace"]["taskParameterDefinitions"][0]["range"] == [0, 1]
    args = step["script"]["actions"]["onRun"]["args"]
    assert args[:4] == ["batch", "{{Param.BatchFile}}", "--group", "{{Task.Param.Group}}"]
    assert template["parameterDefinitions"][0]["default"] == os.path.relpath(shots, tmp_path)
    assert group_commands(batch, 2)[1].endswith("--group 1 --group-size 2 --quiet")
    path = tmp_path / "job.yaml"
    assert main(["batch", str(shots), "--export-openjd", str(path), "--group-size", "2"]) == 0
    assert main(["batch", str(shots), "--export-openjd", str(path)]) == 2  # never replaced silently
    openjd = shutil.which("openjd") or str(Path(sys.executable).with_name("openjd"))
    check = subprocess.run([openjd, "check", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.slow
def test_openjd_run_draws_the_same_frames_as_the_local_run(shots, tmp_path):
    farm = tmp_path / "farm"
    shutil.copytree(shots.parent, farm, ignore=shutil.ignore_patterns("farm"))
    assert main(["batch", str(shots), "--quiet"]) == 0
    job = farm / "job.yaml"
    inbetween = Path(sys.executable).with_name("inbetween")
    assert main(["batch", str(farm / "shots.yaml"), "--export-openjd", str(job), "--group-size", "2",
                 "--command", str(inbetween)]) == 0
    openjd = shutil.which("openjd") or str(Path(sys.executable).with_name("openjd"))
    run = subprocess.run([openjd, "run", str(job), "--step", "InBetween"], capture_output=True, text=True, cwd=farm)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Chunks run: 2" in run.stdout + run.stderr
    assert _frames(farm / "out") == _frames(shots.parent / "out")

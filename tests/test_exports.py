"""Export writers: every format read back, atomic writes, and refusing to overwrite."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image, ImageSequence
from psd_tools import PSDImage

from engine import exports
from engine.api import FrameResult
from engine.exports import ExportError, ExportExistsError

W, H = 48, 36


def disc(cx: float, cy: float, colour, width: int = W, height: int = H, transparent: bool = True) -> np.ndarray:
    """An anti-aliased disc with a dark rim, on transparency or on a light backdrop."""
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    d = np.hypot(xs - cx, ys - cy) - 9.0
    image = np.zeros((height, width, 4), np.uint8)
    if not transparent:
        image[:] = (230, 226, 210, 255)
    inside = np.clip(0.5 - d, 0, 1)[..., None]
    rim = np.clip(1.5 - np.abs(d), 0, 1)[..., None]
    rgba = np.concatenate([np.broadcast_to(np.asarray(colour, float) / 255, (height, width, 3)),
                           np.ones((height, width, 1))], -1)
    out = image.astype(float) / 255 * (1 - inside) + rgba * inside
    ink = np.array([0.15, 0.1, 0.2, 1.0])
    out = out * (1 - rim) + ink * rim
    return np.rint(out * 255).astype(np.uint8)


def timeline_on_twos(transparent: bool = True, width: int = W, height: int = H) -> list[FrameResult]:
    """Keys at 0 and 8 with in-betweens at 2, 4, 6 held for two frames each (the engine's output)."""
    drawings = {f: disc(8 + f * 4, 10 + f * 2, (220, 60 + f * 20, 70), width, height, transparent)
                for f in range(0, 9, 2)}
    out = []
    for f in range(9):
        if f in drawings:
            out.append(FrameResult(f, drawings[f], "key" if f in (0, 8) else "inbetween", f, None, None))
        else:
            out.append(FrameResult(f, drawings[f - 1], "hold", f - 1))
    return out


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == "RGBA"
        return np.asarray(im)


# --- the timeline ----------------------------------------------------------------------------


def test_timeline_accepts_results_and_fills_gaps_with_holds():
    frames = timeline_on_twos()
    drawings_only = [f for f in frames if f.kind != "hold"]
    filled = exports.timeline({f.frame: f for f in reversed(drawings_only)})
    assert [f.frame for f in filled] == list(range(9))
    assert [(f.kind, f.drawing) for f in filled] == [(f.kind, f.drawing) for f in frames]
    assert filled[3].image is filled[2].image
    assert [f.label for f in filled[:4]] == ["f0000 key", "f0001 hold of f0000", "f0002 in-between",
                                             "f0003 hold of f0002"]
    assert [(f.frame, n) for f, n in exports.exposures(filled)] == [(0, 2), (2, 2), (4, 2), (6, 2), (8, 1)]


@pytest.mark.parametrize(
    "bad, message",
    [
        (FrameResult(3, np.zeros((H, W, 3), np.uint8), "inbetween", 3), "frame 3: expected an RGBA uint8"),
        (FrameResult(3, np.zeros((H, W, 4), np.float32), "inbetween", 3), "frame 3: expected an RGBA uint8"),
        (FrameResult(3, np.zeros((H + 1, W, 4), np.uint8), "inbetween", 3), "frame 3 is 48x37"),
        (FrameResult(3, np.zeros((H, W, 4), np.uint8), "tween", 3), "frame 3: unknown kind 'tween'"),
        (FrameResult(0, np.zeros((H, W, 4), np.uint8), "key", 0), "frame 0 is given twice"),
    ],
)
def test_timeline_names_the_bad_frame(bad, message):
    good = FrameResult(0, np.zeros((H, W, 4), np.uint8), "key", 0)
    with pytest.raises(ExportError, match=message):
        exports.timeline([good, bad])


def test_nothing_to_export_and_bad_names_are_refused(tmp_path):
    with pytest.raises(ExportError, match="no frames"):
        exports.timeline([])
    for name in ["", "../up", "a/b", ".hidden", "what?"]:
        with pytest.raises(ExportError, match="not usable as a file name"):
            exports.SequenceOptions(name=name)
    assert listing(tmp_path) == []


# --- PNG sequences ---------------------------------------------------------------------------


def test_png_sequence_with_duplicated_holds_round_trips(tmp_path):
    frames = timeline_on_twos()
    written = exports.write_png_sequence(frames, tmp_path / "out", exports.SequenceOptions(name="ball"))
    assert written.timing_sheet is None and len(written) == 9
    assert listing(tmp_path / "out") == [f"ball_{n:04d}.png" for n in range(1, 10)]
    assert written.frames == [tmp_path / "out" / f"ball_{n:04d}.png" for n in range(1, 10)]
    for f, path in zip(frames, written.frames):
        assert np.array_equal(read_png(path), f.image), path.name


def test_png_sequence_padding_and_start_number(tmp_path):
    options = exports.SequenceOptions(name="walk", padding=3, start_number=101)
    written = exports.write_png_sequence(timeline_on_twos(), tmp_path, options)
    assert [p.name for p in written.frames] == [f"walk_{n}.png" for n in range(101, 110)]
    with pytest.raises(ExportError, match="need 3 digits but padding is 2"):
        exports.write_png_sequence(timeline_on_twos(), tmp_path / "x", exports.SequenceOptions("walk", 2, 95))
    with pytest.raises(ExportError, match="padding must be 1 to 9"):
        exports.SequenceOptions(padding=0)
    with pytest.raises(ExportError, match="start number must not be negative"):
        exports.SequenceOptions(start_number=-1)


def test_png_sequence_without_holds_writes_a_timing_sheet(tmp_path):
    frames = timeline_on_twos()
    options = exports.SequenceOptions(name="ball", duplicate_holds=False, start_number=0)
    written = exports.write_png_sequence(frames, tmp_path, options)
    assert len(written) == 6
    assert [p.name for p in written.frames] == [f"ball_{n:04d}.png" for n in (0, 2, 4, 6, 8)]
    assert written.timing_sheet == tmp_path / "ball_timing.csv"
    rows = exports.read_timing_sheet(written.timing_sheet)
    assert [r["frame"] for r in rows] == list(range(9))
    assert [r["kind"] for r in rows] == ["key", "hold", "inbetween", "hold", "inbetween", "hold", "inbetween", "hold",
                                         "key"]
    assert rows[5] == {"frame": 5, "file": "ball_0004.png", "kind": "hold", "drawing": 4}
    for r in rows:  # every timeline frame shows the right picture through the sheet
        assert np.array_equal(read_png(tmp_path / r["file"]), frames[r["frame"]].image)


def test_png_sequence_refuses_to_overwrite_and_names_the_file(tmp_path):
    (tmp_path / "ball_0004.png").write_bytes(b"the artist's own file")
    before = listing(tmp_path)
    with pytest.raises(ExportExistsError) as info:
        exports.write_png_sequence(timeline_on_twos(), tmp_path, exports.SequenceOptions(name="ball"))
    assert info.value.path == tmp_path / "ball_0004.png"
    assert "ball_0004.png" in str(info.value)
    assert listing(tmp_path) == before
    assert (tmp_path / "ball_0004.png").read_bytes() == b"the artist's own file"

    exports.write_png_sequence(timeline_on_twos(), tmp_path, exports.SequenceOptions(name="ball", overwrite=True))
    assert np.array_equal(read_png(tmp_path / "ball_0004.png"), timeline_on_twos()[3].image)


def test_png_sequence_failure_while_encoding_leaves_nothing(tmp_path, monkeypatch):
    (tmp_path / "keep.txt").write_text("unrelated")
    real_save = exports._save_png
    calls = []

    def failing_save(image, path):
        calls.append(path)
        if len(calls) == 4:
            raise OSError("disk full (simulated)")
        real_save(image, path)

    monkeypatch.setattr(exports, "_save_png", failing_save)
    with pytest.raises(ExportError, match="simulated"):
        exports.write_png_sequence(timeline_on_twos(), tmp_path, exports.SequenceOptions(name="ball"))
    assert len(calls) == 4
    assert listing(tmp_path) == ["keep.txt"], "no frames and no temporary folder may be left"


def test_png_sequence_failure_while_moving_takes_back_moved_frames(tmp_path, monkeypatch):
    (tmp_path / "keep.txt").write_text("unrelated")  # a folder with other work: frames move in one by one
    real_replace = exports.os.replace
    calls = []

    def failing_replace(src, dst):
        calls.append(dst)
        if len(calls) == 5:
            raise OSError("device went away (simulated)")
        real_replace(src, dst)

    monkeypatch.setattr(exports.os, "replace", failing_replace)
    with pytest.raises(ExportError, match="simulated"):
        exports.write_png_sequence(timeline_on_twos(), tmp_path, exports.SequenceOptions("ball", duplicate_holds=False))
    assert listing(tmp_path) == ["keep.txt"]


def test_sequence_target_is_checked_from_the_timing_alone(tmp_path):
    from engine.core.planning import frame_assignments, plan_timeline

    planned = list(frame_assignments(plan_timeline([0, 8], exposure=2)).values())  # no images yet
    options = exports.SequenceOptions(name="hop", duplicate_holds=False)
    paths = exports.check_sequence_target(tmp_path, planned, options)
    assert [p.name for p in paths] == [f"hop_{n:04d}.png" for n in (1, 3, 5, 7, 9)] + ["hop_timing.csv"]
    assert listing(tmp_path) == []
    (tmp_path / "hop_timing.csv").write_text("frame,file,kind,drawing\n")
    with pytest.raises(ExportExistsError, match="hop_timing.csv"):
        exports.check_sequence_target(tmp_path, planned, options)
    assert exports.check_sequence_target(tmp_path, planned, exports.SequenceOptions("hop", overwrite=True))


# --- single files ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["contact", "gif", "mp4", "psd"])
def test_single_file_writers_refuse_to_overwrite(tmp_path, fmt):
    target = exports.export_targets(tmp_path, "ball", [fmt])[fmt]
    target.write_bytes(b"older export")
    writer = {"contact": exports.write_contact_sheet, "gif": exports.write_gif, "mp4": exports.write_mp4,
              "psd": exports.write_psd}[fmt]
    with pytest.raises(ExportExistsError, match=target.name):
        writer(timeline_on_twos(), target)
    assert target.read_bytes() == b"older export"
    writer(timeline_on_twos(), target, overwrite=True)
    assert target.read_bytes() != b"older export"
    assert listing(tmp_path) == [target.name]


def test_single_file_failure_leaves_no_file(tmp_path, monkeypatch):
    def failing_save(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"half a PSD")
        raise OSError("simulated")

    monkeypatch.setattr(PSDImage, "save", failing_save)
    with pytest.raises(ExportError, match="simulated"):
        exports.write_psd(timeline_on_twos(), tmp_path / "ball.psd")
    assert listing(tmp_path) == []


def test_contact_sheet_grid_labels_and_checkerboard(tmp_path):
    frames = timeline_on_twos()
    drawings = exports.write_contact_sheet(frames, tmp_path / "drawings.png", columns=3)
    every = exports.write_contact_sheet(frames, tmp_path / "every.png", columns=3, include_holds=True)
    with Image.open(drawings) as a, Image.open(every) as b:
        sheet, all_frames = np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB"))
    pad, label = 10, 22
    assert sheet.shape[0] == pad + 2 * (H + label + pad)  # 5 drawings in 3 columns: 2 rows
    assert all_frames.shape[0] == pad + 3 * (H + label + pad)  # 9 frames: 3 rows
    cell_w = (sheet.shape[1] - pad) // 3 - pad
    assert cell_w >= W
    first_cell = sheet[pad : pad + H, pad : pad + W]
    corner = first_cell[-8:, -16:]  # transparent in frame 0: checks of two greys
    assert len({tuple(c) for c in corner.reshape(-1, 3)}) == 2
    assert np.array_equal(first_cell[10, 8], frames[0].image[10, 8, :3])  # inside the disc: the drawing itself
    for column in range(3):  # frame number and kind are written under each cell, inside the cell's width
        x = pad + column * (cell_w + pad)
        strip = sheet[pad + H + 2 : pad + H + label, x + 14 : x + cell_w]
        assert (strip.min(axis=-1) < 100).sum() > 20
        assert (sheet[pad + H + 2 : pad + H + label, x + cell_w + 1 : x + cell_w + pad] > 240).all()


def test_contact_sheet_of_opaque_frames_has_no_checkerboard(tmp_path):
    frames = timeline_on_twos(transparent=False)
    path = exports.write_contact_sheet(frames, tmp_path / "s.png")
    with Image.open(path) as im:
        cell = np.asarray(im.convert("RGB"))[10 : 10 + H, 10 : 10 + W]
    assert np.array_equal(cell[-8:, -16:], frames[0].image[-8:, -16:, :3])


def test_gif_holds_become_durations_over_a_background(tmp_path):
    frames = timeline_on_twos()
    path = exports.write_gif(frames, tmp_path / "ball.gif", fps=12, background=(255, 255, 255))
    with Image.open(path) as im:
        assert im.info["loop"] == 0
        shown = [(np.asarray(f.convert("RGBA")), f.info["duration"]) for f in ImageSequence.Iterator(im)]
    assert len(shown) == 5
    assert [d for _, d in shown] == [170, 160, 170, 170, 80]  # 2/12 s per drawing, 1/12 s for the last key
    assert sum(d for _, d in shown) == 750  # 9 frames at 12 fps
    for (picture, _), f in zip(shown, [f for f in frames if f.kind != "hold"]):
        assert (picture[..., 3] == 255).all()
        expected = exports.over(f.image, (255, 255, 255)).astype(int)
        assert np.abs(picture[..., :3].astype(int) - expected).mean() < 2.0


def test_gif_keeps_transparency_as_one_bit_alpha(tmp_path):
    frames = timeline_on_twos()
    empty = FrameResult(9, np.zeros((H, W, 4), np.uint8), "key", 9)
    path = exports.write_gif(frames + [empty], tmp_path / "ball.gif", fps=24, background=None, loop=3)
    with Image.open(path) as im:
        assert im.info["loop"] == 3
        shown = [np.asarray(f.convert("RGBA")) for f in ImageSequence.Iterator(im)]
    drawings = [f.image for f in frames if f.kind != "hold"] + [empty.image]
    assert len(shown) == len(drawings) == 6
    for picture, image in zip(shown, drawings):
        assert np.array_equal(picture[..., 3] == 255, image[..., 3] >= 128)
        assert ((picture[..., 3] == 0) | (picture[..., 3] == 255)).all()


def test_gif_rejects_frame_rates_players_cannot_show(tmp_path):
    with pytest.raises(ExportError, match="at most 50 fps"):
        exports.write_gif(timeline_on_twos(), tmp_path / "a.gif", fps=60)


def test_mp4_has_every_timeline_frame_at_even_size(tmp_path):
    frames = timeline_on_twos(width=47, height=35)
    path = exports.write_mp4(frames, tmp_path / "ball.mp4", fps=12, background=(255, 255, 255))
    reader = imageio.get_reader(path, format="FFMPEG")
    try:
        meta = reader.get_meta_data()
        video = [np.asarray(f) for f in reader]
    finally:
        reader.close()
    assert meta["fps"] == 12 and meta["size"] == (48, 36)
    assert len(video) == 9
    for picture, f in zip(video, frames):
        expected = exports.over(f.image, (255, 255, 255)).astype(int)
        assert np.abs(picture[:35, :47].astype(int) - expected).mean() < 6.0
    assert video[0][35, :].min() > 230 and video[0][:, 47].min() > 230, "padding is background, not art"


def test_psd_layers_bottom_first_named_by_frame_and_kind(tmp_path):
    frames = timeline_on_twos()
    path = exports.write_psd(frames, tmp_path / "ball.psd")
    psd = PSDImage.open(path)
    assert psd.size == (W, H)
    names = [layer.name for layer in psd]  # psd-tools lists layers bottom to top
    assert names == ["f0000 key", "f0002 in-between", "f0004 in-between", "f0006 in-between", "f0008 key"]
    for layer, f in zip(psd, [f for f in frames if f.kind != "hold"]):
        assert layer.bbox == (0, 0, W, H)
        assert np.array_equal(np.asarray(layer.topil()), f.image), layer.name

    with_holds = PSDImage.open(exports.write_psd(frames, tmp_path / "all.psd", include_holds=True))
    assert [layer.name for layer in with_holds][:3] == ["f0000 key", "f0001 hold of f0000", "f0002 in-between"]
    assert len(with_holds) == 9


def test_export_all_checks_every_destination_before_writing(tmp_path):
    (tmp_path / "ball.mp4").write_bytes(b"older export")
    with pytest.raises(ExportExistsError, match="ball.mp4"):
        exports.export_all(timeline_on_twos(), tmp_path, "ball", exports.FORMATS)
    assert listing(tmp_path) == ["ball.mp4"]

    written = exports.export_all(timeline_on_twos(), tmp_path, "ball", ["png", "contact", "gif", "psd"],
                                 duplicate_holds=False)
    assert written["png"].timing_sheet == tmp_path / "ball_timing.csv"
    assert listing(tmp_path) == sorted(["ball.mp4", "ball.gif", "ball.psd", "ball_contact.png", "ball_timing.csv"]
                                       + [f"ball_{n:04d}.png" for n in (1, 3, 5, 7, 9)])
    with pytest.raises(ExportError, match="unknown export format 'webm'"):
        exports.export_targets(tmp_path, "ball", ["webm"])


def test_exports_import_neither_torch_nor_qt():
    code = (
        "import sys, engine.exports\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('torch', 'PySide6', 'PyQt5', 'PyQt6', 'qtpy')]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


# --- failures while replacing, and crashes (engine.core.files.publish) ----------------------


def _other_timeline() -> list[FrameResult]:
    """The same timing with other drawings: what an overwrite replaces the first export with."""
    return [FrameResult(f.frame, 255 - f.image, f.kind, f.drawing) for f in timeline_on_twos()]


def test_failed_overwrite_puts_the_replaced_frames_back(tmp_path):
    exports.write_png_sequence(timeline_on_twos(), tmp_path, exports.SequenceOptions("ball"))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    blocked = "ball_0005.png"  # a folder now stands where the fifth frame goes
    (tmp_path / blocked).unlink()
    (tmp_path / blocked).mkdir()
    with pytest.raises(ExportError, match="ball_0005.png is a folder"):
        exports.write_png_sequence(_other_timeline(), tmp_path, exports.SequenceOptions("ball", overwrite=True))
    for name, data in before.items():
        if name != blocked:
            assert (tmp_path / name).read_bytes() == data, f"{name} was lost or changed"
    assert listing(tmp_path) == sorted(before)


def test_overwrite_failing_at_a_rename_restores_every_replaced_frame(tmp_path, monkeypatch):
    exports.write_png_sequence(timeline_on_twos(), tmp_path, exports.SequenceOptions("ball"))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real_replace = os.replace
    renames = []

    def failing_replace(src, dst):
        renames.append(dst)
        if len(renames) == 7:
            raise OSError(errno.EIO, "input/output error (simulated)", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(ExportError, match="simulated"):
        exports.write_png_sequence(_other_timeline(), tmp_path, exports.SequenceOptions("ball", overwrite=True))
    monkeypatch.setattr(os, "replace", real_replace)
    assert len(renames) >= 7
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


KILL_AT_RENAME = """
import os, signal, sys
import numpy as np
from engine import exports
from engine.api import FrameResult
folder, kill_at, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
renames = [0]
real_replace, real_rename = os.replace, os.rename
def killing(real):
    def rename(src, dst):
        if str(dst).endswith(".png") or os.path.basename(str(dst)) == os.path.basename(folder):
            renames[0] += 1
            if renames[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return real(src, dst)
    return rename
os.replace, os.rename = killing(real_replace), killing(real_rename)
image = np.zeros((8, 8, 4), np.uint8)
frames = [FrameResult(f, image + f % 200, "key" if f in (0, count - 1) else "inbetween", f) for f in range(count)]
exports.write_png_sequence(frames, folder, exports.SequenceOptions("walk"))
print("finished")
"""


def _killed_export(folder: Path, kill_at: int, count: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", KILL_AT_RENAME, str(folder), str(kill_at), str(count)],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])


def test_kill_while_frames_move_in_leaves_no_partial_sequence(tmp_path):
    """kill -9 in the middle of moving 60 frames into a folder that holds other work: the next
    export into that folder rolls the interrupted one back, says so, and then succeeds whole."""
    folder = tmp_path / "shot"
    folder.mkdir()
    (folder / "notes.txt").write_text("the animator's own file")
    killed = _killed_export(folder, kill_at=25, count=60)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    rerun = subprocess.run([sys.executable, "-c", KILL_AT_RENAME.replace("os.replace, os.rename = ", "_ = "),
                            str(folder), "0", "60"], capture_output=True, text=True, timeout=120,
                           cwd=Path(__file__).resolve().parents[1])
    assert rerun.returncode == 0, rerun.stderr
    assert "rolled back an interrupted export" in rerun.stderr
    assert listing(folder) == ["notes.txt"] + [f"walk_{n:04d}.png" for n in range(1, 61)]
    assert (folder / "notes.txt").read_text() == "the animator's own file"
    assert read_png(folder / "walk_0060.png")[0, 0, 0] == 59


def test_recovery_alone_leaves_the_folder_as_before_the_killed_export(tmp_path):
    from engine.core import files

    folder = tmp_path / "shot"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    assert _killed_export(folder, kill_at=10, count=30).returncode == -signal.SIGKILL
    assert any(name.endswith(".staging") for name in listing(folder))
    report = files.recover_interrupted(folder)
    assert len(report) == 1 and "rolled back" in report[0]
    assert listing(folder) == ["notes.txt"]


def test_kill_while_publishing_into_a_new_folder_shows_all_or_nothing(tmp_path):
    """Into a folder that does not exist yet the sequence is staged beside it and renamed in one
    step: killed just before that step, nothing appears; the next run cleans the staging up."""
    folder = tmp_path / "new_shot"
    killed = _killed_export(folder, kill_at=1, count=40)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not folder.exists()
    assert [p for p in listing(tmp_path) if not p.endswith(".staging")] == []
    exports.write_png_sequence(timeline_on_twos(), folder, exports.SequenceOptions("walk"))
    assert listing(tmp_path) == ["new_shot"]
    assert len(listing(folder)) == 9

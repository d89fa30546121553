"""The desktop app's document model, files and undoable edits (no engine needed)."""

from __future__ import annotations

import json
import os
import zipfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from PIL import Image

from desktop import commands, importers, storage
from desktop.project import Drawing, InbetweenCell, KeyCell, Project, ProjectError, SketchCell, Timing


def disc(width: int, height: int, cx: int, colour=(20, 20, 20, 255)) -> np.ndarray:
    """A filled dark disc on transparent paper: a stand-in keyframe with a clear position."""
    yy, xx = np.mgrid[:height, :width]
    image = np.zeros((height, width, 4), np.uint8)
    image[(xx - cx) ** 2 + (yy - height // 2) ** 2 < (height // 5) ** 2] = colour
    return image


def three_key_project(gap: int = 8) -> Project:
    project = Project(name="hop", size=(64, 40))
    for i, cx in enumerate((10, 32, 54)):
        project.keys[i * gap] = KeyCell(Drawing(disc(64, 40, cx)), "key", f"key_{i}.png")
    return project


def save_png(path, image) -> None:
    Image.fromarray(image, "RGBA").save(path)


# ---- project model -------------------------------------------------------------------------------


def test_segments_follow_planning_and_per_segment_exposure():
    project = three_key_project()
    segs = project.segments()
    assert [(s.start, s.end) for s in segs] == [(0, 8), (8, 16)]
    assert segs[0].planned_frames == list(range(1, 8))
    project.segment_timing[8] = Timing(exposure=2)
    segs = project.segments()
    assert segs[0].planned_frames == list(range(1, 8))
    assert segs[1].planned_frames == [10, 12, 14]
    assert segs[1].plan.taus == pytest.approx([0.25, 0.5, 0.75])


def test_unplannable_segment_reports_why_instead_of_raising():
    project = three_key_project()
    project.segment_timing[0] = Timing(count=20)
    seg = project.segments()[0]
    assert seg.plan is None and "do not fit" in seg.error


def test_shown_drawing_holds_until_generated_and_uses_planned_inbetweens():
    project = three_key_project()
    project.segment_timing[0] = Timing(exposure=2)
    # before generating: the keys play as a pose test
    assert project.shown_drawing(3) == ("hold", 0)
    blank = Drawing(disc(64, 40, 20))
    project.inbetweens[2] = InbetweenCell(blank, 0.25, (0, 8))
    project.inbetweens[3] = InbetweenCell(blank, 3 / 8, (0, 8))  # left over from generating on ones
    assert project.shown_drawing(2) == ("inbetween", 2)
    assert project.shown_drawing(3) == ("hold", 2)  # on twos, frame 3 holds drawing 2
    assert project.inbetween_state(3) == "off-plan"
    assert project.shown_drawing(5) == ("hold", 2)  # drawing 4 not generated yet
    assert project.shown_drawing(20) == ("hold", 16)
    assert project.shown_drawing(-1) is None


def test_stale_when_keys_or_spacing_change():
    project = three_key_project()
    project.inbetweens[4] = InbetweenCell(Drawing(disc(64, 40, 20)), 0.5, (0, 8))
    assert project.inbetween_state(4) == "generated"
    project.segment_timing[0] = Timing(spacing="ease-in")
    assert project.inbetween_state(4) == "stale"
    assert project.segment_state(project.segments()[0]) == "stale"


def test_onion_skin_neighbours_are_drawings_nearest_first():
    project = three_key_project()
    project.inbetweens[4] = InbetweenCell(Drawing(disc(64, 40, 20)), 0.5, (0, 8))
    project.inbetweens[6] = InbetweenCell(Drawing(disc(64, 40, 25)), 0.75, (0, 8))
    earlier, later = project.drawings_around(6, 2, 2)
    assert earlier == [4, 0] and later == [8, 16]
    earlier, later = project.drawings_around(5, 2, 1)  # frame 5 has no drawing: 4 is the one before
    assert earlier == [4, 0] and later == [6]
    earlier, later = project.drawings_around(8, 1, 1)
    assert earlier == [6] and later == [16]


def test_drawings_are_immutable_and_content_hashed():
    image = disc(16, 16, 8)
    a, b = Drawing(image), Drawing(image.copy())
    assert a.digest == b.digest
    image[0, 0] = 255  # the caller's array is copied, not shared
    assert a.digest == b.digest
    with pytest.raises(ValueError):
        a.image[0, 0] = 1
    with pytest.raises(ProjectError, match="RGBA"):
        Drawing(np.zeros((4, 4, 3), np.uint8))


# ---- saving and opening --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["shot.inbetween", "shot_folder"])
def test_save_load_round_trip(tmp_path, name):
    project = three_key_project()
    project.keys[8] = KeyCell(project.keys[8].drawing, "breakdown", "key_1.png")
    project.sketches[4] = SketchCell(Drawing(disc(64, 40, 22, (58, 111, 216, 255))))
    project.inbetweens[2] = InbetweenCell(Drawing(disc(64, 40, 16)), 0.25, (0, 8), "accepted", {"backend": "rife"})
    project.segment_timing[8] = Timing(count=3, spacing=(0.1, 0.5, 0.9))
    project.fps, project.loop, project.playback = 24, False, (0, 12)
    project.settings["seed"] = 99
    path = storage.save_project(project, tmp_path / name)
    loaded = storage.load_project(path)
    assert loaded.size == (64, 40) and loaded.fps == 24 and loaded.loop is False and loaded.playback == (0, 12)
    assert loaded.keys[8].kind == "breakdown" and loaded.keys[8].source == "key_1.png"
    assert loaded.segment_timing[8] == Timing(count=3, spacing=(0.1, 0.5, 0.9))
    assert loaded.settings["seed"] == 99
    for track in ("keys", "sketches", "inbetweens"):
        for frame, cell in getattr(project, track).items():
            assert np.array_equal(getattr(loaded, track)[frame].drawing.image, cell.drawing.image)
    assert loaded.inbetweens[2].status == "accepted" and loaded.inbetweens[2].provenance == {"backend": "rife"}


def test_folder_save_is_incremental_and_removes_unused_files(tmp_path):
    project = three_key_project()
    project.sketches[4] = SketchCell(Drawing(disc(64, 40, 22)))
    folder = tmp_path / "shot"
    storage.save_project(project, folder)
    key_file = next((folder / "keys").glob("0000-*.png"))
    mtime = key_file.stat().st_mtime_ns
    project.sketches[4] = SketchCell(Drawing(disc(64, 40, 30)))
    storage.save_project(project, folder)
    assert key_file.stat().st_mtime_ns == mtime  # unchanged drawings are not rewritten
    assert len(list((folder / "sketches").glob("*.png"))) == 1
    assert not list(folder.rglob("*.tmp"))


def test_load_names_missing_file_and_foreign_zip(tmp_path):
    folder = tmp_path / "shot"
    storage.save_project(three_key_project(), folder)
    victim = next((folder / "keys").glob("0008-*.png"))
    victim.unlink()
    with pytest.raises(ProjectError, match=r"missing keys/0008-.*frame 8"):
        storage.load_project(folder)
    other = tmp_path / "other.inbetween"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("project.json", json.dumps({"format": "something-else"}))
    with pytest.raises(ProjectError, match="not an Inbetweener project"):
        storage.load_project(other)


def test_refuses_to_save_into_a_folder_of_other_files(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(ProjectError, match="other files"):
        storage.save_project(three_key_project(), tmp_path / "photos")


# ---- importers -----------------------------------------------------------------------------------


def test_keyframe_images_in_natural_order_spaced_for_inbetweens(tmp_path):
    for name, cx in (("key10.png", 54), ("key2.png", 32), ("key1.png", 10)):
        save_png(tmp_path / name, disc(64, 40, cx))
    keys = importers.keyframe_images(list(tmp_path.iterdir()), inbetweens=3, exposure=2)
    assert [(k.frame, k.source) for k in keys] == [(0, "key1.png"), (8, "key2.png"), (16, "key10.png")]


def test_keyframe_images_of_different_sizes_are_refused_by_name(tmp_path):
    save_png(tmp_path / "a.png", disc(64, 40, 10))
    save_png(tmp_path / "b.png", disc(60, 40, 10))
    with pytest.raises(ProjectError, match=r"image sizes differ: a.png is 64×40 but b.png is 60×40"):
        importers.keyframe_images([tmp_path / "a.png", tmp_path / "b.png"])
    keys = importers.fit_to_first(
        [importers.ImportedKey(0, disc(64, 40, 10), "a"), importers.ImportedKey(8, disc(60, 40, 10), "b")]
    )
    assert keys[1].image.shape == (40, 64, 4)


def test_png_sequence_numbers_give_timing_and_repeats_are_holds(tmp_path):
    a, b = disc(64, 40, 10), disc(64, 40, 50)
    for number, image in ((1, a), (2, a), (9, b), (17, a)):
        save_png(tmp_path / f"walk_{number:04d}.png", image)
    keys = importers.png_sequence(tmp_path)
    assert [k.frame for k in keys] == [0, 8, 16]


def test_psd_layers_bottom_first_including_hidden(tmp_path):
    from psd_tools import PSDImage
    from psd_tools.api.layers import PixelLayer

    psd = PSDImage.new("RGBA", (64, 40))
    for name, cx in (("pose A", 10), ("pose B", 32), ("pose C", 54)):
        layer = PixelLayer.frompil(Image.fromarray(disc(64, 40, cx), "RGBA"), psd, name=name)
        layer.visible = name != "pose B"
    psd.save(tmp_path / "anim.psd")
    keys = importers.psd_layers(tmp_path / "anim.psd", inbetweens=7)
    assert [(k.frame, k.source) for k in keys] == [(0, "pose A"), (8, "pose B"), (16, "pose C")]
    assert keys[1].image[20, 32, 3] == 255  # the hidden layer's drawing is there
    assert keys[0].image[20, 32, 3] == 0


def test_psd_layer_numbers_place_keys(tmp_path):
    from psd_tools import PSDImage
    from psd_tools.api.layers import PixelLayer

    psd = PSDImage.new("RGBA", (64, 40))
    for name, cx in (("0000 key", 10), ("0006 key", 54)):
        PixelLayer.frompil(Image.fromarray(disc(64, 40, cx), "RGBA"), psd, name=name)
    psd.save(tmp_path / "keys.psd")
    assert [k.frame for k in importers.psd_layers(tmp_path / "keys.psd")] == [0, 6]


# ---- undoable edits ------------------------------------------------------------------------------


@pytest.fixture
def doc(qapp):
    from desktop.document import Document

    return Document(three_key_project())


def test_mark_promote_unmark_and_undo(doc):
    project = doc.project
    project.inbetweens[4] = InbetweenCell(Drawing(disc(64, 40, 20)), 0.5, (0, 8))
    doc.push(commands.mark_key(doc, 4, "breakdown"))
    assert project.keys[4].kind == "breakdown" and 4 not in project.inbetweens
    assert [s.start for s in project.segments()] == [0, 4, 8]
    doc.push(commands.unmark_key(doc, 4))
    assert 4 not in project.keys and 4 in project.sketches  # the drawing is kept as a sketch
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert 4 not in project.keys and 4 in project.inbetweens and 4 not in project.sketches
    with pytest.raises(ProjectError, match="nothing is drawn on frame 5"):
        commands.mark_key(doc, 5)


def test_move_key_keeps_order_and_carries_segment_timing(doc):
    project = doc.project
    project.segment_timing[8] = Timing(exposure=2)
    doc.push(commands.move_key(doc, 8, 6))
    assert project.key_frames() == [0, 6, 16] and project.segment_timing == {6: Timing(exposure=2)}
    with pytest.raises(ProjectError, match="not between the neighbouring keys"):
        commands.move_key(doc, 6, 17)
    doc.undo_stack.undo()
    assert project.key_frames() == [0, 8, 16] and project.segment_timing == {8: Timing(exposure=2)}


def test_landing_results_replaces_segment_and_is_undoable(doc):
    project = doc.project
    old = InbetweenCell(Drawing(disc(64, 40, 12)), 1 / 8, (0, 8))
    project.inbetweens[1] = old
    results = {f: InbetweenCell(Drawing(disc(64, 40, 10 + 2 * f)), f / 8, (0, 8)) for f in (2, 4, 6)}
    doc.push(commands.land_results(doc, (0, 8), results, "Generate 0–8"))
    assert sorted(project.inbetweens) == [2, 4, 6]
    doc.push(commands.set_status(doc, [2, 4, 6], "accepted", "Accept"))
    assert project.segment_state(project.segments()[0]) == "partial"  # planned on ones: 7 drawings
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert project.inbetweens == {1: old}


def test_stroke_undo_removes_new_sketch_and_restores_old_patch(doc):
    project = doc.project
    before = np.zeros((4, 4, 4), np.uint8)
    after = np.full((4, 4, 4), 200, np.uint8)
    doc.push(commands.Stroke(doc, 3, (10, 10, 4, 4), before, after, created=True))
    assert project.sketches[3].drawing.image[12, 12, 0] == 200
    doc.push(commands.Stroke(doc, 3, (10, 10, 4, 4), after, before, created=False))
    assert project.sketches[3].drawing.image[12, 12, 0] == 0
    doc.undo_stack.undo()
    assert project.sketches[3].drawing.image[12, 12, 0] == 200
    doc.undo_stack.undo()
    assert 3 not in project.sketches


def test_set_timing_only_records_real_changes(doc):
    edit = commands.set_timing(doc, [0, 8], Timing())
    assert edit.timings == []  # already the default
    doc.push(commands.set_timing(doc, [8], Timing(exposure=3)))
    assert doc.project.timing_for(8).exposure == 3 and doc.project.timing_for(0).exposure == 1
    doc.undo_stack.undo()
    assert doc.project.segment_timing == {}


def test_export_frames_follow_playback_with_holds(qapp):
    from desktop.export_dialog import frames_to_export

    project = three_key_project()
    project.segment_timing[0] = Timing(exposure=2)
    for f in (2, 4, 6):
        project.inbetweens[f] = InbetweenCell(Drawing(disc(64, 40, 10 + 3 * f)), f / 8, (0, 8))
    frames = frames_to_export(project, (0, 9))
    assert [(f.frame, f.kind, f.drawing) for f in frames[:5]] == [
        (0, "key", 0), (1, "hold", 0), (2, "inbetween", 2), (3, "hold", 2), (4, "inbetween", 4)
    ]
    assert frames[9].kind == "hold" and frames[9].drawing == 8  # segment 8-16 not generated: key holds
    assert frames[3].image is project.inbetweens[2].drawing.image


# ---- hostile files: every one a ProjectError naming it, nothing decoded past the limits ------------


@pytest.mark.parametrize("hostile", ["claims_60000", "text_bomb"])
def test_importers_refuse_hostile_pngs_by_name(tmp_path, hostile):
    from tests.helpers import png_claiming, png_with_text_bomb

    save_png(tmp_path / "a.png", disc(64, 40, 10))
    bad = tmp_path / "b.png"
    bad.write_bytes(png_claiming(60000, 60000) if hostile == "claims_60000" else png_with_text_bomb())
    with pytest.raises(ProjectError, match="b.png"):
        importers.keyframe_images([tmp_path / "a.png", bad])


def test_psd_claiming_a_huge_canvas_is_refused_before_decoding(tmp_path):
    from tests.helpers import psd_claiming

    path = psd_claiming(tmp_path / "huge.psd", 10000, 10000)
    with pytest.raises(ProjectError, match="huge.psd: 10000x10000 is larger than the limit"):
        importers.psd_layers(path)


def _saved_folder_with(tmp_path, edit):
    """A saved folder project whose manifest `edit(manifest)` then changes."""
    folder = tmp_path / "shot"
    storage.save_project(three_key_project(), folder)
    manifest = json.loads((folder / "project.json").read_text())
    edit(manifest)
    (folder / "project.json").write_text(json.dumps(manifest))
    return folder


@pytest.mark.parametrize("where", ["parent", "absolute", "device", "dotdot_inside", "symlink"])
def test_manifest_paths_outside_the_project_are_refused(tmp_path, where):
    secret = tmp_path / "secret.png"
    save_png(secret, disc(64, 40, 10))  # a valid drawing of the right size: only the path is wrong
    name = {"parent": "../secret.png", "absolute": str(secret), "device": "/dev/zero",
            "dotdot_inside": "keys/../../secret.png", "symlink": "keys/0000-link.png"}[where]

    def point_at_secret(manifest):
        manifest["keys"][0]["file"] = name

    folder = _saved_folder_with(tmp_path, point_at_secret)
    if where == "symlink":
        (folder / "keys" / "0000-link.png").symlink_to(secret)
    with pytest.raises(ProjectError, match="keys\\[0\\].file|outside the project"):
        storage.load_project(folder)


@pytest.mark.parametrize("field, edit", [
    ("version", lambda m: m.update(version=[])),
    ("keys[1].frame", lambda m: m["keys"][1].pop("frame")),
    ("fps", lambda m: m.update(fps="fast")),
    ("keys[0].frame", lambda m: m["keys"][0].update(frame=1e30)),
    ("keys", lambda m: m.update(keys={"0": "keys/a.png"})),
    ("size", lambda m: m.update(size=[64, -40])),
    ("playback", lambda m: m.update(playback=[0, "end"])),
    ("settings", lambda m: m.update(settings=[1, 2])),
    ("segment_timing", lambda m: m.update(segment_timing={"eight": {}})),
    ("inbetweens[0].tau", lambda m: m["inbetweens"].append({"frame": 2, "tau": "half", "segment": [0, 8],
                                                             "file": m["keys"][0]["file"]})),
])
def test_manifest_with_wrong_types_is_a_project_error_naming_the_field(tmp_path, field, edit):
    folder = _saved_folder_with(tmp_path, edit)
    with pytest.raises(ProjectError) as caught:
        storage.load_project(folder)
    assert field in str(caught.value)


def test_a_manifest_that_inflates_past_the_limit_is_not_read(tmp_path):
    bomb = tmp_path / "bomb.inbetween"
    padding = " " * (storage.MAX_MANIFEST_BYTES + 1)
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("project.json", '{"format": "inbetweener-project", "version": 1}' + padding)
    assert bomb.stat().st_size < storage.MAX_MANIFEST_BYTES // 100
    with pytest.raises(ProjectError, match="bomb.inbetween.*larger than"):
        storage.load_project(bomb)


def test_a_project_drawing_with_a_text_bomb_is_a_project_error(tmp_path):
    from tests.helpers import png_with_text_bomb

    folder = tmp_path / "shot"
    storage.save_project(three_key_project(), folder)
    next((folder / "keys").glob("0008-*.png")).write_bytes(png_with_text_bomb())
    with pytest.raises(ProjectError, match="keys/0008-"):
        storage.load_project(folder)


KILL_WHILE_SAVING = """
import os, signal, sys
sys.path.insert(0, os.getcwd())
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from desktop import storage
from tests.test_desktop_model import three_key_project
real = os.replace
def killing(src, dst):
    os.kill(os.getpid(), signal.SIGKILL)
os.replace = killing
storage.save_project(three_key_project(gap=4), sys.argv[1])
"""


@pytest.mark.parametrize("name", ["shot.inbetween", "shot_folder"])
def test_temporary_files_of_a_crashed_save_are_cleaned_up_next_time(tmp_path, name):
    import signal
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / name
    storage.save_project(three_key_project(), path)
    killed = subprocess.run([sys.executable, "-c", KILL_WHILE_SAVING, str(path)], capture_output=True, text=True,
                            timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    leftovers = [p for p in tmp_path.rglob(".*") if p.name.endswith(".tmp") or ".tmp." in p.name]
    assert leftovers, "the killed save left no temporary file: the test did not kill it mid-write"
    loaded = storage.load_project(path)
    assert sorted(loaded.keys) == [0, 8, 16]  # the last good save, whole
    storage.save_project(loaded, path)
    assert [p for p in tmp_path.rglob(".*") if p.name.endswith(".tmp") or ".tmp." in p.name] == []

"""The studio's menus and toolbar: every action has an id in desktop.shortcuts, so all are rebindable.

Menus follow the animator's order of work: File, Edit, Frame (keys, exposure, playback range),
Play, View (onion skin, zoom) and Generate.
"""

from __future__ import annotations

from qtpy import QtWidgets


def build_menus(window) -> None:
    """Create the window's actions (window.actions_by_id), menus and toolbar widgets."""
    a = window.actions_by_id = {}

    def add(action_id, text, slot, **kw):
        a[action_id] = window.make_action(action_id, text, slot, **kw)
        return a[action_id]

    m = window.menuBar().addMenu("&File")
    m.addAction(add("new", "New from keyframe images…", window.new_from_images_dialog))
    m.addAction(window.make_action(None, "New from PNG sequence…", window.new_from_sequence_dialog))
    m.addAction(window.make_action(None, "New from layered PSD…", window.new_from_psd_dialog))
    m.addAction(add("open", "Open…", window.open_dialog))
    window.recent_menu = m.addMenu("Open recent")
    m.addSeparator()
    m.addAction(add("save", "Save", window.save))
    m.addAction(add("save_as", "Save as…", window.save_as_dialog))
    m.addSeparator()
    m.addAction(window.make_action(None, "Import sketch onto this frame…", window.import_sketch_dialog))
    m.addAction(add("export", "Export…", window.export_dialog))
    m.addSeparator()
    m.addAction(window.make_action(None, "Quit", window.close))

    m = window.menuBar().addMenu("&Edit")
    a["undo"] = window.make_action("undo", "Undo", lambda: window.doc.undo_stack.undo())
    a["redo"] = window.make_action("redo", "Redo", lambda: window.doc.undo_stack.redo())
    m.addAction(a["undo"])
    m.addAction(a["redo"])
    m.addSeparator()
    m.addAction(window.make_action(None, "Keyboard shortcuts…", window.shortcuts_dialog))

    m = window.menuBar().addMenu("F&rame")
    m.addAction(add("mark_key", "Mark as key", lambda: window.mark_key("key")))
    m.addAction(add("mark_breakdown", "Mark as breakdown", lambda: window.mark_key("breakdown")))
    m.addAction(add("unmark_key", "Unmark key (drawing becomes a sketch)", window.unmark_key))
    m.addSeparator()
    m.addAction(add("on_ones", "Segment on ones", lambda: window.set_exposure(1)))
    m.addAction(add("on_twos", "Segment on twos", lambda: window.set_exposure(2)))
    m.addAction(add("on_threes", "Segment on threes", lambda: window.set_exposure(3)))
    m.addSeparator()
    m.addAction(add("delete_sketch", "Delete sketch on this frame", lambda: window.delete_cell("sketches")))
    m.addAction(window.make_action(None, "Delete in-between on this frame", lambda: window.delete_cell("inbetweens")))
    m.addAction(add("select_all_segments", "Select all segments", window.select_all_segments))
    m.addSeparator()
    m.addAction(window.make_action(None, "Set playback start here", lambda: window.set_playback_edge(0)))
    m.addAction(window.make_action(None, "Set playback end here", lambda: window.set_playback_edge(1)))
    m.addAction(window.make_action(None, "Playback range: first to last key", window.reset_playback_range))

    m = window.menuBar().addMenu("&Play")
    m.addAction(add("play", "Play / pause", window.player.toggle))
    m.addAction(add("loop", "Loop", window.toggle_loop, checkable=True))
    m.addSeparator()
    m.addAction(add("prev_frame", "Previous frame", lambda: window.step(-1)))
    m.addAction(add("next_frame", "Next frame", lambda: window.step(+1)))
    m.addAction(add("prev_key", "Previous keyframe", lambda: window.jump_key(-1)))
    m.addAction(add("next_key", "Next keyframe", lambda: window.jump_key(+1)))
    m.addAction(add("first_frame", "First frame", lambda: window.jump_range_edge(0)))
    m.addAction(add("last_frame", "Last frame", lambda: window.jump_range_edge(1)))

    m = window.menuBar().addMenu("&View")
    m.addAction(add("onion", "Onion skin", window.toggle_onion, checkable=True))
    show_sketches = window.make_action(None, "Show sketches", window.toggle_sketches, checkable=True)
    show_sketches.setChecked(True)
    a["show_sketches"] = show_sketches
    m.addAction(show_sketches)
    m.addSeparator()
    m.addAction(add("zoom_in", "Zoom in", lambda: window.canvas.zoom_by(1.25)))
    m.addAction(add("zoom_out", "Zoom out", lambda: window.canvas.zoom_by(0.8)))
    m.addAction(add("zoom_fit", "Fit to window", window.canvas.fit))

    m = window.menuBar().addMenu("&Generate")
    m.addAction(add("generate", "Generate in-betweens", lambda: window.generate(window.panel.scope())))
    m.addAction(add("regenerate", "Regenerate this segment", lambda: window.generate("current")))
    m.addAction(add("cancel", "Cancel", window.cancel_generation))
    m.addAction(add("accept", "Accept in-betweens", window.accept_inbetweens))
    m.addSeparator()
    m.addAction(window.make_action(None, "Reconnect to the engine", window.connect_engine))

    tools = QtWidgets.QActionGroup(window)
    pen = add("pen", "Pen", lambda: window.set_tool("pen"), checkable=True)
    eraser = add("eraser", "Eraser", lambda: window.set_tool("eraser"), checkable=True)
    tools.addAction(pen)
    tools.addAction(eraser)
    pen.setChecked(True)

    bar = window.addToolBar("Tools")
    bar.setObjectName("tools")
    bar.addAction(pen)
    bar.addAction(eraser)
    window.size_spin = QtWidgets.QSpinBox()
    window.size_spin.setRange(1, 200)
    window.size_spin.setValue(int(window.canvas.brush.pen_size))
    window.size_spin.setToolTip("Pen / eraser size in pixels")
    window.size_spin.valueChanged.connect(window.set_brush_size)
    bar.addWidget(window.size_spin)
    bar.addSeparator()
    bar.addAction(a["onion"])
    window.onion_before = QtWidgets.QSpinBox()
    window.onion_before.setRange(0, 5)
    window.onion_before.setValue(window.canvas.onion.before)
    window.onion_before.setPrefix("◀ ")
    window.onion_before.setToolTip("Onion skin: drawings before (red)")
    window.onion_after = QtWidgets.QSpinBox()
    window.onion_after.setRange(0, 5)
    window.onion_after.setValue(window.canvas.onion.after)
    window.onion_after.setSuffix(" ▶")
    window.onion_after.setToolTip("Onion skin: drawings after (green)")
    window.onion_before.valueChanged.connect(window.set_onion_counts)
    window.onion_after.valueChanged.connect(window.set_onion_counts)
    bar.addWidget(window.onion_before)
    bar.addWidget(window.onion_after)
    bar.addSeparator()
    style = window.style()
    icons = {
        "first_frame": QtWidgets.QStyle.StandardPixmap.SP_MediaSkipBackward,
        "prev_key": QtWidgets.QStyle.StandardPixmap.SP_MediaSeekBackward,
        "prev_frame": QtWidgets.QStyle.StandardPixmap.SP_ArrowLeft,
        "play": QtWidgets.QStyle.StandardPixmap.SP_MediaPlay,
        "next_frame": QtWidgets.QStyle.StandardPixmap.SP_ArrowRight,
        "next_key": QtWidgets.QStyle.StandardPixmap.SP_MediaSeekForward,
        "last_frame": QtWidgets.QStyle.StandardPixmap.SP_MediaSkipForward,
    }
    for action_id, icon in icons.items():
        a[action_id].setIcon(style.standardIcon(icon))
        a[action_id].setToolTip(f"{a[action_id].text()} ({a[action_id].shortcut().toString()})")
        bar.addAction(a[action_id])
    bar.addAction(a["loop"])
    window.fps_spin = QtWidgets.QSpinBox()
    window.fps_spin.setRange(1, 120)
    window.fps_spin.setSuffix(" fps")
    window.fps_spin.setToolTip("Playback and export frame rate")
    window.fps_spin.valueChanged.connect(window.set_fps)
    bar.addWidget(window.fps_spin)
    a["onion"].setChecked(window.canvas.onion.enabled)
    window.refresh_recent()

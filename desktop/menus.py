"""The studio's menus and toolbar: every action has an id in desktop.shortcuts, so all are rebindable.

Menus follow the animator's order of work: File, Edit, Frame (keys, exposure, playback range),
Play, View (onion skin, zoom), Generate and Engine (reconnect, which Python runs it).
"""

from __future__ import annotations

from qtpy import QtCore, QtWidgets


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
    m.addAction(add("quit", "Quit", window.close))

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
    m.addAction(window.make_action(None, "Delete clean-up on this frame", lambda: window.delete_cell("cleanups")))
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
    tint = window.make_action(None, "Tint the onion skin", window.toggle_onion_tint, checkable=True,
                              tip="Neighbours in red/green (off: in their own colours, faded)")
    tint.setChecked(window.canvas.onion.tint)
    a["onion_tint"] = tint
    m.addAction(tint)
    checker = window.make_action(None, "Checkerboard behind transparent art", window.toggle_checkerboard,
                                 checkable=True)
    checker.setChecked(window.canvas.checkerboard)
    a["checkerboard"] = checker
    m.addAction(checker)
    m.addSeparator()
    m.addAction(add("zoom_in", "Zoom in", lambda: window.canvas.zoom_by(1.25)))
    m.addAction(add("zoom_out", "Zoom out", lambda: window.canvas.zoom_by(0.8)))
    m.addAction(add("zoom_fit", "Fit to window", window.canvas.fit))

    m = window.menuBar().addMenu("&Generate")
    m.addAction(add("generate", "Generate in-betweens", lambda: window.generate(window.panel.scope())))
    m.addAction(add("regenerate", "Regenerate this segment", lambda: window.generate("current")))
    m.addAction(add("cancel", "Cancel", window.cancel_generation))
    m.addAction(add("accept", "Accept in-betweens", window.accept_inbetweens))

    m = window.menuBar().addMenu("E&ngine")
    m.addAction(add("reconnect", "Reconnect", window.connect_engine))
    m.addAction(window.make_action(None, "Engine Python…", window.engine_python_dialog,
                                   tip="The Python of your Inbetweener folder (.venv/bin/python) that runs the engine"))
    m.addAction(window.make_action(None, "Use this app's own Python", lambda: window.set_engine_python("")))

    tools = QtWidgets.QActionGroup(window)
    tool_titles = {"pen": "Pen", "eraser": "Eraser", "fill": "Fill", "picker": "Colour picker"}
    tool_tips = {
        "pen": "Draw on the frame's clean-up layer (or its sketch)",
        "eraser": "Erase: on a clean-up layer it also takes away the generated lines beneath",
        "fill": "Fill an area of the frame with the clean-up colour (the keys' palette is on the right)",
        "picker": "Take the clean-up colour from the frame",
    }
    for tool, title in tool_titles.items():
        tools.addAction(add(tool, title, lambda _=False, t=tool: window.set_tool(t), checkable=True, tip=tool_tips[tool]))
    a["pen"].setChecked(True)

    bar = window.addToolBar("Tools")
    bar.setObjectName("tools")
    for tool in tool_titles:
        bar.addAction(a[tool])
    window.layer_combo = QtWidgets.QComboBox()
    window.layer_combo.addItem("Draw on: Clean-up", "cleanup")
    window.layer_combo.addItem("Draw on: Sketch", "sketch")
    window.layer_combo.setToolTip("Clean-up: correct the frame's drawing on its own layer (kept, exported). "
                                  "Sketch: rough lines that steer the next generation. Frames with no drawing yet "
                                  "always take sketches.")
    window.layer_combo.currentIndexChanged.connect(lambda _: window.set_draw_layer(window.layer_combo.currentData()))
    bar.addWidget(window.layer_combo)
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
    window.onion_opacity = QtWidgets.QSpinBox()
    window.onion_opacity.setRange(5, 100)
    window.onion_opacity.setSuffix(" %")
    window.onion_opacity.setValue(round(window.canvas.onion.opacity * 100))
    window.onion_opacity.setToolTip("Onion skin opacity of the nearest drawing (farther ones fade)")
    window.onion_before.valueChanged.connect(window.set_onion_counts)
    window.onion_after.valueChanged.connect(window.set_onion_counts)
    window.onion_opacity.valueChanged.connect(window.set_onion_counts)
    bar.addWidget(window.onion_before)
    bar.addWidget(window.onion_after)
    bar.addWidget(window.onion_opacity)
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

    window.palette_bar = QtWidgets.QToolBar("Clean-up colours")
    window.palette_bar.setObjectName("palette")
    window.addToolBar(QtCore.Qt.ToolBarArea.LeftToolBarArea, window.palette_bar)
    window.colour_button = QtWidgets.QToolButton()
    window.colour_button.setIconSize(QtCore.QSize(22, 22))
    window.colour_button.clicked.connect(window.choose_colour)
    window.palette_bar.addWidget(window.colour_button)
    window.palette_bar.addSeparator()
    window.palette_colours = []
    window.swatch_actions = []
    window.refresh_recent()

"""Paint order read from the keys: what covers what where parts overlap."""

from __future__ import annotations

import cv2
import numpy as np

from engine.cel import arcs
from engine.cel.motion import Motion
from engine.cel.occlusion import paint_order
from engine.cel.parts import Part


def test_part_that_hides_another_is_painted_after_it():
    shape = (120, 200)
    board_a = np.zeros(shape, np.uint8)
    cv2.rectangle(board_a, (20, 30), (90, 100), 255, -1)
    disc_a = np.zeros(shape, np.uint8)
    cv2.circle(disc_a, (160, 60), 15, 255, -1)
    # in key B the disc has moved onto the board and hides part of it
    disc_b = np.zeros(shape, np.uint8)
    cv2.circle(disc_b, (55, 65), 15, 255, -1)
    board_b = (board_a > 0) & ~(disc_b > 0)
    move = arcs.pose(np.eye(2), np.zeros(2), np.array([-105.0, 5.0]))
    board = Part(0, [0], [0], board_a > 0, board_b, Motion(np.eye(3), 0.0, 1.0))
    disc = Part(1, [1], [1], disc_a > 0, disc_b > 0, Motion(move, 0.0, 1.0))
    assert paint_order([disc, board]) == [1, 0]  # board first (back), disc last (front)
    assert paint_order([board, disc]) == [0, 1]

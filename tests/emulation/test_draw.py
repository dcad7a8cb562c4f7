"""dsparsers.emulation.draw: boxes in class colours, readable labels, and the instance-mask hook."""

from __future__ import annotations

import numpy as np
from PIL import Image

from dsparsers.emulation.draw import MASK_ALPHA, class_colour, draw_detections, text_colour
from dsparsers.emulation.run import Detection as Det


def test_class_colours_are_distinct_and_stable():
    colours = [class_colour(c) for c in range(80)]
    assert len(set(colours)) == 80 and class_colour(3) == colours[3]
    assert text_colour((255, 255, 0)) == (0, 0, 0) and text_colour((0, 0, 128)) == (255, 255, 255)


def test_box_outline_in_the_class_colour_and_interior_untouched():
    drawn = np.asarray(draw_detections(Image.new("RGB", (200, 200)), [Det(5, "x", 0.5, 50, 100, 80, 60)]))
    assert tuple(drawn[130, 50]) == class_colour(5)  # left edge
    assert tuple(drawn[130, 90]) == (0, 0, 0)  # inside the box, below the label
    assert tuple(drawn[90, 52]) == class_colour(5)  # label background above the box


def test_masks_fill_above_the_threshold_translucently():
    det = Det(1, "m", 0.9, 20, 20, 40, 40)
    box_mask = np.array([[0.9, 0.1], [0.1, 0.9]], np.float32)  # stretched over the 40x40 box
    full = np.zeros((100, 100), np.float32)
    full[80:90, 80:90] = 0.6  # already in picture pixels
    base = Image.new("RGB", (100, 100), (0, 0, 0))
    drawn = np.asarray(draw_detections(base, [det, Det(2, "n", 0.9, 70, 70, 25, 25)], [box_mask, full],
                                       mask_threshold=0.5))
    expected = tuple(round(c * MASK_ALPHA / 255) for c in class_colour(1))
    assert np.allclose(drawn[30, 30], expected, atol=1)  # top-left quarter of the box: 0.9
    assert tuple(drawn[30, 50]) == (0, 0, 0)  # top-right quarter: 0.1, not filled
    assert np.allclose(drawn[50, 50], expected, atol=1)
    assert np.allclose(drawn[85, 85], [round(c * MASK_ALPHA / 255) for c in class_colour(2)], atol=1)

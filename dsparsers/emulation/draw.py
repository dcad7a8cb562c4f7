"""Drawing detections on a picture with Pillow: a box, a label and a confidence per object, one colour
per class, text on a filled background so it stays readable on any picture.

Instance masks (hook, wired up once the harness returns masks): ``draw_detections(..., masks=...)``
takes one 2-D float array of probabilities per detection, in the order of ``detections`` (None for a
detection without a mask). A mask is either the size of the picture (``image.height x image.width``,
already placed) or any other size, which is then stretched over the detection's box (as nvdsosd
stretches a mask over its object's rectangle). Pixels whose probability is above ``mask_threshold``
(nvinfer's ``segmentation-threshold``) are filled with the class colour, translucent.
"""

from __future__ import annotations

import colorsys
from typing import Protocol, Sequence

import numpy as np

#: opacity of mask fills (0-255)
MASK_ALPHA = 110
#: default mask threshold when the config has no segmentation-threshold
DEFAULT_MASK_THRESHOLD = 0.5


class Drawable(Protocol):
    """What draw_detections reads from a detection (frame pixels)."""

    class_id: int
    label: str
    confidence: float
    left: float
    top: float
    width: float
    height: float


def class_colour(class_id: int) -> tuple[int, int, int]:
    """A distinct, stable colour per class: hues spread by the golden ratio, bright and saturated."""
    hue = (0.07 + int(class_id) * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.8 if class_id % 2 == 0 else 0.65, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def text_colour(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``background``."""
    r, g, b = background
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: the bundled scalable font
    except TypeError:  # older Pillow: the fixed bitmap font
        return ImageFont.load_default()


def _mask_layer(mask: np.ndarray, det: Drawable, size: tuple[int, int], threshold: float) -> np.ndarray:
    """A boolean picture-size array: where ``mask`` (placed or stretched over the box) exceeds threshold."""
    width, height = size
    mask = np.asarray(mask, np.float32)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"a mask must be a non-empty 2-D array, got shape {mask.shape}")
    if mask.shape == (height, width):
        return mask > threshold
    out = np.zeros((height, width), bool)
    x0, y0 = int(np.floor(det.left)), int(np.floor(det.top))
    x1, y1 = int(np.ceil(det.left + det.width)), int(np.ceil(det.top + det.height))
    if x1 <= x0 or y1 <= y0:
        return out
    ys = np.minimum(((np.arange(y0, y1) + 0.5 - det.top) / max(det.height, 1e-9) * mask.shape[0]).astype(int),
                    mask.shape[0] - 1).clip(0)
    xs = np.minimum(((np.arange(x0, x1) + 0.5 - det.left) / max(det.width, 1e-9) * mask.shape[1]).astype(int),
                    mask.shape[1] - 1).clip(0)
    stretched = mask[ys][:, xs] > threshold
    cy0, cy1, cx0, cx1 = max(y0, 0), min(y1, height), max(x0, 0), min(x1, width)
    if cy1 > cy0 and cx1 > cx0:
        out[cy0:cy1, cx0:cx1] = stretched[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    return out


def draw_detections(image, detections: Sequence[Drawable], masks: Sequence[np.ndarray | None] | None = None, *,
                    mask_threshold: float = DEFAULT_MASK_THRESHOLD, note: str | None = None):
    """A copy of ``image`` (a PIL image) with ``detections`` drawn (frame pixels) and, optionally, their
    ``masks`` (see the module docstring) and a ``note`` line at the bottom."""
    from PIL import Image, ImageDraw

    canvas = image.convert("RGB")
    width, height = canvas.size
    if masks is not None:
        if len(masks) != len(detections):
            raise ValueError(f"{len(masks)} mask(s) for {len(detections)} detection(s)")
        overlay = np.zeros((height, width, 4), np.uint8)
        for det, mask in zip(detections, masks):
            if mask is None:
                continue
            where = _mask_layer(mask, det, (width, height), mask_threshold)
            overlay[where] = (*class_colour(det.class_id), MASK_ALPHA)
        canvas = Image.alpha_composite(canvas.convert("RGBA"), Image.fromarray(overlay, "RGBA")).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    line = max(2, round(min(width, height) / 250))
    font = _font(max(11, round(min(width, height) / 32)))
    for det in detections:
        colour = class_colour(det.class_id)
        x0, y0 = det.left, det.top
        x1, y1 = det.left + det.width, det.top + det.height
        draw.rectangle((x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)), outline=colour, width=line)
    for det in detections:  # labels after every box, so that no box crosses a label
        colour = class_colour(det.class_id)
        text = f"{det.label} {det.confidence:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = right - left, bottom - top
        pad = max(2, line)
        x = min(max(det.left, 0), max(width - tw - 2 * pad, 0))
        y = det.top - th - 2 * pad if det.top - th - 2 * pad >= 0 else max(det.top, 0)
        draw.rectangle((x, y, x + tw + 2 * pad, y + th + 2 * pad), fill=colour)
        draw.text((x + pad - left, y + pad - top), text, fill=text_colour(colour), font=font)
    if note:
        left, top, right, bottom = draw.textbbox((0, 0), note, font=font)
        pad = max(3, line)
        y = height - (bottom - top) - 2 * pad
        draw.rectangle((0, y, min(width, right - left + 2 * pad), height), fill=(0, 0, 0))
        draw.text((pad - left, y + pad - top), note, fill=(255, 255, 255), font=font)
    return canvas

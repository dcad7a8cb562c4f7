"""From network pixels back to frame pixels, and the filters nvinfer applies there.

After clustering (dsparsers.emulation.clustering), nvinfer maps each object back to the frame
(../shared/specs/nvinfer-abi.md):

- ``left = (left - offset_left) / ratio_x + crop_left``, ``width = width / ratio_x`` (same for y),
  with the Geometry of dsparsers.emulation.preprocess;
- ``left`` and ``top`` clamped to >= 0 with width and height unchanged (quirk: a box that starts in
  the padding keeps its size, so its far edge moves); right and bottom are NOT clamped, unless
  ``crop-objects-to-roi-boundary=1``, which clips the box to the crop (for a primary, the frame);
- then ``filter-out-class-ids``, and per class (``[class-attrs-N]`` over ``[class-attrs-all]``)
  ``detected-min-w``/``-h`` (drop when smaller) and ``detected-max-w``/``-h`` (drop when larger;
  0 means no limit), on the frame-pixel size.

Objects keep the order they come in (class-major after clustering).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from dsparsers.api.abi_types import DETECTION_DTYPE
from dsparsers.emulation.preprocess import Geometry


@dataclass(frozen=True)
class SizeLimits:
    """detected-min-w/h and detected-max-w/h of one class (frame pixels; max 0: no limit)."""

    min_w: int = 0
    min_h: int = 0
    max_w: int = 0
    max_h: int = 0

    def keeps(self, width: float, height: float) -> bool:
        if width < self.min_w or height < self.min_h:
            return False
        if self.max_w > 0 and width > self.max_w:
            return False
        return not (self.max_h > 0 and height > self.max_h)


@dataclass(frozen=True)
class FrameFilters:
    """What nvinfer does to objects once they are in frame pixels."""

    filter_out_class_ids: frozenset[int] = frozenset()
    crop_objects_to_roi_boundary: bool = False
    default_limits: SizeLimits = SizeLimits()
    per_class_limits: dict[int, SizeLimits] = field(default_factory=dict)

    def limits(self, class_id: int) -> SizeLimits:
        return self.per_class_limits.get(int(class_id), self.default_limits)

    @classmethod
    def from_config(cls, config) -> "FrameFilters":
        """The filters of a dsparsers.generation.nvinfer_config.InferConfig."""
        keys = ("detected-min-w", "detected-min-h", "detected-max-w", "detected-max-h")

        def limits(get: Callable[[str], object]) -> SizeLimits:
            return SizeLimits(*(int(get(k)) for k in keys))

        default = limits(lambda k: config.get(k, "class-attrs-all"))
        per_class = {c: limits(lambda k, c=c: config.class_attr(c, k)) for c in config.class_ids()}
        return cls(frozenset(int(c) for c in (config.get("filter-out-class-ids") or ())),
                   bool(config.get("crop-objects-to-roi-boundary")), default, per_class)


def to_frame(objects: np.ndarray, geometry: Geometry, *, crop_to_roi: bool = False) -> np.ndarray:
    """Objects (DETECTION_DTYPE, network pixels) mapped to frame pixels, as float64 columns in a
    structured array of the same field names (class_id, left, top, width, height, confidence)."""
    objects = np.asarray(objects, DETECTION_DTYPE).reshape(-1)
    out = np.zeros(len(objects), FRAME_DTYPE)
    out["class_id"] = objects["class_id"]
    out["confidence"] = objects["confidence"]
    g = geometry
    left = (objects["left"].astype(np.float64) - g.offset_left) / g.ratio_x + g.crop_left
    top = (objects["top"].astype(np.float64) - g.offset_top) / g.ratio_y + g.crop_top
    width = objects["width"].astype(np.float64) / g.ratio_x
    height = objects["height"].astype(np.float64) / g.ratio_y
    if crop_to_roi:
        right = np.minimum(left + width, g.crop_left + g.crop_width)
        bottom = np.minimum(top + height, g.crop_top + g.crop_height)
        left, top = np.maximum(left, g.crop_left), np.maximum(top, g.crop_top)
        width, height = np.maximum(right - left, 0), np.maximum(bottom - top, 0)
    else:
        left, top = np.maximum(left, 0.0), np.maximum(top, 0.0)  # quirk: the size is kept
    out["left"], out["top"], out["width"], out["height"] = left, top, width, height
    return out


#: an object in frame pixels (float64 coordinates)
FRAME_DTYPE = np.dtype([("class_id", "<u4"), ("left", "<f8"), ("top", "<f8"), ("width", "<f8"),
                        ("height", "<f8"), ("confidence", "<f4")])


def passes_filters(objects: np.ndarray, filters: FrameFilters) -> np.ndarray:
    """Per frame-pixel object, whether it passes filter-out-class-ids and its class's size limits."""
    return np.array([int(o["class_id"]) not in filters.filter_out_class_ids
                     and filters.limits(int(o["class_id"])).keeps(float(o["width"]), float(o["height"]))
                     for o in objects], bool)


def apply_filters(objects: np.ndarray, filters: FrameFilters) -> np.ndarray:
    """The frame-pixel objects that pass filter-out-class-ids and the per-class size limits, in order."""
    return objects[passes_filters(objects, filters)] if len(objects) else objects


def backproject_indexed(objects: np.ndarray, geometry: Geometry,
                        filters: FrameFilters = FrameFilters()) -> tuple[np.ndarray, np.ndarray]:
    """As :func:`backproject`, with the positions in ``objects`` of the objects kept (masks follow them)."""
    framed = to_frame(objects, geometry, crop_to_roi=filters.crop_objects_to_roi_boundary)
    keep = passes_filters(framed, filters) if len(framed) else np.zeros(0, bool)
    return framed[keep], np.nonzero(keep)[0]


def backproject(objects: np.ndarray, geometry: Geometry, filters: FrameFilters = FrameFilters()) -> np.ndarray:
    """Clustered objects (network pixels) -> what nvinfer attaches to the frame (frame pixels)."""
    return backproject_indexed(objects, geometry, filters)[0]

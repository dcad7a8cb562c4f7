"""From network pixels back to frame pixels, and the filters nvinfer applies there.

After clustering (dsparsers.emulation.clustering), nvinfer's ``attach_metadata_detector``
(``gstnvinfer_meta_utils.cpp``) takes each object in turn, in float32 as its ``NvDsInferObject`` holds it:

1. ``left = (left - offset_left) / ratio_x + roi_left``, ``width = width / ratio_x`` (same for y), with the
   Geometry of dsparsers.emulation.preprocess (``roi_left``/``roi_top`` are 0 for a primary on whole frames);
2. DeepStream 6.3 and later: ``top`` and ``left`` raised to 0 when negative, the size unchanged (so the far
   edge moves); DeepStream 6.2 does this only inside the crop branch of step 4, after the size filters;
3. ``filter-out-class-ids``, then per class (``[class-attrs-N]`` over ``[class-attrs-all]``)
   ``detected-min-w``/``-h`` (drop when smaller) and ``detected-max-w``/``-h`` (drop when larger; 0 means no
   limit), on the box as it is at this point (before any cropping);
4. without ``crop-objects-to-roi-boundary``: drop the object when ``top < roi-top-offset`` or ``top + height
   > frame height - roi-bottom-offset`` (so a box reaching past the frame's bottom is dropped, one past the
   right edge kept, and in 6.2 one whose top is negative dropped too);
   with it: (6.2: left/top raised to 0 keeping the size, then) ``top`` raised to ``roi-top-offset`` keeping
   the height, ``width = frame width - left`` when ``left + width >= frame width``, ``height = frame height -
   roi-bottom-offset - top`` when ``top + height`` exceeds that.

Releases (sources read: DeepStream 9.0 and 9.1 from GitHub NVIDIA/DeepStream; 6.2 and 6.3 from copies of the
SDK's sources): 6.3, 9.0 and 9.1 share one rule, 6.2 the other.

``frame height - roi-bottom-offset`` is unsigned arithmetic in nvinfer (both are unsigned): an offset above
the frame height wraps around and drops nothing, as here. Objects keep the order they come in (class-major
after clustering).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from dsparsers.api.abi_types import DETECTION_DTYPE
from dsparsers.emulation.preprocess import Geometry
from dsparsers.emulation.releases import DEEPSTREAM_VERSIONS, NEWEST_DEEPSTREAM  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class BackprojectionRule:
    """What differs between releases in ``attach_metadata_detector``."""

    #: left/top raised to 0 keeping the size before the filters (6.3 on; 6.2 does it only when cropping)
    clamp_left_top: bool
    #: whether the release knows ``crop-objects-to-roi-boundary``
    has_crop_to_roi: bool = True


RULES = {
    "6.2": BackprojectionRule(clamp_left_top=False),
    "6.3": BackprojectionRule(clamp_left_top=True),
    "9.0": BackprojectionRule(clamp_left_top=True),
    "9.1": BackprojectionRule(clamp_left_top=True),
}


def rule_of(version: str) -> BackprojectionRule:
    try:
        return RULES[str(version)]
    except KeyError:
        raise ValueError(f"DeepStream {version}: not an emulated release ({', '.join(DEEPSTREAM_VERSIONS)})") from None


@dataclass(frozen=True)
class SizeLimits:
    """One class's frame filters: detected-min-w/h and detected-max-w/h (frame pixels; max 0: no limit), and
    roi-top-offset / roi-bottom-offset (rows from the frame's top and bottom)."""

    min_w: int = 0
    min_h: int = 0
    max_w: int = 0
    max_h: int = 0
    roi_top_offset: int = 0
    roi_bottom_offset: int = 0

    def keeps(self, width: float, height: float) -> bool:
        """nvinfer's size checks (float32 against the unsigned limits): NaN sizes pass them."""
        f = np.float32
        width, height = f(width), f(height)
        if width < f(self.min_w) or height < f(self.min_h):
            return False
        if self.max_w > 0 and width > f(self.max_w):
            return False
        return not (self.max_h > 0 and height > f(self.max_h))


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
        """The filters of a dsparsers.emulation.config_reader.InferConfig."""
        keys = ("detected-min-w", "detected-min-h", "detected-max-w", "detected-max-h", "roi-top-offset",
                "roi-bottom-offset")

        def limits(get: Callable[[str], object]) -> SizeLimits:
            return SizeLimits(*(int(get(k)) for k in keys))

        default = limits(lambda k: config.get(k, "class-attrs-all"))
        per_class = {c: limits(lambda k, c=c: config.class_attr(c, k)) for c in config.class_ids()}
        return cls(frozenset(int(c) for c in (config.get("filter-out-class-ids") or ())),
                   bool(config.get("crop-objects-to-roi-boundary")), default, per_class)


#: an object in frame pixels (float32 values, as nvinfer holds them, in float64 columns)
FRAME_DTYPE = np.dtype([("class_id", "<u4"), ("left", "<f8"), ("top", "<f8"), ("width", "<f8"),
                        ("height", "<f8"), ("confidence", "<f4")])


def _scaled(value, offset: int, ratio: float, roi: int) -> np.float32:
    """``(value - offset) / ratio + roi`` as nvinfer computes it: float - unsigned in float32, then the
    division by the double ratio and the addition in double, stored back in a float."""
    return np.float32(float(np.float32(value) - np.float32(offset)) / ratio + roi)


def to_frame(objects: np.ndarray, geometry: Geometry, *, clamp_left_top: bool = True) -> np.ndarray:
    """Steps 1-2: objects (DETECTION_DTYPE, network pixels) mapped to frame pixels (FRAME_DTYPE), with the
    DS 9.x clamp of left/top to 0 unless ``clamp_left_top`` is false (DS 6.2)."""
    objects = np.asarray(objects, DETECTION_DTYPE).reshape(-1)
    out = np.zeros(len(objects), FRAME_DTYPE)
    g = geometry
    with np.errstate(all="ignore"):
        for k, o in enumerate(objects):
            left = _scaled(o["left"], g.offset_left, g.ratio_x, g.crop_left)
            top = _scaled(o["top"], g.offset_top, g.ratio_y, g.crop_top)
            width = np.float32(float(np.float32(o["width"])) / g.ratio_x)
            height = np.float32(float(np.float32(o["height"])) / g.ratio_y)
            if clamp_left_top:  # quirk: the size is kept, so the far edge moves
                top = np.float32(0) if top < 0 else top
                left = np.float32(0) if left < 0 else left
            out[k] = (o["class_id"], left, top, width, height, o["confidence"])
    return out


def passes_filters(objects: np.ndarray, filters: FrameFilters) -> np.ndarray:
    """Step 3 per frame-pixel object: whether it passes filter-out-class-ids and its class's size limits."""
    return np.array([int(o["class_id"]) not in filters.filter_out_class_ids
                     and filters.limits(int(o["class_id"])).keeps(float(o["width"]), float(o["height"]))
                     for o in objects], bool)


def apply_filters(objects: np.ndarray, filters: FrameFilters) -> np.ndarray:
    """The frame-pixel objects that pass filter-out-class-ids and the per-class size limits, in order."""
    return objects[passes_filters(objects, filters)] if len(objects) else objects


def roi_edges(objects: np.ndarray, filters: FrameFilters, frame_width: int, frame_height: int, *,
              crop: bool) -> tuple[np.ndarray, np.ndarray]:
    """Step 4: (the objects after the ROI step, whether each input object survived it). Without ``crop``
    objects above roi-top-offset or past frame height - roi-bottom-offset are dropped; with it they are
    trimmed as DS 9.x trims them."""
    f = np.float32
    out = objects.copy()
    keep = np.ones(len(objects), bool)
    with np.errstate(all="ignore"):
        for k, o in enumerate(objects):
            limits = filters.limits(int(o["class_id"]))
            left, top, width, height = f(o["left"]), f(o["top"]), f(o["width"]), f(o["height"])
            roi_top = f(limits.roi_top_offset)
            bottom = f((int(frame_height) - int(limits.roi_bottom_offset)) % 2**32)  # unsigned subtraction
            if crop:
                if top < 0:  # a no-op after step 2; DS 6.2 clamps only here
                    top = f(0)
                if left < 0:
                    left = f(0)
                if top < roi_top:
                    top = roi_top
                if f(left + width) >= f(frame_width):
                    width = f(f(frame_width) - left)
                if f(top + height) > bottom:
                    height = f(bottom - top)
                out[k] = (o["class_id"], left, top, width, height, o["confidence"])
            else:
                keep[k] = not (top < roi_top or f(top + height) > bottom)
    return out[keep], keep


def backproject_indexed(objects: np.ndarray, geometry: Geometry, filters: FrameFilters = FrameFilters(),
                        frame_width: int | None = None, frame_height: int | None = None, *,
                        deepstream: str = NEWEST_DEEPSTREAM) -> tuple[np.ndarray, np.ndarray]:
    """As :func:`backproject`, with the positions in ``objects`` of the objects kept (masks follow them)."""
    rule = rule_of(deepstream)
    if frame_width is None:
        frame_width = geometry.crop_left + geometry.crop_width
    if frame_height is None:
        frame_height = geometry.crop_top + geometry.crop_height
    framed = to_frame(objects, geometry, clamp_left_top=rule.clamp_left_top)
    positions = np.arange(len(framed))
    if not len(framed):
        return framed, positions
    passed = passes_filters(framed, filters)
    framed, positions = framed[passed], positions[passed]
    crop = rule.has_crop_to_roi and filters.crop_objects_to_roi_boundary
    framed, kept = roi_edges(framed, filters, frame_width, frame_height, crop=crop)
    return framed, positions[kept]


def backproject(objects: np.ndarray, geometry: Geometry, filters: FrameFilters = FrameFilters(),
                frame_width: int | None = None, frame_height: int | None = None, *,
                deepstream: str = NEWEST_DEEPSTREAM) -> np.ndarray:
    """Clustered objects (network pixels) -> what nvinfer attaches to the frame (frame pixels), by the rules
    of DeepStream ``deepstream``. The frame size defaults to the geometry's crop (exact for even sizes)."""
    return backproject_indexed(objects, geometry, filters, frame_width, frame_height, deepstream=deepstream)[0]

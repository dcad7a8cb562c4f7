"""nvinfer's pre-processing of a frame, in NumPy: crop, scale (letterbox or stretch), colour, normalise.

Facts from ../shared/specs/nvinfer-abi.md, emulated step by step:

1. **crop**: the source rectangle (the whole frame for a primary detector) has its left/top rounded
   UP to even and its width/height rounded DOWN to even (a 641x481 frame is read as 640x480);
2. **scale** to the network: with ``maintain-aspect-ratio=1``, if ``W * h_src / w_src <= H`` the
   picture fills the width (``dest_w = W``, ``dest_h = int(W * h_src / w_src)``), otherwise the
   height (symmetrically); without it, it is stretched to ``W x H``. The picture sits top-left, or
   centred with ``symmetric-padding=1`` (``offset = (W - dest_w) // 2``, integer division). Padding
   pixels are 0 (black) before normalisation;
3. **colour**: ``model-color-format`` 0 RGB, 1 BGR, 2 GRAY (BT.601 luma of the scaled RGB);
4. **normalise**: ``y = net-scale-factor * (x - offsets[c])`` in float32, channel by channel in the
   network's colour order, laid out NCHW (``network-input-order=0``) or NHWC (``1``).

Scaling samples at pixel centres without anti-aliasing, as GPU scalers do: ``scaling-filter`` 0 (and
6, nvinfer's "default") is nearest, 1 bilinear; the higher-order filters (2 to 5) are approximated by
bilinear (``Preprocessing.exact_filter`` says so). The scaled picture is rounded to 8 bits before
normalising, as nvinfer scales into an 8-bit surface. Images are loaded with Pillow as 8-bit RGB.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsparsers.errors import UsageError

#: scaling-filter values emulated exactly (nearest: 0 and nvinfer's "default" 6; bilinear: 1)
NEAREST_FILTERS = (0, 6)
BILINEAR_FILTER = 1
#: model-color-format values
RGB, BGR, GRAY = 0, 1, 2
#: BT.601 luma weights for GRAY networks
LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class Geometry:
    """Where a frame's crop lands in the network input, and the numbers that map boxes back.

    ``crop_*``: the source rectangle after even-rounding (frame pixels); ``dest_*``: its scaled size;
    ``offset_*``: where its top-left corner lands in the network input; ``ratio_*``: dest / crop.
    """

    crop_left: int
    crop_top: int
    crop_width: int
    crop_height: int
    dest_width: int
    dest_height: int
    offset_left: int
    offset_top: int
    ratio_x: float
    ratio_y: float


def even_crop(left: int, top: int, width: int, height: int) -> tuple[int, int, int, int]:
    """nvinfer's source crop: left/top rounded up to even, width/height rounded down to even."""
    return left + (left & 1), top + (top & 1), width & ~1, height & ~1


def compute_geometry(frame_width: int, frame_height: int, net_width: int, net_height: int, *,
                     maintain_aspect_ratio: bool, symmetric_padding: bool,
                     roi: tuple[int, int, int, int] | None = None) -> Geometry:
    """The scaling nvinfer applies to ``roi`` (left, top, width, height; default the whole frame)."""
    left, top, width, height = even_crop(*(roi or (0, 0, frame_width, frame_height)))
    if width <= 0 or height <= 0:
        raise UsageError(f"a {frame_width}x{frame_height} picture is too small: nvinfer rounds its crop down to "
                         f"{max(width, 0)}x{max(height, 0)} pixels")
    if maintain_aspect_ratio:
        if net_width * height / width <= net_height:
            dest_w, dest_h = net_width, int(net_width * height / width)
        else:
            dest_w, dest_h = int(net_height * width / height), net_height
        if dest_w <= 0 or dest_h <= 0:
            raise UsageError(f"a {width}x{height} picture scales to {dest_w}x{dest_h} pixels in a "
                             f"{net_width}x{net_height} network: its aspect ratio is too extreme")
    else:
        dest_w, dest_h = net_width, net_height
    if maintain_aspect_ratio and symmetric_padding:
        offset_left, offset_top = (net_width - dest_w) // 2, (net_height - dest_h) // 2
    else:
        offset_left, offset_top = 0, 0
    return Geometry(left, top, width, height, dest_w, dest_h, offset_left, offset_top, dest_w / width, dest_h / height)


def _sample_positions(src: int, dst: int, nearest: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per destination pixel: the two source indices and the weight of the second (pixel centres)."""
    scale = src / dst
    centres = (np.arange(dst, dtype=np.float64) + 0.5) * scale
    if nearest:
        index = np.minimum(np.floor(centres).astype(np.int64), src - 1)
        return index, index, np.zeros(dst, np.float32)
    pos = np.clip(centres - 0.5, 0, src - 1)
    low = np.floor(pos).astype(np.int64)
    high = np.minimum(low + 1, src - 1)
    return low, high, (pos - low).astype(np.float32)


def resize(image: np.ndarray, width: int, height: int, scaling_filter: int = 0) -> np.ndarray:
    """``image`` (H x W x C uint8) scaled to ``width`` x ``height``: nearest (filters 0 and 6) or
    bilinear (others), sampling at pixel centres, rounded to uint8."""
    nearest = scaling_filter in NEAREST_FILTERS
    src_h, src_w = image.shape[:2]
    if (src_w, src_h) == (width, height):
        return image.copy()
    y0, y1, fy = _sample_positions(src_h, height, nearest)
    x0, x1, fx = _sample_positions(src_w, width, nearest)
    if nearest:
        return image[y0][:, x0]
    data = image.astype(np.float32)
    rows = data[y0] * (1 - fy)[:, None, None] + data[y1] * fy[:, None, None]
    out = rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]
    return np.clip(np.floor(out + np.float32(0.5)), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Preprocessing:
    """The nvinfer settings that decide the network input (defaults are nvinfer's)."""

    width: int
    height: int
    channels: int = 3
    net_scale_factor: float = 1.0
    offsets: tuple[float, ...] = ()
    color_format: int = RGB
    maintain_aspect_ratio: bool = False
    symmetric_padding: bool = False
    scaling_filter: int = 0
    input_order: int = 0  # 0 NCHW, 1 NHWC

    def __post_init__(self) -> None:
        expected = 1 if self.color_format == GRAY else 3
        if self.channels != expected:
            raise UsageError(f"model-color-format={self.color_format} makes {expected}-channel input, but the "
                             f"network takes {self.channels} channel(s)")
        if self.offsets and len(self.offsets) != self.channels:
            raise UsageError(f"offsets: {len(self.offsets)} value(s) for a {self.channels}-channel network")

    @property
    def exact_filter(self) -> bool:
        """Whether scaling-filter is emulated exactly (nearest or bilinear) rather than approximated."""
        return self.scaling_filter in NEAREST_FILTERS or self.scaling_filter == BILINEAR_FILTER

    @classmethod
    def from_config(cls, config, width: int, height: int, channels: int) -> "Preprocessing":
        """The settings of a dsparsers.generation.nvinfer_config.InferConfig for a ``width`` x ``height`` network."""
        offsets = config.get("offsets") or ()
        try:
            return cls(width, height, channels, float(config.get("net-scale-factor")),
                       tuple(float(v) for v in offsets), int(config.get("model-color-format")),
                       bool(config.get("maintain-aspect-ratio")), bool(config.get("symmetric-padding")),
                       int(config.get("scaling-filter")), int(config.get("network-input-order")))
        except UsageError as exc:
            raise UsageError(f"{config.path}: {exc}") from None

    def geometry(self, frame_width: int, frame_height: int) -> Geometry:
        return compute_geometry(frame_width, frame_height, self.width, self.height,
                                maintain_aspect_ratio=self.maintain_aspect_ratio,
                                symmetric_padding=self.symmetric_padding)

    def scaled_frame(self, image: np.ndarray) -> tuple[np.ndarray, Geometry]:
        """The 8-bit network-size picture (H x W x 3 RGB, padding black) and its geometry."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise TypeError(f"expected an H x W x 3 uint8 RGB image, got {image.dtype} {image.shape}")
        g = self.geometry(image.shape[1], image.shape[0])
        crop = image[g.crop_top:g.crop_top + g.crop_height, g.crop_left:g.crop_left + g.crop_width]
        canvas = np.zeros((self.height, self.width, 3), np.uint8)
        canvas[g.offset_top:g.offset_top + g.dest_height, g.offset_left:g.offset_left + g.dest_width] = \
            resize(crop, g.dest_width, g.dest_height, self.scaling_filter)
        return canvas, g

    def tensor(self, image: np.ndarray) -> tuple[np.ndarray, Geometry]:
        """The network input for one frame (C x H x W, or H x W x C for NHWC; float32) and its geometry."""
        canvas, g = self.scaled_frame(image)
        if self.color_format == BGR:
            pixels = canvas[:, :, ::-1]
        elif self.color_format == GRAY:
            luma = canvas.astype(np.float32) @ np.array(LUMA, np.float32)
            pixels = np.clip(np.floor(luma + np.float32(0.5)), 0, 255).astype(np.uint8)[:, :, None]
        else:
            pixels = canvas
        offsets = np.array(self.offsets or (0.0,) * self.channels, np.float32)
        data = np.float32(self.net_scale_factor) * (pixels.astype(np.float32) - offsets)
        data = data.astype(np.float32)
        return (np.ascontiguousarray(data) if self.input_order == 1
                else np.ascontiguousarray(data.transpose(2, 0, 1))), g


def load_image(path: Path | str) -> np.ndarray:
    """An image file as H x W x 3 uint8 RGB (any format Pillow reads); UsageError naming the file."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            rgb = img.convert("RGB")  # an alpha channel is dropped, as a video frame has none
    except FileNotFoundError:
        raise UsageError(f"--image {path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"--image {path}: is a directory") from None
    except UnidentifiedImageError:
        raise UsageError(f"--image {path}: not an image Pillow can read") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"--image {path}: cannot read: {exc}") from None
    return np.asarray(rgb, np.uint8).copy()

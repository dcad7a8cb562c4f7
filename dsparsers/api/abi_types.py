"""What flows into and out of a parse function, in Python terms.

These mirror the nvinfer types (NvDsInferLayerInfo, NvDsInferNetworkInfo,
NvDsInferParseDetectionParams, NvDsInferObjectDetectionInfo) closely enough that the conformance
harness can hand them to a C++ parser and the reference decoders can read them with NumPy.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np


class DataType(enum.IntEnum):
    """NvDsInferDataType."""

    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5

    @property
    def numpy_dtype(self) -> np.dtype:
        return np.dtype(_NUMPY_OF[self])

    @classmethod
    def of(cls, dtype: np.dtype) -> "DataType":
        dtype = np.dtype(dtype)
        for member, name in _NUMPY_OF.items():
            if np.dtype(name) == dtype:
                return member
        raise ValueError(f"no NvDsInferDataType for NumPy dtype {dtype}")


_NUMPY_OF = {
    DataType.FLOAT: "<f4",
    DataType.HALF: "<f2",
    DataType.INT8: "i1",
    DataType.INT32: "<i4",
    DataType.INT64: "<i8",
    DataType.UINT8: "u1",
}

#: nvinfer's default pre-cluster-threshold; generated parsers use it for a class that has no entry
#: in perClassPreclusterThreshold.
DEFAULT_PRECLUSTER_THRESHOLD = 0.2


@dataclass(frozen=True, eq=False)
class Layer:
    """One output layer for one frame: dims exclude the batch dimension, as nvinfer passes them.

    ``dims`` and ``data_type`` default to the array's own; hostile tests override them to report
    something that disagrees with the data (the buffer is always at least as large as ``data``).
    """

    name: str
    data: np.ndarray
    dims: tuple[int, ...] | None = None
    data_type: DataType | None = None

    @property
    def reported_dims(self) -> tuple[int, ...]:
        return tuple(self.data.shape) if self.dims is None else tuple(self.dims)

    @property
    def reported_type(self) -> DataType:
        return DataType.of(self.data.dtype) if self.data_type is None else self.data_type


@dataclass(frozen=True)
class NetworkInfo:
    width: int
    height: int
    channels: int = 3


@dataclass(frozen=True)
class DetectionParams:
    num_classes_configured: int
    precluster: tuple[float, ...]
    postcluster: tuple[float, ...] = ()

    @classmethod
    def uniform(cls, num_classes: int, threshold: float) -> "DetectionParams":
        return cls(num_classes, (float(threshold),) * num_classes, (0.0,) * num_classes)

    def precluster_threshold(self, class_id: int) -> np.float32:
        """The threshold a parser applies to ``class_id`` (nvinfer's default when missing)."""
        if 0 <= class_id < len(self.precluster):
            return np.float32(self.precluster[class_id])
        return np.float32(DEFAULT_PRECLUSTER_THRESHOLD)


@dataclass(frozen=True, eq=False)
class ParserCase:
    """Everything one call of a parse function receives."""

    layers: tuple[Layer, ...]
    network: NetworkInfo
    params: DetectionParams


#: One detected object, as NvDsInferObjectDetectionInfo (rotation_angle is 0 for ABI 8 parsers).
DETECTION_DTYPE = np.dtype(
    [
        ("class_id", "<u4"),
        ("left", "<f4"),
        ("top", "<f4"),
        ("width", "<f4"),
        ("height", "<f4"),
        ("confidence", "<f4"),
        ("rotation_angle", "<f4"),
    ]
)


def detections(rows: list[tuple] | None = None) -> np.ndarray:
    """A detection array from (class_id, left, top, width, height, confidence) tuples."""
    rows = rows or []
    return np.array([tuple(r) + (0.0,) * (7 - len(r)) for r in rows], dtype=DETECTION_DTYPE)


@dataclass(frozen=True, eq=False)
class ParseOutcome:
    """What a parse function did: its return value, the objects it appended, and why it refused.

    Instance-mask parsers (NvDsInferInstanceMaskInfo) also return ``masks``: one float32 array of
    shape (mask_height, mask_width) per object, in the order of ``objects``, covering the object's
    box (nvdsosd stretches a mask over its object's rectangle and draws the pixels above
    segmentation-threshold). ``mask_errors`` lists contract breaches the harness saw (a mask_size that
    disagrees with width x height x 4, a NULL mask); detector parsers have ``masks`` None.
    """

    accepted: bool
    objects: np.ndarray = field(default_factory=detections)
    message: str = ""
    masks: tuple[np.ndarray, ...] | None = None
    mask_errors: tuple[str, ...] = ()

    @classmethod
    def rejected(cls, message: str, *, with_masks: bool = False) -> "ParseOutcome":
        return cls(False, detections(), message, masks=() if with_masks else None)

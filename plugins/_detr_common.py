"""What the DETR-style families (detr, rtdetr-ultralytics, rtdetr-postprocessed) share when they read a
model: tensor tests and the deformable-attention evidence. Not a plugin (no ``register_architectures``);
imports neither NumPy nor Hypothesis (their shared NumPy side is ``_detr_common_reference``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dsparsers import ModelInfo, TensorInfo

BOX_COLUMNS = 4
BOXES_NAMES = ("pred_boxes", "boxes", "bboxes")


def has_deformable_attention(model: ModelInfo) -> bool:
    """Multi-scale deformable attention exports as GridSample (Deformable DETR, DINO, RT-DETR)."""
    return any(node.op_type == "GridSample" for node in model.producers.values())


def named(tensor: TensorInfo, names: tuple[str, ...]) -> bool:
    """Whether the tensor's name, in lower case, is one of ``names``."""
    return tensor.name.lower() in names


def float_outputs(model: ModelInfo, rank: int) -> list[TensorInfo]:
    """The model's floating-point outputs of ``rank``."""
    return [t for t in model.outputs if t.rank == rank and t.dtype.startswith("float")]

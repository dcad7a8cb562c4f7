"""How inspection tells the look-alike YOLO heads apart (yolo-anchor-free, yolo-anchor-based, yolo-end2end,
deepstream-yolo): selection over synthetic heads of each family, and the ambiguous shapes that need --arch."""

from __future__ import annotations

import pytest

from dsparsers.errors import ModelError, UsageError
from dsparsers.model.reader import load_model
from dsparsers.api.selection import choose
from onnx_graphs import head_model, ultralytics_names


# -- telling look-alike heads apart ------------------------------------------------------------
def model(tmp_path, shape, *, name="output0", metadata=None, ops=("Concat", "Sigmoid"), axis=1, size=640):
    return load_model(head_model(tmp_path / "m.onnx", [(name, shape)], inputs=(("images", [1, 3, size, size]),),
                                 metadata=metadata or {}, producer_ops={name: list(ops)}, concat_axis=axis))


def names(count):
    return {"names": ultralytics_names(count)}


@pytest.mark.parametrize("shape, metadata, ops, expected", [
    ([1, 84, 8400], names(80), ("Concat", "Sigmoid"), "yolo-anchor-free"),
    ([1, 84, 8400], {}, ("Concat", "Sigmoid"), "yolo-anchor-free"),
    ([1, 8400, 84], names(80), ("Transpose",), "yolo-anchor-free"),
    ([1, 25200, 85], names(80), ("Concat", "Reshape"), "yolo-anchor-based"),
    ([1, 25200, 85], {}, ("Concat", "Reshape"), "yolo-anchor-based"),
    ([1, 8400, 85], names(80), ("Concat", "Sigmoid"), "yolo-anchor-based"),
    ([1, 300, 6], {**names(80), "end2end": "True", "task": "detect"}, ("Concat", "TopK"), "yolo-end2end"),
    ([1, 8400, 6], {}, ("Concat", "ArgMax"), "deepstream-yolo"),
])
def test_look_alike_heads_are_told_apart(registry, tmp_path, shape, metadata, ops, expected):
    axis = 2 if shape[2] < shape[1] else 1
    info = model(tmp_path, shape, metadata=metadata, ops=ops, axis=axis,
                 name="output" if expected == "deepstream-yolo" else "output0")
    choice = choose(registry, info, None)
    assert choice.provided.architecture.name == expected, registry.rank(info)


@pytest.mark.parametrize("shape, candidates", [
    ([1, 8400, 85], ("yolo-anchor-based", "yolo-anchor-free")),   # YOLOX (C=80) or anchor-free rows with C=81
    ([1, 300, 6], ("yolo-end2end", "deepstream-yolo")),           # no metadata: K=300 rows of 6
])
def test_ambiguous_heads_name_the_candidates_and_the_option(registry, tmp_path, shape, candidates):
    info = model(tmp_path, shape, ops=("Concat", "Identity"), axis=2)
    with pytest.raises(UsageError) as raised:
        choose(registry, info, None)
    message = str(raised.value)
    assert "match several architectures" in message and message.endswith("--arch NAME settles it")
    for name in candidates:
        assert name in message


def test_yolo26_metadata_overrides_the_shape_of_an_anchor_free_head(registry, tmp_path):
    # a one-to-many [B, 84, 8400] head exported from an end-to-end model still parses as anchor-free
    info = model(tmp_path, [1, 84, 8400], metadata={**names(80), "end2end": "False", "task": "detect"})
    assert choose(registry, info, None).provided.architecture.name == "yolo-anchor-free"


def test_unrelated_heads_still_get_a_clear_no_match(registry, tmp_path):
    info = model(tmp_path, [1, 17, 2, 2], ops=("Identity",))
    with pytest.raises(ModelError, match="no architecture recognises its outputs output0 \\[1, 17, 2, 2\\]"):
        choose(registry, info, None)

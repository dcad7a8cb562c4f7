"""`dsparsers run --demo`: the whole path on a model and a picture dsparsers makes itself.

Nothing is downloaded and torch is not needed:

- ``demo_model``: a tiny YOLO11-style detector built with onnx.helper: three strided convolutions
  (strides 8, 16, 32 on a 320x320 input), a 1x1 head per level, the anchor-free decode (centre =
  anchor point + tanh * stride, size = exp * stride) and sigmoid class scores, concatenated into
  ``output0`` [1, 84, 2100], exactly the head ultralytics exports. Its weights are random (a seeded
  NumPy generator); only the class bias of each level is shifted after a first run on the demo picture,
  so that a handful of candidates per level clear the 0.25 threshold. **The boxes mean nothing**: the picture proves that
  pre-processing, the model, the generated parser, nvinfer's clustering, back-projection and drawing
  all run together.
- ``demo_picture``: a deterministic 640x480 picture of shapes drawn with Pillow.
- the parser is generated from the model and built with the usual pipeline (codegen + meson), once,
  in the cache directory.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

NOTE = "demo: RANDOM weights, the boxes are meaningless; the picture proves the whole path runs"
INPUT_SIZE = 320
STRIDES = (8, 16, 32)
NUM_CLASSES = 80
FEATURES = 16
SEED = 2024
#: candidates (max class score over 80) wanted above the 0.25 threshold before NMS, a third per level
WANTED_CANDIDATES = 24
THRESHOLD = 0.25


def demo_picture(width: int = 640, height: int = 480, seed: int = SEED) -> np.ndarray:
    """A deterministic picture (H x W x 3 uint8 RGB): a sky-to-ground gradient and coloured shapes."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    top, bottom = np.array([110, 160, 215], np.float32), np.array([70, 120, 60], np.float32)
    sky = (top * (1 - y) + bottom * y) * np.ones((1, width, 1), np.float32)
    img = Image.fromarray(np.clip(sky, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, int(height * 0.72), width, height), fill=(85, 85, 90))  # a road
    for i in range(9):
        x, yy = int(rng.integers(20, width - 140)), int(rng.integers(20, height - 140))
        w, h = int(rng.integers(50, 150)), int(rng.integers(50, 150))
        colour = tuple(int(v) for v in rng.integers(30, 250, 3))
        kind = i % 3
        if kind == 0:
            draw.rectangle((x, yy, x + w, yy + h), fill=colour, outline=(20, 20, 20), width=3)
        elif kind == 1:
            draw.ellipse((x, yy, x + w, yy + h), fill=colour, outline=(20, 20, 20), width=3)
        else:
            draw.polygon([(x + w // 2, yy), (x + w, yy + h), (x, yy + h)], fill=colour, outline=(20, 20, 20))
    return np.asarray(img, np.uint8).copy()


def _anchor_grid() -> tuple[np.ndarray, np.ndarray]:
    """Anchor-point centres [1, 2, N] and strides [1, 1, N] in network pixels, level by level."""
    centres, strides = [], []
    for s in STRIDES:
        n = INPUT_SIZE // s
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        centres.append(np.stack([(xs.ravel() + 0.5) * s, (ys.ravel() + 0.5) * s]))
        strides.append(np.full(n * n, s))
    return (np.concatenate(centres, 1)[None].astype(np.float32),
            np.concatenate(strides)[None, None].astype(np.float32))


def _weights(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = {"stem_w": rng.normal(0, 0.12, (FEATURES, 3, 8, 8)), "stem_b": rng.normal(0, 0.1, FEATURES)}
    for level in (1, 2):
        w[f"down{level}_w"] = rng.normal(0, 0.25, (FEATURES, FEATURES, 2, 2))
        w[f"down{level}_b"] = rng.normal(0, 0.1, FEATURES)
    for level in range(3):
        w[f"head{level}_w"] = rng.normal(0, 0.35, (4 + NUM_CLASSES, FEATURES, 1, 1))
        w[f"head{level}_b"] = np.concatenate([rng.normal(0, 0.2, 4), np.full(NUM_CLASSES, -4.0)])
    return {k: v.astype(np.float32) for k, v in w.items()}


def _graph(weights: dict[str, np.ndarray], class_shift: tuple[float, float, float]) -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from dsparsers.emulation.datasets import COCO80

    weights = dict(weights)
    for level in range(3):
        bias = weights[f"head{level}_b"].copy()
        bias[4:] += np.float32(class_shift[level])
        weights[f"head{level}_b"] = bias
    centres, strides = _anchor_grid()
    inits = [numpy_helper.from_array(v, k) for k, v in sorted(weights.items())]
    inits += [numpy_helper.from_array(centres, "anchor_centres"), numpy_helper.from_array(strides, "anchor_strides"),
              numpy_helper.from_array(np.float32(2.5).reshape(()), "size_scale"),
              numpy_helper.from_array(np.float32(-0.8).reshape(()), "clip_min"),
              numpy_helper.from_array(np.float32(0.8).reshape(()), "clip_max")]
    n = helper.make_node
    nodes = [n("Conv", ["images", "stem_w", "stem_b"], ["p3_conv"], strides=[8, 8], kernel_shape=[8, 8]),
             n("Relu", ["p3_conv"], ["p3"]),
             n("Conv", ["p3", "down1_w", "down1_b"], ["p4_conv"], strides=[2, 2], kernel_shape=[2, 2]),
             n("Relu", ["p4_conv"], ["p4"]),
             n("Conv", ["p4", "down2_w", "down2_b"], ["p5_conv"], strides=[2, 2], kernel_shape=[2, 2]),
             n("Relu", ["p5_conv"], ["p5"])]
    flat = []
    for level, feature in enumerate(("p3", "p4", "p5")):
        cells = (INPUT_SIZE // STRIDES[level]) ** 2
        shape = f"shape{level}"
        inits.append(numpy_helper.from_array(np.array([1, 4 + NUM_CLASSES, cells], np.int64), shape))
        nodes += [n("Conv", [feature, f"head{level}_w", f"head{level}_b"], [f"head{level}"], kernel_shape=[1, 1]),
                  n("Reshape", [f"head{level}", shape], [f"flat{level}"])]
        flat.append(f"flat{level}")
    for name, values in (("box_start", [0]), ("box_end", [4]), ("cls_start", [4]), ("cls_end", [4 + NUM_CLASSES]),
                         ("xy_start", [0]), ("xy_end", [2]), ("wh_start", [2]), ("wh_end", [4]), ("axis1", [1])):
        inits.append(numpy_helper.from_array(np.array(values, np.int64), name))
    nodes += [n("Concat", flat, ["raw"], axis=2),
              n("Slice", ["raw", "box_start", "box_end", "axis1"], ["raw_box"]),
              n("Slice", ["raw", "cls_start", "cls_end", "axis1"], ["raw_cls"]),
              n("Slice", ["raw_box", "xy_start", "xy_end", "axis1"], ["raw_xy"]),
              n("Slice", ["raw_box", "wh_start", "wh_end", "axis1"], ["raw_wh"]),
              n("Tanh", ["raw_xy"], ["shift"]),
              n("Mul", ["shift", "anchor_strides"], ["shift_px"]),
              n("Add", ["anchor_centres", "shift_px"], ["xy"]),
              n("Clip", ["raw_wh", "clip_min", "clip_max"], ["wh_clipped"]),
              n("Exp", ["wh_clipped"], ["wh_exp"]),
              n("Mul", ["wh_exp", "anchor_strides"], ["wh_px"]),
              n("Mul", ["wh_px", "size_scale"], ["wh"]),
              n("Sigmoid", ["raw_cls"], ["scores"]),
              n("Concat", ["xy", "wh", "scores"], ["output0"], axis=1)]
    count = sum((INPUT_SIZE // s) ** 2 for s in STRIDES)
    graph = helper.make_graph(
        nodes, "dsparsers_demo_yolo11",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, INPUT_SIZE, INPUT_SIZE])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + NUM_CLASSES, count])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="dsparsers-demo", producer_version="1")
    model.ir_version = 8
    names = "{" + ", ".join(f"{i}: '{name}'" for i, name in enumerate(COCO80)) + "}"
    for key, value in (("description", "dsparsers demo: YOLO11-style head, RANDOM weights"), ("task", "detect"),
                       ("stride", "32"), ("imgsz", f"[{INPUT_SIZE}, {INPUT_SIZE}]"), ("names", names)):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model.SerializeToString()


def demo_model(picture: np.ndarray, seed: int = SEED) -> bytes:
    """The serialized demo model, its class bias shifted so that WANTED_CANDIDATES anchor points of
    ``picture`` (pre-processed as the generated config says: letterbox, centred, 1/255) clear 0.25."""
    import onnxruntime as ort

    from dsparsers.emulation.preprocess import Preprocessing

    weights = _weights(seed)
    prep = Preprocessing(INPUT_SIZE, INPUT_SIZE, 3, 1 / 255, maintain_aspect_ratio=True, symmetric_padding=True)
    tensor, _ = prep.tensor(picture)
    session = ort.InferenceSession(_graph(weights, (0.0, 0.0, 0.0)), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {"images": tensor[None]})
    logit = lambda p: float(np.log(p / (1 - p)))  # noqa: E731
    shifts, start = [], 0
    for stride in STRIDES:  # the same number of candidates from each level: small, medium and large boxes
        cells = (INPUT_SIZE // stride) ** 2
        best = np.sort(output[0, 4:, start:start + cells].max(axis=0))[::-1]
        start += cells
        wanted = WANTED_CANDIDATES // len(STRIDES)
        # the threshold midway between the wanted-th and the next candidate, in logit space
        low, high = logit(float(best[wanted])), logit(float(best[wanted - 1]))
        shifts.append(round(logit(THRESHOLD) - (low + high) / 2, 4))
    return _graph(weights, tuple(shifts))


def picture_png(picture: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(picture, "RGB").save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def prepare_demo(work: Path | None = None) -> tuple[Path, Path]:
    """(config path, picture path) of the demo: model, picture and built parser, made once in
    ``work`` (default: the cache directory). The config's onnx-file and custom-lib-path point at them."""
    from dsparsers.api.architecture import GenerateOptions
    from dsparsers.api.registry import get_registry
    from dsparsers.generation.codegen import render_config
    from dsparsers.library.parser_build import build_parser
    from dsparsers.model.reader import load_model
    from dsparsers.paths import cache_dir

    picture = demo_picture()
    model_bytes = demo_model(picture)
    key = hashlib.sha256(model_bytes + picture.tobytes()).hexdigest()[:12]
    root = Path(work) if work is not None else cache_dir() / "demo" / key
    model_path, picture_path = root / "demo-yolo11.onnx", root / "demo-scene.png"
    registry = get_registry()
    root.mkdir(parents=True, exist_ok=True)
    if not model_path.is_file() or model_path.read_bytes() != model_bytes:
        staged = root / ".demo-yolo11.onnx.tmp"
        staged.write_bytes(model_bytes)
        staged.replace(model_path)
    if not picture_path.is_file():
        staged = root / ".demo-scene.png.tmp"
        staged.write_bytes(picture_png(picture))
        staged.replace(picture_path)
    model = load_model(model_path)
    architecture = registry.get("yolo11").architecture
    params = architecture.head_params(model, GenerateOptions(requested_as="yolo11"))
    onnx_file = f"../{model_path.name}"
    config_name, config_text = render_config(architecture, params, requested_as="yolo11", model=model,
                                             onnx_file=onnx_file)
    parser_dir = root / "parser_yolo11"
    config = parser_dir / config_name
    library = parser_dir / "build" / "libnvdsparser_yolo11.so"
    if not library.is_file() or not config.is_file() or config.read_text(encoding="utf-8") != config_text:
        build_parser(architecture, params, parser_dir, requested_as="yolo11", model=model, onnx_file=onnx_file,
                     template_dirs=registry.template_dirs())
    return config, picture_path

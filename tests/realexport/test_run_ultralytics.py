"""Real-export tier for `dsparsers run`: on a YOLO11n export (random weights, the cached export of
tests/test_ultralytics_tier.py), `dsparsers run` draws the boxes ultralytics' own predict path draws.

The picture is 640x480 made of 2x2 blocks, into a 320x320 network: nvinfer's letterbox (dest
int(320 * 480 / 640) = 240 rows, (320 - 240) // 2 = 40 rows on top) and ultralytics' LetterBox (its own
rounding) place it identically, and any 2:1 downscale of 2x2 blocks gives the block values, so the
8-bit pictures agree exactly; this is checked first. Two differences are inherent and handled:

- padding: nvinfer pads with black, ultralytics with grey 114 by default. The comparison runs
  ultralytics' LetterBox with ``padding_value=0``; the test shows that only the padding differs.
- normalisation: nvinfer multiplies by net-scale-factor (float32 1/255), ultralytics divides by 255:
  the inputs agree to one float32 ulp, so scores and boxes are compared with small tolerances.

Boxes are compared edge by edge in picture pixels. Left, right and top always agree (the parser clips to
the network, ultralytics clips to the picture: both end at the picture's edge here). The bottom agrees
wherever no clamping is involved; nvinfer does not clamp the bottom, and a box starting in the top
padding keeps its height when its top is clamped to 0 (../shared/specs/nvinfer-abi.md): for those
boxes the test checks nvinfer's documented values, computed from ultralytics' own network-space boxes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_ultralytics_tier import HAVE_DEPS, ULTRA, _cli, _export, exports  # noqa: F401  (fixture)

pytestmark = [
    pytest.mark.realexport,
    pytest.mark.skipif(not HAVE_DEPS, reason="needs torch, ultralytics and onnxruntime (tests/realexport/install_deps.sh)"),
]

WIDTH, HEIGHT, NET = 640, 480, 320


def block_picture(path: Path, seed: int = 7) -> Path:
    """A deterministic 640x480 picture of 2x2 blocks: blocky noise and a few flat rectangles."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    half = np.kron(rng.integers(0, 110, (HEIGHT // 16, WIDTH // 16, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    for _ in range(5):
        x, y = int(rng.integers(0, WIDTH // 2 - 60)), int(rng.integers(0, HEIGHT // 2 - 60))
        w, h = int(rng.integers(20, 90)), int(rng.integers(20, 90))
        half[y:y + h, x:x + w] = rng.integers(60, 255, 3)
    Image.fromarray(half.repeat(2, 0).repeat(2, 1), "RGB").save(path)
    return path


def test_run_draws_the_boxes_ultralytics_predict_draws(exports, tmp_path):  # noqa: F811
    from dsparsers.emulation.config_reader import read_config
    from dsparsers.emulation.preprocess import Preprocessing, load_image

    model = _export(exports, "yolo11n.yaml") / "model.onnx"
    image = block_picture(tmp_path / "blocks.png")
    result = tmp_path / "ultralytics.npz"
    env = dict(os.environ, YOLO_OFFLINE="1", YOLO_AUTOINSTALL="false", YOLO_CONFIG_DIR=str(tmp_path / "yolo_config"))
    ultra = subprocess.run([sys.executable, str(ULTRA / "predict_tools.py"), "--model", str(model), "--image", str(image),
                            "--out", str(result), "--imgsz", str(NET)], capture_output=True, text=True, timeout=600,
                           cwd=tmp_path, env=env)
    assert ultra.returncode == 0, ultra.stdout[-2000:] + ultra.stderr[-4000:]
    u = dict(np.load(result))

    directory = tmp_path / "parser"
    gen = _cli("generate", "--onnx", str(model), "-o", str(directory), "--build")
    assert gen.returncode == 0, gen.stderr
    config = next(directory.glob("config_infer_primary_*.txt"))

    # 1. the same network input
    prep = Preprocessing.from_config(read_config(config), NET, NET, 3)
    picture = load_image(image)
    frame, geometry = prep.scaled_frame(picture)
    assert (geometry.dest_height, geometry.offset_top, geometry.ratio_x) == (240, 40, 0.5)
    assert np.array_equal(frame, u["letterbox_0"]), "nvinfer's and ultralytics' letterboxed pictures differ"
    content = slice(geometry.offset_top, geometry.offset_top + geometry.dest_height)
    assert np.array_equal(u["letterbox_114"][content], frame[content])  # only the padding colour differs
    assert np.all(u["letterbox_114"][:geometry.offset_top] == 114) and np.all(frame[:geometry.offset_top] == 0)
    tensor, _ = prep.tensor(picture)
    np.testing.assert_allclose(tensor, u["input"][0], rtol=0, atol=2e-7)

    # 2. dsparsers run with ultralytics' thresholds
    conf, iou = float(u["conf"]), float(u["iou"])
    out = tmp_path / "out"
    run = _cli("run", "--config", str(config), "--image", str(image), "-o", str(out),
               "--set", f"class-attrs-all.pre-cluster-threshold={conf!r}",
               "--set", f"class-attrs-all.nms-iou-threshold={iou!r}")
    assert run.returncode == 0, run.stderr
    (record,) = json.loads((out / "detections.json").read_text())["images"]
    ours = record["detections"]
    det, boxes = u["det"], u["boxes"]
    # DeepStream 9.1 attaches only objects whose bottom is within the frame (gstnvinfer_meta_utils.cpp,
    # attach_metadata_detector, without crop-objects-to-roi-boundary): drop the ultralytics boxes whose
    # nvinfer bottom (computed as below, in float32 as nvinfer holds the object) is past the picture
    ny = np.clip(det[:, [1, 3]].astype(np.float32), np.float32(0), np.float32(NET))
    tops = np.maximum((ny[:, 0] - np.float32(40)) / np.float32(0.5), np.float32(0))
    bottoms = tops + (ny[:, 1] - ny[:, 0]) / np.float32(0.5)
    attached = bottoms <= np.float32(HEIGHT)
    assert 0 < attached.sum() < len(det)  # random weights: some boxes reach into the bottom padding
    det, boxes = det[attached], boxes[attached]
    assert len(ours) == len(det) > 0, (len(ours), len(det))

    # 3. pair them by class and score, then compare edge by edge
    mine = sorted(ours, key=lambda d: (d["class_id"], -d["confidence"]))
    order = np.lexsort((-det[:, 4], det[:, 5]))
    fully = 0
    for d, k in zip(mine, order):
        assert d["class_id"] == int(det[k, 5])
        assert d["confidence"] == pytest.approx(float(det[k, 4]), abs=1e-4)
        x1, y1, x2, y2 = (float(v) for v in boxes[k])
        tol = 0.02  # picture pixels (float32 input rounding, JSON rounding)
        assert d["left"] == pytest.approx(x1, abs=tol)
        assert d["left"] + d["width"] == pytest.approx(x2, abs=tol)
        assert d["top"] == pytest.approx(y1, abs=tol)
        # nvinfer's bottom from ultralytics' network-space box: clipped to the network by the parser,
        # mapped back, the top clamped to 0 with the height kept, the bottom never clamped
        ny1, ny2 = np.clip(det[k, [1, 3]].astype(np.float64), 0, NET)
        top = max((ny1 - 40) / 0.5, 0.0)
        assert d["top"] + d["height"] == pytest.approx(top + (ny2 - ny1) / 0.5, abs=tol)
        if (ny1 - 40) / 0.5 >= 0 and y2 < HEIGHT:
            assert d["top"] + d["height"] == pytest.approx(y2, abs=tol)  # no clamping: ultralytics' own bottom
            fully += 1
    # random weights put many boxes into the padding; enough of them stay clear of any clamping
    assert fully >= 5, f"only {fully} of {len(det)} boxes compared on all four edges"

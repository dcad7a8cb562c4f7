"""Real-model tier for the DETR family: tiny random-weight models from Hugging Face transformers.

DETR (softmax, "no object" last) and RT-DETR (deformable attention, sigmoid) are built from tiny
configs (small ResNet backbones with no pretrained weights: nothing is downloaded), exported with
torch.onnx in a subprocess, run in onnxruntime, and:

1. inspection picks ``detr`` with the right activation (softmax for DETR, sigmoid for RT-DETR, from the
   GridSample of its deformable attention);
2. the parser generated from the ONNX builds and agrees exactly with the reference decoder on the real
   outputs;
3. its objects are the detections of the library's own ``post_process_object_detection`` at the same
   threshold (boxes in network pixels, clipped to the network and boxes under a pixel dropped as nvinfer
   expects; RT-DETR's top-K over query x class pairs reduced to each query's best class).

Exports are cached in $DSPARSERS_EXPORT_CACHE, else ~/.cache/dsparsers/detr-exports, keyed by the
transformers and torch versions and this file's export recipe. Skipped without transformers/torch.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SIZE = (96, 64)  # network W, H
QUERIES = 12


def _export(kind: str, out: Path) -> None:
    """Runs in a subprocess: build the tiny model, export it, record its input and torch outputs."""
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    if kind == "detr":
        from transformers import DetrConfig, DetrForObjectDetection, ResNetConfig

        backbone = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic",
                                out_features=["stage2"])
        config = DetrConfig(use_timm_backbone=False, backbone_config=backbone, use_pretrained_backbone=False,
                            d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                            decoder_attention_heads=2, encoder_ffn_dim=16, decoder_ffn_dim=16,
                            num_queries=QUERIES, num_labels=4)
        model = DetrForObjectDetection(config).eval()
    else:
        from transformers import RTDetrConfig, RTDetrForObjectDetection, RTDetrResNetConfig

        backbone = RTDetrResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1],
                                      layer_type="basic", out_features=["stage2", "stage3", "stage4"])
        config = RTDetrConfig(backbone_config=backbone, use_pretrained_backbone=False, d_model=16,
                              encoder_in_channels=[16, 24, 32], encoder_hidden_dim=16, encoder_ffn_dim=16,
                              encoder_attention_heads=2, encoder_layers=1, hidden_expansion=0.5,
                              decoder_in_channels=[16, 16, 16], decoder_layers=1, decoder_attention_heads=2,
                              decoder_ffn_dim=16, decoder_n_points=2, num_queries=QUERIES, num_labels=5,
                              num_denoising=0)
        model = RTDetrForObjectDetection(config).eval()

    class Outputs(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, pixel_values):
            result = self.inner(pixel_values=pixel_values)
            return result.logits, result.pred_boxes

    image = torch.rand(1, 3, SIZE[1], SIZE[0], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # run eagerly first: exporting a never-run model traced degenerate constant outputs
        logits, boxes = Outputs(model)(image)
    torch.onnx.export(Outputs(model), (image,), str(out / f"{kind}.onnx"), input_names=["pixel_values"],
                      output_names=["logits", "pred_boxes"], opset_version=17, dynamo=False)
    np.savez(out / f"{kind}.npz", image=image.numpy(), logits=logits.numpy(), boxes=boxes.numpy())


def _have(*modules) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


pytestmark = [pytest.mark.realexport, pytest.mark.filterwarnings("ignore"),
              pytest.mark.skipif(not _have("torch", "transformers", "onnxruntime"),
                                 reason="needs torch, transformers and onnxruntime (pip install transformers)")]


def _cache_dir() -> Path:
    base = Path(os.environ.get("DSPARSERS_EXPORT_CACHE") or Path.home() / ".cache" / "dsparsers" / "detr-exports")
    recipe = inspect.getsource(_export) + repr((SIZE, QUERIES))
    key = hashlib.sha256("|".join([importlib.metadata.version("transformers"), importlib.metadata.version("torch"),
                                   recipe]).encode()).hexdigest()[:16]
    return base / key


@pytest.fixture(scope="module", params=["detr", "rtdetr"])
def exported(request):
    kind = request.param
    directory = _cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / f"{kind}.onnx").exists() or not (directory / f"{kind}.npz").exists():
        result = subprocess.run([sys.executable, __file__, kind, str(directory)], capture_output=True, text=True,
                                timeout=600)
        if result.returncode != 0:
            pytest.skip(f"exporting the tiny {kind} model failed: {result.stderr.strip().splitlines()[-1:]}")
    return kind, directory / f"{kind}.onnx", dict(np.load(directory / f"{kind}.npz"))


def _library_results(kind, outputs, threshold):
    """The library's own post-processing at ``threshold``, in network pixels: (class, x1, y1, x2, y2, score)."""
    import torch

    logits, boxes = torch.from_numpy(outputs[0]), torch.from_numpy(outputs[1])
    sizes = [(SIZE[1], SIZE[0])]
    if kind == "detr":
        from transformers import DetrImageProcessor
        from transformers.models.detr.modeling_detr import DetrObjectDetectionOutput

        processor = DetrImageProcessor()
        found = processor.post_process_object_detection(DetrObjectDetectionOutput(logits=logits, pred_boxes=boxes),
                                                        threshold=threshold, target_sizes=sizes)[0]
    else:
        from transformers import RTDetrImageProcessor
        from transformers.models.rt_detr.modeling_rt_detr import RTDetrObjectDetectionOutput

        processor = RTDetrImageProcessor()
        found = processor.post_process_object_detection(RTDetrObjectDetectionOutput(logits=logits, pred_boxes=boxes),
                                                        threshold=threshold, target_sizes=sizes, use_focal_loss=True)[0]
    rows = []
    for label, box, score in zip(found["labels"].tolist(), found["boxes"].tolist(), found["scores"].tolist()):
        x1, y1, x2, y2 = (min(max(v, 0.0), limit) for v, limit in zip(box, (SIZE[0], SIZE[1], SIZE[0], SIZE[1])))
        if x2 - x1 >= 1 and y2 - y1 >= 1:  # nvinfer's contract: clipped, degenerate boxes dropped
            rows.append((int(label), x1, y1, x2, y2, float(score)))
    if kind == "rtdetr":  # top-K over (query, class) pairs: keep each box's best class, as one query gives one box
        best = {}
        for row in rows:
            key = tuple(round(v, 3) for v in row[1:5])
            if key not in best or row[5] > best[key][5]:
                best[key] = row
        rows = list(best.values())
    return sorted(rows, key=lambda r: (r[0], r[1], r[2]))


def test_real_detr_family_export_parses_like_the_library(exported, tmp_path, registry):
    import onnxruntime as ort

    from dsparsers.api.architecture import GenerateOptions
    from dsparsers.library.meson_build import build_directory
    from dsparsers.generation.codegen import render_parser
    from dsparsers.verification.loader import ParserLibrary
    from dsparsers.model.reader import load_model
    from dsparsers.generation.output_dir import write_directory
    from dsparsers.api.abi_types import DetectionParams, Layer, NetworkInfo, ParserCase
    from dsparsers.api.selection import choose
    from parser_checks import objects

    kind, path, recorded = exported
    model = load_model(path)
    choice = choose(registry, model, None)
    architecture = choice.provided.architecture
    assert architecture.name == "detr", registry.rank(model)
    params = architecture.head_params(model, GenerateOptions())
    expected_activation = "softmax" if kind == "detr" else "sigmoid"
    assert params.activation == expected_activation and expected_activation in choice.matches[0].reason
    assert (params.input_width, params.input_height, params.num_queries) == (*SIZE, QUERIES)

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = session.run(["logits", "pred_boxes"], {"pixel_values": recorded["image"]})
    np.testing.assert_allclose(outputs[0], recorded["logits"], atol=1e-4)

    generated = render_parser(architecture, params, requested_as=choice.requested_as)
    write_directory(tmp_path / "parser", dict(generated.files))
    built = build_directory(tmp_path / "parser", deepstream_include="bundled")
    library = ParserLibrary(built.library, built.function, built.abi)
    try:
        from dsparsers.plugins.detr_reference import activated_scores

        best, _ = activated_scores(outputs[0][0].astype(np.float32), params.activation, params.no_object)
        threshold = float(np.median(best))  # about half of the queries pass
        case = ParserCase((Layer("pred_boxes", outputs[1][0]), Layer("logits", outputs[0][0])),
                          NetworkInfo(*SIZE), DetectionParams.uniform(params.num_classes, threshold))
        got = library.parse(case)
        want = architecture.reference(case, params)
        assert got.accepted and objects(got) == objects(want)
        assert len(got.objects) > 0
        ours = sorted(((int(o["class_id"]), float(o["left"]), float(o["top"]), float(o["left"] + o["width"]),
                        float(o["top"] + o["height"]), float(o["confidence"])) for o in got.objects
                       if o["confidence"] > threshold), key=lambda r: (r[0], r[1], r[2]))  # HF keeps score > t
        theirs = _library_results(kind, outputs, threshold)
        assert len(ours) == len(theirs), (ours, theirs)
        for a, b in zip(ours, theirs):
            assert a[0] == b[0]
            np.testing.assert_allclose(a[1:5], b[1:5], atol=1e-3)
            assert a[5] == pytest.approx(b[5], rel=1e-5, abs=1e-6)
    finally:
        library.close()


if __name__ == "__main__":  # the export subprocess
    _export(sys.argv[1], Path(sys.argv[2]))
    print(json.dumps({"exported": sys.argv[1]}))

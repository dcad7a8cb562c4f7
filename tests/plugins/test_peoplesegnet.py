"""peoplesegnet (PeopleSegNet / TAO Mask R-CNN, an instance-mask parser): hand-computed boxes and masks
through the built parser and the reference, conformance with mask comparison (and broken parsers that
must fail it), the generated config, and recognition on graphs built with onnx-graphsurgeon."""

from __future__ import annotations

import json
import math

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from click.testing import CliRunner

from dsparsers.api.architecture import GenerateOptions
from dsparsers.cli import main
from dsparsers.generation.codegen import render_parser
from dsparsers.verification.conformance import run_conformance, run_hostile
from dsparsers.errors import UsageError
from dsparsers.model.reader import load_model
from dsparsers.api.abi_types import DataType, DetectionParams, Layer, NetworkInfo, ParserCase
from parser_checks import objects
from plugin_imports import heavy_modules_loaded_by

NAN, INF = float("nan"), float("inf")
DET, MASKS = "generate_detections", "mask_fcn_logits/BiasAdd"
#: a parser for a C = 3 model, 56x14 output masks, values passed on (no sigmoid)
WIDE = {"classes": 3, "extra": {"mask_size": "56x14", "mask_activation": "none"}}

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def case(rows, masks, *, network=(100, 100), threshold=0.5, configured=2, names=(DET, MASKS), reverse=False,
         dtype=np.float32):
    """rows: (y1, x1, y2, x2, class, score) per detection; masks: [N, C, M, M] mask logits."""
    det = np.array(rows, np.float32).reshape(-1, 6)
    layers = [Layer(names[0], det.astype(dtype)), Layer(names[1], np.asarray(masks, np.float32).astype(dtype))]
    if reverse:
        layers.reverse()
    return ParserCase(tuple(layers), NetworkInfo(*network), DetectionParams.uniform(configured, threshold))


def run_both(parser, test_case):
    """The library's outcome, after checking that the reference returns the same objects and masks."""
    architecture, params, library = parser
    got = library.parse(test_case)
    want = architecture.reference(test_case, params)
    assert got.accepted == want.accepted and not got.mask_errors
    assert objects(got) == objects(want)
    assert len(got.masks) == len(want.masks)
    for a, b in zip(got.masks, want.masks):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    return got


@pytest.fixture(scope="module")
def canonical(open_parser):
    return open_parser("peoplesegnet")


@pytest.fixture(scope="module")
def wide(open_parser):
    return open_parser("mask-rcnn-tao", **WIDE)


def test_canonical_head_is_peoplesegnet(canonical):
    _, params, _ = canonical
    assert (params.num_classes, params.detections, params.mask_resolution) == (2, 100, 28)
    assert (params.input_width, params.input_height) == (960, 576)
    assert (params.mask_width, params.mask_height, params.mask_activation) == (28, 28, "sigmoid")
    assert params.labels() == ["background", "person"]


# -- hand-computed boxes and masks ------------------------------------------------------------------

def gradient_slice(m=28):
    """logit (c - r) / 8 at row r, column c: exact in float32 and float16."""
    r, c = np.mgrid[0:m, 0:m]
    return ((c - r) / 8.0).astype(np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_unclipped_box_gives_back_the_sigmoid_of_its_slice(canonical, dtype):
    # a 56x56 box inside the network: mask pixel j's centre is x1 + 2j + 1, which falls exactly on source
    # cell j's centre, so the 28x28 mask is the slice itself, through the sigmoid
    masks = np.full((2, 2, 28, 28), 100.0, np.float32)  # every other slice would read as ~1.0
    masks[0, 1] = gradient_slice()
    rows = [(10, 20, 66, 76, 1, 0.875), (0, 0, 0, 0, 0, 0)]  # the second is a padding row (score 0)
    got = run_both(canonical, case(rows, masks, network=(200, 100), dtype=dtype))
    assert objects(got) == [(1, 20.0, 10.0, 56.0, 56.0, 0.875)]
    mask = got.masks[0]
    assert mask.shape == (28, 28)
    for r, c in ((0, 0), (0, 27), (27, 0), (5, 9), (27, 27)):
        assert mask[r, c] == pytest.approx(sigmoid((c - r) / 8), abs=1e-6)


def test_layers_found_by_shape_when_renamed_in_any_order(canonical):
    masks = np.full((1, 2, 28, 28), 100.0, np.float32)
    masks[0, 1] = gradient_slice()
    got = run_both(canonical, case([(10, 20, 66, 76, 1, 0.875)], masks, network=(200, 100),
                                   names=("engine_out_0", "engine_out_1"), reverse=True))
    assert objects(got) == [(1, 20.0, 10.0, 56.0, 56.0, 0.875)]
    assert got.masks[0][3, 7] == pytest.approx(sigmoid(0.5), abs=1e-6)


def test_clipped_box_mask_is_resampled_from_the_original_box(canonical):
    # box x -28..28 (56 px, 2 px per source cell) clipped to 0..28; y 0..28 unclipped (identity).
    # mask column j's centre x = j + 0.5 sits at source u = (x + 28) * 28/56 - 0.5 = j/2 + 13.75.
    # source logit at column c: (c - 14) / 2, whatever the row
    slice_ = np.tile(((np.arange(28) - 14) / 2.0).astype(np.float32), (28, 1))
    masks = np.zeros((1, 2, 28, 28), np.float32)
    masks[0, 1] = slice_
    got = run_both(canonical, case([(0, -28, 28, 28, 1, 0.9)], masks))
    assert objects(got) == [(1, 0.0, 0.0, 28.0, 28.0, 0.9)]
    mask = got.masks[0]
    # j = 0: u = 13.75 -> 0.25 * (-0.5) + 0.75 * 0 = -0.125; j = 1: u = 14.25 -> 0.75 * 0 + 0.25 * 0.5 = 0.125
    # j = 27: u = 27.25, clamped to the last cell 27 -> 6.5
    for row in (0, 13, 27):
        assert mask[row, 0] == pytest.approx(sigmoid(-0.125), abs=1e-6)
        assert mask[row, 1] == pytest.approx(sigmoid(0.125), abs=1e-6)
        assert mask[row, 27] == pytest.approx(sigmoid(6.5), abs=1e-6)
    # resampling from the clipped box instead would have put source column 0 (logit -7) at j = 0
    assert mask[0, 0] > sigmoid(-1)


def test_mask_slice_follows_the_models_classes_not_num_detected_classes(wide):
    # C = 3 in the model; every slice [i, c] is the constant 10 i + c (values passed on: no sigmoid)
    masks = np.zeros((3, 3, 28, 28), np.float32)
    for i in range(3):
        for c in range(3):
            masks[i, c] = 10 * i + c
    rows = [(0, 0, 50, 50, 2, 0.9), (10, 10, 60, 60, 1, 0.8), (20, 20, 70, 70, 0, 0.7)]
    # num-detected-classes 2: class 2 is dropped; row 1 still reads slice [1, 1] = 11 (a stride of 2 would read
    # flat slice 3 = [1, 0] = 10) and row 2 slice [2, 0] = 20 (flat slice 4 = [1, 1] = 11)
    two = run_both(wide, case(rows, masks, configured=2))
    assert objects(two) == [(1, 10.0, 10.0, 50.0, 50.0, 0.8), (0, 20.0, 20.0, 50.0, 50.0, 0.7)]
    assert [set(np.unique(m).tolist()) for m in two.masks] == [{11.0}, {20.0}]
    # num-detected-classes 5: every row kept, same slices
    five = run_both(wide, case(rows, masks, configured=5))
    assert [o[0] for o in objects(five)] == [2, 1, 0]
    assert [set(np.unique(m).tolist()) for m in five.masks] == [{2.0}, {11.0}, {20.0}]


def test_mask_size_option_resamples_to_width_by_height(wide):
    # box 0..28 both ways, logit 100 r + c; the mask is 56 wide, 14 high:
    # column j: u = (j + 0.5) / 2 - 0.5 = j/2 - 0.25 (clamped at 0 and 27); row i: u = 2i + 0.5
    r, c = np.mgrid[0:28, 0:28]
    masks = np.zeros((1, 3, 28, 28), np.float32)
    masks[0, 1] = 100 * r + c
    got = run_both(wide, case([(0, 0, 28, 28, 1, 0.9)], masks, configured=3))
    mask = got.masks[0]
    assert mask.shape == (14, 56)
    assert mask[0, 0] == pytest.approx(50.0)      # row 0.5 -> 50, column clamped to 0
    assert mask[0, 1] == pytest.approx(50.25)     # column 0.25
    assert mask[1, 3] == pytest.approx(251.25)    # row 2.5 -> 250, column 1.25
    assert mask[13, 55] == pytest.approx(2677.0)  # row 26.5 -> 2650, column clamped to 27


def test_rows_that_are_not_objects(canonical):
    masks = np.zeros((12, 2, 28, 28), np.float32)
    rows = [(0, 0, 50, 50, 1, 0.5),          # at the threshold: kept
            (0, 0, 50, 50, 1, 0.4999),       # below
            (0, 0, 50, 50, 2, 0.9),          # class 2: the model has 2 classes
            (0, 0, 50, 50, -1, 0.9),         # negative class
            (0, 0, 50, 50, NAN, 0.9),        # NaN class
            (NAN,) * 6,                      # a NaN row
            (0, INF, 50, 50, 1, 0.9),        # non-finite corner
            (200, 0, 300, 50, 1, 0.9),       # below the network: nothing left after clipping
            (0, 10, 50, 10.5, 1, 0.9),       # half a pixel wide
            (0, 40, 50, 20, 1, 0.9),         # inverted
            (10, 10, 20, 30, 1.7, 0.9),      # class 1.7 -> 1
            (30, 30, 40, 40, 0, 0.6)]        # class 0 (background) is a class like the others
    got = run_both(canonical, case(rows, masks))
    assert objects(got) == [(1, 0.0, 0.0, 50.0, 50.0, 0.5), (1, 10.0, 10.0, 20.0, 10.0, 0.9),
                            (0, 30.0, 30.0, 10.0, 10.0, 0.6)]
    assert all(np.allclose(m, 0.5) for m in got.masks)  # sigmoid(0)


def test_two_detections_with_one_box_keep_their_own_masks(canonical):
    # the same box twice (Mask R-CNN can keep overlapping detections): each object carries its row's slice
    masks = np.zeros((2, 2, 28, 28), np.float32)
    masks[0, 1], masks[1, 1] = -10.0, -1.0
    got = run_both(canonical, case([(0, 0, 28, 28, 1, 0.9), (0, 0, 28, 28, 1, 0.9)], masks))
    assert objects(got) == [(1, 0.0, 0.0, 28.0, 28.0, 0.9)] * 2
    assert got.masks[0][5, 5] == pytest.approx(sigmoid(-10.0), abs=1e-7)
    assert got.masks[1][5, 5] == pytest.approx(sigmoid(-1.0), abs=1e-6)


BUFFER = np.zeros(4 * 2 * 28 * 28 * 4, np.float32)


def layers(det=((2, 6), None), masks=((2, 2, 28, 28), None), names=(DET, MASKS)):
    return tuple(Layer(name, BUFFER, dims=dims, data_type=dtype) for name, (dims, dtype) in zip(names, (det, masks)))


@pytest.mark.parametrize("bad", [
    layers(masks=((3, 2, 28, 28), None)),     # N differs
    layers(masks=((2, 3, 28, 28), None)),     # C differs from the generated 2
    layers(masks=((2, 2, 14, 14), None)),     # M differs
    layers(masks=((2, 2, 28, 27), None)),     # not square
    layers(masks=((1, 2, 2, 28, 28), None)),  # batch dimension left in
    layers(det=((2, 7), None)),
    layers(det=((0, 6), None), masks=((0, 2, 28, 28), None)),
    layers(det=((2, 6), DataType.INT32)),
    layers(masks=((2, 2, 28, 28), DataType.INT8)),
    layers()[:1],                             # no masks layer
], ids=lambda ls: ",".join(f"{l.name}{list(l.reported_dims)}{l.reported_type.name}" for l in ls))
def test_layers_it_cannot_read_are_refused(canonical, bad):
    architecture, params, library = canonical
    bad_case = ParserCase(bad, NetworkInfo(100, 100), DetectionParams.uniform(2, 0.0))
    got = library.parse(bad_case)
    assert not got.accepted and len(got.objects) == 0 and not got.mask_errors
    assert not architecture.reference(bad_case, params).accepted


def test_refusal_is_one_clear_line(canonical, capfd):
    _, _, library = canonical
    capfd.readouterr()
    library.parse(ParserCase(layers(masks=((3, 2, 28, 28), None)), NetworkInfo(100, 100), DetectionParams.uniform(2, 0.5)))
    library.parse(ParserCase(layers()[:1], NetworkInfo(100, 100), DetectionParams.uniform(2, 0.5)))
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert lines == [
        'dsparsers[peoplesegnet]: masks layer "mask_fcn_logits/BiasAdd" has dims [3, 2, 28, 28]; expected '
        '[2, 2, 28, 28] (N of "generate_detections", the model\'s C, M)',
        'dsparsers[peoplesegnet]: no masks layer among 1 layers (looked for "mask_fcn_logits/BiasAdd", then a layer '
        'of dims [N, C, M, M])']


# -- conformance ------------------------------------------------------------------------------------

@pytest.mark.cpp
@pytest.mark.parametrize("parser", ["canonical", "wide"])
def test_conformance_with_masks_and_hostile_inputs(request, parser):
    architecture, params, library = request.getfixturevalue(parser)
    report = run_conformance(library, architecture, params, examples=100, derandomize=True)
    run_hostile(library, architecture, params, report)
    assert report.passed, (report.mismatch.summary if report.mismatch else report.hostile_failures)
    assert report.masks.compared > 20 and report.masks.worst_abs <= 1e-6
    assert report.hostile_cases > 20


def strided_by_num_detected_classes(source: str) -> str:
    """The copied-parser bug: mask slices strided by num-detected-classes (kept in bounds)."""
    good = "(static_cast<size_t>(i) * kNumClasses + class_id) * kSlice"
    assert good in source
    return source.replace(good, "(static_cast<size_t>(i) * (params.numClassesConfigured < kNumClasses ? "
                                "params.numClassesConfigured : kNumClasses) + class_id) * kSlice")


def without_the_sigmoid(source: str) -> str:
    good = "kApplySigmoid, mask, tx, ty"
    assert good in source
    return source.replace(good, "false, mask, tx, ty")


def resampled_from_the_clipped_box(source: str) -> str:
    good = "kMaskResolution, box, clipped,"
    assert good in source
    return source.replace(good, "kMaskResolution, clipped, clipped,")


@pytest.mark.parametrize("arch, options, patch", [
    ("mask-rcnn-tao", WIDE, strided_by_num_detected_classes),
    ("peoplesegnet", {}, without_the_sigmoid),
    ("peoplesegnet", {}, resampled_from_the_clipped_box),
], ids=["slice-strided-by-num-detected-classes", "no-sigmoid", "mask-from-clipped-box"])
def test_broken_parsers_fail_conformance_on_masks(open_parser, arch, options, patch):
    architecture, params, library = open_parser(arch, source_patch=patch, **options)
    report = run_conformance(library, architecture, params, examples=200, derandomize=True)
    assert not report.passed
    assert "mask differs" in report.mismatch.summary, report.mismatch.summary
    assert report.explain and "mask slice" in report.explain[0]  # the shrunk case, shown row by row


# -- the generated files ----------------------------------------------------------------------------

def test_generated_config_is_an_instance_mask_config(registry):
    architecture = registry.get("peoplesegnet").architecture
    params = architecture.head_params(None, GenerateOptions(requested_as="peoplesegnet"))
    generated = render_parser(architecture, params, requested_as="peoplesegnet")
    config = generated.files[generated.config_name].splitlines()
    for line in ("network-type=3", "cluster-mode=4", "output-instance-mask=1", "segmentation-threshold=0.5",
                 "parse-bbox-instance-mask-func-name=NvDsInferParsePeoplesegnet", "net-scale-factor=0.017507",
                 "offsets=123.675;116.28;103.53", "model-color-format=0", "maintain-aspect-ratio=0",
                 "num-detected-classes=2", "pre-cluster-threshold=0.8"):
        assert line in config
    assert not any(line.startswith("parse-bbox-func-name=") for line in config)
    why = config[config.index("segmentation-threshold=0.5") - 1]
    assert why.startswith("# masks are probabilities: the parser applies the sigmoid")
    assert generated.files["labels.txt"] == "background\nperson\n"
    assert "CHECK_CUSTOM_INSTANCE_MASK_PARSE_FUNC_PROTOTYPE(NvDsInferParsePeoplesegnet);" in \
        generated.files[generated.source_name]


def test_options_are_checked(registry):
    architecture = registry.get("peoplesegnet").architecture
    for extra, message in (({"mask_activation": "softmax"}, "mask_activation=softmax: expected one of sigmoid, none"),
                           ({"mask_size": "28"}, "mask_size=28: expected WxH"),
                           ({"mask_size": "0x28"}, "each side must be 1 to 2048"),
                           ({"mask_size": "4096x28"}, "each side must be 1 to 2048"),
                           ({"layout": "rows"}, "not an option of peoplesegnet")):
        with pytest.raises(UsageError, match=message):
            architecture.head_params(None, GenerateOptions(extra=extra))
    params = architecture.head_params(None, GenerateOptions(extra={"mask_size": "64X32", "mask_activation": "none"}))
    assert (params.mask_width, params.mask_height, params.mask_activation) == (64, 32, "none")
    assert "masks 64x32, values passed on (-O mask_activation=none)" in architecture.describe(params)


# -- recognising exports ----------------------------------------------------------------------------

def mrcnn_model(path, *, sigmoid=False, reshape=True, names=(DET, MASKS), n=100, c=2, m=28, mask_n=None,
                mask_shape=None, input_shape=(1, 3, 576, 960)):
    """A TAO Mask R-CNN-style graph built with onnx-graphsurgeon: the detection branch (standing for TAO's
    DetectionLayer plugin) and the mask branch Conv -> BiasAdd (Add) [-> Sigmoid] [-> Reshape]."""
    image = gs.Variable("Input", np.float32, list(input_shape))
    features = gs.Variable("features", np.float32, None)
    detections = gs.Variable(names[0], np.float32, [1, n, 6])
    masks = gs.Variable(names[1], np.float32, list(mask_shape or [1, mask_n or n, c, m, m]))
    conv = gs.Variable("mask_fcn_logits/Conv2D", np.float32, None)
    nodes = [gs.Node("Relu", inputs=[image], outputs=[features]),
             gs.Node("Identity", inputs=[features], outputs=[detections]),
             gs.Node("Conv", inputs=[features, gs.Constant("mask_w", np.zeros((c, 3, 1, 1), np.float32))],
                     outputs=[conv])]
    steps = [("Add", [gs.Constant("mask_bias", np.zeros((1, c, 1, 1), np.float32))])]
    if sigmoid:
        steps.append(("Sigmoid", []))
    if reshape:
        steps.append(("Reshape", [gs.Constant("mask_shape", np.array(masks.shape, np.int64))]))
    current = conv
    for k, (op, extra) in enumerate(steps):
        out = masks if k == len(steps) - 1 else gs.Variable(f"mask_step{k}", np.float32, None)
        nodes.append(gs.Node(op, inputs=[current, *extra], outputs=[out]))
        current = out
    graph = gs.Graph(nodes=nodes, inputs=[image], outputs=[detections, masks], opset=13)
    onnx.save(gs.export_onnx(graph), str(path))
    return path


def test_tao_export_with_mask_logits(tmp_path, registry):
    model = load_model(mrcnn_model(tmp_path / "peoplesegnet.onnx"))
    ranked = registry.rank(model)
    assert ranked[0].architecture == "peoplesegnet" and ranked[0].score >= 0.9
    assert all(other.score < 0.5 for other in ranked[1:])
    assert "named as TAO's Mask R-CNN exporter names them" in ranked[0].reason
    assert "mask branch Reshape <- Add: logits (the parser applies the sigmoid)" in ranked[0].reason
    architecture = registry.get("peoplesegnet").architecture
    params = architecture.head_params(model, GenerateOptions(requested_as="peoplesegnet"))
    assert (params.num_classes, params.detections, params.mask_resolution) == (2, 100, 28)
    assert (params.input_width, params.input_height) == (960, 576)
    assert (params.mask_activation, params.activation_source) == ("sigmoid", "graph-logits")
    assert params.labels() == ["background", "person"]
    assert "sigmoid in the parser (the graph outputs mask logits)" in architecture.describe(params)
    with pytest.raises(UsageError, match=r"--classes 80: the model's mask output .* has C = 2"):
        architecture.head_params(model, GenerateOptions(num_classes=80))


@pytest.mark.parametrize("reshape", [True, False], ids=["sigmoid-then-reshape", "sigmoid-output"])
def test_mask_branch_ending_in_a_sigmoid_is_not_activated_again(tmp_path, registry, reshape):
    model = load_model(mrcnn_model(tmp_path / "sig.onnx", sigmoid=True, reshape=reshape))
    architecture = registry.get("peoplesegnet").architecture
    assert "already probabilities (no sigmoid in the parser)" in architecture.match(model).reason
    params = architecture.head_params(model, GenerateOptions())
    assert (params.mask_activation, params.activation_source) == ("none", "graph-sigmoid")
    generated = render_parser(architecture, params, requested_as="peoplesegnet", model=model)
    config = generated.files[generated.config_name]
    assert "the graph ends the mask branch in a Sigmoid" in config.splitlines()[2]  # the head line
    assert "# masks are probabilities: the model's mask branch ends in a Sigmoid" in config
    assert "constexpr bool kApplySigmoid = false;" in generated.files[generated.source_name]
    forced = architecture.head_params(model, GenerateOptions(extra={"mask_activation": "sigmoid"}))
    assert (forced.mask_activation, forced.activation_source) == ("sigmoid", "option")


def test_renamed_outputs_are_recognised_by_shape_with_a_lower_score(tmp_path, registry):
    model = load_model(mrcnn_model(tmp_path / "renamed.onnx", names=("dets", "masks"), c=3, n=50,
                                   input_shape=(1, 3, 512, 512)))
    ranked = registry.rank(model)
    assert ranked[0].architecture == "peoplesegnet" and 0.5 <= ranked[0].score < 0.7
    assert "recognised by their shapes only" in ranked[0].reason
    architecture = registry.get("peoplesegnet").architecture
    params = architecture.head_params(model, GenerateOptions())
    assert (params.num_classes, params.detections, params.input_width, params.detections_name, params.masks_name) == \
        (3, 50, 512, "dets", "masks")
    assert params.labels() == ["background", "class_1", "class_2"]
    assert params.names("masks") == ("masks", MASKS, MASKS + ":0")


@pytest.mark.parametrize("kwargs, reason", [
    ({"mask_n": 50}, "but N differs (100 detections, 50 masks)"),  # a near miss, said why
    ({"mask_shape": [1, 100, 2, 28]}, None),                       # rank 4: not this head
    ({"mask_shape": [1, 100, 2, 28, 14]}, None),                   # masks not square
])
def test_near_misses(tmp_path, registry, kwargs, reason):
    model = load_model(mrcnn_model(tmp_path / "miss.onnx", **kwargs))
    verdict = registry.get("peoplesegnet").architecture.match(model)
    if reason is None:
        assert verdict is None
    else:
        assert verdict.score == 0.0 and reason in verdict.reason


def test_detection_only_models_are_not_taken(tmp_path, registry):
    from onnx_graphs import head_model, ultralytics_detect

    architecture = registry.get("peoplesegnet").architecture
    assert architecture.match(load_model(head_model(tmp_path / "e2e.onnx", [("output0", [1, 300, 6])]))) is None
    assert architecture.match(load_model(ultralytics_detect(tmp_path / "y.onnx"))) is None
    seg = head_model(tmp_path / "seg.onnx", [("output0", [1, 116, 8400]), ("output1", [1, 32, 160, 160])])
    assert architecture.match(load_model(seg)) is None


@pytest.mark.cpp
def test_generate_build_conform_from_a_sigmoid_export(tmp_path):
    path = mrcnn_model(tmp_path / "sig.onnx", sigmoid=True, c=3, n=20, input_shape=(1, 3, 320, 480))
    out = tmp_path / "parser"
    runner = CliRunner()
    result = runner.invoke(main, ["generate", "--onnx", str(path), "-o", str(out), "--build"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "dsparsers.json").read_text())
    assert manifest["parser_kind"] == "instance-mask" and manifest["params"]["mask_activation"] == "none"
    result = runner.invoke(main, ["conform", "--dir", str(out), "--examples", "40"])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output
    assert "masks: " in result.output and " compared; worst IoU " in result.output


# -- the plugin module ---------------------------------------------------------------------------
def test_plugin_module_imports_neither_numpy_nor_hypothesis():
    assert heavy_modules_loaded_by("dsparsers.plugins.peoplesegnet") == []


def test_registered_by_the_plugin_module_named_after_it(registry):
    for name in ["peoplesegnet", "mask-rcnn-tao"]:
        assert registry.get(name).plugin == "peoplesegnet"

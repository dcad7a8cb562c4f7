"""`dsparsers run`: nvinfer emulated on pictures, end to end, without DeepStream.

For each picture: nvinfer's pre-processing (dsparsers.emulation.preprocess) -> the ONNX model in onnxruntime
(several pictures per call when the model's batch dimension allows) -> the parser library called the
way nvinfer calls it (dsparsers.verification.loader.ParserLibrary: one call per frame, layers without the batch
dimension, in ONNX output order and by name) -> nvinfer's post-parser steps (dsparsers.emulation.clustering:
pre-cluster filter, clustering, class-major order) -> back to frame pixels and the frame filters
(dsparsers.emulation.backproject) -> an annotated PNG (dsparsers.emulation.draw) and a JSON record of the detections.

The back-projection rules are those of one DeepStream release (``deepstream``, default the newest; see
dsparsers.emulation.backproject.DEEPSTREAM_VERSIONS), recorded in detections.json. What is not emulated is
said, not hidden: DBSCAN where nvinfer would run it (cluster-mode 1 or 3 with minBoxes > 0: refused), the
higher-order scaling filters (approximated by bilinear), and every key that run does not read (listed in
the JSON's ``ignored_keys``); keys nvinfer only warns about are notes. Where TensorRT would compute in FP16
or INT8, onnxruntime computes in FP32.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from dsparsers import __version__
from dsparsers.emulation.backproject import (NEWEST_DEEPSTREAM, FrameFilters, backproject_indexed, rule_of)
from dsparsers.errors import ConfigError, ModelError, UsageError
from dsparsers.emulation.config_reader import InferConfig, parse_keyfile, read_config, read_labels
from dsparsers.api.abi_types import DETECTION_DTYPE, DataType, DetectionParams, Layer, NetworkInfo, ParserCase
from dsparsers.emulation.clustering import CLUSTER_NONE, ClusterSettings, dbscan_classes, postprocess
from dsparsers.emulation.preprocess import Geometry, Preprocessing, load_image

#: [property] keys of DeepStream 9.1's gstnvinfer_property_parser.h that an older release's header lacks (its
#: parser warns "Unknown or legacy key" and ignores them), by release
_NEWER_THAN_63 = ("dump-input-tensor", "dump-output-tensor", "dynamic-properties", "ip-tensor-file", "op-tensor-files",
                  "overwrite-input-tensor", "overwrite-output-tensor", "parse-segmentation-func-name",
                  "raw-output-file-write", "stabilize-buffer-count", "strongly-typed", "warmup-engine")
KEYS_SINCE = {"6.2": frozenset(_NEWER_THAN_63 + ("auto-inc-mem", "max-gpu-mem-per")), "6.3": frozenset(_NEWER_THAN_63)}

#: pictures per onnxruntime call when the model's batch dimension is symbolic and batch-size is 1
SYMBOLIC_BATCH = 8
#: JSON file written beside the pictures
DETECTIONS_JSON = "detections.json"


#: parser objects with their position in the parser's output (masks are looked up by it)
INDEXED_DTYPE = np.dtype(DETECTION_DTYPE.descr + [("index", "<i8")])


@dataclass
class RunSettings:
    """Everything a run needs: the config (typed) and the files it names, resolved."""

    config: InferConfig
    onnx: Path
    library: Path
    function: str
    labels: list[str]
    abi: int | None = None
    #: where the settings came from, in words (the config file, or the defaults used)
    source: str = ""
    notes: list[str] = field(default_factory=list)
    #: "detector" (network-type=0) or "instance-mask" (network-type=3: the mask parse function)
    parser_kind: str = "detector"
    #: the DeepStream release whose rules run follows where releases differ
    deepstream: str = NEWEST_DEEPSTREAM

    @property
    def segmentation_threshold(self) -> float:
        """nvinfer's segmentationThreshold: the config's, else 0 (NvDsInferContext_ResetInitParams zeroes it)."""
        value = self.config.get("segmentation-threshold")
        return 0.0 if value is None else float(value)


def settings_from_config(path: Path | str, *, onnx: Path | None = None, library: Path | None = None,
                         function: str | None = None, abi: int | None = None,
                         overrides: Sequence[str] = (), deepstream: str = NEWEST_DEEPSTREAM) -> RunSettings:
    """Settings from an nvinfer config file; ``onnx``/``library``/``function`` replace its onnx-file,
    custom-lib-path and parse-bbox-func-name."""
    config = read_config(path)
    return _settings(config, onnx, library, function, abi, overrides, f"{path}", deepstream=deepstream)


def settings_for_model(onnx: Path, library: Path, function: str, *, arch: str | None = None,
                       abi: int | None = None, overrides: Sequence[str] = (),
                       deepstream: str = NEWEST_DEEPSTREAM) -> RunSettings:
    """Settings without a config: those of the generated directory the library was built in (when it
    is one: DIR/build/lib*.so beside DIR/dsparsers.json), else the defaults ``dsparsers generate`` would
    write for the model's architecture (``arch``, or detected from the model)."""
    directory = Path(library).resolve().parent.parent
    from dsparsers.generation.manifest import MANIFEST, read_manifest

    if (directory / MANIFEST).is_file():
        try:
            config_path = read_manifest(directory).config_path()
        except UsageError:
            config_path = None
        if config_path is not None and config_path.is_file():
            return settings_from_config(config_path, onnx=onnx, library=library, function=function, abi=abi,
                                        overrides=overrides, deepstream=deepstream)
    from dsparsers.generation.codegen import render_config
    from dsparsers.model.reader import load_model
    from dsparsers.api.registry import get_registry
    from dsparsers.api.selection import choose
    from dsparsers.api.architecture import GenerateOptions

    registry = get_registry()
    model = load_model(onnx)
    choice = choose(registry, model, arch)
    architecture = choice.provided.architecture
    params = architecture.head_params(model, GenerateOptions(requested_as=choice.requested_as))
    config_name, config_text = render_config(architecture, params, requested_as=choice.requested_as, model=model,
                                             onnx_file=str(Path(onnx).resolve()))
    config = parse_keyfile(config_text, Path(f"<{architecture.name} defaults>") / config_name)
    config.sections["property"].pop("labelfile-path", None)
    settings = _settings(config, onnx, library, function, abi, overrides,
                         f"the defaults `dsparsers generate` writes for {architecture.name}", labels=params.labels(),
                         deepstream=deepstream)
    return settings


def _apply_override(config: InferConfig, text: str) -> None:
    """``[SECTION.]KEY=VALUE`` (section default property), converted by the config tables."""
    from dsparsers.emulation.config_reader import convert_value, keys_of

    if "=" not in text:
        raise UsageError(f"--set {text!r}: expected [SECTION.]KEY=VALUE, e.g. class-attrs-all.pre-cluster-threshold=0.5")
    name, raw = text.split("=", 1)
    section, _, key = name.strip().rpartition(".")
    section = section or "property"
    try:
        spec = keys_of(section).get(key)
    except KeyError:
        raise UsageError(f"--set {text!r}: unknown section [{section}]") from None
    if spec is None:
        import difflib

        close = difflib.get_close_matches(key, list(keys_of(section)), n=1, cutoff=0.6)
        raise UsageError(f"--set {text!r}: {key} is not an nvinfer key of [{section}]"
                         + (f"; did you mean {close[0]!r}?" if close else ""))
    try:
        config.set(key, convert_value(key, spec, raw.strip()), section)
    except ValueError as exc:
        raise UsageError(f"--set {text!r}: {exc}") from None


def _settings(config: InferConfig, onnx, library, function, abi, overrides, source,
              labels: list[str] | None = None, deepstream: str = NEWEST_DEEPSTREAM) -> RunSettings:
    try:
        rule = rule_of(deepstream)
    except ValueError as exc:
        raise UsageError(f"--deepstream-version: {exc}") from None
    for text in overrides:
        _apply_override(config, text)
    network_type = config.network_type()
    if network_type not in (0, 3):
        raise config.error("network-type", f"{network_type}: dsparsers run emulates detectors (network-type=0) and "
                           "instance segmentation (network-type=3)")
    masks = network_type == 3
    if masks and not config.get("output-instance-mask"):
        raise config.error("network-type", "3 (instance segmentation) needs output-instance-mask=1")
    mode = config.cluster_mode()
    if config.get("output-instance-mask") and mode != CLUSTER_NONE:
        # gstnvinfer.cpp, gst_nvinfer_start: "Instance mask output not supported with cluster mode %d"
        raise config.error("cluster-mode" if config.has("cluster-mode") else "output-instance-mask",
                           f"output-instance-mask=1 with cluster mode {mode}: nvinfer refuses to start (\"Instance "
                           "mask output not supported with cluster mode\"); set cluster-mode=4")
    if config.get("process-mode") != 1:
        raise config.error("process-mode", "2 (secondary): dsparsers run emulates a primary detector on whole frames")
    if config.get("num-detected-classes") is not None:
        dbscan = dbscan_classes(config.cluster_settings())
        if dbscan:
            key = "cluster-mode" if config.has("cluster-mode") else "enable-dbscan"
            raise config.error(key, f"cluster mode {mode} with minBoxes > 0 (class {dbscan[0]}"
                               f"{' and others' if len(dbscan) > 1 else ''}): nvinfer would run its closed-source "
                               "DBSCAN (NvDsInferDBScanCluster), which dsparsers run does not emulate; minBoxes=0 "
                               "skips it, or use cluster-mode=2 (NMS) or 4 (none)")
    onnx = Path(onnx) if onnx is not None else config.file("onnx-file")
    if not onnx.is_file():
        raise UsageError(f"--onnx {onnx}: no such file")
    if library is None:
        library = config.file("custom-lib-path")
    elif not Path(library).is_file():
        raise UsageError(f"--lib {library}: no such file")
    function_key = "parse-bbox-instance-mask-func-name" if masks else "parse-bbox-func-name"
    function = function or config.get(function_key)
    if not function:
        raise ConfigError(f"{config.path}: {function_key} is not set (or give --func)")
    if labels is None:
        labelfile = config.file("labelfile-path", required=False)
        labels = read_labels(labelfile) if labelfile is not None else []
    if config.get("num-detected-classes") is None:
        raise ConfigError(f"{config.path}: num-detected-classes is required for a detector")
    notes = [f"{line} (as nvinfer, run goes on)" for line in config.warnings]
    if config.has("enable-dbscan"):
        notes.append("enable-dbscan is deprecated: nvinfer uses it only when cluster-mode is not set"
                     + ("" if config.has("cluster-mode") else f" (here: cluster mode {mode})"))
    if not rule.has_crop_to_roi and config.has("crop-objects-to-roi-boundary"):
        notes.append(f"crop-objects-to-roi-boundary: DeepStream {deepstream} does not know this key (it only warns): "
                     "objects are not cropped")
    unknown = sorted(k for k in config.sections.get("property", {}) if k in KEYS_SINCE.get(str(deepstream), ()))
    if unknown:
        notes.append(f"DeepStream {deepstream} does not know {', '.join(unknown)} (nvinfer only warns and ignores them)")
    if config.get("scaling-filter") not in (0, 1, 6):
        notes.append(f"scaling-filter={config.get('scaling-filter')}: approximated by bilinear scaling")
    if config.has("mean-file"):
        notes.append("mean-file is not emulated: only net-scale-factor and offsets are applied")
    if config.get("network-mode") != 0:
        notes.append("network-mode is not FP32: onnxruntime computes in FP32, TensorRT would not")
    return RunSettings(config, onnx, Path(library), str(function), labels, abi, source, notes,
                       "instance-mask" if masks else "detector", str(deepstream))


# -- the model ------------------------------------------------------------------------------------
class OnnxModel:
    """The ONNX model in onnxruntime, with the network dims nvinfer would see."""

    def __init__(self, path: Path, config: InferConfig):
        try:
            import onnxruntime as ort
        except ImportError:
            raise UsageError("dsparsers run needs onnxruntime: pip install 'dsparsers[run]'") from None
        self.path = Path(path)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"{self.path}: onnxruntime cannot load it: {str(exc).splitlines()[0][:300]}") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"{self.path}: {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); nvinfer and "
                             "dsparsers run feed a detector one image input")
        tensor = inputs[0]
        self.input_name = tensor.name
        if tensor.type not in ("tensor(float)", "tensor(float16)"):
            raise ModelError(f"{self.path}: input {tensor.name} is {tensor.type}; nvinfer feeds float pictures")
        self.input_dtype = np.float16 if tensor.type == "tensor(float16)" else np.float32
        shape = list(tensor.shape)
        if len(shape) != 4:
            raise ModelError(f"{self.path}: input {tensor.name} has shape {shape}; expected [B, C, H, W] "
                             "(or [B, H, W, C] with network-input-order=1)")
        nhwc = config.get("network-input-order") == 1
        c, h, w = (shape[3], shape[1], shape[2]) if nhwc else (shape[1], shape[2], shape[3])
        dims = config.get("infer-dims")
        if dims:
            if len(dims) != 3:
                raise config.error("infer-dims", f"expected C;H;W, got {len(dims)} value(s)")
            for name, fixed, given in (("C", c, dims[0]), ("H", h, dims[1]), ("W", w, dims[2])):
                if isinstance(fixed, int) and fixed != given:
                    raise config.error("infer-dims", f"{name}={given}, but the model's input {tensor.name} "
                                                     f"{shape} fixes it to {fixed}")
            c, h, w = dims
        if not all(isinstance(v, int) and v > 0 for v in (c, h, w)):
            raise ModelError(f"{self.path}: input {tensor.name} {shape} does not fix C, H and W: set infer-dims=C;H;W "
                             "in the config (or --set infer-dims=3;640;640)")
        self.network = NetworkInfo(w, h, c)
        batch = shape[0]
        self.static_batch = batch if isinstance(batch, int) and batch > 0 else None
        self.outputs = [o.name for o in self.session.get_outputs()]

    def batch_size(self, configured: int) -> int:
        """Pictures per call: the model's batch when it is fixed, else batch-size (at least SYMBOLIC_BATCH)."""
        return self.static_batch if self.static_batch is not None else max(configured, SYMBOLIC_BATCH)

    def infer(self, tensors: Sequence[np.ndarray]) -> list[tuple[Layer, ...]]:
        """The output layers of each frame (batch dimension removed), in ONNX output order."""
        count = len(tensors)
        batch = np.stack(tensors).astype(self.input_dtype)
        if self.static_batch is not None and count < self.static_batch:  # fill a fixed batch with blank frames
            batch = np.concatenate([batch, np.zeros((self.static_batch - count,) + batch.shape[1:], batch.dtype)])
        try:
            results = self.session.run(None, {self.input_name: batch})
        except Exception as exc:
            raise ModelError(f"{self.path}: onnxruntime failed: {str(exc).splitlines()[0][:300]}") from None
        frames: list[list[Layer]] = [[] for _ in range(count)]
        for name, value in zip(self.outputs, results):
            value = np.asarray(value)
            if value.dtype == np.float64:
                value = value.astype(np.float32)  # TensorRT has no double outputs
            try:
                DataType.of(value.dtype)
            except ValueError:
                raise ModelError(f"{self.path}: output {name} is {value.dtype}, not a type nvinfer passes to "
                                 "parsers (float, half, int8, int32, int64, uint8)") from None
            if value.ndim == 0 or value.shape[0] != len(batch):
                raise ModelError(f"{self.path}: output {name} {list(value.shape)} has no batch dimension of "
                                 f"{len(batch)}; nvinfer splits every output by frame")
            for i in range(count):
                frames[i].append(Layer(name, np.ascontiguousarray(value[i])))
        return [tuple(f) for f in frames]


# -- results --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Detection:
    """One object as nvinfer attaches it to the frame (frame pixels)."""

    class_id: int
    label: str
    confidence: float
    left: float
    top: float
    width: float
    height: float
    #: instance models: the parser's mask (probabilities covering the box, any resolution), else None
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)

    def as_json(self, mask_threshold: float = 0.0) -> dict:
        record = {"class_id": self.class_id, "label": self.label, "confidence": round(self.confidence, 6),
                  "left": round(self.left, 3), "top": round(self.top, 3), "width": round(self.width, 3),
                  "height": round(self.height, 3)}
        if self.mask is not None:
            inside = float(np.mean(self.mask > mask_threshold)) if self.mask.size else 0.0
            record["mask"] = {"width": int(self.mask.shape[1]), "height": int(self.mask.shape[0]),
                              "fraction_above_threshold": round(inside, 4)}
        return record


@dataclass
class FrameResult:
    """One picture's run: where it came from, what the parser said, what nvinfer would attach."""

    source: Path
    width: int
    height: int
    geometry: Geometry
    accepted: bool
    parser_objects: int
    detections: list[Detection]
    output: str = ""

    def top_classes(self, count: int = 3) -> str:
        ranked = Counter(d.label for d in self.detections).most_common()
        text = ", ".join(f"{label} x{n}" for label, n in ranked[:count])
        return text + (", ..." if len(ranked) > count else "") if text else "-"

    def as_json(self, mask_threshold: float = 0.0) -> dict:
        return {"file": str(self.source), "width": self.width, "height": self.height, "output": self.output,
                "parser_returned": self.accepted, "parser_objects": self.parser_objects,
                "letterbox": dataclasses.asdict(self.geometry),
                "detections": [d.as_json(mask_threshold) for d in self.detections]}


class Emulator:
    """nvinfer for one config: pre-processing, model, parser, post-processing, back-projection."""

    def __init__(self, settings: RunSettings):
        from dsparsers.verification.loader import ParserLibrary

        self.settings = settings
        config = settings.config
        self.model = OnnxModel(settings.onnx, config)
        net = self.model.network
        self.preprocessing = Preprocessing.from_config(config, net.width, net.height, net.channels)
        self.clustering: ClusterSettings = config.cluster_settings()
        clustering = self.clustering
        self.filters = FrameFilters.from_config(config)
        n = clustering.num_classes
        self.params = DetectionParams(n, tuple(float(clustering.attrs(c).pre_cluster_threshold) for c in range(n)),
                                      tuple(float(clustering.attrs(c).post_cluster_threshold) for c in range(n)))
        self.library = ParserLibrary(settings.library, settings.function, settings.abi, kind=settings.parser_kind)

    def close(self) -> None:
        self.library.close()

    def __enter__(self) -> "Emulator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def label(self, class_id: int) -> str:
        labels = self.settings.labels
        return labels[class_id] if 0 <= class_id < len(labels) and labels[class_id] else f"class_{class_id}"

    def run(self, pictures: Sequence[tuple[Path, np.ndarray]],
            progress: Callable[[int, Path], None] | None = None) -> list[FrameResult]:
        """Each (path, H x W x 3 uint8 RGB picture) through the whole path, batched per the model."""
        results: list[FrameResult] = []
        step = self.model.batch_size(int(self.settings.config.get("batch-size")))
        for start in range(0, len(pictures), step):
            chunk = pictures[start:start + step]
            prepared = [self.preprocessing.tensor(picture) for _, picture in chunk]
            layers = self.model.infer([tensor for tensor, _ in prepared])
            for (path, picture), (_, geometry), frame_layers in zip(chunk, prepared, layers):
                results.append(self.frame(path, picture, geometry, frame_layers))
                if progress is not None:
                    progress(len(results), path)
        return results

    def frame(self, path: Path, picture: np.ndarray, geometry: Geometry, layers: tuple[Layer, ...]) -> FrameResult:
        """One frame from its output layers on: parser, clustering, back-projection, filters."""
        outcome = self.library.parse(ParserCase(layers, self.model.network, self.params))
        objects = outcome.objects if outcome.accepted else outcome.objects[:0]  # quirk: false is only logged
        # each object's index travels with it through clustering (which keeps rows whole), so that the
        # parser's mask for it can follow it to the frame
        indexed = np.zeros(len(objects), INDEXED_DTYPE)
        for name in DETECTION_DTYPE.names:
            indexed[name] = objects[name]
        indexed["index"] = np.arange(len(objects))
        clustered = postprocess(indexed, self.clustering)
        plain = np.zeros(len(clustered), DETECTION_DTYPE)
        for name in DETECTION_DTYPE.names:
            plain[name] = clustered[name]
        kept, positions = backproject_indexed(plain, geometry, self.filters, picture.shape[1], picture.shape[0],
                                              deepstream=self.settings.deepstream)
        masks = None
        if outcome.masks is not None:
            masks = [outcome.masks[int(clustered["index"][k])] for k in positions]
        detections = [Detection(int(o["class_id"]), self.label(int(o["class_id"])), float(o["confidence"]),
                                float(o["left"]), float(o["top"]), float(o["width"]), float(o["height"]),
                                mask=None if masks is None else masks[k])
                      for k, o in enumerate(kept)]
        return FrameResult(path, picture.shape[1], picture.shape[0], geometry, bool(outcome.accepted),
                           len(outcome.objects), detections)

    def describe(self) -> dict:
        """The settings used, for the JSON record."""
        s, config = self.settings, self.settings.config
        return {
            "config": s.source, "onnx": str(s.onnx), "library": str(s.library), "function": s.function,
            "parser_kind": s.parser_kind, "abi": self.library.abi, "deepstream": s.deepstream,
            **({"segmentation-threshold": s.segmentation_threshold} if s.parser_kind == "instance-mask" else {}),
            "network": {"width": self.model.network.width, "height": self.model.network.height,
                        "channels": self.model.network.channels, "batch": self.model.static_batch or "symbolic"},
            "preprocessing": dataclasses.asdict(self.preprocessing),
            "clustering": {"num-detected-classes": self.clustering.num_classes,
                           "cluster-mode": self.clustering.cluster_mode,
                           "class-attrs-all": dataclasses.asdict(self.clustering.all),
                           **{f"class-attrs-{c}": dataclasses.asdict(a)
                              for c, a in sorted(self.clustering.per_class.items())}},
            "filters": {"filter-out-class-ids": sorted(self.filters.filter_out_class_ids),
                        "crop-objects-to-roi-boundary": (self.filters.crop_objects_to_roi_boundary
                                                         and rule_of(s.deepstream).has_crop_to_roi),
                        "class-attrs-all": dataclasses.asdict(self.filters.default_limits),
                        **{f"class-attrs-{c}": dataclasses.asdict(v)
                           for c, v in sorted(self.filters.per_class_limits.items())}},
            "ignored_keys": config.ignored(),
            "notes": list(s.notes),
        }


# -- writing --------------------------------------------------------------------------------------
def output_names(paths: Sequence[Path]) -> list[str]:
    """A distinct ``<stem>.png`` per picture (``<stem>-2.png`` ... when stems repeat)."""
    names, seen = [], Counter()
    taken = {DETECTIONS_JSON}
    for path in paths:
        stem = Path(path).stem or "image"
        seen[stem] += 1
        name = f"{stem}.png" if seen[stem] == 1 else f"{stem}-{seen[stem]}.png"
        while name in taken:
            seen[stem] += 1
            name = f"{stem}-{seen[stem]}.png"
        taken.add(name)
        names.append(name)
    return names


def render_outputs(results: list[FrameResult], pictures: Sequence[np.ndarray], settings: dict, *,
                   note: str | None = None, extra: dict | None = None) -> dict[str, bytes | str]:
    """The files of an output directory: one annotated PNG per picture and detections.json."""
    import io

    from PIL import Image

    from dsparsers.emulation.draw import draw_detections

    files: dict[str, bytes | str] = {}
    for result, picture, name in zip(results, pictures, output_names([r.source for r in results])):
        result.output = name
        masks = [d.mask for d in result.detections] if any(d.mask is not None for d in result.detections) else None
        drawn = draw_detections(Image.fromarray(picture, "RGB"), result.detections, masks,
                                mask_threshold=float(settings.get("segmentation-threshold", 0.0)), note=note)
        buffer = io.BytesIO()
        drawn.save(buffer, format="PNG", optimize=True)
        files[name] = buffer.getvalue()
    record = {"generator": f"dsparsers {__version__} run", **(extra or {}), "settings": settings,
              "images": [r.as_json(float(settings.get("segmentation-threshold", 0.0))) for r in results]}
    files[DETECTIONS_JSON] = json.dumps(record, indent=2, ensure_ascii=True) + "\n"
    return files


def write_outputs(directory: Path, files: dict[str, bytes | str], *, force: bool = False) -> None:
    """Write ``files`` into ``directory`` atomically (all or nothing), with the manifest that lets a
    later run replace them (dsparsers.generation.output_dir)."""
    from dsparsers.generation.manifest import MANIFEST
    from dsparsers.generation.output_dir import sha256_text, write_directory

    manifest = {"generator": f"dsparsers {__version__} run",
                "files": {name: sha256_text(content) for name, content in sorted(files.items())}}
    write_directory(directory, {**files, MANIFEST: json.dumps(manifest, indent=2) + "\n"}, force=force)


def run_pictures(settings: RunSettings, images: Sequence[Path | str], output: Path, *, force: bool = False,
                 note: str | None = None, extra: dict | None = None,
                 progress: Callable[[int, Path], None] | None = None) -> list[FrameResult]:
    """The whole of `dsparsers run`: read every picture first (a bad one fails before any work), run,
    then write ``output`` atomically."""
    paths = [Path(p) for p in images]
    pictures = [load_image(p) for p in paths]
    with Emulator(settings) as emulator:
        results = emulator.run(list(zip(paths, pictures)), progress)
        described = emulator.describe()
    files = render_outputs(results, pictures, described, note=note, extra=extra)
    write_outputs(output, files, force=force)
    return results

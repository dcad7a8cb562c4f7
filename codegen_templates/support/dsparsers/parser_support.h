// dsparsers parser support: small helpers shared by every generated parser.
// Copied verbatim into each generated parser's include/ directory by dsparsers.
#ifndef DSPARSERS_PARSER_SUPPORT_H
#define DSPARSERS_PARSER_SUPPORT_H

#include <atomic>
#include <climits>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

// Vector kernels use the baseline ISA of each target (SSE2 on x86-64, NEON on AArch64); build with
// -DDSPARSERS_SCALAR for the plain C++ paths (tests/test_simd_paths.py checks all three).
#if defined(__SSE2__) && !defined(DSPARSERS_SCALAR)
#define DSPARSERS_SSE2 1
#include <emmintrin.h>
#elif defined(__ARM_NEON) && defined(__aarch64__) && !defined(DSPARSERS_SCALAR)
#define DSPARSERS_NEON 1
#include <arm_neon.h>
#endif

#if defined(DSPARSERS_USE_DEEPSTREAM_HEADERS)
#include "nvdsinfer_custom_impl.h"
#else
#include "dsparsers/nvdsinfer_abi.h"
#endif

// NvDsInferDataType by number. DeepStream 6.x-8.x name only FLOAT = 0, HALF = 1, INT8 = 2, INT32 = 3;
// INT64 = 4 and UINT8 = 5 are named from 9.0 on, so code that must compile against every release uses
// these constants, never the newer enumerator names.
namespace dsparsers {
constexpr NvDsInferDataType kTypeFloat = static_cast<NvDsInferDataType>(0);
constexpr NvDsInferDataType kTypeHalf = static_cast<NvDsInferDataType>(1);
constexpr NvDsInferDataType kTypeInt8 = static_cast<NvDsInferDataType>(2);
constexpr NvDsInferDataType kTypeInt32 = static_cast<NvDsInferDataType>(3);
constexpr NvDsInferDataType kTypeInt64 = static_cast<NvDsInferDataType>(4);
constexpr NvDsInferDataType kTypeUint8 = static_cast<NvDsInferDataType>(5);
}  // namespace dsparsers

#if defined(DSPARSERS_HEADERS_LACK_INT64_UINT8)
// Set by meson.build when the DeepStream headers' NvDsInferDataType has no INT64/UINT8 (before 9.0):
// the two names, with NVIDIA's values, for parser code that names them.
constexpr NvDsInferDataType INT64 = dsparsers::kTypeInt64;
constexpr NvDsInferDataType UINT8 = dsparsers::kTypeUint8;
#endif

#if defined(__GNUC__)
#define DSPARSERS_EXPORT __attribute__((visibility("default")))
#else
#define DSPARSERS_EXPORT
#endif

namespace dsparsers {

// nvinfer's default pre-cluster-threshold, used for a class with no entry in the threshold vector.
constexpr float kDefaultPreclusterThreshold = 0.2f;

// One line on stderr, prefixed with the parser's name; nvinfer only logs a false return.
inline void report(const char* parser, const char* format, ...) {
    char message[512];
    va_list args;
    va_start(args, format);
    std::vsnprintf(message, sizeof(message), format, args);
    va_end(args);
    std::fprintf(stderr, "dsparsers[%s]: %s\n", parser, message);
}

// IEEE binary16 -> binary32, exact for every input (subnormals, infinities and NaN included).
inline float half_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1fu;
    const uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0) {
        const float magnitude = static_cast<float>(mantissa) * (1.0f / 16777216.0f);  // m * 2^-24
        return sign ? -magnitude : magnitude;
    }
    uint32_t bits = exponent == 31 ? (sign | 0x7f800000u | (mantissa << 13))
                                   : (sign | ((exponent + 112u) << 23) | (mantissa << 13));
    float value;
    std::memcpy(&value, &bits, sizeof(value));
    return value;
}

// Element readers: a kernel templated on the element type reads FLOAT and HALF buffers alike.
inline float load(const float* data, size_t index) { return data[index]; }
inline float load(const uint16_t* data, size_t index) { return half_to_float(data[index]); }

// By value (see kTypeInt64): the same names whatever the DeepStream release's header declares.
inline const char* data_type_name(NvDsInferDataType type) {
    switch (static_cast<int>(type)) {
        case 0: return "FLOAT";
        case 1: return "HALF";
        case 2: return "INT8";
        case 3: return "INT32";
        case 4: return "INT64";
        case 5: return "UINT8";
        default: return "an unknown type";
    }
}

// "[84, 8400]" for diagnostics (at most NVDSINFER_MAX_DIMS entries are shown).
inline std::string dims_text(const NvDsInferDims& dims) {
    std::string text = "[";
    const unsigned shown = dims.numDims < NVDSINFER_MAX_DIMS ? dims.numDims : NVDSINFER_MAX_DIMS;
    for (unsigned k = 0; k < shown; ++k) {
        if (k) text += ", ";
        text += std::to_string(dims.d[k]);
    }
    if (dims.numDims > NVDSINFER_MAX_DIMS) text += ", ...";
    return text + "]";
}

inline const char* layer_name(const NvDsInferLayerInfo& layer) {
    return layer.layerName != nullptr ? layer.layerName : "(unnamed)";
}

// Product of the dims, or 0 when numDims is out of range or the product overflows 32 bits.
inline size_t element_count(const NvDsInferDims& dims) {
    if (dims.numDims == 0 || dims.numDims > NVDSINFER_MAX_DIMS) return 0;
    uint64_t count = 1;
    for (unsigned k = 0; k < dims.numDims; ++k) {
        count *= dims.d[k];
        if (count > 0xffffffffull) return 0;
    }
    return static_cast<size_t>(count);
}

// The layer called `name`; else the first layer whose dims satisfy `shape_ok` (engine binding order
// and names may differ from the ONNX export); else nullptr.
template <typename ShapeOk>
const NvDsInferLayerInfo* find_layer(const std::vector<NvDsInferLayerInfo>& layers, const char* name,
                                     ShapeOk shape_ok) {
    for (const NvDsInferLayerInfo& layer : layers)
        if (layer.layerName != nullptr && std::strcmp(layer.layerName, name) == 0) return &layer;
    for (const NvDsInferLayerInfo& layer : layers)
        if (shape_ok(layer.inferDims)) return &layer;
    return nullptr;
}

// perClassPreclusterThreshold[class_id], never indexing past the vector.
inline float precluster_threshold(const NvDsInferParseDetectionParams& params, unsigned class_id) {
    const std::vector<float>& thresholds = params.perClassPreclusterThreshold;
    return class_id < thresholds.size() ? thresholds[class_id] : kDefaultPreclusterThreshold;
}

// -- threshold prefilter -------------------------------------------------------------------------
// Dense heads keep ~1% of their candidates. Kernels first compute, per candidate, an upper bound of
// its best class score with branch-free, vectorisable max passes over contiguous memory, and run the
// exact (NaN-aware, tie-breaking) argmax only where that bound reaches the smallest class threshold.
// For HALF data the bound works on the raw bit patterns: for non-negative halves, integer order is
// value order, negative halves compare below every non-negative bound, and NaN lands above +inf
// (so NaN candidates go to the exact pass, which drops them).

// The lowest threshold any class in [0, classes) can be held to; NaN thresholds never pass.
inline float lowest_threshold(const NvDsInferParseDetectionParams& params, unsigned classes) {
    float lowest = INFINITY;
    for (unsigned c = 0; c < classes; ++c) {
        const float t = precluster_threshold(params, c);
        if (t < lowest) lowest = t;
    }
    return lowest;
}

// Prefilter bound for HALF data: the bit pattern of the largest half <= threshold (threshold > 0).
inline int16_t half_bound_bits(float threshold) {
    if (!(threshold < 65504.0f)) return 0x7c00;  // only +inf and NaN can reach it
    uint32_t bits;
    std::memcpy(&bits, &threshold, sizeof(bits));
    const int exponent = static_cast<int>((bits >> 23) & 0xffu) - 127;
    if (exponent < -14) return 0;  // below the smallest normal half: keep every non-negative value
    return static_cast<int16_t>(((exponent + 15) << 10) | ((bits >> 13) & 0x3ffu));  // truncation rounds down
}

template <typename T> struct Bound;
template <> struct Bound<float> {
    using type = float;
    static constexpr float lowest() { return -INFINITY; }
    static float of(float threshold) { return threshold; }
    static float at(const float* data, size_t index) { return data[index]; }
};
template <> struct Bound<uint16_t> {
    using type = int16_t;
    static constexpr int16_t lowest() { return INT16_MIN; }
    static int16_t of(float threshold) { return half_bound_bits(threshold); }
    static int16_t at(const uint16_t* data, size_t index) { return static_cast<int16_t>(data[index]); }
};

// Column bounds of a channel-major score block: for each column i < n,
//     bound[i] = max over r < rows of base[r * stride + i]
// with NaN never replacing a value (FLOAT: the largest non-NaN score, exactly, -inf when none; HALF: the
// largest raw bit pattern, as Bound<uint16_t> compares them). Each row segment is read contiguously,
// and eight rows are folded per pass over bound, so bound is loaded and stored once per eight rows
// instead of once per row; the loop vectorises at the baseline ISA (maxps / pmaxsw). Keep n small
// enough (a few thousand) that bound stays in L1.
inline float bound_max(float value, float bound) { return value > bound ? value : bound; }
inline int16_t bound_max(uint16_t value, int16_t bound) {
    const int16_t v = static_cast<int16_t>(value);
    return v > bound ? v : bound;
}
template <typename T>
inline void column_bound(typename Bound<T>::type* __restrict bound, const T* __restrict base, size_t stride,
                         unsigned rows, size_t n) {
    using B = typename Bound<T>::type;
    for (size_t i = 0; i < n; ++i) bound[i] = Bound<T>::lowest();
    unsigned r = 0;
    for (; r + 8 <= rows; r += 8) {
        const T* __restrict row = base + static_cast<size_t>(r) * stride;
        for (size_t i = 0; i < n; ++i) {
            B b = bound[i];
            b = bound_max(row[i], b);
            b = bound_max(row[stride + i], b);
            b = bound_max(row[2 * stride + i], b);
            b = bound_max(row[3 * stride + i], b);
            b = bound_max(row[4 * stride + i], b);
            b = bound_max(row[5 * stride + i], b);
            b = bound_max(row[6 * stride + i], b);
            b = bound_max(row[7 * stride + i], b);
            bound[i] = b;
        }
    }
    for (; r < rows; ++r) {
        const T* __restrict row = base + static_cast<size_t>(r) * stride;
        for (size_t i = 0; i < n; ++i) bound[i] = bound_max(row[i], bound[i]);
    }
}

// The best class of column `index` of the same block: its score and row, NaN never winning and ties
// keeping the lower row (-inf and row 0 when no score beats -inf). `bound` is column_bound's value for
// the column. FLOAT: the bound is the best score itself, so the search stops at the first row equal to
// it, with no dependency between the reads. HALF: every row is compared as a float.
inline void column_best(const float* base, size_t stride, unsigned rows, size_t index, float bound, float& score,
                        unsigned& row) {
    score = -INFINITY;
    row = 0;
    if (!(bound > -INFINITY)) return;
    for (unsigned r = 0; r < rows; ++r)
        if (base[static_cast<size_t>(r) * stride + index] == bound) {
            score = base[static_cast<size_t>(r) * stride + index];  // +0 or -0 as stored
            row = r;
            return;
        }
}
inline void column_best(const uint16_t* base, size_t stride, unsigned rows, size_t index, int16_t /*bound*/,
                        float& score, unsigned& row) {
    score = -INFINITY;
    row = 0;
    for (unsigned r = 0; r < rows; ++r) {
        const float value = half_to_float(base[static_cast<size_t>(r) * stride + index]);
        if (value > score) {
            score = value;
            row = r;
        }
    }
}

// The candidates of a channel-major score block (row c at scores + c * count: class c of the `count`
// candidates) whose best score reaches `floor` (prefilter_floor): visit(index, score, class) for each,
// in index order, with the exact best class (NaN never wins, ties keep the lower class). In blocks of
// 2048 candidates: column_bound reads each class row segment contiguously and keeps the bounds in L1,
// and column_best runs while the block's rows are still in cache.
template <typename T, typename Visit>
inline void for_each_passing_column(const T* scores, size_t count, unsigned classes, typename Bound<T>::type floor,
                                    Visit&& visit) {
    constexpr size_t kBlock = 2048;
    typename Bound<T>::type bound[kBlock];
    for (size_t first = 0; first < count; first += kBlock) {
        const size_t n = count - first < kBlock ? count - first : kBlock;
        column_bound(bound, scores + first, count, classes, n);
        for (size_t i = 0; i < n; ++i) {
            if (!(bound[i] >= floor)) continue;
            float score;
            unsigned class_id;
            column_best(scores, count, classes, first + i, bound[i], score, class_id);
            visit(first + i, score, class_id);
        }
    }
}

// Bound of a contiguous span of scores (a row of a row-major score matrix, or several rows): FLOAT,
// the largest non-NaN value (-inf when there is none; of equal values +0 and -0, either may be
// returned); HALF, the largest raw bit pattern, as Bound<uint16_t> compares them. Four independent
// vector maxima keep the dependency chains short (gcc does not vectorise this reduction by itself:
// without -ffast-math it may not reorder the comparisons).
#if defined(DSPARSERS_SSE2) || defined(DSPARSERS_NEON)
// Four floats per register, the same operations on either ISA.
#if defined(DSPARSERS_SSE2)
using f32x4 = __m128;
inline f32x4 f32x4_splat(float value) { return _mm_set1_ps(value); }
inline f32x4 f32x4_load(const float* values) { return _mm_loadu_ps(values); }
// x > a ? x : a in each lane, so a NaN x never enters a (never NaN) running maximum
inline f32x4 f32x4_max_into(f32x4 x, f32x4 a) { return _mm_max_ps(x, a); }
inline float f32x4_largest(f32x4 a) {
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    return _mm_cvtss_f32(_mm_max_ps(a, _mm_shuffle_ps(a, a, 1)));
}
#else
using f32x4 = float32x4_t;
inline f32x4 f32x4_splat(float value) { return vdupq_n_f32(value); }
inline f32x4 f32x4_load(const float* values) { return vld1q_f32(values); }
// maxNum: a NaN operand yields the other one
inline f32x4 f32x4_max_into(f32x4 x, f32x4 a) { return vmaxnmq_f32(x, a); }
inline float f32x4_largest(f32x4 a) { return vmaxnmvq_f32(a); }
#endif
#endif

inline float span_bound(const float* __restrict values, size_t n) {
    size_t k = 0;
    float best = -INFINITY;
#if defined(DSPARSERS_SSE2) || defined(DSPARSERS_NEON)
    f32x4 a0 = f32x4_splat(-INFINITY), a1 = a0, a2 = a0, a3 = a0;
    for (; k + 16 <= n; k += 16) {
        a0 = f32x4_max_into(f32x4_load(values + k), a0);
        a1 = f32x4_max_into(f32x4_load(values + k + 4), a1);
        a2 = f32x4_max_into(f32x4_load(values + k + 8), a2);
        a3 = f32x4_max_into(f32x4_load(values + k + 12), a3);
    }
    for (; k + 4 <= n; k += 4) a0 = f32x4_max_into(f32x4_load(values + k), a0);
    best = f32x4_largest(f32x4_max_into(f32x4_max_into(a0, a1), f32x4_max_into(a2, a3)));
#endif
    for (; k < n; ++k) best = bound_max(values[k], best);
    return best;
}
inline int16_t span_bound(const uint16_t* __restrict values, size_t n) {
    size_t k = 0;
    int16_t best = INT16_MIN;
#if defined(DSPARSERS_SSE2)
    __m128i a0 = _mm_set1_epi16(INT16_MIN), a1 = a0;
    for (; k + 16 <= n; k += 16) {
        a0 = _mm_max_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(values + k)), a0);
        a1 = _mm_max_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(values + k + 8)), a1);
    }
    a0 = _mm_max_epi16(a0, a1);
    a0 = _mm_max_epi16(a0, _mm_srli_si128(a0, 8));
    a0 = _mm_max_epi16(a0, _mm_srli_si128(a0, 4));
    a0 = _mm_max_epi16(a0, _mm_srli_si128(a0, 2));
    best = static_cast<int16_t>(_mm_cvtsi128_si32(a0));
#elif defined(DSPARSERS_NEON)
    int16x8_t a0 = vdupq_n_s16(INT16_MIN), a1 = a0;
    for (; k + 16 <= n; k += 16) {
        a0 = vmaxq_s16(vreinterpretq_s16_u16(vld1q_u16(values + k)), a0);
        a1 = vmaxq_s16(vreinterpretq_s16_u16(vld1q_u16(values + k + 8)), a1);
    }
    best = vmaxvq_s16(vmaxq_s16(a0, a1));
#endif
    for (; k < n; ++k) best = bound_max(values[k], best);
    return best;
}
template <typename T>
inline typename Bound<T>::type row_bound(const T* __restrict row, unsigned n) {
    return span_bound(row, n);
}

// The prefilter floor for element type T: a value whose bound is below it cannot reach any class
// threshold (<= 0 thresholds rule nothing out).
template <typename T>
inline typename Bound<T>::type prefilter_floor(const NvDsInferParseDetectionParams& params, unsigned model_classes) {
    const unsigned classes = model_classes < params.numClassesConfigured ? model_classes : params.numClassesConfigured;
    const float lowest = lowest_threshold(params, classes);
    return lowest > 0.0f ? Bound<T>::of(lowest) : Bound<T>::lowest();
}

inline float clip(float value, float high) { return value < 0.0f ? 0.0f : (value > high ? high : value); }

// What every kept candidate of a frame is checked against, resolved once per frame: the decoders'
// per-object work then reads locals, where going through params and network would reload them after
// each append (as far as the compiler knows, the vector's stores may alias them).
template <unsigned kClasses>
struct FrameRules {
    float threshold[kClasses];  // class c's pre-cluster threshold; NaN (never passes) at or above numClassesConfigured
    float width, height;        // the network input, for clipping

    FrameRules(const NvDsInferParseDetectionParams& params, const NvDsInferNetworkInfo& network)
        : width(static_cast<float>(network.width)), height(static_cast<float>(network.height)) {
        for (unsigned c = 0; c < kClasses; ++c)
            threshold[c] = c < params.numClassesConfigured ? precluster_threshold(params, c) : NAN;
    }
    // A finite score of a model class at or above the class's threshold (as passes_threshold).
    bool passes(unsigned class_id, float score) const {
        return class_id < kClasses && std::isfinite(score) && score >= threshold[class_id];
    }
};

// Appends a box given by its corners in network pixels, clipped to the network; drops it when the
// clipped width or height is under one pixel. Corners must be finite (callers check).
inline void add_box(std::vector<NvDsInferObjectDetectionInfo>& objects, const NvDsInferNetworkInfo& network,
                    unsigned class_id, float confidence, float x1, float y1, float x2, float y2);
inline void add_box(std::vector<NvDsInferObjectDetectionInfo>& objects, float width, float height,
                    unsigned class_id, float confidence, float x1, float y1, float x2, float y2) {
    x1 = clip(x1, width);
    x2 = clip(x2, width);
    y1 = clip(y1, height);
    y2 = clip(y2, height);
    const float box_width = x2 - x1;
    const float box_height = y2 - y1;
    if (!(box_width >= 1.0f && box_height >= 1.0f)) return;
    // Built in place, value-initialised (rotation_angle, ABI 9, is 0). A local copied in with push_back
    // made gcc reload it as 16-byte words over its 4-byte field stores: a store-forwarding stall that
    // cost about 15 ns per object.
    NvDsInferObjectDetectionInfo& object = objects.emplace_back();
    object.classId = class_id;
    object.left = x1;
    object.top = y1;
    object.width = box_width;
    object.height = box_height;
    object.detectionConfidence = confidence;
}
inline void add_box(std::vector<NvDsInferObjectDetectionInfo>& objects, const NvDsInferNetworkInfo& network,
                    unsigned class_id, float confidence, float x1, float y1, float x2, float y2) {
    add_box(objects, static_cast<float>(network.width), static_cast<float>(network.height), class_id, confidence,
            x1, y1, x2, y2);
}

// A class id stored as a float (end-to-end and NMS-plugin heads): accepted when finite, >= 0 and below
// both the model's class count and numClassesConfigured; a fractional value is truncated toward zero.
inline bool class_from_float(float value, unsigned model_classes, unsigned configured, unsigned& class_id) {
    if (!(value >= 0.0f) || !(value < static_cast<float>(model_classes)) || !(value < static_cast<float>(configured)))
        return false;
    class_id = static_cast<unsigned>(value);
    return class_id < model_classes && class_id < configured;
}

// A pre-cluster decision for a candidate whose class is known: finite score at or above its class threshold.
inline bool passes_threshold(const NvDsInferParseDetectionParams& params, unsigned class_id, float score) {
    return std::isfinite(score) && class_id < params.numClassesConfigured &&
           score >= precluster_threshold(params, class_id);
}

inline bool all_finite(float a, float b, float c, float d) {
    return std::isfinite(a) && std::isfinite(b) && std::isfinite(c) && std::isfinite(d);
}

// The best class of `count` values read with `load` at `values + k * stride` (k = 0..count-1): the
// largest value, NaN never wins, ties keep the lower class. `score` is -INFINITY and `class_id` 0 when
// every value is NaN. The one argmax every family's C++ uses (the Python side's is reference.best_class).
template <typename T>
inline void best_class(const T* values, size_t stride, unsigned count, float& score, unsigned& class_id) {
    score = -INFINITY;
    class_id = 0;
    for (unsigned c = 0; c < count; ++c) {
        const float value = load(values, static_cast<size_t>(c) * stride);
        if (value > score) {  // NaN never wins; ties keep the lower class
            score = value;
            class_id = c;
        }
    }
}

// Calls `decode(data)` with the layer's buffer as `const float*` (FLOAT) or `const uint16_t*` (HALF,
// read through load()); any other data type is reported and refused. Returns whether it decoded.
template <typename Decode>
inline bool with_float_data(const char* parser, const NvDsInferLayerInfo& layer, Decode&& decode) {
    switch (layer.dataType) {
        case FLOAT:
            decode(static_cast<const float*>(layer.buffer));
            return true;
        case HALF:
            decode(static_cast<const uint16_t*>(layer.buffer));
            return true;
        default:
            report(parser, "layer \"%s\" has data type %s; expected FLOAT or HALF", layer_name(layer),
                   data_type_name(layer.dataType));
            return false;
    }
}

// -- layer lookup by name only (detr, rtdetr-postprocessed, peoplesegnet) -------------------------
// The layer called `name`, or nullptr: no fallback by shape (callers that have one run it after every
// role's name lookup, so that a layer found by name is never claimed by another role's shape test).
inline const NvDsInferLayerInfo* find_named_layer(const std::vector<NvDsInferLayerInfo>& layers, const char* name) {
    for (const NvDsInferLayerInfo& layer : layers)
        if (layer.layerName != nullptr && std::strcmp(layer.layerName, name) == 0) return &layer;
    return nullptr;
}
// The layer called the first of `names` that any layer is called (names in order of preference), or nullptr.
template <size_t N>
const NvDsInferLayerInfo* find_named_layer(const std::vector<NvDsInferLayerInfo>& layers, const char* const (&names)[N]) {
    for (const char* name : names) {
        const NvDsInferLayerInfo* layer = find_named_layer(layers, name);
        if (layer != nullptr) return layer;
    }
    return nullptr;
}

// -- YOLO families (yolo_dense_head, yolo_boxes_scores, yolo_darknet) ---------------------------------
// Once per library: when num-detected-classes differs from the model's class count, one line saying that
// class ids at or above it are dropped (the decoders drop them; nvinfer logs nothing of it).
inline void warn_configured_classes_once(const char* parser, const NvDsInferParseDetectionParams& params,
                                         unsigned model_classes) {
    if (params.numClassesConfigured == model_classes) return;
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true))
        report(parser, "num-detected-classes is %u but the model has %u classes; ids >= %u are dropped",
               params.numClassesConfigured, model_classes, params.numClassesConfigured);
}

// -- a single-output head's layer (yolo_decoded_rows, yolo_dense_head, rtdetr_ultralytics) -----------------
// True when the layer holds `count` (> 0) items of `width` values by its dims and by numElements, and has a
// buffer; else reported and false (a parser never reads past what nvinfer allocated).
inline bool layer_holds(const char* parser, const NvDsInferLayerInfo& layer, size_t count, size_t width) {
    const NvDsInferDims& dims = layer.inferDims;
    if (count == 0 || element_count(dims) != count * width || dims.numElements != count * width) {
        report(parser, "layer \"%s\" has dims %s and numElements %u, which disagree", layer_name(layer),
               dims_text(dims).c_str(), dims.numElements);
        return false;
    }
    if (layer.buffer == nullptr) {
        report(parser, "layer \"%s\" has no buffer", layer_name(layer));
        return false;
    }
    return true;
}

}  // namespace dsparsers

#endif  // DSPARSERS_PARSER_SUPPORT_H

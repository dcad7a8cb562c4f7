// dsparsers parser support: small helpers shared by every generated parser.
// Copied verbatim into each generated parser's include/ directory by dsparsers.
#ifndef DSPARSERS_PARSER_SUPPORT_H
#define DSPARSERS_PARSER_SUPPORT_H

#include <climits>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#if defined(DSPARSERS_USE_DEEPSTREAM_HEADERS)
#include "nvdsinfer_custom_impl.h"
#else
#include "dsparsers/nvdsinfer_abi.h"
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

inline const char* data_type_name(NvDsInferDataType type) {
    switch (type) {
        case FLOAT: return "FLOAT";
        case HALF: return "HALF";
        case INT8: return "INT8";
        case INT32: return "INT32";
        case INT64: return "INT64";
        case UINT8: return "UINT8";
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
            score = bound;
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

// Bound of a contiguous span of scores (a row of a row-major score matrix, or several rows): FLOAT,
// the largest non-NaN value, exactly (-inf when there is none); HALF, the largest raw bit pattern, as
// Bound<uint16_t> compares them. kLanes independent maxima let the loop vectorise and keep the max
// chains short: 8 suits one row of scores, 32 a span of many rows.
template <unsigned kLanes, typename T>
inline typename Bound<T>::type span_bound(const T* __restrict values, size_t n) {
    using B = typename Bound<T>::type;
    B lane[kLanes];
    for (unsigned j = 0; j < kLanes; ++j) lane[j] = Bound<T>::lowest();
    size_t k = 0;
    for (; k + kLanes <= n; k += kLanes)
        for (unsigned j = 0; j < kLanes; ++j) lane[j] = bound_max(values[k + j], lane[j]);
    for (; k < n; ++k) lane[0] = bound_max(values[k], lane[0]);
    B best = lane[0];
    for (unsigned j = 1; j < kLanes; ++j) best = lane[j] > best ? lane[j] : best;
    return best;
}
template <typename T>
inline typename Bound<T>::type row_bound(const T* __restrict row, unsigned n) {
    return span_bound<8>(row, n);
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

}  // namespace dsparsers

#endif  // DSPARSERS_PARSER_SUPPORT_H

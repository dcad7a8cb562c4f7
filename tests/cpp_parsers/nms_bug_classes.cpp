// Hand-written parsers for NMS-plugin heads (EfficientNMS_TRT: INT32 classes; TAO BatchedNMS: float
// classes), one correct and one per bug class that conform must find in foreign libraries. Written
// for tests/verification/test_conform_foreign.py (built there with a plain g++ command, asserts live).
//
// Layout (both heads): count [1] INT32, boxes [K, 4] FLOAT/HALF, scores [K] FLOAT/HALF, classes [K]
// (INT32 for EfficientNMS, FLOAT/HALF for BatchedNMS). EfficientNMS boxes are y1 x1 y2 x2 pixels,
// BatchedNMS boxes x1 y1 x2 y2 normalized to 0..1. Layers by name first, then by shape and type.
#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <vector>

#include "dsparsers/nvdsinfer_abi.h"

namespace {

enum Bug {
    kGood,
    kOobThreshold,      // perClassPreclusterThreshold[id] for any model class id (vector sized to numClassesConfigured)
    kNanClassCast,      // float class id range-checked with < and >=, then cast: NaN passes and becomes INT_MIN
    kAssertClass,       // assert() on the class id: a padding/garbage id aborts the process
    kIgnoresPerClass,   // perClassPreclusterThreshold[0] for every class
    kBreakUnconfigured, // break (not continue) on a class id >= numClassesConfigured
    kInt32AsFloat,      // INT32 class ids read as float
    kMapCollapse,       // objects collected in a std::map keyed on confidence: equal scores merge
    kUninitRotation,    // NvDsInferObjectDetectionInfo on the stack without {}: rotation_angle is garbage
    kReverseOverrun,    // reverse loop from index count (end()) down to 1: reads one row too far, skips row 0
    kTrustsVectorSize,  // perClassPreclusterThreshold[id] for id < numClassesConfigured: right whenever nvinfer
                        // sizes the vector (the contract), out of bounds on a short or empty one (beyond it)
    kKeepsSubPixel,     // convention, not a bug: boxes under 1 x 1 pixel kept
    kClipsAtLastPixel,  // convention, not a bug: clipped to W-1 / H-1
};

constexpr unsigned kModelClasses = 80;
constexpr float kDefaultThreshold = 0.2f;

float half_to_float(uint16_t h) {
    const uint32_t sign = (h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ffu, bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            int e = -1;
            do {
                ++e;
                mantissa <<= 1;
            } while ((mantissa & 0x400u) == 0);
            bits = sign | ((uint32_t)(112 - e) << 23) | ((mantissa & 0x3ffu) << 13);
        }
    } else {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

float value_at(const NvDsInferLayerInfo& layer, size_t i) {
    if (layer.dataType == HALF) return half_to_float(static_cast<const uint16_t*>(layer.buffer)[i]);
    return static_cast<const float*>(layer.buffer)[i];
}

size_t element_count(const NvDsInferDims& dims) {
    if (dims.numDims < 1 || dims.numDims > 8) return 0;
    uint64_t total = 1;
    for (unsigned k = 0; k < dims.numDims; ++k) {
        total *= dims.d[k];
        if (total > 0xffffffffull) return 0;
    }
    return total;
}

bool is_float(const NvDsInferLayerInfo& l) { return l.dataType == FLOAT || l.dataType == HALF; }

struct Roles {
    const NvDsInferLayerInfo* layer[4] = {nullptr, nullptr, nullptr, nullptr};  // count, boxes, scores, classes
};

Roles find_roles(const std::vector<NvDsInferLayerInfo>& layers, const char* const names[4][2], bool float_classes) {
    Roles roles;
    std::vector<bool> taken(layers.size(), false);
    for (int r = 0; r < 4; ++r)
        for (int n = 0; n < 2 && !roles.layer[r]; ++n)
            for (size_t i = 0; i < layers.size(); ++i)
                if (!taken[i] && names[r][n] && layers[i].layerName && std::strcmp(layers[i].layerName, names[r][n]) == 0) {
                    roles.layer[r] = &layers[i];
                    taken[i] = true;
                    break;
                }
    for (int r = 0; r < 4; ++r) {
        if (roles.layer[r]) continue;
        for (size_t i = 0; i < layers.size(); ++i) {
            if (taken[i]) continue;
            const NvDsInferLayerInfo& l = layers[i];
            const NvDsInferDims& d = l.inferDims;
            bool ok = false;
            if (r == 0) ok = l.dataType == INT32 && (float_classes || element_count(d) == 1);
            if (r == 1) ok = d.numDims == 2 && d.d[1] == 4;
            if (r == 2) ok = d.numDims == 1 && l.dataType != INT32;
            if (r == 3) ok = d.numDims == 1 && (float_classes ? l.dataType != INT32 : l.dataType == INT32);
            if (ok) {
                roles.layer[r] = &l;
                taken[i] = true;
                break;
            }
        }
    }
    return roles;
}

template <bool kFloatClasses, Bug kBug>
bool parse(const std::vector<NvDsInferLayerInfo>& layers, const NvDsInferNetworkInfo& net,
           const NvDsInferParseDetectionParams& params, std::vector<NvDsInferObjectDetectionInfo>& objects) {
    static const char* const efficient[4][2] = {{"num_detections", nullptr}, {"detection_boxes", nullptr},
                                                {"detection_scores", nullptr}, {"detection_classes", nullptr}};
    static const char* const batched[4][2] = {{"num_detections", "BatchedNMS"}, {"nmsed_boxes", "BatchedNMS_1"},
                                              {"nmsed_scores", "BatchedNMS_2"}, {"nmsed_classes", "BatchedNMS_3"}};
    const Roles roles = find_roles(layers, kFloatClasses ? batched : efficient, kFloatClasses);
    for (const auto* l : roles.layer)
        if (!l) return false;
    const NvDsInferLayerInfo &count = *roles.layer[0], &boxes = *roles.layer[1], &scores = *roles.layer[2],
                             &classes = *roles.layer[3];
    if (count.dataType != INT32 || element_count(count.inferDims) < 1) return false;
    if (boxes.inferDims.numDims != 2 || boxes.inferDims.d[1] != 4 || boxes.inferDims.d[0] == 0) return false;
    const unsigned k = boxes.inferDims.d[0];
    for (const NvDsInferLayerInfo* l : {&scores, &classes})
        if (l->inferDims.numDims != 1 || l->inferDims.d[0] != k) return false;
    if (!is_float(boxes) || !is_float(scores)) return false;
    if (kFloatClasses ? !is_float(classes) : classes.dataType != INT32) return false;

    int raw = *static_cast<const int32_t*>(count.buffer);
    const unsigned n = raw < 0 ? 0u : (static_cast<unsigned>(raw) < k ? static_cast<unsigned>(raw) : k);
    const std::vector<float>& pre = params.perClassPreclusterThreshold;
    std::map<float, NvDsInferObjectDetectionInfo> by_score;

    auto one_row = [&](unsigned i) -> int {  // 0: next row, 1: stop
        unsigned id;
        if (kFloatClasses) {
            const float v = value_at(classes, i);
            if (kBug == kNanClassCast) {
                if (v < 0 || v >= kModelClasses) return 0;
                const int cast = static_cast<int>(v);  // NaN: INT_MIN on x86
                const float threshold = pre.data()[cast];
                if (!(value_at(scores, i) >= threshold)) return 0;
                id = static_cast<unsigned>(cast);
                if (id >= params.numClassesConfigured) return 0;
            } else {
                if (!(v >= 0) || !(v < kModelClasses) || !(v < params.numClassesConfigured)) return 0;
                id = static_cast<unsigned>(v);
            }
        } else if (kBug == kInt32AsFloat) {
            const float v = static_cast<const float*>(classes.buffer)[i];
            if (!(v >= 0) || !(v < kModelClasses)) return 0;
            id = static_cast<unsigned>(v);
        } else {
            const int32_t v = static_cast<const int32_t*>(classes.buffer)[i];
            if (kBug == kAssertClass) assert(v >= 0 && v < static_cast<int32_t>(kModelClasses));
            if (v < 0 || v >= static_cast<int32_t>(kModelClasses)) return 0;
            id = static_cast<unsigned>(v);
        }
        if (id >= params.numClassesConfigured && kBug != kOobThreshold) return kBug == kBreakUnconfigured ? 1 : 0;
        const float score = value_at(scores, i);
        float threshold;
        if (kBug == kOobThreshold) threshold = pre.data()[id];
        else if (kBug == kIgnoresPerClass) threshold = pre.empty() ? kDefaultThreshold : pre[0];
        else if (kBug == kTrustsVectorSize) threshold = pre.data()[id];
        else threshold = id < pre.size() ? pre[id] : kDefaultThreshold;
        if (!std::isfinite(score) || !(score >= threshold)) return 0;
        float x1, y1, x2, y2;
        if (kFloatClasses) {
            x1 = value_at(boxes, 4 * i) * static_cast<float>(net.width);
            y1 = value_at(boxes, 4 * i + 1) * static_cast<float>(net.height);
            x2 = value_at(boxes, 4 * i + 2) * static_cast<float>(net.width);
            y2 = value_at(boxes, 4 * i + 3) * static_cast<float>(net.height);
            if (!std::isfinite(value_at(boxes, 4 * i)) || !std::isfinite(value_at(boxes, 4 * i + 1)) ||
                !std::isfinite(value_at(boxes, 4 * i + 2)) || !std::isfinite(value_at(boxes, 4 * i + 3)))
                return 0;
        } else {
            y1 = value_at(boxes, 4 * i);
            x1 = value_at(boxes, 4 * i + 1);
            y2 = value_at(boxes, 4 * i + 2);
            x2 = value_at(boxes, 4 * i + 3);
            if (!std::isfinite(x1) || !std::isfinite(y1) || !std::isfinite(x2) || !std::isfinite(y2)) return 0;
        }
        const float last = kBug == kClipsAtLastPixel ? 1.0f : 0.0f;
        const float w = static_cast<float>(net.width) - last, h = static_cast<float>(net.height) - last;
        x1 = std::fmin(std::fmax(x1, 0.0f), w);
        x2 = std::fmin(std::fmax(x2, 0.0f), w);
        y1 = std::fmin(std::fmax(y1, 0.0f), h);
        y2 = std::fmin(std::fmax(y2, 0.0f), h);
        if (kBug != kKeepsSubPixel && (!(x2 - x1 >= 1.0f) || !(y2 - y1 >= 1.0f))) return 0;
        if (kBug == kUninitRotation) {
            NvDsInferObjectDetectionInfo o;  // the bug: no {}, rotation_angle never set
            o.classId = id;
            o.left = x1;
            o.top = y1;
            o.width = x2 - x1;
            o.height = y2 - y1;
            o.detectionConfidence = score;
            objects.push_back(o);
            return 0;
        }
        NvDsInferObjectDetectionInfo o{};
        o.classId = id;
        o.left = x1;
        o.top = y1;
        o.width = x2 - x1;
        o.height = y2 - y1;
        o.detectionConfidence = score;
        if (kBug == kMapCollapse) by_score[score] = o;
        else objects.push_back(o);
        return 0;
    };
    if (kBug == kReverseOverrun) {
        for (unsigned i = n; i > 0; --i)
            if (one_row(i)) break;
    } else {
        for (unsigned i = 0; i < n; ++i)
            if (one_row(i)) break;
    }
    for (const auto& entry : by_score) objects.push_back(entry.second);
    return true;
}

}  // namespace

#define DSP_EXPORT(name, floats, bug)                                                                              \
    extern "C" bool name(std::vector<NvDsInferLayerInfo> const& layers, NvDsInferNetworkInfo const& net,          \
                         NvDsInferParseDetectionParams const& params,                                             \
                         std::vector<NvDsInferObjectDetectionInfo>& objects) {                                    \
        return parse<floats, bug>(layers, net, params, objects);                                                  \
    }                                                                                                             \
    CHECK_CUSTOM_PARSE_FUNC_PROTOTYPE(name);

// EfficientNMS_TRT (INT32 classes; --arch efficientnms)
DSP_EXPORT(NvDsInferParseEfficientGood, false, kGood)
DSP_EXPORT(NvDsInferParseEfficientOobThreshold, false, kOobThreshold)
DSP_EXPORT(NvDsInferParseEfficientAssertClass, false, kAssertClass)
DSP_EXPORT(NvDsInferParseEfficientIgnoresPerClass, false, kIgnoresPerClass)
DSP_EXPORT(NvDsInferParseEfficientBreakUnconfigured, false, kBreakUnconfigured)
DSP_EXPORT(NvDsInferParseEfficientInt32AsFloat, false, kInt32AsFloat)
DSP_EXPORT(NvDsInferParseEfficientMapCollapse, false, kMapCollapse)
DSP_EXPORT(NvDsInferParseEfficientUninitRotation, false, kUninitRotation)
DSP_EXPORT(NvDsInferParseEfficientReverseOverrun, false, kReverseOverrun)
DSP_EXPORT(NvDsInferParseEfficientTrustsVectorSize, false, kTrustsVectorSize)
DSP_EXPORT(NvDsInferParseEfficientKeepsSubPixel, false, kKeepsSubPixel)
DSP_EXPORT(NvDsInferParseEfficientClipsAtLastPixel, false, kClipsAtLastPixel)
// TAO BatchedNMS (float classes; --arch tao-batched-nms)
DSP_EXPORT(NvDsInferParseBatchedGood, true, kGood)
DSP_EXPORT(NvDsInferParseBatchedNanClassCast, true, kNanClassCast)

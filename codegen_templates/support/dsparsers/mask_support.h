// dsparsers mask support: what instance-mask parsers (NvDsInferInstanceMaskParseCustomFunc) share.
// Copied verbatim into each generated parser's include/ directory by dsparsers.
//
// The contract, from nvinfer and nvdsosd:
// - a mask is mask_width x mask_height floats, row-major, allocated with new float[] (nvinfer frees
//   it with delete[]); mask_size is its size in BYTES;
// - nvdsosd stretches the mask over its object's rectangle and draws the pixels above the config's
//   segmentation-threshold, so a mask must cover exactly the (clipped) box the object reports, and its
//   values must be probabilities when segmentation-threshold is one.
//
// Sampling is bilinear with half-pixel centres and clamped edges (PyTorch's align_corners=False):
// mask pixel j of a mask covering [d0, d1] sits at x = d0 + (j + 0.5) * (d1 - d0) / count; in a source
// of `size` cells covering [s0, s1] that is u = (x - s0) * size / (s1 - s0) - 0.5. dsparsers'
// reference decoder (dsparsers/reference.py, bilinear_taps and resample_mask) computes the same.
#ifndef DSPARSERS_MASK_SUPPORT_H
#define DSPARSERS_MASK_SUPPORT_H

#include <cmath>
#include <new>
#include <vector>

#include "dsparsers/parser_support.h"

namespace dsparsers {

// The largest mask side a parser allocates (a hostile dims or option cannot ask for gigabytes).
constexpr unsigned kMaxMaskSide = 2048;

// A rectangle in network pixels, corners (x1, y1) to (x2, y2).
struct Rect {
    float x1, y1, x2, y2;
};

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// One output cell's source taps along an axis: value = (1 - weight) * src[lo] + weight * src[hi].
struct Taps {
    unsigned lo, hi;
    float weight;
};

// Taps of `count` cells covering [d0, d1] in a source of `size` cells covering [s0, s1] (size >= 1).
inline void bilinear_taps(float d0, float d1, unsigned count, float s0, float s1, unsigned size, Taps* out) {
    const float step = (d1 - d0) / static_cast<float>(count);
    const float scale = static_cast<float>(size) / (s1 - s0);
    const float last = static_cast<float>(size - 1);
    for (unsigned j = 0; j < count; ++j) {
        const float x = d0 + (static_cast<float>(j) + 0.5f) * step;
        float u = (x - s0) * scale - 0.5f;
        if (!(u > 0.0f)) u = 0.0f;  // NaN lands here too
        if (u > last) u = last;
        const unsigned lo = static_cast<unsigned>(u);
        out[j].lo = lo;
        out[j].hi = lo + 1 < size ? lo + 1 : lo;
        out[j].weight = u - static_cast<float>(lo);
    }
}

// The value at a pair of taps; src(row, col) reads the source.
template <typename Source>
inline float bilinear(const Source& src, const Taps& tx, const Taps& ty) {
    const float top = (1.0f - tx.weight) * src(ty.lo, tx.lo) + tx.weight * src(ty.lo, tx.hi);
    const float bottom = (1.0f - tx.weight) * src(ty.hi, tx.lo) + tx.weight * src(ty.hi, tx.hi);
    return (1.0f - ty.weight) * top + ty.weight * bottom;
}

// A new float[width * height] for a mask, or nullptr when the size is out of range or memory is short.
inline float* new_mask(unsigned width, unsigned height) {
    if (width == 0 || height == 0 || width > kMaxMaskSide || height > kMaxMaskSide) return nullptr;
    return new (std::nothrow) float[static_cast<size_t>(width) * height];
}

// Frees every mask of `objects` (delete[], as nvinfer does) and empties it: a parser returning false
// must do this itself, because nvinfer frees masks only of frames it accepted.
inline void free_masks(std::vector<NvDsInferInstanceMaskInfo>& objects) {
    for (NvDsInferInstanceMaskInfo& object : objects) {
        delete[] object.mask;
        object.mask = nullptr;
    }
    objects.clear();
}

// `box` clipped to the network; false when the clipped width or height is under one pixel (the object
// is dropped, as detector parsers drop it). Corners must be finite (callers check).
inline bool clip_box(const NvDsInferNetworkInfo& network, Rect box, Rect& clipped) {
    clipped.x1 = clip(box.x1, static_cast<float>(network.width));
    clipped.x2 = clip(box.x2, static_cast<float>(network.width));
    clipped.y1 = clip(box.y1, static_cast<float>(network.height));
    clipped.y2 = clip(box.y2, static_cast<float>(network.height));
    return clipped.x2 - clipped.x1 >= 1.0f && clipped.y2 - clipped.y1 >= 1.0f;
}

// Resamples `src` (src_height x src_width, row-major, covering `from`) onto a mask of
// width x height covering `to`, applying the sigmoid when `activate`; writes into `mask`.
inline void resample_mask(const float* src, unsigned src_width, unsigned src_height, Rect from, Rect to, unsigned width,
                          unsigned height, bool activate, float* mask, std::vector<Taps>& tx, std::vector<Taps>& ty) {
    tx.resize(width);
    ty.resize(height);
    bilinear_taps(to.x1, to.x2, width, from.x1, from.x2, src_width, tx.data());
    bilinear_taps(to.y1, to.y2, height, from.y1, from.y2, src_height, ty.data());
    auto at = [src, src_width](unsigned row, unsigned col) { return src[static_cast<size_t>(row) * src_width + col]; };
    for (unsigned i = 0; i < height; ++i)
        for (unsigned j = 0; j < width; ++j) {
            const float value = bilinear(at, tx[j], ty[i]);
            mask[static_cast<size_t>(i) * width + j] = activate ? sigmoid(value) : value;
        }
}

// Appends an object that owns `mask` (width x height floats covering `box`, already clipped).
inline void add_mask_object(std::vector<NvDsInferInstanceMaskInfo>& objects, unsigned class_id, float confidence,
                            Rect box, float* mask, unsigned width, unsigned height) {
    NvDsInferInstanceMaskInfo object{};
    object.classId = class_id;
    object.left = box.x1;
    object.top = box.y1;
    object.width = box.x2 - box.x1;
    object.height = box.y2 - box.y1;
    object.detectionConfidence = confidence;
    object.mask = mask;
    object.mask_width = width;
    object.mask_height = height;
    object.mask_size = static_cast<unsigned>(sizeof(float) * width * height);
    try {
        objects.push_back(object);
    } catch (...) {
        delete[] mask;
        throw;
    }
}

}  // namespace dsparsers

#endif  // DSPARSERS_MASK_SUPPORT_H

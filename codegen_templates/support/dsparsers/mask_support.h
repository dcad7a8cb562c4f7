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
#include <cstdint>
#include <cstring>
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

// e^x without a library call or a branch, so that loops over mask pixels vectorise: round x / ln 2
// to an integer n (adding 1.5 * 2^23 leaves n in the low mantissa bits), e^r on |r| <= ln2 / 2 by its
// degree-6 Taylor polynomial (relative error < 2e-7), scaled by 2^n built from its bits. Inputs are
// clamped to [-87, 88] (results stay normal floats); NaN stays NaN.
inline float exp_approx(float x) {
    x = x > 88.0f ? 88.0f : x;
    x = x < -87.0f ? -87.0f : x;  // comparisons with NaN are false: NaN passes through
    const float shifter = 12582912.0f;
    const float t = x * 1.44269504088896341f + shifter;
    const float n = t - shifter;
    uint32_t bits;
    std::memcpy(&bits, &t, sizeof(bits));
    const int32_t k = static_cast<int32_t>(bits) - 0x4B400000;  // n as an integer
    const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const uint32_t scale_bits = static_cast<uint32_t>(k + 127) << 23;
    float scale;
    std::memcpy(&scale, &scale_bits, sizeof(scale));
    return p * scale;
}

// The logistic function, with exp_approx (absolute error < 1e-7 against an exact sigmoid).
inline float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

// sigmoid on each of n values, in place (a loop the compiler vectorises).
inline void activate(float* __restrict values, size_t n) {
    for (size_t i = 0; i < n; ++i) values[i] = sigmoid(values[i]);
}

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

// Bilinear samples of a source at the taps tx (width) x ty (height), in two separable passes that
// compute exactly what `bilinear` computes per pixel: each source row the y taps touch is first
// interpolated along x (into `rows`), then pairs of those rows along y. The source is read as
// src[(row - row0) * stride + (col - col0)]: a window whose first row and column are row0 and col0.
inline void sample_taps(const float* src, size_t stride, unsigned row0, unsigned col0, const Taps* tx, unsigned width,
                        const Taps* ty, unsigned height, float* out, std::vector<float>& rows) {
    const unsigned first = ty[0].lo, last = ty[height - 1].hi;  // taps are monotonic
    rows.resize(static_cast<size_t>(last - first + 1) * width);
    for (unsigned r = first; r <= last; ++r) {
        const float* line = src + static_cast<size_t>(r - row0) * stride;
        float* row = rows.data() + static_cast<size_t>(r - first) * width;
        for (unsigned j = 0; j < width; ++j)
            row[j] = (1.0f - tx[j].weight) * line[tx[j].lo - col0] + tx[j].weight * line[tx[j].hi - col0];
    }
    for (unsigned i = 0; i < height; ++i) {
        const float* top = rows.data() + static_cast<size_t>(ty[i].lo - first) * width;
        const float* bottom = rows.data() + static_cast<size_t>(ty[i].hi - first) * width;
        const float w = ty[i].weight;
        float* __restrict line = out + static_cast<size_t>(i) * width;
        for (unsigned j = 0; j < width; ++j) line[j] = (1.0f - w) * top[j] + w * bottom[j];
    }
}

// Resamples `src` (src_height x src_width, row-major, covering `from`) onto a mask of
// width x height covering `to`, applying the sigmoid when `apply_sigmoid`; writes into `mask`.
inline void resample_mask(const float* src, unsigned src_width, unsigned src_height, Rect from, Rect to, unsigned width,
                          unsigned height, bool apply_sigmoid, float* mask, std::vector<Taps>& tx,
                          std::vector<Taps>& ty, std::vector<float>& scratch) {
    tx.resize(width);
    ty.resize(height);
    bilinear_taps(to.x1, to.x2, width, from.x1, from.x2, src_width, tx.data());
    bilinear_taps(to.y1, to.y2, height, from.y1, from.y2, src_height, ty.data());
    sample_taps(src, src_width, 0, 0, tx.data(), width, ty.data(), height, mask, scratch);
    if (apply_sigmoid) activate(mask, static_cast<size_t>(width) * height);
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

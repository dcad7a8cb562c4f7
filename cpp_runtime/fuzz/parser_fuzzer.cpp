// libFuzzer target for any generated parser: arbitrary bytes become the layers, dims, data types,
// network size and detection params nvinfer could hand a parser, and the parse function is called
// with them. Built by dsparsers/fuzz.py together with the parser's own source (-fsanitize=fuzzer,
// address,undefined), so every out-of-bounds read, overflow or crash is a finding.
//
// Like nvinfer, the harness always allocates each buffer to match its dims (capped at kMaxBytes):
// the parser may trust that, and nothing else.
//
// Seeded mode: when DSPARSERS_FUZZ_BASE names a case file (tools/case_file.h; `dsparsers fuzz` writes
// one from the architecture's own strategy, a valid input with objects), inputs whose first byte is
// odd edit that case instead of building layers from nothing: values written at fuzzer-chosen offsets
// (NaN, infinities, huge and negative numbers reach every branch of the decode), and sometimes another
// class count or threshold. Random bytes alone rarely build a valid multi-output head; this mode
// starts the search inside one, so the deep paths (NMS, mask sampling) are fuzzed too.
//
// With DSPARSERS_FUZZ_INSTANCE_MASK defined the function is an instance-mask parser: every mask that
// comes back is read in full (a short allocation is an ASan finding), its mask_size must be
// width x height x 4 bytes, and it is freed with delete[] as nvinfer frees it (a leak is a finding).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "case_file.h"
#include "dsparsers/parser_support.h"

#ifndef DSPARSERS_FUZZ_FUNCTION
#error "define DSPARSERS_FUZZ_FUNCTION to the parse function's name"
#endif

#ifdef DSPARSERS_FUZZ_INSTANCE_MASK
using FuzzedObject = NvDsInferInstanceMaskInfo;
#else
using FuzzedObject = NvDsInferObjectDetectionInfo;
#endif

extern "C" bool DSPARSERS_FUZZ_FUNCTION(const std::vector<NvDsInferLayerInfo>&, const NvDsInferNetworkInfo&,
                                        const NvDsInferParseDetectionParams&, std::vector<FuzzedObject>&);

namespace {

constexpr size_t kMaxBytes = 1 << 20;
constexpr unsigned kMaxLayers = 5;

class Input {
  public:
    Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
    uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
    uint32_t u32() {
        uint32_t v = 0;
        for (int k = 0; k < 4; ++k) v = (v << 8) | byte();
        return v;
    }
    float f32() {
        uint32_t bits = u32();
        float v;
        std::memcpy(&v, &bits, sizeof(v));
        return v;
    }
    // The rest of the input, repeated, fills a buffer (zeros when the input is used up).
    void fill(uint8_t* out, size_t n) {
        const size_t left = pos_ < size_ ? size_ - pos_ : 0;
        for (size_t i = 0; i < n; ++i) out[i] = left ? data_[pos_ + i % left] : 0;
    }

  private:
    const uint8_t* data_;
    size_t size_;
    size_t pos_ = 0;
};

size_t element_size(NvDsInferDataType type) {
    switch (type) {
        case FLOAT: case INT32: return 4;
        case HALF: return 2;
        case INT64: return 8;
        default: return 1;
    }
}

// Dims that are either small (0..63) or the usual head sizes, so shapes the parser accepts are reachable.
unsigned dimension(Input& in) {
    static const unsigned common[] = {1, 4, 6, 7, 84, 85, 255, 300, 8400, 2100, 25200, 80, 3, 2, 13, 26, 52,
                                      116, 32, 160, 40, 20, 28, 100};  // seg: 4+80+32 rows, protos, masks
    const uint8_t b = in.byte();
    return b < 128 ? b % 64 : common[b % (sizeof(common) / sizeof(common[0]))];
}

// Calls the parser and checks what came back (a finding traps).
int check_call(const std::vector<NvDsInferLayerInfo>& layers, const NvDsInferNetworkInfo& network,
               const NvDsInferParseDetectionParams& params) {
    std::vector<FuzzedObject> objects;
    const bool accepted = DSPARSERS_FUZZ_FUNCTION(layers, network, params, objects);
    for (const auto& o : objects) {  // what came back must be a box inside the network
        if (!(o.width >= 1.0f && o.height >= 1.0f && o.left >= 0.0f && o.top >= 0.0f &&
              o.left + o.width <= network.width + 0.01f && o.top + o.height <= network.height + 0.01f))
            __builtin_trap();
    }
#ifdef DSPARSERS_FUZZ_INSTANCE_MASK
    if (!accepted && !objects.empty()) __builtin_trap();  // nvinfer would leak these masks
    volatile float sink = 0.0f;
    for (auto& o : objects) {
        if (o.mask == nullptr || o.mask_size != static_cast<size_t>(o.mask_width) * o.mask_height * sizeof(float))
            __builtin_trap();
        for (size_t k = 0; k < static_cast<size_t>(o.mask_width) * o.mask_height; ++k) sink = sink + o.mask[k];
        delete[] o.mask;  // as nvinfer frees it
    }
#else
    (void)accepted;
#endif
    return 0;
}

const dsparsers_case::SavedCase* base_case = nullptr;

// The base case with the edits `in` describes (seeded mode).
void edited_base(Input& in, std::vector<NvDsInferLayerInfo>& layers, std::vector<std::vector<uint8_t>>& buffers,
                 NvDsInferNetworkInfo& network, NvDsInferParseDetectionParams& params) {
    const dsparsers_case::SavedCase& c = *base_case;
    layers.assign(c.layers.size(), NvDsInferLayerInfo{});
    buffers.assign(c.layers.size(), {});
    for (size_t i = 0; i < c.layers.size(); ++i) {
        const dsparsers_case::SavedLayer& s = c.layers[i];
        NvDsInferLayerInfo& layer = layers[i];
        buffers[i].assign(s.data.begin(), s.data.end());
        buffers[i].push_back(0);  // never empty
        layer.dataType = static_cast<NvDsInferDataType>(s.data_type);
        layer.inferDims.numDims = static_cast<unsigned>(s.dims.size());
        size_t elements = 1;
        for (size_t k = 0; k < s.dims.size() && k < NVDSINFER_MAX_DIMS; ++k) {
            layer.inferDims.d[k] = s.dims[k];
            elements *= s.dims[k];
        }
        layer.inferDims.numElements = static_cast<unsigned>(elements);
        layer.buffer = s.data.empty() ? nullptr : buffers[i].data();
        layer.layerName = s.name.c_str();
        layer.bindingIndex = static_cast<int>(i) + 1;
    }
    const unsigned edits = in.byte() % 64;
    for (unsigned e = 0; e < edits && !layers.empty(); ++e) {
        const size_t i = in.byte() % layers.size();
        const size_t bytes = c.layers[i].data.size();
        const uint32_t offset = in.u32();
        const float value = in.f32();
        if (bytes >= sizeof(value)) std::memcpy(buffers[i].data() + offset % (bytes - sizeof(value) + 1), &value, sizeof(value));
    }
    network = NvDsInferNetworkInfo{c.width, c.height, c.channels};
    params.numClassesConfigured = in.byte() % 4 == 0 ? dimension(in) : c.classes;
    params.perClassPreclusterThreshold = c.pre;
    if (in.byte() % 4 == 0) params.perClassPreclusterThreshold.assign(c.pre.size(), in.f32());
    params.perClassPostclusterThreshold = c.post;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    const char* path = std::getenv("DSPARSERS_FUZZ_BASE");
    if (path != nullptr && *path) base_case = new dsparsers_case::SavedCase(dsparsers_case::read_case(path));
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (base_case != nullptr && size > 0 && (data[0] & 1)) {
        Input in(data + 1, size - 1);
        std::vector<NvDsInferLayerInfo> layers;
        std::vector<std::vector<uint8_t>> buffers;
        NvDsInferNetworkInfo network{};
        NvDsInferParseDetectionParams params;
        edited_base(in, layers, buffers, network, params);
        return check_call(layers, network, params);
    }
    Input in(data, size);
    const unsigned layer_count = in.byte() % (kMaxLayers + 1);
    std::vector<NvDsInferLayerInfo> layers(layer_count);
    std::vector<std::vector<uint8_t>> buffers(layer_count);
    static const char* names[] = {"output0", "output", "boxes", "scores", "num_detections", "pred_logits",
                                  "pred_boxes", "heatmap", "NMS", "NMS_1", "labels", "x", "output1",
                                  "generate_detections", "mask_fcn_logits/BiasAdd"};
    for (unsigned i = 0; i < layer_count; ++i) {
        NvDsInferLayerInfo& layer = layers[i];
        std::memset(&layer, 0, sizeof(layer));
        layer.dataType = static_cast<NvDsInferDataType>(in.byte() % 6);
        layer.inferDims.numDims = in.byte() % 10;  // 0..9: past NVDSINFER_MAX_DIMS too
        size_t elements = 1;
        const unsigned shown = layer.inferDims.numDims < NVDSINFER_MAX_DIMS ? layer.inferDims.numDims : NVDSINFER_MAX_DIMS;
        for (unsigned k = 0; k < shown; ++k) {
            layer.inferDims.d[k] = dimension(in);
            elements = elements * layer.inferDims.d[k];
            if (elements * 8 > kMaxBytes) elements = kMaxBytes;  // too large to allocate: the dims stay, see below
        }
        layer.inferDims.numElements = static_cast<unsigned>(elements);
        const size_t bytes = elements * element_size(layer.dataType);
        if (bytes > kMaxBytes / 2) return 0;  // nvinfer's buffers always match the dims; skip what we cannot back
        buffers[i].resize(bytes + 1);
        in.fill(buffers[i].data(), bytes);
        layer.buffer = bytes ? buffers[i].data() : nullptr;
        layer.layerName = names[in.byte() % (sizeof(names) / sizeof(names[0]))];
        layer.bindingIndex = static_cast<int>(i) + 1;
    }
    NvDsInferNetworkInfo network{dimension(in) * 16u, dimension(in) * 16u, 3};
    NvDsInferParseDetectionParams params;
    params.numClassesConfigured = in.byte() % 2 ? dimension(in) : in.u32();
    const unsigned thresholds = in.byte() % 100;
    for (unsigned c = 0; c < thresholds; ++c) params.perClassPreclusterThreshold.push_back(in.f32());
    return check_call(layers, network, params);
}

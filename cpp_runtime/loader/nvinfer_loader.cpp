// See nvinfer_loader.h. Built by dsparsers (through cpp_runtime/meson.build) into a small shared
// library that the Python conformance harness reaches through cffi.
#include "nvinfer_loader.h"

#include <dlfcn.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#define DSPARSERS_DS_ABI 9
#include "dsparsers/nvdsinfer_abi.h"

namespace {

// The two layouts of NvDsInferObjectDetectionInfo, side by side, so one loader drives either ABI.
struct ObjectInfoAbi8 {
    unsigned int classId;
    float left, top, width, height, detectionConfidence;
};
struct ObjectInfoAbi9 {
    unsigned int classId;
    float left, top, width, height, detectionConfidence, rotation_angle;
};
static_assert(sizeof(ObjectInfoAbi8) == 24, "DeepStream <= 8 object layout is 24 bytes");
static_assert(sizeof(ObjectInfoAbi9) == 28, "DeepStream >= 9 object layout is 28 bytes");
static_assert(sizeof(NvDsInferLayerInfo) == 72, "NvDsInferLayerInfo is 72 bytes");
static_assert(sizeof(NvDsInferDims) == 40, "NvDsInferDims is 40 bytes");

static_assert(sizeof(NvDsInferInstanceMaskInfo) == 48, "NvDsInferInstanceMaskInfo is 48 bytes");

template <typename Object>
using DetectorFunc = bool (*)(std::vector<NvDsInferLayerInfo> const&, NvDsInferNetworkInfo const&,
                              NvDsInferParseDetectionParams const&, std::vector<Object>&);

void write_message(char* dst, size_t size, const std::string& msg) {
    if (dst == nullptr || size == 0) return;
    size_t n = msg.size() < size - 1 ? msg.size() : size - 1;
    std::memcpy(dst, msg.data(), n);
    dst[n] = '\0';
}

}  // namespace

struct dsp_parser {
    void* handle = nullptr;
    void* symbol = nullptr;
    int abi = 9;
    unsigned calls = 0;  // detector calls so far (picks the stack fill pattern)
    std::vector<dsp_object> objects;
    std::vector<dsp_mask_object> mask_objects;
    std::vector<std::vector<float>> masks;  // copies of the parsers' masks, one per mask object
    std::string error;
};

static size_t element_size(int data_type) {
    switch (data_type) {
        case FLOAT: case INT32: return 4;
        case HALF: return 2;
        case INT8: case UINT8: return 1;
        case INT64: return 8;
        default: return 0;
    }
}

static size_t layer_bytes(const dsp_layer& layer) {
    size_t count = 1;
    const unsigned dims = layer.num_dims < NVDSINFER_MAX_DIMS ? layer.num_dims : NVDSINFER_MAX_DIMS;
    for (unsigned k = 0; k < dims; ++k) count *= layer.dims[k];
    return count * element_size(layer.data_type);
}

// Builds nvinfer's layer vector for one frame (as dsp_parser_parse does).
static std::vector<NvDsInferLayerInfo> layer_infos(const dsp_layer* layers, unsigned layer_count) {
    std::vector<NvDsInferLayerInfo> infos(layer_count);
    for (unsigned i = 0; i < layer_count; ++i) {
        NvDsInferLayerInfo& info = infos[i];
        std::memset(&info, 0, sizeof(info));
        info.dataType = static_cast<NvDsInferDataType>(layers[i].data_type);
        info.inferDims.numDims = layers[i].num_dims;
        const unsigned count = layers[i].num_dims < NVDSINFER_MAX_DIMS ? layers[i].num_dims : NVDSINFER_MAX_DIMS;
        unsigned long long elements = 1;
        for (unsigned k = 0; k < count; ++k) {
            info.inferDims.d[k] = layers[i].dims[k];
            elements *= layers[i].dims[k];
        }
        info.inferDims.numElements = static_cast<unsigned>(elements);
        info.bindingIndex = static_cast<int>(i) + 1;  // binding 0 is the input
        info.layerName = layers[i].name;
        info.buffer = const_cast<void*>(layers[i].buffer);
        info.isInput = 0;
    }
    return infos;
}

// Copies a parser's objects into the handle in the ABI-neutral layout.
template <typename Object>
static void keep_objects(dsp_parser* p, const std::vector<Object>& out) {
    p->objects.clear();
    p->objects.reserve(out.size());
    for (const Object& o : out) {
        dsp_object d{};
        d.class_id = o.classId;
        d.left = o.left;
        d.top = o.top;
        d.width = o.width;
        d.height = o.height;
        d.confidence = o.detectionConfidence;
        if constexpr (sizeof(Object) == sizeof(ObjectInfoAbi9)) d.rotation_angle = o.rotation_angle;
        p->objects.push_back(d);
    }
}

// The timing loop shared by detector and instance-mask parsers: `warmup` untimed calls, then
// `iterations` timed ones; call(layers) runs one parse (and whatever nvinfer does right after it).
template <typename Call>
static bool time_calls(const std::vector<std::vector<NvDsInferLayerInfo>>& frames, unsigned warmup,
                       unsigned iterations, double* ns_out, Call call) {
    bool ok = true;
    for (unsigned k = 0; k < warmup; ++k) ok = call(frames[k % frames.size()]);
    for (unsigned k = 0; k < iterations; ++k) {
        const auto& layers = frames[(warmup + k) % frames.size()];
        const auto start = std::chrono::steady_clock::now();
        ok = call(layers);
        const auto stop = std::chrono::steady_clock::now();
        ns_out[k] = std::chrono::duration<double, std::nano>(stop - start).count();
    }
    return ok;
}

template <typename Object>
static bool time_detector(dsp_parser* p, const std::vector<std::vector<NvDsInferLayerInfo>>& frames,
                          NvDsInferNetworkInfo const& net, NvDsInferParseDetectionParams const& params,
                          unsigned warmup, unsigned iterations, double* ns_out) {
    auto parse = reinterpret_cast<DetectorFunc<Object>>(p->symbol);
    std::vector<Object> out;
    const bool ok = time_calls(frames, warmup, iterations, ns_out, [&](const std::vector<NvDsInferLayerInfo>& layers) {
        out.clear();
        return parse(layers, net, params, out);
    });
    keep_objects(p, out);
    return ok;
}

// Instance-mask parsers: every call's masks are freed (delete[]) inside the timed region, as nvinfer
// frees them once a frame's metadata is released.
static bool time_masks(dsp_parser* p, const std::vector<std::vector<NvDsInferLayerInfo>>& frames,
                       NvDsInferNetworkInfo const& net, NvDsInferParseDetectionParams const& params, unsigned warmup,
                       unsigned iterations, double* ns_out) {
    auto parse = reinterpret_cast<NvDsInferInstanceMaskParseCustomFunc>(p->symbol);
    std::vector<NvDsInferInstanceMaskInfo> out;
    auto release = [&out]() {
        for (NvDsInferInstanceMaskInfo& o : out) delete[] o.mask;
        out.clear();
    };
    try {
        return time_calls(frames, warmup, iterations, ns_out, [&](const std::vector<NvDsInferLayerInfo>& layers) {
            const bool ok = parse(layers, net, params, out);
            release();
            return ok;
        });
    } catch (...) {
        release();
        throw;
    }
}


// NvDsInferParseDetectionParams built in place, as nvinfer builds it: perClassThreshold must reference
// this object's own vector, so it is filled, never copied.
static void fill_params(NvDsInferParseDetectionParams& params, unsigned num_classes_configured, const float* pre,
                        size_t pre_count, const float* post, size_t post_count) {
    params.numClassesConfigured = num_classes_configured;
    if (pre_count) params.perClassPreclusterThreshold.assign(pre, pre + pre_count);
    if (post_count) params.perClassPostclusterThreshold.assign(post, post + post_count);
}

// Runs `body` (which returns a DSP_PARSER_* status) so that no exception crosses the C API: one that
// escapes the parser becomes DSP_PARSER_THREW with its message in the handle.
template <typename Body>
static int guarded(dsp_parser* p, Body body) {
    if (p == nullptr) return DSP_PARSER_BAD_CALL;
    try {
        p->error.clear();
        return body();
    } catch (const std::exception& e) {
        p->error = std::string("parser threw: ") + e.what();
    } catch (...) {
        p->error = "parser threw a non-standard exception";
    }
    return DSP_PARSER_THREW;
}

// One frame's call: nvinfer's layer vector, network info and detection params (built in place), then
// call(infos, net, params), whose bool becomes the status.
template <typename Call>
static int one_frame(dsp_parser* p, const dsp_layer* layers, unsigned layer_count, NvDsInferNetworkInfo net,
                     unsigned num_classes_configured, const float* pre, size_t pre_count, const float* post,
                     size_t post_count, Call call) {
    if (layer_count > 0 && layers == nullptr) {
        p->error = "layers is NULL";
        return DSP_PARSER_BAD_CALL;
    }
    std::vector<NvDsInferLayerInfo> infos = layer_infos(layers, layer_count);
    NvDsInferParseDetectionParams params;
    fill_params(params, num_classes_configured, pre, pre_count, post, post_count);
    return call(infos, net, params) ? DSP_PARSER_TRUE : DSP_PARSER_FALSE;
}

// The frames of a timing call (frame_count sets of layer_count layers), or false with the reason.
static bool timing_frames(dsp_parser* p, const dsp_layer* layers, unsigned layer_count, unsigned frame_count,
                          unsigned iterations, const double* ns_out,
                          std::vector<std::vector<NvDsInferLayerInfo>>& frames) {
    if (frame_count == 0 || layers == nullptr || (iterations > 0 && ns_out == nullptr)) {
        p->error = "frame_count, layers and ns_out are required";
        return false;
    }
    for (unsigned f = 0; f < frame_count; ++f) frames.push_back(layer_infos(layers + f * layer_count, layer_count));
    return true;
}

// Fills the stack below this frame with a 32-bit pattern, alternating between calls, right before a
// parse function runs in the same region: a field the parser never sets (an uninitialised
// rotation_angle on a stack object) then reads as the pattern instead of a harmless 0.
__attribute__((noinline)) static void scribble_stack(uint32_t pattern) {
    volatile uint32_t area[4096];
    for (unsigned k = 0; k < 4096; ++k) area[k] = pattern;
    static_cast<void>(area[0]);  // a volatile read: the stores stay, and the array counts as used (-Werror)
}

template <typename Object>
static bool call_detector(dsp_parser* p, std::vector<NvDsInferLayerInfo> const& layers,
                          NvDsInferNetworkInfo const& net, NvDsInferParseDetectionParams const& params) {
    std::vector<Object> out;
    scribble_stack(++p->calls % 2 ? DSP_STACK_FILL_ODD : DSP_STACK_FILL_EVEN);
    bool ok = reinterpret_cast<DetectorFunc<Object>>(p->symbol)(layers, net, params, out);
    keep_objects(p, out);
    return ok;
}

// Calls an instance-mask parser, copies its objects and masks, and frees every mask with delete[]
// (nvinfer's contract), also when copying fails.
static bool call_instance_mask(dsp_parser* p, std::vector<NvDsInferLayerInfo> const& layers,
                               NvDsInferNetworkInfo const& net, NvDsInferParseDetectionParams const& params) {
    std::vector<NvDsInferInstanceMaskInfo> out;
    struct FreeMasks {
        std::vector<NvDsInferInstanceMaskInfo>& list;
        ~FreeMasks() {
            for (NvDsInferInstanceMaskInfo& o : list) {
                delete[] o.mask;
                o.mask = nullptr;
            }
        }
    } free_masks{out};
    bool ok = reinterpret_cast<NvDsInferInstanceMaskParseCustomFunc>(p->symbol)(layers, net, params, out);
    p->mask_objects.reserve(out.size());
    p->masks.reserve(out.size());
    for (const NvDsInferInstanceMaskInfo& o : out) {
        dsp_mask_object d{};
        d.class_id = o.classId;
        d.left = o.left;
        d.top = o.top;
        d.width = o.width;
        d.height = o.height;
        d.confidence = o.detectionConfidence;
        d.mask_width = o.mask_width;
        d.mask_height = o.mask_height;
        d.mask_size = o.mask_size;
        d.has_mask = o.mask != nullptr;
        std::vector<float> copy;
        if (o.mask != nullptr) copy.assign(o.mask, o.mask + o.mask_size / sizeof(float));
        p->mask_objects.push_back(d);
        p->masks.push_back(std::move(copy));
    }
    return ok;
}

// The timing entry points' common part: frames, network and params from the C arguments, then `timer`
// (the detector or instance-mask loop) under the exception guard.
template <typename Timer>
static int timed_call(dsp_parser* p, const dsp_layer* layers, unsigned layer_count, unsigned frame_count,
                      unsigned net_width, unsigned net_height, unsigned net_channels, unsigned num_classes_configured,
                      const float* precluster_thresholds, size_t precluster_count, unsigned iterations,
                      double* ns_out, Timer timer) {
    return guarded(p, [&]() -> int {
        std::vector<std::vector<NvDsInferLayerInfo>> frames;
        if (!timing_frames(p, layers, layer_count, frame_count, iterations, ns_out, frames)) return DSP_PARSER_BAD_CALL;
        NvDsInferNetworkInfo net{net_width, net_height, net_channels};
        NvDsInferParseDetectionParams params;
        fill_params(params, num_classes_configured, precluster_thresholds, precluster_count, nullptr, 0);
        return timer(frames, net, params) ? DSP_PARSER_TRUE : DSP_PARSER_FALSE;
    });
}

extern "C" {

dsp_parser* dsp_parser_open(const char* library_path, const char* function_name, int abi, char* error,
                            size_t error_size) {
    if (library_path == nullptr || function_name == nullptr) {
        write_message(error, error_size, "library path and function name are required");
        return nullptr;
    }
    if (abi != 8 && abi != 9) {
        write_message(error, error_size, "abi must be 8 or 9, got " + std::to_string(abi));
        return nullptr;
    }
    dlerror();
    void* handle = dlopen(library_path, RTLD_LAZY);
    if (handle == nullptr) {
        const char* why = dlerror();
        write_message(error, error_size, std::string("dlopen failed: ") + (why ? why : "unknown error"));
        return nullptr;
    }
    dlerror();
    void* symbol = dlsym(handle, function_name);
    const char* why = dlerror();
    if (symbol == nullptr || why != nullptr) {
        write_message(error, error_size,
                      std::string("dlsym(") + function_name + ") failed: " + (why ? why : "symbol is NULL"));
        dlclose(handle);
        return nullptr;
    }
    try {
        dsp_parser* p = new dsp_parser();
        p->handle = handle;
        p->symbol = symbol;
        p->abi = abi;
        return p;
    } catch (...) {
        write_message(error, error_size, "out of memory");
        dlclose(handle);
        return nullptr;
    }
}

int dsp_parser_parse(dsp_parser* p, const dsp_layer* layers, unsigned layer_count, unsigned net_width,
                     unsigned net_height, unsigned net_channels, unsigned num_classes_configured,
                     const float* precluster_thresholds, size_t precluster_count,
                     const float* postcluster_thresholds, size_t postcluster_count, size_t* object_count) {
    return guarded(p, [&]() -> int {
        p->objects.clear();
        if (object_count) *object_count = 0;
        const int status = one_frame(p, layers, layer_count, {net_width, net_height, net_channels}, num_classes_configured,
                                     precluster_thresholds, precluster_count, postcluster_thresholds, postcluster_count,
                                     [p](const std::vector<NvDsInferLayerInfo>& infos, const NvDsInferNetworkInfo& net,
                                         const NvDsInferParseDetectionParams& params) {
                                         return p->abi == 8 ? call_detector<ObjectInfoAbi8>(p, infos, net, params)
                                                            : call_detector<ObjectInfoAbi9>(p, infos, net, params);
                                     });
        if (object_count) *object_count = p->objects.size();
        return status;
    });
}

int dsp_parser_parse_masks(dsp_parser* p, const dsp_layer* layers, unsigned layer_count, unsigned net_width,
                           unsigned net_height, unsigned net_channels, unsigned num_classes_configured,
                           const float* precluster_thresholds, size_t precluster_count,
                           const float* postcluster_thresholds, size_t postcluster_count, size_t* object_count) {
    return guarded(p, [&]() -> int {
        p->mask_objects.clear();
        p->masks.clear();
        if (object_count) *object_count = 0;
        const int status = one_frame(p, layers, layer_count, {net_width, net_height, net_channels}, num_classes_configured,
                                     precluster_thresholds, precluster_count, postcluster_thresholds, postcluster_count,
                                     [p](const std::vector<NvDsInferLayerInfo>& infos, const NvDsInferNetworkInfo& net,
                                         const NvDsInferParseDetectionParams& params) {
                                         return call_instance_mask(p, infos, net, params);
                                     });
        if (object_count) *object_count = p->mask_objects.size();
        return status;
    });
}

size_t dsp_parser_mask_objects(const dsp_parser* p, dsp_mask_object* out, size_t capacity) {
    if (p == nullptr || out == nullptr) return 0;
    size_t n = p->mask_objects.size() < capacity ? p->mask_objects.size() : capacity;
    if (n) std::memcpy(out, p->mask_objects.data(), n * sizeof(dsp_mask_object));
    return n;
}

size_t dsp_parser_mask_data(const dsp_parser* p, size_t index, float* out, size_t capacity) {
    if (p == nullptr || out == nullptr || index >= p->masks.size()) return 0;
    const std::vector<float>& mask = p->masks[index];
    size_t n = mask.size() < capacity ? mask.size() : capacity;
    if (n) std::memcpy(out, mask.data(), n * sizeof(float));
    return n;
}

size_t dsp_parser_objects(const dsp_parser* p, dsp_object* out, size_t capacity) {
    if (p == nullptr || out == nullptr) return 0;
    size_t n = p->objects.size() < capacity ? p->objects.size() : capacity;
    if (n) std::memcpy(out, p->objects.data(), n * sizeof(dsp_object));
    return n;
}

const char* dsp_parser_error(const dsp_parser* p) { return p ? p->error.c_str() : "no parser"; }

int dsp_parser_abi(const dsp_parser* p) { return p ? p->abi : 0; }

int dsp_parser_time(dsp_parser* p, const dsp_layer* layers, unsigned layer_count, unsigned frame_count,
                    unsigned net_width, unsigned net_height, unsigned net_channels, unsigned num_classes_configured,
                    const float* precluster_thresholds, size_t precluster_count, unsigned warmup, unsigned iterations,
                    double* ns_out) {
    return timed_call(p, layers, layer_count, frame_count, net_width, net_height, net_channels, num_classes_configured,
                      precluster_thresholds, precluster_count, iterations, ns_out,
                      [&](const auto& frames, const auto& net, const auto& params) {
                          return p->abi == 8
                                     ? time_detector<ObjectInfoAbi8>(p, frames, net, params, warmup, iterations, ns_out)
                                     : time_detector<ObjectInfoAbi9>(p, frames, net, params, warmup, iterations, ns_out);
                      });
}

int dsp_parser_time_masks(dsp_parser* p, const dsp_layer* layers, unsigned layer_count, unsigned frame_count,
                          unsigned net_width, unsigned net_height, unsigned net_channels,
                          unsigned num_classes_configured, const float* precluster_thresholds,
                          size_t precluster_count, unsigned warmup, unsigned iterations, double* ns_out) {
    return timed_call(p, layers, layer_count, frame_count, net_width, net_height, net_channels, num_classes_configured,
                      precluster_thresholds, precluster_count, iterations, ns_out,
                      [&](const auto& frames, const auto& net, const auto& params) {
                          return time_masks(p, frames, net, params, warmup, iterations, ns_out);
                      });
}

unsigned long long dsp_read_floor(const dsp_layer* layers, unsigned layer_count, unsigned frame_count, unsigned warmup,
                                  unsigned iterations, double* ns_out) {
    if (layers == nullptr || frame_count == 0) return 0;
    uint64_t checksum = 0;
    // Eight independent sums over 64-byte chunks: one add per 8 bytes, no shuffles, so the compiler
    // turns it into wide loads at the baseline ISA and the pass runs at load-port or memory speed.
    // (A mix of add and xor over four words made gcc shuffle lanes; that pass was 1.7x slower.)
    auto read_frame = [&](unsigned frame) {
        uint64_t sum[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        uint64_t tail = 0;
        for (unsigned i = 0; i < layer_count; ++i) {
            const dsp_layer& layer = layers[frame * layer_count + i];
            const size_t bytes = layer_bytes(layer);
            const unsigned char* data = static_cast<const unsigned char*>(layer.buffer);
            size_t b = 0;
            for (; b + 64 <= bytes; b += 64)
                for (unsigned k = 0; k < 8; ++k) {
                    uint64_t word;
                    std::memcpy(&word, data + b + 8 * k, 8);
                    sum[k] += word;
                }
            for (; b < bytes; ++b) tail += data[b];
        }
        for (unsigned k = 0; k < 8; ++k) tail += sum[k];
        return tail;
    };
    for (unsigned k = 0; k < warmup; ++k) checksum += read_frame(k % frame_count);
    for (unsigned k = 0; k < iterations; ++k) {
        const auto start = std::chrono::steady_clock::now();
        checksum += read_frame((warmup + k) % frame_count);
        const auto stop = std::chrono::steady_clock::now();
        if (ns_out) ns_out[k] = std::chrono::duration<double, std::nano>(stop - start).count();
    }
    return checksum;
}

void dsp_parser_close(dsp_parser* p) {
    if (p == nullptr) return;
    if (p->handle) dlclose(p->handle);
    delete p;
}

}  // extern "C"

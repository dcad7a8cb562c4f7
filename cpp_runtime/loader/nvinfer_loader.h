// dsparsers nvinfer-style loader: loads a custom parser library the way Gst-nvinfer does
// (dlopen + dlsym by name) and calls it with nvinfer's C++ argument types, exposing a plain C API
// so that any language (Python through cffi) can drive it. No C++ exception crosses this API.
#ifndef DSPARSERS_NVINFER_LOADER_H
#define DSPARSERS_NVINFER_LOADER_H

#include <stddef.h>

#if defined(__GNUC__)
#define DSP_API __attribute__((visibility("default")))
#else
#define DSP_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

// The declarations between the cffi markers are read by dsparsers/harness.py as its cffi cdef:
// plain C only there (no preprocessor lines; DSP_API is stripped).
// The stack fill the loader writes right before each detector call, alternating (odd calls, even
// calls): an object field the parser left uninitialised reads as one of these bit patterns.
#define DSP_STACK_FILL_ODD 0xA5A5A5A5u
#define DSP_STACK_FILL_EVEN 0x5A5A5A5Au

// cffi-begin
// One output layer as nvinfer hands it to the parser: dims exclude the batch dimension, buffer
// points at this frame's data.
typedef struct dsp_layer {
    int data_type;          // NvDsInferDataType
    unsigned num_dims;      // copied as given (hostile values are passed through, capped at 8 entries)
    unsigned dims[8];
    const char* name;
    const void* buffer;
} dsp_layer;

// One detected object, ABI-neutral (rotation_angle is 0 for ABI 8 parsers).
typedef struct dsp_object {
    unsigned class_id;
    float left, top, width, height, confidence, rotation_angle;
} dsp_object;

// One instance-mask object (NvDsInferInstanceMaskInfo without the pointer): the mask's floats are
// copied into the handle (read them with dsp_parser_mask_data) and the parser's buffer is freed with
// delete[], as nvinfer frees it. mask_size is the byte count the parser reported.
typedef struct dsp_mask_object {
    unsigned class_id;
    float left, top, width, height, confidence;
    unsigned mask_width, mask_height, mask_size;
    int has_mask;           // the parser set a non-NULL mask pointer
} dsp_mask_object;

typedef struct dsp_parser dsp_parser;

enum dsp_status {
    DSP_PARSER_TRUE = 1,       // the parse function returned true
    DSP_PARSER_FALSE = 0,      // the parse function returned false
    DSP_PARSER_THREW = -1,     // the parse function threw a C++ exception (message in dsp_parser_error)
    DSP_PARSER_BAD_CALL = -2,  // the arguments of this call were invalid (message in dsp_parser_error)
};

// dlopen(library_path, RTLD_LAZY) and dlsym(function_name); abi is 8 (24-byte objects) or 9 (28-byte).
// Returns NULL and writes a message into error (if error_size > 0) when either step fails.
DSP_API dsp_parser* dsp_parser_open(const char* library_path, const char* function_name, int abi, char* error,
                            size_t error_size);

// Calls the parse function once, for one frame. On DSP_PARSER_TRUE or FALSE, *object_count receives
// the number of objects the parser appended (read them with dsp_parser_objects).
DSP_API int dsp_parser_parse(dsp_parser* parser, const dsp_layer* layers, unsigned layer_count, unsigned net_width,
                     unsigned net_height, unsigned net_channels, unsigned num_classes_configured,
                     const float* precluster_thresholds, size_t precluster_count,
                     const float* postcluster_thresholds, size_t postcluster_count, size_t* object_count);

// Calls an instance-mask parse function (NvDsInferInstanceMaskParseCustomFunc) once, for one frame.
// Every mask the parser allocated is copied (mask_size bytes, as nvinfer trusts it) and then freed
// with delete[] before this returns, exactly as nvinfer does once the frame's metadata is released.
DSP_API int dsp_parser_parse_masks(dsp_parser* parser, const dsp_layer* layers, unsigned layer_count,
                                   unsigned net_width, unsigned net_height, unsigned net_channels,
                                   unsigned num_classes_configured, const float* precluster_thresholds,
                                   size_t precluster_count, const float* postcluster_thresholds,
                                   size_t postcluster_count, size_t* object_count);

// Copies up to capacity mask objects of the last dsp_parser_parse_masks call; returns how many.
DSP_API size_t dsp_parser_mask_objects(const dsp_parser* parser, dsp_mask_object* out, size_t capacity);

// Copies the mask of object `index` of the last dsp_parser_parse_masks call (mask_size / 4 floats at
// most `capacity`); returns the number of floats copied.
DSP_API size_t dsp_parser_mask_data(const dsp_parser* parser, size_t index, float* out, size_t capacity);

// Copies up to capacity objects of the last call; returns how many were copied.
DSP_API size_t dsp_parser_objects(const dsp_parser* parser, dsp_object* out, size_t capacity);

// The message of the last failure of this handle ("" when none).
DSP_API const char* dsp_parser_error(const dsp_parser* parser);

// The ABI generation the handle calls with (8 or 9).
DSP_API int dsp_parser_abi(const dsp_parser* parser);

DSP_API void dsp_parser_close(dsp_parser* parser);

// Benchmark: `warmup` untimed calls, then `iterations` timed calls; call k reads frame k % frame_count
// (layers holds frame_count consecutive sets of layer_count layers: 1 frame = hot caches, many =
// cache-cold). ns_out[k] receives each timed call's duration in nanoseconds. Returns a DSP_PARSER_*
// status (the last call's) or DSP_PARSER_BAD_CALL.
DSP_API int dsp_parser_time(dsp_parser* parser, const dsp_layer* layers, unsigned layer_count, unsigned frame_count,
                            unsigned net_width, unsigned net_height, unsigned net_channels,
                            unsigned num_classes_configured, const float* precluster_thresholds,
                            size_t precluster_count, unsigned warmup, unsigned iterations, double* ns_out);

// dsp_parser_time for an instance-mask parse function: each call's masks are freed with delete[]
// inside the timed region, as nvinfer's per-frame cost includes them.
DSP_API int dsp_parser_time_masks(dsp_parser* parser, const dsp_layer* layers, unsigned layer_count,
                                  unsigned frame_count, unsigned net_width, unsigned net_height,
                                  unsigned net_channels, unsigned num_classes_configured,
                                  const float* precluster_thresholds, size_t precluster_count, unsigned warmup,
                                  unsigned iterations, double* ns_out);

// The floor a parser is compared with: one pass reading every byte of the same layers, with eight
// independent accumulators, timed like dsp_parser_time. Returns a checksum (so the reads happen).
DSP_API unsigned long long dsp_read_floor(const dsp_layer* layers, unsigned layer_count, unsigned frame_count,
                                          unsigned warmup, unsigned iterations, double* ns_out);
// cffi-end

#ifdef __cplusplus
}
#endif

#endif  // DSPARSERS_NVINFER_LOADER_H

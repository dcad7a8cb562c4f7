// dsparsers: an ABI-compatible declaration of the Gst-nvinfer custom parser interface.
//
// Written from the documented layout of DeepStream's nvdsinfer.h / nvdsinfer_custom_impl.h so that
// parsers build and are tested without DeepStream installed. A parser built against this header links
// and runs unchanged inside nvinfer, provided DSPARSERS_DS_ABI matches the DeepStream release:
//   DSPARSERS_DS_ABI 8: NvDsInferObjectDetectionInfo is 24 bytes (DeepStream <= 8.x)
//   DSPARSERS_DS_ABI 9: NvDsInferObjectDetectionInfo is 28 bytes, float rotation_angle appended (>= 9.0)
#ifndef DSPARSERS_NVDSINFER_ABI_H
#define DSPARSERS_NVDSINFER_ABI_H

#include <string>
#include <type_traits>
#include <vector>

#ifndef DSPARSERS_DS_ABI
#define DSPARSERS_DS_ABI 9
#endif

#define NVDSINFER_MAX_DIMS 8

typedef struct {
    unsigned int numDims;
    unsigned int d[NVDSINFER_MAX_DIMS];
    unsigned int numElements;
} NvDsInferDims;

typedef enum {
    FLOAT = 0,
    HALF = 1,
    INT8 = 2,
    INT32 = 3,
    INT64 = 4,
    UINT8 = 5,
} NvDsInferDataType;

typedef struct {
    NvDsInferDataType dataType;
    union {
        NvDsInferDims inferDims;
        NvDsInferDims dims;
    };
    int bindingIndex;
    const char* layerName;
    void* buffer;
    int isInput;
} NvDsInferLayerInfo;

typedef struct {
    unsigned int width;
    unsigned int height;
    unsigned int channels;
} NvDsInferNetworkInfo;

typedef struct {
    unsigned int classId;
    float left;
    float top;
    float width;
    float height;
    float detectionConfidence;
#if DSPARSERS_DS_ABI >= 9
    float rotation_angle;
#endif
} NvDsInferObjectDetectionInfo;

typedef NvDsInferObjectDetectionInfo NvDsInferParseObjectInfo;

typedef struct {
    unsigned int classId;
    float left;
    float top;
    float width;
    float height;
    float detectionConfidence;
    float* mask;  // allocated by the parser with new float[]; nvinfer frees it with delete[]
    unsigned int mask_width;
    unsigned int mask_height;
    unsigned int mask_size;  // in bytes
} NvDsInferInstanceMaskInfo;

typedef struct {
    unsigned int attributeIndex;
    unsigned int attributeValue;
    float attributeConfidence;
    char* attributeLabel;  // strdup()ed by the parser, free()d by nvinfer
} NvDsInferAttribute;

// perClassThreshold is a reference to perClassPreclusterThreshold, not a union: construct in place,
// never copy (a copy's reference still points at the source's vector).
typedef struct _NvDsInferParseDetectionParams {
    unsigned int numClassesConfigured;
    std::vector<float> perClassPreclusterThreshold;
    std::vector<float> perClassPostclusterThreshold;
    std::vector<float>& perClassThreshold = perClassPreclusterThreshold;
} NvDsInferParseDetectionParams;

typedef bool (*NvDsInferParseCustomFunc)(std::vector<NvDsInferLayerInfo> const& outputLayersInfo,
                                         NvDsInferNetworkInfo const& networkInfo,
                                         NvDsInferParseDetectionParams const& detectionParams,
                                         std::vector<NvDsInferObjectDetectionInfo>& objectList);

typedef bool (*NvDsInferInstanceMaskParseCustomFunc)(
    std::vector<NvDsInferLayerInfo> const& outputLayersInfo, NvDsInferNetworkInfo const& networkInfo,
    NvDsInferParseDetectionParams const& detectionParams,
    std::vector<NvDsInferInstanceMaskInfo>& objectList);

typedef bool (*NvDsInferClassiferParseCustomFunc)(std::vector<NvDsInferLayerInfo> const& outputLayersInfo,
                                                  NvDsInferNetworkInfo const& networkInfo,
                                                  float classifierThreshold,
                                                  std::vector<NvDsInferAttribute>& attrList,
                                                  std::string& descString);

// Compile-time checks that a parse function has exactly the signature nvinfer casts it to.
#define CHECK_CUSTOM_PARSE_FUNC_PROTOTYPE(customParseFunc)                                   \
    static_assert(std::is_same<decltype(&customParseFunc), NvDsInferParseCustomFunc>::value, \
                  #customParseFunc " does not match NvDsInferParseCustomFunc")

#define CHECK_CUSTOM_INSTANCE_MASK_PARSE_FUNC_PROTOTYPE(customParseFunc)                                 \
    static_assert(std::is_same<decltype(&customParseFunc), NvDsInferInstanceMaskParseCustomFunc>::value, \
                  #customParseFunc " does not match NvDsInferInstanceMaskParseCustomFunc")

#endif  // DSPARSERS_NVDSINFER_ABI_H

// Checks the bundled ABI header against the documented nvinfer layouts (LP64: x86-64 and aarch64).
// Built twice by the repository's meson.build, once per DSPARSERS_DS_ABI; `meson test` runs both.
#include <cstddef>
#include <cstdio>

#include "dsparsers/nvdsinfer_abi.h"

static_assert(NVDSINFER_MAX_DIMS == 8, "NVDSINFER_MAX_DIMS");
static_assert(sizeof(NvDsInferDims) == 40, "NvDsInferDims is 40 bytes");
static_assert(offsetof(NvDsInferLayerInfo, dataType) == 0, "dataType at 0");
static_assert(offsetof(NvDsInferLayerInfo, inferDims) == 4, "inferDims at 4");
static_assert(offsetof(NvDsInferLayerInfo, bindingIndex) == 44, "bindingIndex at 44");
static_assert(offsetof(NvDsInferLayerInfo, layerName) == 48, "layerName at 48");
static_assert(offsetof(NvDsInferLayerInfo, buffer) == 56, "buffer at 56");
static_assert(offsetof(NvDsInferLayerInfo, isInput) == 64, "isInput at 64");
static_assert(sizeof(NvDsInferLayerInfo) == 72, "NvDsInferLayerInfo is 72 bytes");
static_assert(sizeof(NvDsInferNetworkInfo) == 12, "NvDsInferNetworkInfo is 12 bytes");
static_assert(sizeof(NvDsInferInstanceMaskInfo) == 48, "NvDsInferInstanceMaskInfo is 48 bytes");
static_assert(offsetof(NvDsInferInstanceMaskInfo, mask) == 24, "mask pointer at 24");
static_assert(offsetof(NvDsInferInstanceMaskInfo, mask_size) == 40, "mask_size at 40");
static_assert(sizeof(NvDsInferParseDetectionParams) == 64, "NvDsInferParseDetectionParams is 64 bytes (libstdc++)");
#if DSPARSERS_DS_ABI >= 9
static_assert(sizeof(NvDsInferObjectDetectionInfo) == 28, "ABI 9 objects are 28 bytes");
static_assert(offsetof(NvDsInferObjectDetectionInfo, rotation_angle) == 24, "rotation_angle at 24");
#else
static_assert(sizeof(NvDsInferObjectDetectionInfo) == 24, "ABI 8 objects are 24 bytes");
#endif

int main() {
    // The reference member must bind to the object's own vector when built in place.
    NvDsInferParseDetectionParams params;
    params.perClassPreclusterThreshold = {0.5f};
    if (&params.perClassThreshold != &params.perClassPreclusterThreshold) {
        std::puts("perClassThreshold does not alias perClassPreclusterThreshold");
        return 1;
    }
    std::printf("ABI %d layouts OK\n", DSPARSERS_DS_ABI);
    return 0;
}

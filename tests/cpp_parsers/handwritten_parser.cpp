// Hand-written parsers of the kind users already have, for testing the harness on libraries
// dsparsers did not generate. Built by tests/test_harness.py with a plain g++ command.
#include <stdexcept>
#include <vector>

#include "dsparsers/nvdsinfer_abi.h"

// A typical copied YOLOv8 parser: right decoding, but no clipping and a strict threshold.
extern "C" bool NvDsInferParseCopiedYolo(std::vector<NvDsInferLayerInfo> const& layers, NvDsInferNetworkInfo const&,
                                         NvDsInferParseDetectionParams const& params,
                                         std::vector<NvDsInferObjectDetectionInfo>& objects) {
    if (layers.empty()) return false;
    const NvDsInferLayerInfo& layer = layers[0];
    if (layer.dataType != FLOAT || layer.inferDims.numDims != 2) return false;
    const unsigned channels = layer.inferDims.d[0], count = layer.inferDims.d[1];
    if (channels != 84) return false;
    const float* data = static_cast<const float*>(layer.buffer);
    for (unsigned i = 0; i < count; ++i) {
        float best = 0.0f;
        unsigned cls = 0;
        for (unsigned c = 0; c < 80; ++c)
            if (data[(4 + c) * count + i] > best) best = data[(4 + c) * count + i], cls = c;
        if (cls >= params.numClassesConfigured || best <= params.perClassPreclusterThreshold[cls]) continue;
        NvDsInferObjectDetectionInfo o{};
        o.classId = cls;
        o.left = data[i] - data[2 * count + i] / 2;
        o.top = data[count + i] - data[3 * count + i] / 2;
        o.width = data[2 * count + i];
        o.height = data[3 * count + i];
        o.detectionConfidence = best;
        objects.push_back(o);
    }
    return true;
}

extern "C" bool NvDsInferParseThrows(std::vector<NvDsInferLayerInfo> const&, NvDsInferNetworkInfo const&,
                                     NvDsInferParseDetectionParams const&, std::vector<NvDsInferObjectDetectionInfo>&) {
    throw std::runtime_error("tensor went missing");
}

extern "C" bool NvDsInferParseRefuses(std::vector<NvDsInferLayerInfo> const&, NvDsInferNetworkInfo const&,
                                      NvDsInferParseDetectionParams const&, std::vector<NvDsInferObjectDetectionInfo>&) {
    return false;
}

CHECK_CUSTOM_PARSE_FUNC_PROTOTYPE(NvDsInferParseCopiedYolo);
CHECK_CUSTOM_PARSE_FUNC_PROTOTYPE(NvDsInferParseThrows);
CHECK_CUSTOM_PARSE_FUNC_PROTOTYPE(NvDsInferParseRefuses);

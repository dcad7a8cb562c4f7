// dsparsers-replay: calls a parser library on one saved input, many times, through the nvinfer-style
// loader (dlopen + dlsym, masks freed with delete[] as nvinfer frees them), with no Python in the
// process. Run it under valgrind or build it with -fsanitize=address to see what the parser leaks,
// or under gdb to step through a failing case.
//
//   dsparsers-replay LIBRARY FUNCTION detector|instance-mask ABI CASE_FILE ITERATIONS
//
// CASE_FILE: see case_file.h.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "case_file.h"
#include "nvinfer_loader.h"

namespace {

using dsparsers_case::fail;
using dsparsers_case::read_case;
using dsparsers_case::SavedCase;
using dsparsers_case::SavedLayer;

}  // namespace

int main(int argc, char** argv) {
    if (argc != 7) fail("usage: dsparsers-replay LIBRARY FUNCTION detector|instance-mask ABI CASE_FILE ITERATIONS");
    const std::string kind = argv[3];
    if (kind != "detector" && kind != "instance-mask") fail("kind must be detector or instance-mask");
    const int abi = std::atoi(argv[4]);
    const long iterations = std::atol(argv[6]);
    const SavedCase saved = read_case(argv[5]);
    std::vector<dsp_layer> layers(saved.layers.size());
    for (size_t i = 0; i < layers.size(); ++i) {
        const SavedLayer& s = saved.layers[i];
        dsp_layer& l = layers[i];
        std::memset(&l, 0, sizeof(l));
        l.data_type = s.data_type;
        l.num_dims = static_cast<unsigned>(s.dims.size());
        for (size_t k = 0; k < s.dims.size() && k < 8; ++k) l.dims[k] = s.dims[k];
        l.name = s.name.c_str();
        l.buffer = s.data.empty() ? nullptr : s.data.data();
    }
    char error[1024] = {0};
    dsp_parser* parser = dsp_parser_open(argv[1], argv[2], abi, error, sizeof(error));
    if (parser == nullptr) fail(error);
    long accepted = 0;
    size_t objects = 0;
    for (long k = 0; k < iterations; ++k) {
        size_t count = 0;
        const int status =
            (kind == "instance-mask" ? dsp_parser_parse_masks : dsp_parser_parse)(
                parser, layers.data(), static_cast<unsigned>(layers.size()), saved.width, saved.height, saved.channels,
                saved.classes, saved.pre.empty() ? nullptr : saved.pre.data(), saved.pre.size(),
                saved.post.empty() ? nullptr : saved.post.data(), saved.post.size(), &count);
        if (status < 0) fail(std::string("call failed: ") + dsp_parser_error(parser));
        accepted += status == DSP_PARSER_TRUE;
        objects += count;
    }
    dsp_parser_close(parser);
    std::printf("calls %ld accepted %ld objects %zu\n", iterations, accepted, objects);
    return 0;
}

// dsparsers-replay: calls a parser library on one saved input, many times, through the nvinfer-style
// loader (dlopen + dlsym, masks freed with delete[] as nvinfer frees them), with no Python in the
// process. Run it under valgrind or build it with -fsanitize=address to see what the parser leaks,
// or under gdb to step through a failing case.
//
//   dsparsers-replay LIBRARY FUNCTION detector|instance-mask ABI CASE_FILE ITERATIONS
//
// CASE_FILE (written by dsparsers/replay.py):
//   dsparsers-case 1
//   network W H C
//   classes N
//   pre K t1 ... tK
//   post K t1 ... tK
//   layers L
//   then per layer: a line "layer DTYPE NDIMS d1 ... dNDIMS NAME_BYTES DATA_BYTES", the name's bytes,
//   a newline, and the data's bytes.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "nvinfer_loader.h"

namespace {

[[noreturn]] void fail(const std::string& message) {
    std::fprintf(stderr, "dsparsers-replay: %s\n", message.c_str());
    std::exit(2);
}

struct SavedLayer {
    int data_type = 0;
    std::vector<unsigned> dims;
    std::string name;
    std::vector<unsigned char> data;
};

struct SavedCase {
    unsigned width = 0, height = 0, channels = 0, classes = 0;
    std::vector<float> pre, post;
    std::vector<SavedLayer> layers;
};

std::vector<float> read_floats(FILE* f, const char* tag) {
    char word[16];
    unsigned count = 0;
    if (std::fscanf(f, "%15s %u", word, &count) != 2 || std::strcmp(word, tag) != 0) fail(std::string("expected ") + tag);
    std::vector<float> values(count);
    for (float& v : values)
        if (std::fscanf(f, "%a", &v) != 1) fail(std::string("bad value in ") + tag);
    return values;
}

SavedCase read_case(const char* path) {
    FILE* f = std::fopen(path, "rb");
    if (f == nullptr) fail(std::string(path) + ": cannot open");
    SavedCase c;
    unsigned version = 0, layer_count = 0;
    if (std::fscanf(f, "dsparsers-case %u network %u %u %u classes %u", &version, &c.width, &c.height, &c.channels,
                    &c.classes) != 5 || version != 1)
        fail(std::string(path) + ": not a dsparsers case file (version 1)");
    c.pre = read_floats(f, "pre");
    c.post = read_floats(f, "post");
    if (std::fscanf(f, " layers %u", &layer_count) != 1) fail("expected layers");
    for (unsigned i = 0; i < layer_count; ++i) {
        SavedLayer layer;
        unsigned ndims = 0;
        size_t name_bytes = 0, data_bytes = 0;
        if (std::fscanf(f, " layer %d %u", &layer.data_type, &ndims) != 2 || ndims > 64) fail("bad layer line");
        layer.dims.resize(ndims);
        for (unsigned& d : layer.dims)
            if (std::fscanf(f, "%u", &d) != 1) fail("bad dims");
        if (std::fscanf(f, "%zu %zu", &name_bytes, &data_bytes) != 2 || std::fgetc(f) != '\n') fail("bad layer sizes");
        layer.name.resize(name_bytes);
        layer.data.resize(data_bytes + 1);  // never empty, so the buffer pointer is valid
        if ((name_bytes && std::fread(&layer.name[0], 1, name_bytes, f) != name_bytes) || std::fgetc(f) != '\n' ||
            (data_bytes && std::fread(layer.data.data(), 1, data_bytes, f) != data_bytes))
            fail("truncated layer " + std::to_string(i));
        layer.data.resize(data_bytes);
        c.layers.push_back(std::move(layer));
    }
    std::fclose(f);
    return c;
}

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

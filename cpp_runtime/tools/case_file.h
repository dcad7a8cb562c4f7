// Reading a dsparsers case file (written by dsparsers/replay.py write_case): one parser input,
// saved so that a program without Python can call a parser on it (tools/replay.cpp) or start from it
// (fuzz/parser_fuzzer.cpp). Header-only; errors end the program with a message on stderr.
//
// Format:
//   dsparsers-case 1
//   network W H C
//   classes N
//   pre K t1 ... tK          (floats in C99 hex, %a)
//   post K t1 ... tK
//   layers L
//   then per layer: a line "layer DTYPE NDIMS d1 ... dNDIMS NAME_BYTES DATA_BYTES", the name's bytes,
//   a newline, and the data's bytes.
#ifndef DSPARSERS_CASE_FILE_H
#define DSPARSERS_CASE_FILE_H

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace dsparsers_case {

[[noreturn]] inline void fail(const std::string& message) {
    std::fprintf(stderr, "dsparsers case file: %s\n", message.c_str());
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

inline std::vector<float> read_floats(FILE* f, const char* tag) {
    char word[16];
    unsigned count = 0;
    if (std::fscanf(f, "%15s %u", word, &count) != 2 || std::strcmp(word, tag) != 0) fail(std::string("expected ") + tag);
    std::vector<float> values(count);
    for (float& v : values)
        if (std::fscanf(f, "%a", &v) != 1) fail(std::string("bad value in ") + tag);
    return values;
}

inline SavedCase read_case(const char* path) {
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

}  // namespace dsparsers_case

#endif  // DSPARSERS_CASE_FILE_H

// Checks the vector kernels of a generated parser against their scalar definitions, on random data
// with NaN, infinities, signed zeros and ties. Built by tests/test_simd_paths.py once per instruction
// set (the host's, -DDSPARSERS_SCALAR, and AArch64 NEON under qemu when a cross compiler is
// installed), with -DPARSER_SOURCE="parser.cpp" and one of
//   -DCHECK_ROWS     a compact-rows parser: score_hits8 and score_hits16
//   -DCHECK_COLUMNS  any parser: dsparsers::column_bound, column_best and span_bound
#include PARSER_SOURCE

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

namespace {

std::mt19937 generator(7);

float random_value() {
    static std::uniform_real_distribution<float> uniform(-1.0f, 2.0f);
    const unsigned pick = generator() % 64;
    if (pick == 0) return NAN;
    if (pick == 1) return INFINITY;
    if (pick == 2) return -INFINITY;
    if (pick == 3) return -0.0f;
    return uniform(generator);
}

#if defined(CHECK_ROWS)
// score_hits8 / score_hits16: bit k set when row k's score (float 6k + 4) is >= the floor.
unsigned check_score_hits() {
    unsigned differ = 0;
    std::vector<float> rows(96);
    for (int trial = 0; trial < 100000; ++trial) {
        for (float& v : rows) v = random_value();
        const float floor = trial % 13 == 0 ? -INFINITY : random_value();
        unsigned expected = 0;
        for (unsigned k = 0; k < 16; ++k) expected |= static_cast<unsigned>(rows[k * 6 + 4] >= floor) << k;
        differ += score_hits8(rows.data(), floor) != (expected & 0xffu);
        differ += score_hits16(rows.data(), floor) != expected;
    }
    return differ;
}
#endif

#if defined(CHECK_COLUMNS)
// column_bound (the largest non-NaN value of each column, -inf when none) and column_best (the first
// row holding it), over row counts around the eight-row fold.
unsigned check_columns() {
    unsigned differ = 0;
    const size_t stride = 301, n = 37;
    std::vector<float> block(stride * 21);
    std::vector<float> bound(n);
    for (int trial = 0; trial < 6000; ++trial) {
        const unsigned rows = 1 + trial % 21;
        for (float& v : block) v = generator() % 5 == 0 ? 0.5f : random_value();  // ties are common
        const float* base = block.data() + 5;
        dsparsers::column_bound<float>(bound.data(), base, stride, rows, n);
        for (size_t i = 0; i < n; ++i) {
            float best = -INFINITY;
            unsigned best_row = 0;
            for (unsigned r = 0; r < rows; ++r) {
                const float v = base[r * stride + i];
                if (v > best) {
                    best = v;
                    best_row = r;
                }
            }
            float score;
            unsigned row;
            dsparsers::column_best(base, stride, rows, i, bound[i], score, row);
            // bit for bit: the first of equal values (+0 and -0 alike) wins in both
            const bool same_bound = std::memcmp(&bound[i], &best, sizeof best) == 0;
            differ += !same_bound || std::memcmp(&score, &best, sizeof best) != 0 || row != best_row;
        }
    }
    return differ;
}

// span_bound over spans of every length up to 200 at every alignment: FLOAT, the largest non-NaN value
// (+0 and -0 compare equal); HALF, the largest raw pattern as int16.
unsigned check_spans() {
    unsigned differ = 0;
    std::vector<float> values(256);
    std::vector<uint16_t> halves(256);
    for (int trial = 0; trial < 40000; ++trial) {
        const size_t offset = trial % 5, n = trial % 201;
        for (float& v : values) v = random_value();
        for (uint16_t& h : halves) h = static_cast<uint16_t>(generator());
        float best = -INFINITY;
        int16_t best_half = INT16_MIN;
        for (size_t k = 0; k < n; ++k) {
            best = values[offset + k] > best ? values[offset + k] : best;
            const int16_t h = static_cast<int16_t>(halves[offset + k]);
            best_half = h > best_half ? h : best_half;
        }
        differ += !(dsparsers::span_bound(values.data() + offset, n) == best);
        differ += dsparsers::span_bound(halves.data() + offset, n) != best_half;
    }
    return differ;
}
#endif

}  // namespace

int main() {
#if defined(CHECK_ROWS)
    const unsigned differ = check_score_hits();
    std::printf("score_hits8 / score_hits16: %u differences\n", differ);
#elif defined(CHECK_COLUMNS)
    const unsigned differ = check_columns() + check_spans();
    std::printf("column_bound / column_best / span_bound: %u differences\n", differ);
#else
#error "define CHECK_ROWS or CHECK_COLUMNS"
#endif
    return differ == 0 ? 0 : 1;
}

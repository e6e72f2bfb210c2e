// Shared by the harnesses: invariant checks that stop the fuzzer, and how the input
// of a stream parser is cut into the reads a socket would deliver (the first byte
// chooses the cut pattern, so the fuzzer explores every split point of the same text,
// as tests/smtp/split.hpp does for the unit tests).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace tlsrelay::fuzz {

// A broken invariant is a finding: abort so libFuzzer saves the input.
inline void require(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "invariant broken: %s\n", what);
        std::abort();
    }
}

// Hands out successive pieces of data. Byte 0 of the input is the seed: 0 means
// "as large as the reader asks", otherwise piece sizes come from a small LCG in
// [1, seed]. The seed byte itself is not part of the stream.
class Chunks {
public:
    Chunks(const std::uint8_t* data, std::size_t size)
        : seed_(size ? data[0] : 0),
          rest_(reinterpret_cast<const char*>(data) + (size ? 1 : 0), size ? size - 1 : 0),
          state_(seed_) {}

    bool empty() const { return rest_.empty(); }
    std::string_view rest() const { return rest_; }

    // At most `want` bytes (want > 0).
    std::string_view next(std::size_t want) {
        std::size_t n = std::min(want, rest_.size());
        if (seed_ != 0) {
            state_ = state_ * 1103515245u + 12345u;
            n = std::min<std::size_t>(n, 1 + (state_ >> 16) % seed_);
        }
        std::string_view piece = rest_.substr(0, n);
        rest_.remove_prefix(n);
        return piece;
    }

private:
    std::uint8_t seed_;
    std::string_view rest_;
    std::uint32_t state_;
};

}  // namespace tlsrelay::fuzz

// Feeds one input to a parser whole, split in two at every byte offset, and one
// byte at a time (beast test/beast/http/basic_parser.cpp style): a parser that keeps
// state across reads must give the same result for every split.
#pragma once

#include <string_view>
#include <vector>

namespace tlsrelay::smtp::testing {

using Chunks = std::vector<std::string_view>;

template <typename Check>
void for_each_split(std::string_view input, Check check) {
    check(Chunks{input}, "whole");
    for (std::size_t at = 1; at < input.size(); ++at) {
        check(Chunks{input.substr(0, at), input.substr(at)}, "split at " + std::to_string(at));
    }
    Chunks bytes;
    for (std::size_t i = 0; i < input.size(); ++i) bytes.push_back(input.substr(i, 1));
    check(bytes, "byte by byte");
}

}  // namespace tlsrelay::smtp::testing

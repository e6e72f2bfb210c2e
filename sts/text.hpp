// Small character helpers shared by the MTA-STS parsers (RFC 5234 core rules: ALPHA,
// DIGIT, WSP). Internal to sts/.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tlsrelay::sts {

inline bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
inline bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
inline bool is_wsp(char c) {
    return c == ' ' || c == '\t';
}

std::string_view trim_wsp(std::string_view s);
std::vector<std::string_view> split_on(std::string_view s, char delimiter);
// (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / "."): extension names in both grammars.
bool extension_name(std::string_view name);
// For messages: control and non-ASCII bytes as \xNN, cut at 100 characters.
std::string printable(std::string_view s);
std::string lower(std::string_view s);

}  // namespace tlsrelay::sts

#include "sts/text.hpp"

#include <algorithm>
#include <cstdio>

namespace tlsrelay::sts {

std::string_view trim_wsp(std::string_view s) {
    while (!s.empty() && is_wsp(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_wsp(s.back())) s.remove_suffix(1);
    return s;
}

std::vector<std::string_view> split_on(std::string_view s, char delimiter) {
    std::vector<std::string_view> parts;
    for (std::size_t start = 0;;) {
        auto end = s.find(delimiter, start);
        parts.push_back(
            s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
        if (end == std::string_view::npos) return parts;
        start = end + 1;
    }
}

bool extension_name(std::string_view name) {
    if (name.empty() || name.size() > 32 || !(is_alpha(name[0]) || is_digit(name[0]))) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return is_alpha(c) || is_digit(c) || c == '_' || c == '-' || c == '.';
    });
}

std::string printable(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 100)) {
        auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f) {
            out += c;
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", u);
            out += buf;
        }
    }
    if (s.size() > 100) out += "...";
    return out;
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](char c) {
        return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    });
    return out;
}

}  // namespace tlsrelay::sts

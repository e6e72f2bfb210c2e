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

namespace {

int hex_value(char c) {
    if (is_digit(c)) return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// ext-value = 1*(%x21-3A / %x3C / %x3E-7E): no '=', ';', space or controls.
bool ext_value_char(char c) {
    return c >= 0x21 && c <= 0x7e && c != '=' && c != ';';
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size()) return std::nullopt;
        int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return out;
}

bool starts_with_version(std::string_view text, std::string_view version) {
    if (!text.starts_with(version)) return false;
    text.remove_prefix(version.size());
    text = trim_wsp(text);
    return !text.empty() && text.front() == ';';
}

bool for_each_field(std::string_view text,
                    const std::function<bool(std::string_view name, std::string_view value)>& field) {
    auto fields = split_on(text, ';');
    for (std::size_t i = 1; i < fields.size(); ++i) {
        std::string_view f = trim_wsp(fields[i]);
        if (f.empty()) {
            if (i + 1 == fields.size() && i > 1) break;  // one trailing delimiter
            return false;
        }
        auto eq = f.find('=');
        if (eq == std::string_view::npos || !field(f.substr(0, eq), f.substr(eq + 1))) return false;
    }
    return true;
}

bool extension_field(std::string_view name, std::string_view value) {
    return extension_name(name) && !value.empty() && std::all_of(value.begin(), value.end(), ext_value_char);
}

std::optional<std::string_view> single_record(const std::vector<std::string>& records,
                                              std::string_view version, std::string& problem) {
    std::vector<std::string_view> found;
    for (const auto& r : records)
        if (starts_with_version(r, version)) found.push_back(r);
    if (found.size() == 1) return found.front();
    const std::string v(version);
    if (found.empty())
        problem = records.empty() ? "" : "no TXT record starts with " + v;
    else
        problem = std::to_string(found.size()) + " " + v + " TXT records (exactly one is allowed)";
    return std::nullopt;
}

}  // namespace tlsrelay::sts

#include "tls/text.hpp"

#include <idn2.h>

#include <cstdlib>

namespace tlsrelay::tls {

namespace {
char fold(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_alnum(unsigned char c) {
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}
}  // namespace

std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = fold(c);
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (fold(a[i]) != fold(b[i])) return false;
    return true;
}

bool istarts_with(std::string_view text, std::string_view prefix) {
    return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

std::vector<std::string> split(std::string_view text, std::string_view delims) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t start = text.find_first_not_of(delims, pos);
        if (start == std::string_view::npos) break;
        size_t end = text.find_first_of(delims, start);
        if (end == std::string_view::npos) end = text.size();
        out.emplace_back(text.substr(start, end - start));
        pos = end;
    }
    return out;
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
    std::string out;
    for (const auto& item : items) {
        if (!out.empty()) out += sep;
        out += item;
    }
    return out;
}

bool valid_hostname(std::string_view name) {
    if (name.empty() || name.size() > 255) return false;
    size_t label_length = 0;
    bool non_numeric = false;
    for (size_t i = 0; i < name.size(); ++i) {
        auto c = static_cast<unsigned char>(name[i]);
        bool last = i + 1 == name.size();
        if (is_alnum(c) || c == '_') {
            if (!is_digit(c)) non_numeric = true;
            if (++label_length > 63) return false;
        } else if (c == '.') {
            if (label_length == 0 || last) return false;
            label_length = 0;
        } else if (c == '-') {
            non_numeric = true;
            if (++label_length == 1 || last || name[i + 1] == '.') return false;
        } else {
            return false;
        }
    }
    return non_numeric;
}

std::optional<std::string> to_a_label(std::string_view name) {
    bool ascii = true;
    for (unsigned char c : name) ascii = ascii && c < 0x80;
    if (ascii) return std::string(name);
    std::string input(name);  // NUL-terminated for libidn2
    char* out = nullptr;
    int rc = idn2_lookup_u8(reinterpret_cast<const uint8_t*>(input.c_str()), reinterpret_cast<uint8_t**>(&out),
                            IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    if (rc != IDN2_OK) return std::nullopt;
    std::string a_label(out);
    idn2_free(out);
    return a_label;
}

}  // namespace tlsrelay::tls

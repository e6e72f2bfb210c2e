#include "smtp/reply.hpp"

namespace tlsrelay::smtp {
namespace {

// Reply text may quote client input (an unknown parameter name, a hostname). A CR or
// LF in it would start a forged reply line, so control characters become '?'.
void append_printable(std::string& out, std::string_view text) {
    for (char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        out.push_back(byte < 0x20 || byte == 0x7f ? '?' : c);
    }
}

void append_line(std::string& out, int code, char separator, std::string_view text) {
    out += std::to_string(code);
    if (!text.empty() || separator == '-') out.push_back(separator);
    append_printable(out, text);
    out += "\r\n";
}

}  // namespace

std::string Reply::wire() const {
    std::string text_part = enhanced;
    if (!enhanced.empty() && !text.empty()) text_part.push_back(' ');
    text_part += text;
    std::string out;
    append_line(out, code, ' ', text_part);
    return out;
}

std::string multiline(int code, const std::vector<std::string>& lines) {
    std::string out;
    if (lines.empty()) {
        append_line(out, code, ' ', "");
        return out;
    }
    for (std::size_t i = 0; i < lines.size(); ++i) {
        append_line(out, code, i + 1 < lines.size() ? '-' : ' ', lines[i]);
    }
    return out;
}

}  // namespace tlsrelay::smtp

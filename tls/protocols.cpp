#include "tls/protocols.hpp"

#include <array>
#include <charconv>
#include <utility>

#include "tls/text.hpp"

namespace tlsrelay::tls {
namespace {

constexpr int ssl3 = 0x0300, tls13 = 0x0304;

constexpr std::array<std::pair<std::string_view, int>, 6> protocol_names{{
    {"SSLv2", 0x0002}, {"SSLv3", 0x0300}, {"TLSv1", 0x0301},
    {"TLSv1.1", 0x0302}, {"TLSv1.2", 0x0303}, {"TLSv1.3", 0x0304}}};

int bit(int version) {
    for (size_t i = 0; i < protocol_names.size(); ++i)
        if (protocol_names[i].second == version) return 1 << i;
    return 0;
}

std::optional<int> protocol_code(std::string_view name) {
    for (const auto& [n, v] : protocol_names)
        if (iequals(n, name)) return bit(v);
    return std::nullopt;
}

// A ">="/"<=" operand: a protocol name (not SSLv2), "None" (0) or hex.
std::optional<int> parse_version(std::string_view text) {
    if (iequals(text, "None")) return 0;
    for (const auto& [n, v] : protocol_names)
        if (v != 0x0002 && iequals(n, text)) return v;
    if (text.empty()) return 0;  // strtoul("") is 0 with nothing left over
    if (text.size() >= 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X'))
        text.remove_prefix(2);
    unsigned long value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
    if (ec != std::errc() || end != text.data() + text.size() || value > 0x7fffffff)
        return std::nullopt;
    return static_cast<int>(value);
}

// SSL_set_{min,max}_proto_version ignore values outside SSLv3..TLSv1.3.
int effective_bound(int version) { return version >= ssl3 && version <= tls13 ? version : 0; }

}  // namespace

std::string protocol_name(int version) {
    for (const auto& [n, v] : protocol_names)
        if (v == version) return std::string(n);
    char buf[8];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, version, 16);
    return "0x" + std::string(buf, end);
}

ProtocolResult parse_protocols(std::string_view list) {
    int floor = 0, ceiling = 0, include = 0, exclude = 0;
    for (const auto& tok : split(list, ", \t\r\n:")) {
        std::string_view t = tok;
        std::optional<int> code;
        if (t.starts_with(">=")) {
            if ((code = parse_version(t.substr(2)))) floor = *code;
        } else if (t.starts_with("<=")) {
            if ((code = parse_version(t.substr(2)))) ceiling = *code;
        } else if (t.starts_with("!")) {
            if ((code = protocol_code(t.substr(1)))) exclude |= *code;
        } else if ((code = protocol_code(t))) {
            include |= *code;
        }
        if (!code) return {std::nullopt, "Invalid TLS protocol list \"" + std::string(list) + "\""};
    }
    if (include) exclude |= ~include;
    floor = effective_bound(floor);
    ceiling = effective_bound(ceiling);
    // Walk down from TLSv1.3 as OpenSSL does: a disabled version after an
    // enabled run starts over, so the lowest contiguous run wins.
    ProtocolRange range{0, 0, true};
    bool hole = true;
    for (int v = tls13; v > ssl3; --v) {
        bool enabled = !(exclude & bit(v)) && (!floor || v >= floor) && (!ceiling || v <= ceiling);
        if (!enabled) {
            hole = true;
        } else if (hole) {
            range = {v, v, false};
            hole = false;
        } else {
            range.min_version = v;
        }
    }
    return {range, {}};
}

CipherResult cipher_list(std::string_view grade, std::string_view exclusions) {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 5> grades{{
        {"high", "aNULL:-aNULL:HIGH:@STRENGTH"},
        {"medium", "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH"},
        {"low", "aNULL:-aNULL:HIGH:MEDIUM:LOW:+RC4:@STRENGTH"},
        {"export", "aNULL:-aNULL:HIGH:MEDIUM:LOW:EXPORT:+RC4:@STRENGTH"},
        {"null", "eNULL:!aNULL"},
    }};
    std::string list;
    for (const auto& [name, base] : grades)
        if (iequals(name, grade)) list = base;
    if (list.empty()) return {std::nullopt, "invalid cipher grade: \"" + std::string(grade) + "\""};
    for (const auto& tok : split(exclusions, ", \t\r\n:")) {
        if (std::string_view("!+-@").find(tok[0]) != std::string_view::npos)
            return {std::nullopt, "invalid unary '!+-@' in cipher exclusion: " + tok};
        list += ":!" + tok;
    }
    return {list, {}};
}

}  // namespace tlsrelay::tls

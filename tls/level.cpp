#include "tls/level.hpp"

#include <array>
#include <utility>

namespace tlsrelay::tls {
namespace {

constexpr std::array<std::pair<Level, std::string_view>, 9> names{{
    {Level::none, "none"},
    {Level::may, "may"},
    {Level::encrypt, "encrypt"},
    {Level::fingerprint, "fingerprint"},
    {Level::halfdane, "halfdane"},
    {Level::dane, "dane"},
    {Level::dane_only, "dane-only"},
    {Level::verify, "verify"},
    {Level::secure, "secure"},
}};

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

}  // namespace

std::optional<Level> parse_level(std::string_view name) {
    for (const auto& [level, text] : names)
        if (level != Level::halfdane && iequals(name, text)) return level;
    return std::nullopt;
}

std::string_view to_string(Level level) {
    for (const auto& [l, text] : names)
        if (l == level) return text;
    return "unknown";
}

}  // namespace tlsrelay::tls

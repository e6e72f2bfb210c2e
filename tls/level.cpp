#include "tls/level.hpp"

#include <array>
#include <utility>

#include "tls/text.hpp"

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

// Postfix's TLS security levels as data: an ordered enum with the predicates
// smtp(8) derives from the order (src/tls/tls.h, src/tls/tls_level.c).
#pragma once

#include <optional>
#include <string_view>

namespace tlsrelay::tls {

enum class Level {
    none,
    may,
    encrypt,
    fingerprint,
    halfdane,  // internal: dane with usable TLSA but an insecure MX RRset; never configured
    dane,
    dane_only,
    verify,
    secure,
};

// Case-insensitive, as Postfix's name_code() without the strict-case flag.
// "halfdane" is not a configurable name and yields nullopt.
std::optional<Level> parse_level(std::string_view name);
std::string_view to_string(Level level);

inline bool tls_required(Level l) { return l > Level::may; }
inline bool match_required(Level l) { return l > Level::encrypt; }
inline bool tafile_allowed(Level l) { return l >= Level::verify; }

}  // namespace tlsrelay::tls

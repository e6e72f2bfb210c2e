// TLS protocol lists and cipher grades as Postfix 3.7 turns them into OpenSSL
// settings (src/tls/tls_misc.c tls_proto_mask_lims, tls_set_ciphers; the
// tls_*_cipherlist defaults of 3.7, where "low" and "export" still differ).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tlsrelay::tls {

// OpenSSL version numbers: 0x0300 SSLv3 ... 0x0304 TLSv1.3; 0 = no bound.
struct ProtocolRange {
    int min_version = 0;
    int max_version = 0;
    bool empty = false;  // nothing left enabled: every handshake fails
};

struct ProtocolResult {
    std::optional<ProtocolRange> range;  // nullopt: invalid list
    std::string error;                   // Invalid TLS protocol list "..."
};

// Tokens split on commas, whitespace and colons: ">=V", "<=V" (V a name, "None"
// or hex such as 0303), "!NAME" excludes, "NAME" includes (then every other
// known protocol is excluded). OpenSSL enables only the lowest contiguous run of
// versions, so an excluded middle version caps the range. SSLv2 and SSLv3 are
// not available in OpenSSL 3 builds and never appear in the range.
ProtocolResult parse_protocols(std::string_view list);

std::string protocol_name(int version);  // "TLSv1.2"; hex for unknown

struct CipherResult {
    std::optional<std::string> cipher_list;  // for SSL_set_cipher_list (TLS <= 1.2)
    std::string error;  // invalid cipher grade: "x" / invalid unary '!+-@' in cipher exclusion: x
};

// grade: high, medium, low, export or null (case-insensitive); exclusions split
// on commas, whitespace and colons, each appended as ":!T".
CipherResult cipher_list(std::string_view grade, std::string_view exclusions);

}  // namespace tlsrelay::tls

// Early warnings about the certificates of policy-table destinations (beyond Postfix,
// which only fails once a certificate no longer passes): a leaf that expires within
// [watch] expiry_warning, a public key that differs from the one last seen, and a
// fingerprint-pinned destination whose certificate matches none of its pins. What
// was last seen is kept in memory only: a restart starts afresh.
#pragma once

#include <openssl/x509.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "relay/metrics.hpp"

namespace tlsrelay::relay {

// Due when the certificate expires before now + window; never for a zero window.
bool expiry_warning_due(std::int64_t not_after, std::int64_t now, std::chrono::seconds window);
// At most one warning per destination and host a day.
bool expiry_warning_repeats(std::optional<std::int64_t> last_warned, std::int64_t now);
// "expires in 5 days", "expires in 3 hours", "expired 2 days ago".
std::string expiry_distance(std::int64_t not_after, std::int64_t now);
// As OpenSSL prints certificate dates: "Dec  1 00:00:00 2026 GMT".
std::string certificate_time(std::int64_t unix_seconds);
// The notAfter of a certificate in unix seconds; nullopt if unreadable.
std::optional<std::int64_t> not_after_of(X509* cert);

// One TLS session with a destination that has a policy-table entry.
struct CertObservation {
    std::string destination;  // the next-hop domain
    std::string host;         // the MX host name
    std::string server;       // "host[addr]:port" as the TLS lines name it
    std::int64_t not_after = 0;
    std::string key_sha256;   // public-key fingerprint, upper-case hex with colons
    // Level fingerprint only: whether a pin matched, and the policy line that would.
    bool pinned = false, pin_matched = false;
    std::string pin_line;     // "KEY fingerprint match=HEX" in the configured digest
    std::string pin_source;   // FILE:LINE of the policy entry
};

// Remembers what each destination and host showed and says what deserves a warning;
// counts every warning and the notAfter in the registry. Pure: the caller gives the
// time and logs the returned lines.
class CertWatch {
public:
    explicit CertWatch(metrics::Registry& registry);
    std::vector<std::string> observe(const CertObservation& o, std::int64_t now,
                                     std::chrono::seconds expiry_window);

private:
    struct Seen {
        std::string key_sha256;
        std::optional<std::int64_t> expiry_warned;
    };
    metrics::Registry& registry_;
    std::map<std::pair<std::string, std::string>, Seen> seen_;  // (destination, host)
};

}  // namespace tlsrelay::relay

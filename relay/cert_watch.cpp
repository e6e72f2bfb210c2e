#include "relay/cert_watch.hpp"

#include <openssl/asn1.h>

#include <ctime>

#include "support/log.hpp"

namespace tlsrelay::relay {

namespace {

constexpr std::int64_t day = 86400;

const char* const not_after_metric = "tlsrelay_tls_certificate_not_after_timestamp_seconds";
const char* const expiry_metric = "tlsrelay_tls_certificate_expiry_warnings_total";
const char* const key_change_metric = "tlsrelay_tls_public_key_changes_total";
const char* const pin_metric = "tlsrelay_tls_pin_mismatches_total";

std::string plural(std::int64_t n, const char* unit) {
    return std::to_string(n) + " " + unit + (n == 1 ? "" : "s");
}

}  // namespace

bool expiry_warning_due(std::int64_t not_after, std::int64_t now, std::chrono::seconds window) {
    return window.count() > 0 && not_after - now < window.count();
}

bool expiry_warning_repeats(std::optional<std::int64_t> last_warned, std::int64_t now) {
    return !last_warned || now - *last_warned >= day;
}

std::string expiry_distance(std::int64_t not_after, std::int64_t now) {
    std::int64_t left = not_after - now;
    if (left < 0) {
        std::int64_t ago = -left;
        return "expired " + (ago >= day ? plural(ago / day, "day") : plural(ago / 3600, "hour")) + " ago";
    }
    if (left >= day) return "expires in " + plural(left / day, "day");
    if (left >= 3600) return "expires in " + plural(left / 3600, "hour");
    return "expires in " + plural(left / 60, "minute");
}

std::string certificate_time(std::int64_t unix_seconds) {
    return support::utc_time(unix_seconds, "%b %e %H:%M:%S %Y GMT");
}

std::optional<std::int64_t> not_after_of(X509* cert) {
    const ASN1_TIME* t = cert ? X509_get0_notAfter(cert) : nullptr;
    std::tm tm{};
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return std::nullopt;
    return static_cast<std::int64_t>(timegm(&tm));
}

CertWatch::CertWatch(metrics::Registry& r) : registry_(r) {
    r.define(not_after_metric, metrics::Type::gauge,
             "notAfter (unix seconds) of the certificate last seen from each host of a policy destination.");
    r.define(expiry_metric, metrics::Type::counter,
             "Warnings that a policy destination's certificate expires within watch.expiry_warning.");
    r.define(key_change_metric, metrics::Type::counter,
             "Times a policy destination's host showed another public key than the time before.");
    r.define(pin_metric, metrics::Type::counter,
             "TLS sessions where a fingerprint-pinned destination matched none of its pins.");
}

std::vector<std::string> CertWatch::observe(const CertObservation& o, std::int64_t now,
                                            std::chrono::seconds window) {
    std::vector<std::string> warnings;
    const metrics::Labels labels{{"destination", o.destination}, {"host", o.host}};
    const std::string what = "TLS certificate of " + o.server + " for destination " + o.destination;
    registry_.set(not_after_metric, labels, static_cast<double>(o.not_after));
    Seen& seen = seen_[{o.destination, o.host}];
    if (expiry_warning_due(o.not_after, now, window) && expiry_warning_repeats(seen.expiry_warned, now)) {
        seen.expiry_warned = now;
        registry_.add(expiry_metric, labels);
        warnings.push_back(what + " " + expiry_distance(o.not_after, now) + " (" +
                           certificate_time(o.not_after) + ")");
    }
    if (!seen.key_sha256.empty() && !o.key_sha256.empty() && seen.key_sha256 != o.key_sha256) {
        registry_.add(key_change_metric, labels);
        warnings.push_back("public key of " + what + " changed: sha256 " + seen.key_sha256 + " before, " +
                           o.key_sha256 + " now");
    }
    if (!o.key_sha256.empty()) seen.key_sha256 = o.key_sha256;
    if (o.pinned && !o.pin_matched) {
        registry_.add(pin_metric, labels);
        warnings.push_back(what + " matches none of the fingerprints pinned in " + o.pin_source +
                           "; this policy line would match: " + o.pin_line);
    }
    return warnings;
}

}  // namespace tlsrelay::relay

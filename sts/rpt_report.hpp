// TLS-RPT aggregate reports (RFC 8460 section 4): the sessions of one policy domain in
// one reporting period counted per applied policy with failure details, the result
// types of section 4.3 and the one table that maps our failure texts onto them, the
// JSON report, and a line format that keeps the counts across restarts. Pure.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tlsrelay::sts {

enum class ResultType {
    starttls_not_supported,
    certificate_host_mismatch,
    certificate_expired,
    certificate_not_trusted,
    validation_failure,
    tlsa_invalid,
    dnssec_invalid,
    dane_required,
    sts_policy_fetch_error,
    sts_policy_invalid,
    sts_webpki_invalid,
};
std::string_view to_string(ResultType type);  // "starttls-not-supported", ...

// The result type of a failed session from its reason: Postfix's text with our detail
// after it (smtp/client_session, tls/decision, relay/dane, relay/mta_sts texts).
ResultType result_type_for(std::string_view reason);

// The policy applied to a session (section 4.4 "policy").
struct RptPolicy {
    std::string type;                  // "tlsa", "sts" or "no-policy-found"
    std::vector<std::string> strings;  // policy-string: TLSA records or the STS policy lines
    std::vector<std::string> mx_hosts; // mx-host: the STS policy's mx patterns
    auto operator<=>(const RptPolicy&) const = default;
};

struct RptFailure {
    std::string result_type;            // to_string(ResultType)
    std::string sending_mta_ip;         // our address on the connection; may be empty
    std::string receiving_mx_hostname;
    std::string receiving_ip;
    std::string reason_code;            // failure-reason-code: our reason text
    auto operator<=>(const RptFailure&) const = default;
};

// One session (or one MX host skipped by policy) of a delivery to policy_domain.
struct RptSession {
    std::string policy_domain;
    RptPolicy policy;
    std::optional<RptFailure> failure;  // none: successful
};

struct RptPolicyCounts {
    RptPolicy policy;
    std::uint64_t successes = 0, failures = 0;
    std::map<RptFailure, std::uint64_t> details;  // failed-session-count per failure
};

// One policy domain in one period [begin, end) in unix seconds.
struct RptPeriod {
    std::string domain;
    std::int64_t begin = 0, end = 0;
    std::vector<RptPolicyCounts> policies;
    void add(const RptSession& session);
    std::uint64_t sessions() const;
};

// The UTC day around t: [midnight, next midnight).
std::int64_t utc_day_begin(std::int64_t t);
// "2026-11-26T00:00:00Z"
std::string rfc3339(std::int64_t t);

// The durable form (one record of queue/record_store.hpp) and back; parse gives
// nullopt for anything that is not exactly what serialize writes.
std::string serialize(const RptPeriod& period);
std::optional<RptPeriod> parse_period(std::string_view text);

struct ReportMeta {
    std::string organization;  // organization-name
    std::string contact;       // contact-info
    std::string report_id;     // report-id
};
// The section 4.4 JSON report; end-datetime is the period's last second (end - 1).
std::string report_json(const RptPeriod& period, const ReportMeta& meta);

// JSON string literal with RFC 8259 escapes (quotes included).
std::string json_string(std::string_view s);

}  // namespace tlsrelay::sts

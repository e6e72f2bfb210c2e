// The TLS policy in force for one next-hop (Postfix src/smtp/smtp_tls_policy.c
// tls_policy_lookup_one, policy_create, set_cipher_grade): a table hit replaces
// the main level; a malformed entry makes the policy invalid with Postfix's
// warning (mail is then deferred with 4.7.5 "client TLS configuration problem").
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tls/dane.hpp"
#include "tls/fingerprint.hpp"
#include "tls/level.hpp"
#include "tls/policy_table.hpp"

namespace tlsrelay::tls {

inline constexpr std::string_view config_problem_dsn = "4.7.5";
inline constexpr std::string_view config_problem_reason = "client TLS configuration problem";

// The main-config TLS settings (Postfix smtp_tls_* parameters). Lists are as
// written in the config; each element may itself hold several separated items.
struct MainSettings {
    Level level = Level::may;                                    // smtp_tls_security_level
    std::vector<std::string> verify_cert_match{"hostname"};
    std::vector<std::string> secure_cert_match{"nexthop", "dot-nexthop"};
    std::vector<std::string> fingerprint_cert_match;
    std::string fingerprint_digest = "sha256";
    std::string protocols = ">=TLSv1";                           // used at may
    std::string mandatory_protocols = ">=TLSv1.2";               // used above may
    std::string ciphers = "medium";                              // used at may
    std::string mandatory_ciphers = "medium";
    std::vector<std::string> exclude_ciphers;                    // smtp_tls_exclude_ciphers
    std::vector<std::string> mandatory_exclude_ciphers;
    std::string servername;                                      // "", "hostname", "nexthop" or a name
    std::vector<std::string> tafiles;                            // smtp_tls_trust_anchor_file
    bool dnssec = false;  // DNSSEC lookups configured; without them dane -> may, dane-only invalid
};

// Which table entry produced the policy, for explanations.
struct PolicySource {
    std::string key;        // the table key
    std::string site_name;  // the name queried when it hit
    std::string value;      // the value as written
    std::string file;
    int line = 0;
};

struct Policy {
    Level level = Level::none;
    std::vector<std::string> match;          // verify/secure: strategies and names
    std::vector<Fingerprint> fingerprints;   // fingerprint: parsed values (any length)
    std::string digest = "sha256";
    std::string protocols;                   // Postfix protocol syntax; see parse_protocols
    std::string ciphers;                     // grade; see cipher_list
    std::string exclude;                     // space-separated, with automatic eNULL/aNULL
    std::string servername;                  // "", "hostname", "nexthop" or a name
    std::vector<std::string> tafiles;
    bool invalid = false;                    // defer with config_problem_dsn/reason
    std::string invalid_reason;              // set: this 4.7.5 text instead (DANE: "no TLSA records found")
    std::vector<TlsaRecord> tlsa;            // halfdane, dane, dane-only: the usable TLSA records
    std::string dane_base_domain;            // TLSA base domain: SNI and first reference name
    std::string warning;                     // the warning that made it invalid
    std::vector<std::string> warnings;       // every warning, in Postfix's order
    std::optional<PolicySource> source;      // the table entry used, if any
};

// Checks that a trust-anchor file is loadable; returns Postfix's warning if not
// (e.g. "error opening trust anchor file: F: No such file or directory").
using TafileCheck = std::function<std::optional<std::string>(const std::string& file)>;

// The policy for `nexthop` (verbatim: "example.com", "[host]:587") given the
// table lookup result. Without a TafileCheck, tafiles are taken as loadable.
// dane: for a server at level dane or dane-only (with dnssec), the outcome of
// decide_dane for it; without one such a policy keeps level dane/dane-only, which
// tells the caller that the DNS facts are needed (Postfix's dane_init needs them too).
Policy evaluate_policy(const LookupResult& hit, std::string_view nexthop,
                       const MainSettings& main, const TafileCheck& check_tafile = {},
                       const DaneDecision* dane = nullptr);

// Shorthand: lookup plus evaluate.
Policy policy_for(const PolicyTable& table, std::string_view nexthop, const MainSettings& main,
                  const TafileCheck& check_tafile = {}, const DaneDecision* dane = nullptr);

}  // namespace tlsrelay::tls

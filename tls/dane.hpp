// DANE (RFC 7672) as Postfix 3.7's smtp(8) decides it before connecting
// (src/smtp/smtp_tls_policy.c dane_init, src/tls/tls_dane.c): the MX RRset's DNSSEC
// status, the TLSA lookup outcome and which records are usable turn a configured
// "dane" or "dane-only" into the level in force for one server, or into a 4.7.5
// failure that skips the server. Values in, a decision out: the DNS lookups are the
// caller's (relay/dane.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tls/level.hpp"

namespace tlsrelay::tls {

struct TlsaRecord {
    std::uint8_t usage = 0, selector = 0, mtype = 0;
    std::vector<std::uint8_t> data;
};
std::string to_string(const TlsaRecord& r);  // "3 1 1 ABCD..." (Postfix's presentation)

// smtp_tls_dane_insecure_mx_policy: what "dane" does when the MX RRset is not signed.
enum class InsecureMxPolicy { may, encrypt, dane };
// The default of Postfix 3.7.11 (Debian 12): ${{$smtp_tls_security_level} == {dane} ?
// {dane} : {may}}, i.e. dane only when the main level is dane (3.7.13+: always dane).
InsecureMxPolicy default_insecure_mx_policy(Level main_level);

enum class TlsaStatus {
    not_looked_up,  // the host's address records were not validated: no query, "not found"
    found,          // records in a validated (AD) answer
    not_found,      // NXDOMAIN, NODATA, or an answer without AD
    error,          // SERVFAIL, timeout, ...: "TLSA lookup error"
};

struct DaneInput {
    Level level = Level::dane;  // dane or dane_only, the dnssec preconditions already met
    // The MX RRset was validated. True when no MX RRset was used (a bracketed next hop,
    // or the implicit MX of a domain without MX records), as Postfix's null iter->mx.
    bool mx_secure = true;
    InsecureMxPolicy insecure_mx_policy = InsecureMxPolicy::may;
    std::string host;             // the server's host name (TLSA base domain)
    unsigned port = 25;
    std::string mx_qname;         // the next-hop domain whose MX RRset named host ("" when none)
    bool host_secure = false;     // the host's address records were validated
    TlsaStatus tlsa = TlsaStatus::not_looked_up;
    std::vector<TlsaRecord> records;  // with tlsa == found
    std::string tlsa_base;            // where they were found when not at host (its CNAME target)
    std::string lookup_problem;       // with tlsa == error: the resolver's text
};

// Whether decide_dane needs the TLSA records: the MX checks passed and the host's
// addresses were validated (Postfix makes no TLSA query otherwise).
bool tlsa_lookup_needed(const DaneInput& in);
// "_25._tcp.host"
std::string tlsa_owner(const std::string& host, unsigned port);

struct DaneDecision {
    Level level = Level::may;   // in force: may, encrypt, halfdane, dane or dane_only
    bool invalid = false;       // skip this server: 4.7.5 with `reason`
    std::string reason;         // "no TLSA records found", "TLSA lookup error for H:P", ...
    std::string why;            // why dane became may/encrypt (Postfix logs it only verbosely)
    std::vector<TlsaRecord> usable;       // handed to OpenSSL (halfdane, dane, dane_only)
    std::string base_domain;              // TLSA base domain: the SNI and first reference name
    std::vector<std::string> match_names; // DANE-TA name checks: base domain, MX qname
    std::vector<std::string> warnings;    // records dropped, as Postfix warns about them
    bool has_tlsa() const { return !usable.empty(); }
};

DaneDecision decide_dane(const DaneInput& in);

// Why Postfix drops a record from a validated answer ("" when kept): usages other
// than DANE-TA(2) and DANE-EE(3) are "unsupported TLSA certificate usage", matching
// type 255 is "reserved private-use matching type". Other defects (selector, unknown
// matching type, digest length) are left to OpenSSL at connect time, as in Postfix.
std::string tlsa_unusable_reason(const TlsaRecord& r);

}  // namespace tlsrelay::tls

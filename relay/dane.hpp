// DANE for one server at the dane / dane-only levels (dns.dnssec = true), as Postfix
// 3.7's smtp(8): the TLSA lookup at _port._tcp.host when the host's addresses were
// validated, the decision (tls/dane.hpp), and the TLS plan that hands the usable
// records to OpenSSL's DANE verifier (SSL_dane_enable with the TLSA base domain as
// SNI and reference name, DANE-EE without name checks, DANE-TA with them).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>

#include "dns/resolver.hpp"
#include "relay/route.hpp"
#include "relay/tls_plan.hpp"
#include "tls/dane.hpp"

namespace tlsrelay::relay {

// The DNSSEC facts of target (and its TLSA records when Postfix would look them up)
// turned into the DANE decision for it. Logs Postfix's "DANE TLSA lookup problem".
boost::asio::awaitable<tls::DaneDecision> resolve_dane(dns::Resolver& resolver, const Target& target,
                                                       tls::Level level, tls::InsecureMxPolicy insecure_mx);

// The plan for a server whose policy is dane / dane-only, given its DANE decision:
// the planner's plan at the level in force, plus the DANE setup and check when
// usable TLSA records exist.
smtp::TlsPlan dane_plan(const TlsPlanner& planner, const std::string& nexthop, const smtp::ServerId& server,
                        const tls::DaneDecision& dane);

// Enables DANE on ssl with the records and returns how many OpenSSL took, logging
// each one it refused ("WHERE: unusable TLSA RR: ..."); -1 (error set) when DANE
// cannot be enabled at all.
int enable_dane(SSL* ssl, const tls::DaneDecision& dane, const std::string& where, std::string& error);

// For an explanation: whether the session matched the DANE records, and text naming
// the records tried and the peer's leaf (SPKI sha256).
struct DaneMatch {
    bool matched = false;
    std::string detail;
};
DaneMatch dane_match(SSL* ssl, const std::vector<tls::TlsaRecord>& records);

// For tlsrelay probe: which records match this session's certificates, checked by
// hand (DANE-EE against the leaf, DANE-TA against the certificates the server sent
// above it; no name or chain checks): "matches 3 1 1 ..." or "no record matches ...".
std::string describe_tlsa_match(SSL* ssl, const std::vector<tls::TlsaRecord>& records);

}  // namespace tlsrelay::relay

// What the SMTP client does after each TLS step, as Postfix 3.7 smtp(8)
// (src/smtp/smtp_proto.c smtp_helo/smtp_start_tls, smtp_trouble.c): texts, DSN
// codes, throttling, the summary-line adjective, the plaintext-retry rule at
// "may" (smtp.h PLAINTEXT_FALLBACK_OK_*), and a policy line that would work.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tls/effective_policy.hpp"

namespace tlsrelay::tls {

struct StarttlsReply {
    int code = 0;      // e.g. 454
    std::string text;  // the full reply, lines joined with spaces: "454 4.7.0 Not now"
};

// What happened on one connection, as far as it got. Later fields are read only
// when the earlier steps succeeded.
struct SessionFacts {
    std::string host, addr;                      // shown as HOST[ADDR]
    bool tls_engine_available = true;            // CA files loaded, digest known
    bool starttls_offered = false;               // in the EHLO reply
    std::optional<StarttlsReply> starttls_reply; // set once STARTTLS was sent
    bool handshake_ok = false;
    std::string handshake_error;                 // local or library reason, for the detail
    bool peer_cert_present = false;              // false: anonymous (aNULL) session
    long verify_result = 0;                      // chain check without names (X509_V_OK = 0)
    std::string verify_text;                     // X509_verify_cert_error_string()
    bool names_matched = false;                  // names_match() with the reference names
    bool fingerprint_matched = false;            // fingerprint, TLSA (dane) or tafile match
    std::vector<std::string> cert_names;         // certificate_names(), for the detail
    std::vector<std::string> reference_names;    // resolve_match_names(), for the detail
    std::string nexthop_domain;                  // for the suggestion in the detail
    bool final_server = true;                    // the last address that will be tried
    bool plaintext_retry = false;                // plaintext_retry_allowed() for this attempt
};

enum class Outcome {
    proceed_plaintext,  // deliver without TLS
    proceed_tls,        // deliver over the TLS session
    try_next_mx,        // soft failure, not the final server: log "QUEUEID: reason", go on
    defer,              // soft failure on the final server
    bounce,             // hard failure: bounce now, on any server
    retry_plaintext,    // reconnect to the same address at level none (after logging reason)
};

enum class Adjective { none, anonymous, untrusted, trusted, verified };
std::string_view to_string(Adjective a);  // "Anonymous", ... ("" for none)

struct Decision {
    Outcome outcome = Outcome::proceed_plaintext;
    std::string dsn;      // "4.7.5"; empty when proceeding
    std::string reason;   // Postfix's exact text
    std::string detail;   // our explanation for people; may be empty
    Adjective adjective = Adjective::none;  // for the TLS summary line, once a handshake happened
    bool throttle = false;   // marks the destination as failing (site failure)
    bool send_quit = true;   // false after a broken handshake
    bool tls_attempted() const { return adjective != Adjective::none; }
    bool failed() const {
        return outcome == Outcome::try_next_mx || outcome == Outcome::defer || outcome == Outcome::bounce;
    }
};

Decision decide(const Policy& policy, const SessionFacts& facts);

// Postfix's adjective: Anonymous without a certificate, Verified when a level
// that needs a match matched, Trusted when the chain verified, else Untrusted.
Adjective adjective_for(Level level, const SessionFacts& facts);
// Whether the level's certificate check passed ("secured").
bool certificate_ok(Level level, const SessionFacts& facts);

// Section 1.4: a failed handshake (or a TLS session lost with recipients still
// pending) is retried in plaintext only at "may", after the message waited at
// least minimal_backoff_time (or for a trace-only probe), and never with SASL.
enum class TlsFailure { handshake, session };
struct PlaintextRetryFacts {
    Level level = Level::may;  // the effective level
    TlsFailure failure = TlsFailure::handshake;
    std::chrono::seconds waited{0};            // queue entry time minus arrival time
    std::chrono::seconds minimal_backoff{300};
    bool trace_only = false;
    bool sasl_credentials = false;
    bool recipients_pending = true;            // session failure: some recipient not yet answered
};
bool plaintext_retry_allowed(const PlaintextRetryFacts& facts);

// Certificate facts for suggestions (tlsrelay probe and details).
struct CertificateFacts {
    std::vector<std::string> names;   // certificate_names()
    bool chain_trusted = false;       // verify_result == X509_V_OK
    std::string pubkey_fingerprint;   // hex_colons(public_key_digest()) in the configured digest
};

// A match= value that would pass for these names: ".x" for a "*.x" name, else
// the first name; empty without names.
std::string suggest_match(const std::vector<std::string>& cert_names);

// A policy-table line that would pass: "KEY secure" when the default secure
// names match, "KEY secure match=M", "KEY fingerprint match=HEX" for an
// untrusted chain, else "KEY encrypt".
std::string suggest_policy_line(std::string_view key, std::string_view nexthop_domain,
                                const CertificateFacts& cert);

}  // namespace tlsrelay::tls

#include "tls/decision.hpp"

#include "tls/names.hpp"
#include "tls/text.hpp"

namespace tlsrelay::tls {
namespace {

std::string namaddr(const SessionFacts& f) { return f.host + "[" + f.addr + "]"; }

Decision soft(const SessionFacts& f, std::string dsn, std::string reason, bool throttle) {
    Decision d;
    d.outcome = f.final_server ? Outcome::defer : Outcome::try_next_mx;
    d.dsn = std::move(dsn);
    d.reason = std::move(reason);
    d.throttle = throttle;
    return d;
}

Decision plaintext() { return Decision{}; }

// The enhanced status code of a reply if it has one of the reply's class,
// else X.0.0 from the first digit (Postfix smtp_chat_resp).
std::string reply_dsn(const StarttlsReply& r) {
    std::string cls = std::to_string(r.code / 100);
    std::string_view text = r.text;
    size_t sp = text.find_first_of(" -");
    if (sp != std::string_view::npos) {
        std::string_view rest = text.substr(sp + 1);
        std::string_view word = rest.substr(0, rest.find(' '));
        auto parts = split(word, ".");
        bool valid = parts.size() == 3 && word.find("..") == std::string_view::npos &&
                     parts[0] == cls && parts[1].size() <= 3 && parts[2].size() <= 3;
        for (const auto& p : parts)
            if (p.find_first_not_of("0123456789") != std::string::npos) valid = false;
        if (valid) return std::string(word);
    }
    return cls + ".0.0";
}

Decision refused(const Policy& p, const SessionFacts& f) {
    const StarttlsReply& r = *f.starttls_reply;
    std::string dsn = reply_dsn(r);
    Decision d = soft(f, dsn, "TLS is required, but host " + namaddr(f) +
                                  " refused to start TLS: " + r.text, true);
    if (dsn[0] == '5') d.outcome = Outcome::bounce;
    d.detail = "level " + std::string(to_string(p.level)) + " requires TLS and the server answered STARTTLS with " +
               std::to_string(r.code);
    return d;
}

Decision handshake_failed(const Policy& p, const SessionFacts& f) {
    bool may = p.level == Level::may;
    Decision d = soft(f, "4.7.5", "Cannot start TLS: handshake failure", !may);
    d.send_quit = false;
    d.detail = f.handshake_error;
    if (may && f.plaintext_retry) d.outcome = Outcome::retry_plaintext;
    return d;
}

std::string name_detail(const SessionFacts& f) {
    std::string names = f.cert_names.empty() ? "the certificate has no DNS names" :
                        "names " + join(f.cert_names, ", ");
    std::string detail = names + " do not match " + join(f.reference_names, ", ");
    if (f.cert_names.empty()) detail = names;
    if (std::string m = suggest_match(f.cert_names); !m.empty())
        detail += "; match=" + m + " would pass";
    return detail;
}

std::string verify_detail(const Policy& p, const SessionFacts& f) {
    std::vector<std::string> parts;
    if (p.level == Level::fingerprint) {
        parts.push_back("no configured " + p.digest + " fingerprint matches the certificate or its public key");
        for (const auto& fp : p.fingerprints)
            if (auto why = fingerprint_length_problem(fp, p.digest); !why.empty())
                parts.push_back(fp.text + ": " + why);
        return join(parts, "; ");
    }
    if (p.level == Level::dane || p.level == Level::dane_only || p.level == Level::halfdane)
        return "no TLSA record matches the server certificate";
    if (f.verify_result != 0)
        parts.push_back("certificate verification failed: " + f.verify_text);
    if (!f.names_matched) parts.push_back(name_detail(f));
    return join(parts, "; ");
}

}  // namespace

std::string_view to_string(Adjective a) {
    switch (a) {
        case Adjective::anonymous: return "Anonymous";
        case Adjective::untrusted: return "Untrusted";
        case Adjective::trusted: return "Trusted";
        case Adjective::verified: return "Verified";
        case Adjective::none: break;
    }
    return "";
}

bool certificate_ok(Level level, const SessionFacts& f) {
    if (!match_required(level)) return true;
    if (!f.peer_cert_present) return false;
    if (level == Level::verify || level == Level::secure) {
        // With tafiles the caller reports the anchor match as the chain result.
        return f.verify_result == 0 && f.names_matched;
    }
    return f.fingerprint_matched;  // fingerprint, dane, dane-only, halfdane
}

Adjective adjective_for(Level level, const SessionFacts& f) {
    if (!f.peer_cert_present) return Adjective::anonymous;
    if (match_required(level)) {
        if (!certificate_ok(level, f)) return Adjective::untrusted;
        return level == Level::halfdane ? Adjective::trusted : Adjective::verified;
    }
    return f.verify_result == 0 ? Adjective::trusted : Adjective::untrusted;
}

Decision decide(const Policy& p, const SessionFacts& f) {
    if (p.invalid) {
        Decision d = soft(f, std::string(config_problem_dsn),
                          p.invalid_reason.empty() ? std::string(config_problem_reason) : p.invalid_reason, false);
        d.detail = p.warning;
        return d;
    }
    if (p.level == Level::none) return plaintext();
    bool required = tls_required(p.level);
    if (!f.tls_engine_available) {
        if (!required) return plaintext();
        return soft(f, "4.7.5", "TLS is required, but our TLS engine is unavailable", true);
    }
    if (!f.starttls_offered) {
        if (!required) return plaintext();
        Decision d = soft(f, "4.7.4", "TLS is required, but was not offered by host " + namaddr(f), true);
        d.detail = "the server's EHLO reply does not list STARTTLS";
        return d;
    }
    if (f.starttls_reply && f.starttls_reply->code / 100 != 2)
        return required ? refused(p, f) : plaintext();
    if (!f.handshake_ok) return handshake_failed(p, f);
    Decision d;
    d.adjective = adjective_for(p.level, f);
    if (!certificate_ok(p.level, f)) {
        Adjective a = d.adjective;
        d = soft(f, "4.7.5", "Server certificate not verified", true);
        d.adjective = a;
        d.detail = verify_detail(p, f);
        return d;
    }
    d.outcome = Outcome::proceed_tls;
    return d;
}

bool plaintext_retry_allowed(const PlaintextRetryFacts& f) {
    if (f.level != Level::may || f.sasl_credentials) return false;
    if (f.failure == TlsFailure::session && !f.recipients_pending) return false;
    return f.trace_only || f.waited >= f.minimal_backoff;
}

std::string suggest_match(const std::vector<std::string>& cert_names) {
    for (const auto& n : cert_names)
        if (n.size() > 2 && n.starts_with("*.")) return n.substr(1);
    return cert_names.empty() ? std::string() : cert_names.front();
}

std::string suggest_policy_line(std::string_view key, std::string_view nexthop_domain,
                                const CertificateFacts& cert) {
    std::string k(key);
    if (cert.chain_trusted && !cert.names.empty()) {
        std::string dot = "." + std::string(nexthop_domain);
        for (const auto& n : cert.names)
            if (dns_name_matches(n, nexthop_domain) || dns_name_matches(n, dot)) return k + " secure";
        return k + " secure match=" + suggest_match(cert.names);
    }
    if (!cert.pubkey_fingerprint.empty()) return k + " fingerprint match=" + cert.pubkey_fingerprint;
    return k + " encrypt";
}

}  // namespace tlsrelay::tls

#include "relay/dane.hpp"

#include "relay/tls_plan.hpp"

#include <memory>

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "relay/verify_errors.hpp"
#include "support/log.hpp"
#include "tls/decision.hpp"
#include "tls/fingerprint.hpp"
#include "tls/text.hpp"

namespace tlsrelay::relay {
namespace {

tls::TlsaStatus tlsa_status(const dns::TlsaResult& r) {
    switch (r.status) {
        case dns::Status::ok:
            return r.secure && !r.records.empty() ? tls::TlsaStatus::found : tls::TlsaStatus::not_found;
        case dns::Status::nxdomain:
        case dns::Status::nodata:
            return tls::TlsaStatus::not_found;
        default:
            return tls::TlsaStatus::error;
    }
}

}  // namespace

boost::asio::awaitable<tls::DaneDecision> resolve_dane(dns::Resolver& resolver, const Target& target,
                                                       tls::Level level, tls::InsecureMxPolicy insecure_mx) {
    tls::DaneInput in;
    in.level = level;
    in.mx_secure = target.mx_secure;
    in.insecure_mx_policy = insecure_mx;
    in.host = target.hostname;
    in.port = target.port;
    in.mx_qname = target.mx_qname;
    in.host_secure = target.host_secure;
    // An alias whose target's addresses are not validated: Postfix asks for the CNAME
    // record itself and, when that one is validated, looks up TLSA at the alias only.
    bool alias_only = false;
    if (!in.host_secure && !target.canonical.empty()) {
        tls::DaneInput if_secure = in;
        if_secure.host_secure = true;
        if (tls::tlsa_lookup_needed(if_secure)) {
            const std::string& alias = target.hostname;
            dns::CnameResult c = co_await resolver.cname(alias);
            alias_only = in.host_secure = c.status == dns::Status::ok && c.secure;
        }
    }
    if (tls::tlsa_lookup_needed(in)) {
        // Postfix's tls_dane_resolve: the CNAME-expanded name first, then the MX name.
        std::string base = target.canonical.empty() || alias_only ? target.hostname : target.canonical;
        std::string owner = tls::tlsa_owner(base, target.port);
        dns::TlsaResult r = co_await resolver.tlsa(owner);
        in.tlsa = tlsa_status(r);
        if (in.tlsa == tls::TlsaStatus::not_found && base != target.hostname) {
            base = target.hostname;
            owner = tls::tlsa_owner(base, target.port);
            r = co_await resolver.tlsa(owner);
            in.tlsa = tlsa_status(r);
        }
        in.tlsa_base = base;
        if (in.tlsa == tls::TlsaStatus::error) {
            in.lookup_problem = "Host or domain name not found. Name service error for name=" + owner +
                                " type=TLSA: " + std::string(dns::postfix_text(r.status));
            support::log_warning("smtp", "DANE TLSA lookup problem: " + in.lookup_problem);
        }
        if (in.tlsa == tls::TlsaStatus::found)
            for (auto& rec : r.records)
                in.records.push_back({rec.usage, rec.selector, rec.matching_type, std::move(rec.data)});
    }
    co_return tls::decide_dane(in);
}

int enable_dane(SSL* ssl, const tls::DaneDecision& dane, const std::string& where, std::string& error) {
    if (SSL_dane_enable(ssl, dane.base_domain.c_str()) <= 0) {  // also the SNI-independent reference name
        error = "cannot enable DANE for " + dane.base_domain;
        return -1;
    }
    SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    for (std::size_t i = 1; i < dane.match_names.size(); ++i)
        if (dane.match_names[i] != dane.base_domain) SSL_add1_host(ssl, dane.match_names[i].c_str());
    int usable = 0;
    for (const auto& r : dane.usable)
        if (SSL_dane_tlsa_add(ssl, r.usage, r.selector, r.mtype, r.data.data(), r.data.size()) > 0) ++usable;
        else support::log_warning("smtp", where + ": unusable TLSA RR: " + tls::to_string(r));
    ERR_clear_error();
    return usable;
}

DaneMatch dane_match(SSL* ssl, const std::vector<tls::TlsaRecord>& records) {
    DaneMatch m;
    X509* cert = SSL_get0_peer_certificate(ssl);
    long result = SSL_get_verify_result(ssl);
    m.matched = cert && result == X509_V_OK && SSL_get0_dane_authority(ssl, nullptr, nullptr) >= 0;
    std::string tried;
    for (const auto& r : records) tried += (tried.empty() ? "" : ", ") + tls::to_string(r);
    if (!cert) {
        m.detail = "the server sent no certificate; TLSA records: " + tried;
        return m;
    }
    // The error named is the one logged (the first at the lowest depth), not OpenSSL's last.
    auto logged = logged_error(ssl);
    m.detail = logged ? std::string(X509_verify_cert_error_string(logged->code)) : std::string("no TLSA record matches");
    m.detail += "; TLSA records tried: " + tried + "; the server's public key sha256 " +
                tls::hex_colons(tls::public_key_digest(cert, "sha256"));
    return m;
}

namespace {

std::vector<std::uint8_t> der_of(X509* cert, std::uint8_t selector) {
    unsigned char* buf = nullptr;
    int n = selector == 0 ? i2d_X509(cert, &buf) : i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &buf);
    std::vector<std::uint8_t> out;
    if (n > 0) out.assign(buf, buf + n);
    OPENSSL_free(buf);
    return out;
}

bool record_matches(X509* cert, const tls::TlsaRecord& r) {
    if (r.selector > 1) return false;
    auto data = der_of(cert, r.selector);
    if (r.mtype == 0) return data == r.data;
    const EVP_MD* md = r.mtype == 1 ? EVP_sha256() : r.mtype == 2 ? EVP_sha512() : nullptr;
    if (!md) return false;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!EVP_Digest(data.data(), data.size(), digest, &len, md, nullptr)) return false;
    return r.data.size() == len && std::equal(r.data.begin(), r.data.end(), digest);
}

}  // namespace

std::string describe_tlsa_match(SSL* ssl, const std::vector<tls::TlsaRecord>& records) {
    X509* leaf = SSL_get0_peer_certificate(ssl);
    if (!leaf) return "no certificate to match";
    STACK_OF(X509)* sent = SSL_get_peer_cert_chain(ssl);
    std::vector<std::string> hits;
    for (const auto& r : records) {
        bool hit = false;
        if (r.usage == 3) hit = record_matches(leaf, r);
        for (int i = 1; r.usage == 2 && !hit && sent && i < sk_X509_num(sent); ++i)
            hit = record_matches(sk_X509_value(sent, i), r);
        if (hit) hits.push_back(tls::to_string(r) + (r.usage == 3 ? " (DANE-EE, leaf)" : " (DANE-TA, issuer sent)"));
    }
    if (hits.empty())
        return "no record matches; the leaf's public key sha256 is " +
               tls::hex_colons(tls::public_key_digest(leaf, "sha256"));
    std::string s = "matches ";
    for (std::size_t i = 0; i < hits.size(); ++i) s += (i ? ", " : "") + hits[i];
    return s;
}

namespace {

// The session after OpenSSL took none of the records: encrypt at dane (the adjective
// says whether the chain verified), a forced failure with OpenSSL's generic error at
// dane-only.
smtp::TlsVerdict unusable_records_verdict(SSL* ssl, tls::Level level, const smtp::ServerId& server) {
    smtp::TlsVerdict v;
    if (level == tls::Level::dane_only) {
        v.ok = false;
        v.detail = "all TLSA records unusable: OpenSSL accepted none of them";
        v.log_lines.push_back("server certificate verification failed for " + server.tls_name_addr_port() +
                              ": num=1:unspecified certificate verification error");
        return v;
    }
    tls::Policy p;
    p.level = tls::Level::encrypt;
    v.adjective = std::string(tls::to_string(tls::decide(p, handshake_facts(ssl, server)).adjective));
    return v;
}

}  // namespace

smtp::TlsPlan dane_plan(const TlsPlanner& planner, const std::string& nexthop, const smtp::ServerId& server,
                        const tls::DaneDecision& dane) {
    smtp::TlsPlan plan = planner.plan(nexthop, server, &dane);
    bool dane_level = plan.level == tls::Level::halfdane || plan.level == tls::Level::dane ||
                      plan.level == tls::Level::dane_only;
    if (plan.invalid || !dane.has_tlsa() || !dane_level) return plan;
    // Always, whatever smtp_tls_servername says; lower-cased as Postfix sends it (an MX
    // record's MX1.EXAMPLE.TEST is sent as mx1.example.test; relay= keeps the spelling).
    plan.sni = tls::lower(dane.base_domain);
    // OpenSSL may still refuse every record (a digest of the wrong length, a full
    // value that does not parse): Postfix then falls back to encrypt at dane and
    // forces the verification to fail at dane-only.
    auto all_unusable = std::make_shared<bool>(false);
    plan.prepare = [base = std::move(plan.prepare), dane, all_unusable, level = plan.level,
                    where = server.tls_name_addr_port()](SSL* ssl, std::string& error) {
        if (base && !base(ssl, error)) return false;  // it also watches the verification
        int usable = enable_dane(ssl, dane, where, error);
        if (usable < 0) return false;
        *all_unusable = usable == 0;
        if (*all_unusable)
            support::log_warning("smtp", where + (level == tls::Level::dane_only
                                                      ? ": all TLSA records unusable"
                                                      : ": all TLSA records unusable, fallback to unauthenticated TLS"));
        return true;
    };
    plan.verify = [level = plan.level, dane, server, all_unusable](SSL* ssl) {
        if (*all_unusable) return unusable_records_verdict(ssl, level, server);
        const std::string where = server.tls_name_addr_port();
        X509* cert = SSL_get0_peer_certificate(ssl);
        DaneMatch m = dane_match(ssl, dane.usable);
        tls::SessionFacts f = handshake_facts(ssl, server);
        f.fingerprint_matched = m.matched;
        tls::Policy p;
        p.level = level;
        tls::Decision d = tls::decide(p, f);
        smtp::TlsVerdict v;
        v.ok = !d.failed();
        v.adjective = std::string(tls::to_string(d.adjective));
        if (!v.ok) v.detail = m.detail;
        if (auto e = logged_error(ssl); cert && e) v.log_lines.push_back(verify_failure_line(*e, where));
        return v;
    };
    return plan;
}

}  // namespace tlsrelay::relay

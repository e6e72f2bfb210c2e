#include "relay/tls_plan.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstring>

#include "config/policy_file.hpp"
#include "relay/verify_errors.hpp"
#include "smtp/tls_summary.hpp"
#include "tls/decision.hpp"
#include "tls/fingerprint.hpp"
#include "tls/names.hpp"
#include "tls/protocols.hpp"
#include "tls/text.hpp"

namespace tlsrelay::relay {
namespace {

// Postfix's certificate-trouble log lines (src/tls/tls_verify.c tls_log_verify_error).
// Errors OpenSSL raises while building and checking the chain, before its name
// check (x509_vfy.c verify_chain: build_chain, check_extensions, check_auth_level,
// then check_id); validity, signature and DANE errors come after the name check.
bool error_before_name_check(long e) {
    switch (e) {
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_CERT_CHAIN_TOO_LONG:
        case X509_V_ERR_INVALID_CA:
        case X509_V_ERR_PATH_LENGTH_EXCEEDED:
        case X509_V_ERR_INVALID_PURPOSE:
        case X509_V_ERR_CERT_UNTRUSTED:
        case X509_V_ERR_CERT_REJECTED:
        case X509_V_ERR_EE_KEY_TOO_SMALL:
        case X509_V_ERR_CA_KEY_TOO_SMALL:
        case X509_V_ERR_CA_MD_TOO_WEAK:
            return true;
        default:
            return false;
    }
}

// Postfix 3.7 (src/tls/tls_dane.c tls_dane_load_trustfile, tls_client.c): at verify
// and secure, each certificate or public key in the trust-anchor files becomes a
// DANE-TA(2) and a DANE-EE(3) full-value TLSA record, and OpenSSL's DANE check then
// replaces CAfile/CApath: a chain that only reaches the CA file fails (num=65), an
// anchored leaf or key passes without chain or expiry checks. Names are still
// checked (no DANE_FLAG_NO_DANE_EE_NAMECHECKS), by names_match() after the handshake.
bool add_trust_anchors(SSL* ssl, const std::vector<std::string>& files, std::string& error) {
    if (SSL_dane_enable(ssl, nullptr) <= 0) {
        error = "cannot enable trust anchor checks";
        return false;
    }
    int usable = 0;
    for (const auto& file : files) {
        BIO* bio = BIO_new_file(file.c_str(), "r");
        if (!bio) continue;
        char *name = nullptr, *header = nullptr;
        unsigned char* data = nullptr;
        long len = 0;
        while (PEM_read_bio(bio, &name, &header, &data, &len)) {
            auto add = [&](uint8_t selector, const unsigned char* d, std::size_t n) {
                usable += SSL_dane_tlsa_add(ssl, 2, selector, 0, d, n) > 0;
                usable += SSL_dane_tlsa_add(ssl, 3, selector, 0, d, n) > 0;
            };
            if (!std::strcmp(name, PEM_STRING_X509) || !std::strcmp(name, PEM_STRING_X509_OLD)) {
                const unsigned char* p = data;
                if (X509* x = d2i_X509(nullptr, &p, len)) {
                    add(0, data, static_cast<std::size_t>(len));
                    X509_free(x);
                }
            } else if (!std::strcmp(name, PEM_STRING_PUBLIC)) {
                add(1, data, static_cast<std::size_t>(len));
            }
            OPENSSL_free(name);
            OPENSSL_free(header);
            OPENSSL_free(data);
        }
        BIO_free(bio);
    }
    ERR_clear_error();
    if (usable == 0) {
        error = "no usable trust anchors";
        return false;
    }
    return true;
}

// tls_client_start(): a non-ASCII name is sent as its A-label.
std::string sni_for(const tls::Policy& p, const std::string& nexthop_domain, const smtp::ServerId& s) {
    std::string name = p.servername == "hostname" ? s.hostname
                       : p.servername == "nexthop" ? nexthop_domain
                                                   : p.servername;
    return tls::to_a_label(name).value_or(name);
}

}  // namespace

bool load_trust_store(boost::asio::ssl::context& ctx, const config::Config& c, std::string& error) {
    boost::system::error_code ec;
    if (c.tls.ca_file.empty() && c.tls.ca_path.empty()) ctx.set_default_verify_paths(ec);
    if (!ec && !c.tls.ca_file.empty()) ctx.load_verify_file(c.tls.ca_file.string(), ec);
    if (!ec && !c.tls.ca_path.empty()) ctx.add_verify_path(c.tls.ca_path.string(), ec);
    if (ec) error = "cannot load Certification Authority data: " + ec.message();
    return !ec;
}

std::unique_ptr<boost::asio::ssl::context> make_client_tls(const config::Config& c, std::string& error) {
    auto ctx = std::make_unique<boost::asio::ssl::context>(boost::asio::ssl::context::tls_client);
    if (!load_trust_store(*ctx, c, error)) return nullptr;
    ctx->set_verify_mode(boost::asio::ssl::verify_none);  // judged per level after the handshake
    SSL_CTX_set_security_level(ctx->native_handle(), 0);  // as Postfix: the level decides
    SSL_CTX_set_verify_depth(ctx->native_handle(), 10);   // smtp_tls_scert_verifydepth 9, plus one
    SSL_CTX_dane_enable(ctx->native_handle());            // for trust-anchor files (add_trust_anchors)
    // Postfix 3.7's tls_eecdh_auto_curves: no finite-field groups, so a TLS 1.3 server
    // that only takes ffdhe2048 fails the handshake for both (3.8 added tls_ffdhe_auto_groups).
    // Each group this OpenSSL lacks (X448 under FIPS, say) is left out, as Postfix does.
    std::string groups;
    for (const char* g : {"X25519", "X448", "P-256", "P-521", "P-384"})
        if (SSL_CTX_set1_groups_list(ctx->native_handle(), g) == 1) groups += (groups.empty() ? "" : ":") + std::string(g);
    ERR_clear_error();
    if (groups.empty() || SSL_CTX_set1_groups_list(ctx->native_handle(), groups.c_str()) != 1) {
        error = "no key-exchange group of X25519 X448 P-256 P-521 P-384 is available";
        return nullptr;
    }
    // A server's renegotiation would present a certificate no policy judges.
    SSL_CTX_set_options(ctx->native_handle(), SSL_OP_NO_RENEGOTIATION);
    return ctx;
}

tls::SessionFacts handshake_facts(SSL* ssl, const smtp::ServerId& server) {
    tls::SessionFacts f;
    f.host = server.hostname;
    f.addr = server.address.to_string();
    f.starttls_offered = true;
    f.starttls_reply = tls::StarttlsReply{220, "220 Ready"};
    f.handshake_ok = true;
    f.peer_cert_present = SSL_get0_peer_certificate(ssl) != nullptr;
    // Pass or fail is OpenSSL's; the error named is the one Postfix would log
    // (verification goes on past errors, see verify_errors.hpp).
    auto logged = logged_error(ssl);
    f.verify_result = logged ? logged->code : X509_V_OK;
    f.verify_text = X509_verify_cert_error_string(f.verify_result);
    return f;
}

tls::SessionFacts session_facts(SSL* ssl, const tls::Policy& policy, const std::string& domain,
                                const smtp::ServerId& server) {
    tls::SessionFacts f = handshake_facts(ssl, server);
    X509* cert = SSL_get0_peer_certificate(ssl);
    f.reference_names = tls::resolve_match_names(policy.match, domain, server.hostname).names;
    f.nexthop_domain = domain;
    if (cert) {
        f.cert_names = tls::certificate_names(cert);
        f.names_matched = tls::names_match(cert, f.reference_names);
        f.fingerprint_matched = tls::fingerprint_matches(cert, policy.fingerprints, policy.digest);
    }
    return f;
}

TlsPlanner::TlsPlanner(const config::Config& c, boost::asio::ssl::context* ctx)
    : main_(config::main_settings(c.tls, c.dns.dnssec)), ctx_(ctx) {
    auto built = config::build_policy_table(c.tls);
    table_ = std::move(built.table);
    problems_ = std::move(built.problems);
}

smtp::TlsPlan TlsPlanner::plan(const std::string& nexthop, const smtp::ServerId& server,
                               const tls::DaneDecision* dane) const {
    tls::Policy policy = tls::policy_for(table_, nexthop, main_, config::check_trust_anchor_file, dane);
    return plan_for_policy(policy, ctx_, nexthop, server);
}

namespace {

// The line OpenSSL's name check leaves when no reference name matched: a host name
// (num=62), the IP of a bracketed next hop (num=64), or, with no name at all to check
// ("could not configure peer name checks", e.g. match=.), Postfix's forced failure.
std::string name_failure_line(X509* cert, const std::vector<std::string>& reference_names, const std::string& where) {
    std::vector<std::string> hosts;
    bool any_ip = false;
    for (const auto& n : reference_names) {
        if (n.empty()) continue;
        if (tls::is_ip_reference(n))
            any_ip = true;
        else
            hosts.push_back(n);
    }
    const char* why = hosts.empty() && !any_ip            ? ": num=1:unspecified certificate verification error"
                      : !hosts.empty() && !tls::names_match(cert, hosts) ? ": num=62:hostname mismatch"
                                                                          : ": num=64:IP address mismatch";
    return "server certificate verification failed for " + where + why;
}

}  // namespace

smtp::TlsPlan plan_for_policy(const tls::Policy& policy, boost::asio::ssl::context* ctx, const std::string& nexthop,
                              const smtp::ServerId& server) {
    smtp::TlsPlan plan;
    plan.level = policy.level;
    plan.context = ctx;
    plan.invalid = policy.invalid;
    if (policy.source) plan.source = policy.source->file + ":" + std::to_string(policy.source->line);
    plan.invalid_reason = policy.invalid_reason;
    plan.warnings = policy.warnings;
    if (policy.invalid) return plan;
    const std::string domain = tls::nexthop_domain(nexthop);
    plan.sni = sni_for(policy, domain, server);
    plan.prepare = [policy](SSL* ssl, std::string& error) {
        VerifyErrors::watch(ssl);
        auto range = tls::parse_protocols(policy.protocols);
        if (!range.range) {
            error = range.error + ": aborting TLS session";
            return false;
        }
        if (!range.range->empty) {
            SSL_set_min_proto_version(ssl, range.range->min_version);
            SSL_set_max_proto_version(ssl, range.range->max_version);
        }
        auto ciphers = tls::cipher_list(policy.ciphers, policy.exclude);
        if (!ciphers.cipher_list || !SSL_set_cipher_list(ssl, ciphers.cipher_list->c_str())) {
            error = ciphers.error.empty() ? "invalid cipher list" : ciphers.error;
            return false;
        }
        if (tls::match_required(policy.level)) SSL_set_security_level(ssl, 1);
        if (!policy.tafiles.empty() && policy.level >= tls::Level::verify &&
            !add_trust_anchors(ssl, policy.tafiles, error))
            return false;
        return true;
    };
    std::string where = server.tls_name_addr_port();
    plan.verify = [policy, domain, server, where](SSL* ssl) {
        tls::SessionFacts f = session_facts(ssl, policy, domain, server);
        X509* cert = SSL_get0_peer_certificate(ssl);
        tls::Decision d = tls::decide(policy, f);
        smtp::TlsVerdict v;
        v.ok = !d.failed();
        v.adjective = std::string(tls::to_string(d.adjective));
        v.detail = d.detail;
        bool checks = tls::match_required(policy.level);
        if (cert && checks && policy.level >= tls::Level::verify) {
            // Postfix logs the first error at the lowest depth; OpenSSL's name check (Postfix
            // hands it the names) runs at depth 0 after the chain checks and before the
            // validity and signature checks.
            auto e = logged_error(ssl);
            bool name_first = !f.names_matched && (!e || e->depth > 0 || !error_before_name_check(e->code));
            if (name_first)
                v.log_lines.push_back(name_failure_line(cert, f.reference_names, where));
            else if (e)
                v.log_lines.push_back(verify_failure_line(*e, where));
        }
        if (cert && policy.level == tls::Level::fingerprint && !f.fingerprint_matched) {
            // Postfix: when no value has the digest's length ("all fingerprints
            // unusable") verification is forced to fail with OpenSSL's generic error.
            bool usable = false;
            for (const auto& fp : policy.fingerprints)
                usable = usable || tls::fingerprint_length_problem(fp, policy.digest).empty();
            v.log_lines.push_back("server certificate verification failed for " + where +
                                  (usable ? ": num=65:no matching DANE TLSA records"
                                          : ": num=1:unspecified certificate verification error"));
        }
        return v;
    };
    return plan;
}

}  // namespace tlsrelay::relay

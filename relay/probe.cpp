// `tlsrelay probe`: what posttls-finger shows, plus the verdict of every TLS level
// for this destination and a policy-table line that would pass. `probe --policy`
// runs the same check for each entry of the configured policy table.
#include <openssl/x509.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <iostream>

#include "relay/cli.hpp"
#include "relay/dane.hpp"
#include "relay/mta_sts.hpp"
#include "relay/tls_rpt.hpp"
#include "relay/nexthop.hpp"
#include "relay/route.hpp"
#include "relay/tls_plan.hpp"
#include "smtp/tls_summary.hpp"
#include "tls/fingerprint.hpp"
#include "tls/names.hpp"

namespace tlsrelay::relay {
namespace {

namespace asio = boost::asio;

std::string asn1_time(const ASN1_TIME* t) {
    BIO* bio = BIO_new(BIO_s_mem());
    ASN1_TIME_print(bio, t);
    char buf[64] = {};
    int n = BIO_read(bio, buf, sizeof buf - 1);
    BIO_free(bio);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "?";
}

std::string name_line(X509_NAME* name) {
    char buf[512] = {};
    X509_NAME_oneline(name, buf, sizeof buf);
    return buf;
}

void print_certificates(SSL* ssl, std::ostream& out) {
    STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl);
    out << "  certificate chain:\n";
    for (int i = 0; chain && i < sk_X509_num(chain); ++i) {
        X509* c = sk_X509_value(chain, i);
        out << "    " << i << " subject " << name_line(X509_get_subject_name(c)) << "\n"
            << "      issuer  " << name_line(X509_get_issuer_name(c)) << "\n"
            << "      valid   " << asn1_time(X509_get0_notBefore(c)) << " to " << asn1_time(X509_get0_notAfter(c))
            << "\n";
    }
    X509* leaf = SSL_get0_peer_certificate(ssl);
    if (!leaf) return;
    out << "  names: ";
    auto names = tls::certificate_names(leaf);
    for (std::size_t i = 0; i < names.size(); ++i) out << (i ? ", " : "") << names[i];
    out << "\n  fingerprints (certificate, then public key):\n";
    for (const char* d : {"md5", "sha1", "sha256", "sha512"})
        out << "    " << d << " " << tls::hex_colons(tls::certificate_digest(leaf, d)) << "\n    " << d << " "
            << tls::hex_colons(tls::public_key_digest(leaf, d)) << "\n";
    long vr = SSL_get_verify_result(ssl);
    out << "  chain: " << (vr == X509_V_OK ? "trusted" : std::string("untrusted (") +
                                                            X509_verify_cert_error_string(vr) + ")") << "\n";
}

// The verdict of one level (with the main settings and --match) on this session.
std::string judge(SSL* ssl, tls::Level level, const Args& args, const TlsPlanner& planner,
                  const std::string& nexthop, const smtp::ServerId& server) {
    tls::MainSettings main = planner.main();
    main.level = level;
    if (args.match) {
        if (level == tls::Level::fingerprint) main.fingerprint_cert_match = {*args.match};
        else main.verify_cert_match = main.secure_cert_match = {*args.match};
    }
    tls::Policy policy = tls::policy_for(tls::PolicyTable{}, nexthop, main);
    if (policy.invalid) return "not usable: " + policy.warning;
    auto facts = session_facts(ssl, policy, tls::nexthop_domain(nexthop), server);
    tls::Decision d = tls::decide(policy, facts);
    if (!d.failed()) return "pass (" + std::string(tls::to_string(d.adjective)) + ")";
    return "fail: " + d.reason + (d.detail.empty() ? "" : ": " + d.detail);
}

struct ProbeResult {
    bool reached = false;
    std::string suggestion;
};

asio::awaitable<ProbeResult> probe_target(const Target& t, const NextHop& hop, const Args& args,
                                          const TlsPlanner& planner, asio::ssl::context* ctx,
                                          const config::Config& cfg, dns::Resolver& resolver, std::ostream& out) {
    ProbeResult result;
    smtp::ServerId server{t.hostname, t.address, t.port};
    auto ex = co_await asio::this_coro::executor;
    asio::ip::tcp::socket socket(ex);
    auto [ec] = co_await socket.async_connect({t.address, t.port}, asio::as_tuple(asio::use_awaitable));
    if (ec) {
        out << "connect to " << server.name_addr_port() << ": " << ec.message() << "\n";
        co_return result;
    }
    out << "connected to " << server.name_addr_port() << "\n";
    // DANE: what Postfix would decide for this server at dane and dane-only.
    std::optional<tls::DaneDecision> dane, at_dane_level, at_dane_only_level;
    if (cfg.dns.dnssec) {
        out << "  DNSSEC: MX RRset " << (t.mx_qname.empty() ? "not used (counts as secure)" : t.mx_secure ? "secure" : "insecure")
            << ", address records " << (t.host_secure ? "secure" : "insecure") << "\n";
        auto main_level = tls::parse_level(cfg.tls.security_level).value_or(tls::Level::may);
        auto policy = tls::default_insecure_mx_policy(main_level);
        tls::DaneDecision at_dane = co_await resolve_dane(resolver, t, tls::Level::dane, policy);
        tls::DaneDecision only = co_await resolve_dane(resolver, t, tls::Level::dane_only, policy);
        const std::string owner = tls::tlsa_owner(t.hostname, t.port);
        const tls::DaneDecision& shown = at_dane.has_tlsa() || !at_dane.warnings.empty() ? at_dane : only;
        if (shown.has_tlsa() || !shown.warnings.empty()) {
            out << "  TLSA " << owner << " (validated):\n";
            for (const auto& r : shown.usable) out << "    " << tls::to_string(r) << "\n";
            for (const auto& w : shown.warnings) out << "    dropped: " << w << "\n";
        } else {
            out << "  TLSA " << owner << ": " << (shown.invalid ? shown.reason : "none") << "\n";
        }
        auto show = [&](const char* name, const tls::DaneDecision& d) {
            out << "    " << name << ": "
                << (d.invalid ? "would defer: " + d.reason
                              : "level " + std::string(tls::to_string(d.level)) + (d.why.empty() ? "" : " (" + d.why + ")"))
                << "\n";
        };
        show("dane", at_dane);
        show("dane-only", only);
        if (shown.has_tlsa()) dane = shown;
        at_dane_level = at_dane;
        at_dane_only_level = only;
    } else {
        out << "  DANE: off (dns.dnssec = false)\n";
    }
    smtp::ClientOptions opts;
    opts.helo_name = cfg.delivery.helo_name.empty() ? cfg.server.hostname : cfg.delivery.helo_name;
    opts.command_timeout = std::chrono::seconds(30);
    smtp::ClientConnection conn(std::move(socket), server, opts);
    smtp::TlsPlan plan;
    plan.level = tls::Level::encrypt;
    plan.context = ctx;
    plan.verify = [&](SSL* ssl) {
        out << "  TLS: " << smtp::describe_tls_session(ssl, true) << "\n";
        print_certificates(ssl, out);
        if (dane) out << "  DANE: " << describe_tlsa_match(ssl, dane->usable) << "\n";
        out << "  levels:\n";
        for (auto level : {tls::Level::encrypt, tls::Level::fingerprint, tls::Level::verify, tls::Level::secure})
            out << "    " << tls::to_string(level) << ": " << judge(ssl, level, args, planner, hop.text, server) << "\n";
        tls::Policy configured = tls::policy_for(planner.table(), hop.text, planner.main());
        const tls::DaneDecision* decision = configured.level == tls::Level::dane && at_dane_level ? &*at_dane_level
                                            : configured.level == tls::Level::dane_only && at_dane_only_level
                                                ? &*at_dane_only_level
                                                : nullptr;
        if (decision) configured = tls::policy_for(planner.table(), hop.text, planner.main(), {}, decision);
        std::string verdict;
        if (configured.invalid) {
            verdict = configured.invalid_reason.empty()
                          ? "would defer: client TLS configuration problem (" + configured.warning + ")"
                          : "would defer: " + configured.invalid_reason;
        } else if (!configured.tlsa.empty()) {  // checked by hand: DANE-TA name checks not included
            bool hit = describe_tlsa_match(ssl, configured.tlsa).starts_with("matches");
            verdict = !hit ? "would defer: Server certificate not verified"
                           : configured.level == tls::Level::halfdane ? "would deliver (Trusted)"
                                                                      : "would deliver (Verified)";
        } else {
            tls::Decision d = tls::decide(configured, session_facts(ssl, configured, hop.domain, server));
            verdict = d.failed() ? "would defer: " + d.reason + (d.detail.empty() ? "" : ": " + d.detail)
                                 : "would deliver (" + std::string(tls::to_string(d.adjective)) + ")";
        }
        out << "  configured policy (" << tls::to_string(configured.level)
            << (configured.source ? ", from the policy table" : ", the default level") << "): " << verdict << "\n";
        if (args.level)
            if (auto l = tls::parse_level(*args.level))
                out << "    (requested " << *args.level << "): " << judge(ssl, *l, args, planner, hop.text, server) << "\n";
        X509* leaf = SSL_get0_peer_certificate(ssl);
        tls::CertificateFacts cf;
        if (leaf) {
            cf.names = tls::certificate_names(leaf);
            cf.pubkey_fingerprint = tls::hex_colons(tls::public_key_digest(leaf, planner.main().fingerprint_digest));
        }
        cf.chain_trusted = SSL_get_verify_result(ssl) == X509_V_OK;
        result.suggestion = tls::suggest_policy_line(hop.text, hop.domain, cf);
        return smtp::TlsVerdict{true, smtp::default_adjective(ssl), "", {}};
    };
    auto failure = co_await conn.open(plan);
    out << "  greeting and last EHLO reply" << (conn.tls_active() ? " (inside TLS)" : "") << ":\n";
    for (const auto& l : conn.greeting().lines) out << "    < " << conn.greeting().code << " " << l << "\n";
    for (const auto& l : conn.ehlo_reply().lines) out << "    < " << conn.ehlo_reply().code << " " << l << "\n";
    if (failure) out << "  " << failure->reason << " (" << failure->dsn << ")\n";
    result.reached = !failure;
    co_await conn.quit();
    co_return result;
}

asio::awaitable<int> probe(const std::string& destination, const Args& args, const config::Config& cfg,
                           dns::Resolver& resolver, const TlsPlanner& planner, asio::ssl::context* ctx) {
    auto hop = parse_nexthop(destination, cfg.delivery.port);
    if (!hop) {
        std::cout << "probe: bad destination \"" << destination << "\"\n";
        co_return 2;
    }
    std::cout << "destination " << hop->text << (hop->mx_lookup ? " (MX lookup)" : " (no MX lookup)") << "\n";
    Route route = co_await resolve_route(resolver, *hop, {});
    if (route.error) {
        std::cout << "  " << route.error->reason << " (" << route.error->dsn << ")\n";
        co_return 1;
    }
    for (const auto& t : route.targets)
        std::cout << "  " << t.hostname << "[" << t.address.to_string() << "]:" << t.port << " preference "
                  << t.preference << "\n";
    if (sts_applies(*hop, hop->domain)) {
        std::vector<std::string> hosts;
        for (const auto& t : route.targets)
            if (std::find(hosts.begin(), hosts.end(), t.hostname) == hosts.end()) hosts.push_back(t.hostname);
        co_await print_sts_status(resolver, cfg, hop->domain, hosts, std::cout);
        co_await print_rpt_status(resolver, cfg, hop->domain, std::cout);
    }
    std::string suggestion;
    bool any = false;
    for (const auto& t : route.targets) {
        auto r = co_await probe_target(t, *hop, args, planner, ctx, cfg, resolver, std::cout);
        any = any || r.reached;
        if (suggestion.empty()) suggestion = r.suggestion;
    }
    if (!suggestion.empty()) std::cout << "a policy-table line that would pass:\n  " << suggestion << "\n";
    co_return any ? 0 : 1;
}

}  // namespace

int run_probe(const Args& args) {
    if (args.positional.size() != (args.policy ? 1u : 2u)) {
        std::cerr << "usage: tlsrelay probe DESTINATION [--level L] [--match M] [--config FILE]\n"
                     "       tlsrelay probe --policy [--config FILE]\n";
        return 2;
    }
    auto cfg = load_config_or_report(args);
    if (!cfg) return 1;
    asio::io_context io;
    std::string error;
    dns::ResolverOptions dopt;
    dopt.servers = cfg->dns.servers;
    dopt.dnssec = cfg->dns.dnssec;
    auto resolver = dns::make_resolver(io.get_executor(), dopt, error);
    auto ctx = make_client_tls(*cfg, error);
    if (!resolver || !ctx) {
        std::cerr << "tlsrelay: probe: " << error << "\n";
        return 1;
    }
    TlsPlanner planner(*cfg, ctx.get());
    std::vector<std::string> destinations;
    if (args.policy)
        for (const auto& e : planner.table().entries()) destinations.push_back(e.key);
    else
        destinations.push_back(args.positional[1]);
    int rc = 0;
    for (const auto& d : destinations) {
        auto fut = asio::co_spawn(io, probe(d, args, *cfg, *resolver, planner, ctx.get()), asio::use_future);
        io.restart();
        io.run();
        rc = std::max(rc, fut.get());
    }
    return rc;
}

}  // namespace tlsrelay::relay

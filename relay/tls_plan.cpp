#include "relay/tls_plan.hpp"

#include <openssl/x509v3.h>

#include "relay/nexthop.hpp"
#include "smtp/tls_summary.hpp"

namespace tlsrelay::relay {

std::unique_ptr<boost::asio::ssl::context> make_client_tls(const config::Config& c, std::string& error) {
    auto ctx = std::make_unique<boost::asio::ssl::context>(boost::asio::ssl::context::tls_client);
    boost::system::error_code ec;
    if (c.tls.ca_file.empty() && c.tls.ca_path.empty()) ctx->set_default_verify_paths(ec);
    if (!ec && !c.tls.ca_file.empty()) ctx->load_verify_file(c.tls.ca_file.string(), ec);
    if (!ec && !c.tls.ca_path.empty()) ctx->add_verify_path(c.tls.ca_path.string(), ec);
    if (ec) {
        error = "cannot load Certification Authority data: " + ec.message();
        return nullptr;
    }
    ctx->set_verify_mode(boost::asio::ssl::verify_none);  // we judge the result per level
    SSL_CTX_set_security_level(ctx->native_handle(), 0);  // as Postfix: the level decides
    return ctx;
}

smtp::TlsPlan make_plan(const config::Config& c, boost::asio::ssl::context* ctx,
                        const std::string& nexthop, const smtp::ServerId& server) {
    smtp::TlsPlan plan;
    plan.level = tls::parse_level(c.tls.security_level).value_or(tls::Level::may);
    plan.context = ctx;
    if (c.tls.servername == "hostname") plan.sni = server.hostname;
    else if (c.tls.servername == "nexthop") plan.sni = nexthop;
    else plan.sni = c.tls.servername;
    tls::Level level = plan.level;
    std::string name = level == tls::Level::secure ? parse_nexthop(nexthop, 25)->domain : server.hostname;
    plan.prepare = [level, name](SSL* ssl, std::string&) {
        if (tls::tls_required(level)) SSL_set_min_proto_version(ssl, TLS1_2_VERSION);
        if (level >= tls::Level::verify) {
            SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            SSL_set1_host(ssl, name.c_str());
        }
        return true;
    };
    if (level >= tls::Level::verify)
        plan.verify = [](SSL* ssl) {
            smtp::TlsVerdict v;
            v.ok = SSL_get_verify_result(ssl) == X509_V_OK;
            v.adjective = v.ok ? "Verified" : smtp::default_adjective(ssl);
            return v;
        };
    return plan;
}

}  // namespace tlsrelay::relay

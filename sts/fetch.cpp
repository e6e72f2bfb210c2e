#include "sts/fetch.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace tlsrelay::sts {
namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using Stream = asio::ssl::stream<asio::ip::tcp::socket>;

constexpr std::size_t max_addresses = 3;

// Connects to the first address that answers before the deadline.
asio::awaitable<std::optional<asio::ip::tcp::socket>> connect_any(
    const std::vector<asio::ip::address>& addresses, unsigned short port,
    asio::steady_timer& deadline, std::string& error) {
    auto ex = co_await asio::this_coro::executor;
    auto tok = asio::as_tuple(asio::use_awaitable);
    for (std::size_t i = 0; i < addresses.size() && i < max_addresses; ++i) {
        asio::ip::tcp::socket socket(ex);
        asio::ip::tcp::endpoint ep(addresses[i], port);
        auto r = co_await (socket.async_connect(ep, tok) || deadline.async_wait(tok));
        if (r.index() == 1) {
            error = "timeout connecting to " + ep.address().to_string();
            co_return std::nullopt;
        }
        if (auto ec = std::get<0>(std::get<0>(r))) {
            error = "connect to " + ep.address().to_string() + ":" + std::to_string(port) + ": " +
                    ec.message();
            continue;
        }
        co_return std::optional<asio::ip::tcp::socket>(std::move(socket));
    }
    co_return std::nullopt;
}

// SNI, then OpenSSL's chain and host-name checks during the handshake.
bool prepare(Stream& stream, const std::string& host, std::string& error) {
    SSL* ssl = stream.native_handle();
    SSL_set_tlsext_host_name(ssl, host.c_str());
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(ssl, host.c_str()) != 1) {
        error = "cannot set the reference name " + host;
        return false;
    }
    SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
    SSL_set_min_proto_version(ssl, TLS1_2_VERSION);
    return true;
}

std::string handshake_error(Stream& stream, const boost::system::error_code& ec) {
    long result = SSL_get_verify_result(stream.native_handle());
    if (result != X509_V_OK)
        return std::string("certificate not verified: ") + X509_verify_cert_error_string(result);
    return "TLS handshake failed: " + ec.message();
}

// Reads until the parser has a verdict or the deadline passes.
asio::awaitable<HttpParse> read_response(Stream& stream, asio::steady_timer& deadline,
                                         std::size_t max_body) {
    auto tok = asio::as_tuple(asio::use_awaitable);
    std::string data;
    char buf[8192];
    for (;;) {
        auto r =
            co_await (stream.async_read_some(asio::buffer(buf), tok) || deadline.async_wait(tok));
        if (r.index() == 1)
            co_return HttpParse{ParseState::bad, {}, "timeout reading the response"};
        auto [ec, n] = std::get<0>(r);
        data.append(buf, n);
        // A close without close_notify (stream_truncated) is an end like any other: the
        // framing (Content-Length, chunked) decides whether the body is complete.
        HttpParse parsed = parse_response(data, ec.failed(), max_body);
        if (parsed.state != ParseState::need_more) co_return parsed;
    }
}

}  // namespace

std::string policy_url(const std::string& domain) {
    return "https://mta-sts." + domain + "/.well-known/mta-sts.txt";
}

asio::awaitable<FetchResult> fetch_policy_text(dns::Resolver& resolver, asio::ssl::context& ctx,
                                               std::string domain, FetchOptions options) {
    const std::string host = "mta-sts." + domain;
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer deadline(ex);
    deadline.expires_after(options.timeout);
    dns::AddressResult a = co_await resolver.addresses(host);
    if (a.status != dns::Status::ok)
        co_return FetchResult{std::nullopt, "cannot resolve " + host + ": " +
                                                std::string(dns::postfix_text(a.status))};
    std::string error;
    auto socket = co_await connect_any(a.addresses, options.port, deadline, error);
    if (!socket) co_return FetchResult{std::nullopt, error};
    Stream stream(std::move(*socket), ctx);
    if (!prepare(stream, host, error)) co_return FetchResult{std::nullopt, error};
    auto tok = asio::as_tuple(asio::use_awaitable);
    auto hs = co_await (stream.async_handshake(asio::ssl::stream_base::client, tok) ||
                        deadline.async_wait(tok));
    if (hs.index() == 1) co_return FetchResult{std::nullopt, "timeout in the TLS handshake"};
    if (auto ec = std::get<0>(std::get<0>(hs)))
        co_return FetchResult{std::nullopt, handshake_error(stream, ec)};
    const std::string request = "GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: " + host +
                                "\r\nUser-Agent: " + options.user_agent +
                                "\r\nAccept: text/plain\r\nConnection: close\r\n\r\n";
    auto w = co_await (asio::async_write(stream, asio::buffer(request), tok) ||
                       deadline.async_wait(tok));
    if (w.index() == 1 || std::get<0>(std::get<0>(w)))
        co_return FetchResult{std::nullopt, "cannot send the request"};
    HttpParse parsed = co_await read_response(stream, deadline, options.max_body);
    if (parsed.state == ParseState::bad) co_return FetchResult{std::nullopt, parsed.error};
    const HttpResponse& r = parsed.response;
    if (r.status / 100 == 3)
        co_return FetchResult{std::nullopt, "HTTP status " + std::to_string(r.status) +
                                                " (redirects are not followed)"};
    if (r.status != 200)
        co_return FetchResult{std::nullopt, "HTTP status " + std::to_string(r.status)};
    if (media_type(r.content_type) != "text/plain")
        co_return FetchResult{
            std::nullopt, "media type \"" + media_type(r.content_type) + "\" is not text/plain"};
    co_return FetchResult{r.body, ""};
}

}  // namespace tlsrelay::sts

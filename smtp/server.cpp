#include "smtp/server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <charconv>

#include "smtp/server_io.hpp"
#include "support/log.hpp"

namespace tlsrelay::smtp {

namespace asio = boost::asio;
using asio::ip::tcp;

std::optional<tcp::endpoint> parse_listen_address(std::string_view text) {
    std::string_view host, port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return std::nullopt;
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos || text.find(':') != colon) return std::nullopt;
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || p > 65535)
        return std::nullopt;
    boost::system::error_code aec;
    auto addr = asio::ip::make_address(std::string(host), aec);
    if (aec) return std::nullopt;
    return tcp::endpoint(addr, static_cast<unsigned short>(p));
}

Server::Server(asio::io_context& io, ServerOptions options, MessageSink& sink,
               std::shared_ptr<asio::ssl::context> tls)
    : io_(io), options_(std::move(options)), sink_(sink), tls_(std::move(tls)) {
    options_.tls_available = tls_ != nullptr;
}

bool Server::listen(const std::vector<std::string>& addresses, std::string& error) {
    for (const auto& text : addresses) {
        auto ep = parse_listen_address(text);
        if (!ep) {
            error = "bad listen address \"" + text + "\"";
            return false;
        }
        auto acceptor = std::make_unique<tcp::acceptor>(io_);
        boost::system::error_code ec;
        acceptor->open(ep->protocol(), ec);
        if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
        if (!ec && ep->address().is_v6()) acceptor->set_option(asio::ip::v6_only(true), ec);
        if (!ec) acceptor->bind(*ep, ec);
        if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
        if (ec) {
            error = "cannot listen on " + text + ": " + ec.message();
            return false;
        }
        acceptors_.push_back(std::move(acceptor));
    }
    return true;
}

std::vector<tcp::endpoint> Server::local_endpoints() const {
    std::vector<tcp::endpoint> out;
    for (const auto& a : acceptors_) out.push_back(a->local_endpoint());
    return out;
}

void Server::start() {
    for (auto& a : acceptors_) asio::co_spawn(io_, accept_loop(*a), asio::detached);
}

void Server::stop() {
    stopping_ = true;
    for (auto& a : acceptors_) {
        boost::system::error_code ignored;
        a->close(ignored);
    }
    for (auto* s : sockets_) {
        boost::system::error_code ignored;
        s->shutdown(tcp::socket::shutdown_both, ignored);
        s->close(ignored);
    }
}

// Out of descriptors (EMFILE, ENFILE) or kernel memory, accept fails at once for as
// long as a connection waits in the backlog: retrying at once would spin a core and
// flood the log while the sessions we have starve. So pause, 10 ms doubling to 1 s, and
// warn once per episode; the waiting clients stay in the backlog (as Go's net/http does).
asio::awaitable<void> Server::accept_loop(tcp::acceptor& acceptor) {
    asio::steady_timer pause(io_);
    std::chrono::milliseconds backoff{0};
    tcp::endpoint peer;  // from accept itself: no getpeername per connection
    while (!stopping_) {
        auto [ec, socket] = co_await acceptor.async_accept(peer, asio::as_tuple(asio::use_awaitable));
        if (ec) {
            if (stopping_ || ec == asio::error::operation_aborted) co_return;
            if (backoff.count() == 0) support::log_warning("smtpd", "accept: " + ec.message() + "; pausing accepts");
            backoff = std::clamp(backoff * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
            pause.expires_after(backoff);
            co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
            continue;  // keep serving the sessions we have
        }
        if (backoff.count() != 0) support::log_info("smtpd", "accepting again");
        backoff = std::chrono::milliseconds(0);
        std::string refusal = over_limit(peer.address());
        if (!refusal.empty()) {
            asio::co_spawn(io_, refuse(std::move(socket), std::move(refusal)), asio::detached);
        } else {
            ++per_client_[peer.address()];  // counted now: the session starts later
            asio::co_spawn(io_, run_session(std::move(socket), peer), asio::detached);
        }
    }
}

std::string Server::over_limit(const asio::ip::address& client) const {
    if (sockets_.size() >= options_.max_connections) return "Error: too many connections";
    const std::uint32_t limit = options_.max_connections_per_client;
    if (limit == 0 || support::any_contains(options_.allow_networks, client)) return "";
    auto it = per_client_.find(client);
    if (it == per_client_.end() || it->second < limit) return "";
    // Postfix smtpd.c: the warning, then 421 with the client's address
    support::log_warning("smtpd", "Connection concurrency limit exceeded: " + std::to_string(it->second + 1) +
                                      " from unknown[" + client.to_string() + "] for service smtp");
    return "Error: too many connections from " + client.to_string();
}

asio::awaitable<void> Server::refuse(tcp::socket socket, std::string text) {
    Reply r{421, "4.7.0", options_.hostname + " " + text};
    std::string wire = r.wire();
    co_await asio::async_write(socket, asio::buffer(wire), asio::as_tuple(asio::use_awaitable));
    boost::system::error_code ignored;
    socket.close(ignored);
}

asio::awaitable<void> Server::run_session(tcp::socket socket, tcp::endpoint peer) {
    boost::system::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    sockets_.insert(&socket);
    SessionCore core(options_, sink_, peer.address());
    support::log_info("smtpd", "connect from " + core.client());
    try {
        co_await serve_session(socket, core, tls_.get(), options_);
    } catch (const std::exception& e) {
        support::log_error("smtpd", "session with " + core.client() + " failed: " + e.what());
    }
    support::log_info("smtpd", "disconnect from " + core.client() + " " + core.disconnect_summary());
    sockets_.erase(&socket);
    if (--per_client_[peer.address()] == 0) per_client_.erase(peer.address());
}

}  // namespace tlsrelay::smtp

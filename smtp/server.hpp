// The SMTP listener: binds the configured addresses, enforces max_connections and the
// per-client limit (Postfix smtpd_client_connection_count_limit: 421 4.7.0 "too many
// connections from ADDR") and owns every session, so shutdown can close them all.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "smtp/server_session.hpp"

namespace tlsrelay::smtp {

// "127.0.0.1:2525", "[::1]:2525" -> endpoint; nullopt if malformed.
std::optional<boost::asio::ip::tcp::endpoint> parse_listen_address(std::string_view text);

class Server {
public:
    Server(boost::asio::io_context& io, ServerOptions options, MessageSink& sink,
           std::shared_ptr<boost::asio::ssl::context> tls);

    // Binds every address; on failure returns false and says why.
    bool listen(const std::vector<std::string>& addresses, std::string& error);
    void start();  // accept loops begin
    void stop();   // stop accepting and hang up on every session
    // A reload: new limits apply to the next command of every session.
    void set_options(ServerOptions options) {
        options.tls_available = tls_ != nullptr;
        options_ = std::move(options);
    }
    std::size_t sessions() const { return sockets_.size(); }
    std::vector<boost::asio::ip::tcp::endpoint> local_endpoints() const;

private:
    boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor);
    // peer's session was counted in per_client_ by the accept loop; it uncounts it
    boost::asio::awaitable<void> run_session(boost::asio::ip::tcp::socket socket,
                                             boost::asio::ip::tcp::endpoint peer);
    boost::asio::awaitable<void> refuse(boost::asio::ip::tcp::socket socket, std::string text);
    // the refusal text when this client may not have one more session, else ""
    std::string over_limit(const boost::asio::ip::address& client) const;

    boost::asio::io_context& io_;
    ServerOptions options_;
    MessageSink& sink_;
    std::shared_ptr<boost::asio::ssl::context> tls_;
    std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors_;
    std::set<boost::asio::ip::tcp::socket*> sockets_;
    std::map<boost::asio::ip::address, std::uint32_t> per_client_;  // sessions per client address
    bool stopping_ = false;
};

}  // namespace tlsrelay::smtp

// The metrics endpoint: a deliberately small HTTP/1.1 server (RFC 9112) for
// Prometheus scrapes. One request per connection, head at most 8 KiB, a deadline on
// the whole exchange; GET /metrics gives the text format, other paths 404, other
// methods 405, anything malformed 400. The request parser is pure.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>

namespace tlsrelay::relay {

struct RequestHead {
    enum class Status { need_more, bad, done } status = Status::need_more;
    std::string method, target;
};

inline constexpr std::size_t max_request_head = 8192;

// Reads the request line and header fields of buf, strictly: CRLF line ends, a
// token method, an origin-form target, HTTP/1.0 or HTTP/1.1, "name: value" fields
// without obsolete line folding. A head longer than max_request_head is bad.
RequestHead parse_request_head(std::string_view buf);

// The whole response (status line, fields, body) for a parsed head.
std::string metrics_response(const RequestHead& head, const std::function<std::string()>& render);

class MetricsServer {
public:
    // render is called on the io thread for every GET /metrics.
    MetricsServer(boost::asio::io_context& io, std::function<std::string()> render);
    ~MetricsServer();
    // "127.0.0.1:9325" or "[::1]:9325"; false with error set when it cannot listen.
    bool listen(const std::string& address, std::string& error);
    void start();
    void stop();  // closes the listener and every open connection

    std::chrono::milliseconds timeout = std::chrono::seconds(10);
    std::size_t max_connections = 32;

private:
    boost::asio::awaitable<void> accept_loop();
    boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);

    boost::asio::io_context& io_;
    std::function<std::string()> render_;
    std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
    std::set<boost::asio::ip::tcp::socket*> open_;
};

}  // namespace tlsrelay::relay

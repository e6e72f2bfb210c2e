#include "relay/metrics_http.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstring>

#include "smtp/server.hpp"
#include "support/log.hpp"

namespace tlsrelay::relay {

namespace asio = boost::asio;
using asio::ip::tcp;
using Status = RequestHead::Status;

namespace {

bool tchar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c));
}

bool token(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!tchar(c)) return false;
    return true;
}

bool visible(std::string_view s) {  // VCHAR and obs-text
    for (unsigned char c : s)
        if (c <= 0x20 || c == 0x7f) return false;
    return !s.empty();
}

bool field_line(std::string_view line) {
    auto colon = line.find(':');
    if (colon == std::string_view::npos || !token(line.substr(0, colon))) return false;
    for (unsigned char c : line.substr(colon + 1))
        if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
    return true;
}

bool request_line(std::string_view line, RequestHead& head) {
    auto sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) return false;
    auto sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return false;
    std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                     version = line.substr(sp2 + 1);
    if (!token(method) || !visible(target) || target.front() != '/') return false;
    if (version != "HTTP/1.1" && version != "HTTP/1.0") return false;
    head.method = method;
    head.target = target;
    return true;
}

std::string response(const char* status, const std::string& type, const std::string& body,
                     const char* extra = "") {
    return std::string("HTTP/1.1 ") + status + "\r\nContent-Type: " + type +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra +
           "Connection: close\r\n\r\n" + body;
}

}  // namespace

RequestHead parse_request_head(std::string_view buf) {
    RequestHead head;
    // Known bad before the head ends: a bare LF, a bad request line, too many bytes.
    for (std::size_t i = 0; i < buf.size() && i < max_request_head; ++i)
        if (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r')) {
            head.status = Status::bad;
            return head;
        }
    auto first_eol = buf.find("\r\n");
    if (first_eol != std::string_view::npos && !request_line(buf.substr(0, first_eol), head)) {
        head.status = Status::bad;
        return head;
    }
    auto end = buf.find("\r\n\r\n");
    if (end == std::string_view::npos) {
        head.status = buf.size() > max_request_head ? Status::bad : Status::need_more;
        return head;
    }
    if (end + 4 > max_request_head) {
        head.status = Status::bad;
        return head;
    }
    std::string_view rest = buf.substr(0, end + 2);
    bool first = true;
    while (!rest.empty()) {
        auto eol = rest.find("\r\n");
        std::string_view line = rest.substr(0, eol);
        rest.remove_prefix(eol + 2);
        bool ok = line.find('\n') == std::string_view::npos && line.find('\r') == std::string_view::npos &&
                  (first ? request_line(line, head) : field_line(line));
        if (!ok) {
            head.status = Status::bad;
            return head;
        }
        first = false;
    }
    head.status = Status::done;
    return head;
}

std::string metrics_response(const RequestHead& head, const std::function<std::string()>& render) {
    const std::string text = "text/plain; charset=utf-8";
    if (head.status != Status::done) return response("400 Bad Request", text, "bad request\n");
    std::string_view path = head.target;
    path = path.substr(0, path.find('?'));
    if (path != "/metrics") return response("404 Not Found", text, "not found; try /metrics\n");
    if (head.method != "GET") return response("405 Method Not Allowed", text, "only GET\n", "Allow: GET\r\n");
    return response("200 OK", "text/plain; version=0.0.4; charset=utf-8", render());
}

MetricsServer::MetricsServer(asio::io_context& io, std::function<std::string()> render)
    : io_(io), render_(std::move(render)) {}

MetricsServer::~MetricsServer() { stop(); }

bool MetricsServer::listen(const std::string& address, std::string& error) {
    auto ep = smtp::parse_listen_address(address);
    if (!ep) {
        error = "bad metrics.listen address \"" + address + "\"";
        return false;
    }
    acceptor_ = std::make_unique<tcp::acceptor>(io_);
    boost::system::error_code ec;
    acceptor_->open(ep->protocol(), ec);
    if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_->bind(*ep, ec);
    if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        error = "cannot listen on " + address + " for metrics: " + ec.message();
        acceptor_.reset();
        return false;
    }
    return true;
}

void MetricsServer::start() {
    if (acceptor_) asio::co_spawn(io_, accept_loop(), asio::detached);
}

void MetricsServer::stop() {
    boost::system::error_code ignored;
    if (acceptor_) acceptor_->close(ignored);
    for (tcp::socket* s : open_) s->close(ignored);
}

asio::awaitable<void> MetricsServer::accept_loop() {
    auto tok = asio::as_tuple(asio::use_awaitable);
    while (acceptor_ && acceptor_->is_open()) {
        auto [ec, socket] = co_await acceptor_->async_accept(tok);
        if (ec == asio::error::operation_aborted || !acceptor_->is_open()) break;
        if (ec) continue;
        if (open_.size() >= max_connections) continue;  // dropped: the scraper retries
        asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
    }
}

namespace {

// One read raced against the connection's deadline; 0 on timeout, error or end of file.
asio::awaitable<std::size_t> read_some(tcp::socket& socket, asio::mutable_buffer buf, asio::steady_timer& deadline) {
    using namespace asio::experimental::awaitable_operators;
    auto tok = asio::as_tuple(asio::use_awaitable);
    auto r = co_await (socket.async_read_some(buf, tok) || deadline.async_wait(tok));
    if (r.index() == 1 || std::get<0>(std::get<0>(r))) co_return 0;
    co_return std::get<1>(std::get<0>(r));
}

}  // namespace

asio::awaitable<void> MetricsServer::serve(tcp::socket socket) {
    using namespace asio::experimental::awaitable_operators;
    open_.insert(&socket);
    asio::steady_timer deadline(io_);
    deadline.expires_after(timeout);
    std::string buf;
    RequestHead head;
    char chunk[2048];
    while (head.status == Status::need_more) {
        std::size_t n = co_await read_some(socket, asio::buffer(chunk), deadline);
        if (n == 0) break;
        buf.append(chunk, n);
        head = parse_request_head(buf);
    }
    boost::system::error_code ignored;
    if (head.status != Status::need_more && socket.is_open()) {
        const std::string out = metrics_response(head, render_);
        auto tok = asio::as_tuple(asio::use_awaitable);
        auto w = co_await (asio::async_write(socket, asio::buffer(out), tok) || deadline.async_wait(tok));
        // Lingering close: reading what the client still sends (up to its end of file or
        // the deadline) keeps a reset from destroying the answer before it is read.
        socket.shutdown(tcp::socket::shutdown_send, ignored);
        std::size_t drained = 0, n = w.index() == 0 ? 1 : 0;
        while (n > 0 && drained < (1u << 16)) {
            n = co_await read_some(socket, asio::buffer(chunk), deadline);
            drained += n;
        }
    }
    socket.close(ignored);
    open_.erase(&socket);
}

}  // namespace tlsrelay::relay

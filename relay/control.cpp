#include "relay/control.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>

#include "relay/control_protocol.hpp"
#include "support/log.hpp"

namespace tlsrelay::relay {

namespace asio = boost::asio;
using asio::local::stream_protocol;

ControlServer::ControlServer(asio::io_context& io, Scheduler& scheduler)
    : io_(io), scheduler_(scheduler), acceptor_(io) {}

ControlServer::~ControlServer() {
    if (dir_fd_ >= 0) ::close(dir_fd_);
}

bool ControlServer::listen(const std::filesystem::path& spool_dir, std::string& error) {
    dir_fd_ = ::open(spool_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd_ < 0) {
        error = "cannot open " + spool_dir.string() + ": " + std::strerror(errno);
        return false;
    }
    struct stat st {};
    if (::fstatat(dir_fd_, "control", &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            error = control_socket_path(spool_dir).string() + " exists and is not a socket";
            return false;
        }
        ::unlinkat(dir_fd_, "control", 0);  // left by a daemon that did not stop cleanly
    }
    boost::system::error_code ec;
    stream_protocol::endpoint at(control_socket_address(spool_dir, dir_fd_));
    acceptor_.open(at.protocol(), ec);
    if (!ec) acceptor_.bind(at, ec);
    if (!ec && ::fchmodat(dir_fd_, "control", 0600, 0) != 0)
        ec.assign(errno, boost::system::system_category());
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        error = "control socket " + control_socket_path(spool_dir).string() + ": " + ec.message();
        acceptor_.close(ec);
        return false;
    }
    return true;
}

void ControlServer::start() {
    if (acceptor_.is_open()) asio::co_spawn(io_, accept_loop(), asio::detached);
}

void ControlServer::stop() {
    stopping_ = true;
    boost::system::error_code ignored;
    if (acceptor_.is_open()) {
        acceptor_.close(ignored);
        ::unlinkat(dir_fd_, "control", 0);  // the queue commands fall back at once
    }
    for (Socket* s : sessions_) s->close(ignored);
}

asio::awaitable<void> ControlServer::accept_loop() {
    asio::steady_timer pause(io_);
    while (!stopping_) {
        auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
        if (stopping_) co_return;
        if (ec) {  // e.g. out of descriptors: try again a little later, not in a tight loop
            pause.expires_after(std::chrono::milliseconds(100));
            co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
            continue;
        }
        if (sessions_.size() >= max_sessions) continue;  // hung up on: too many at once
        asio::co_spawn(io_, session(std::move(socket)), asio::detached);
    }
}

bool ControlServer::peer_allowed(Socket& socket) const {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
    if (cred.uid == 0 || cred.uid == ::geteuid()) return true;
    support::log_warning("queue", "control: refused a client running as uid " + std::to_string(cred.uid));
    return false;
}

// One request, one reply, then the connection ends.
asio::awaitable<void> ControlServer::session(Socket socket) {
    using namespace asio::experimental::awaitable_operators;
    sessions_.insert(&socket);
    struct Leave {
        std::set<Socket*>& sessions;
        Socket* socket;
        ~Leave() { sessions.erase(socket); }
    } leave{sessions_, &socket};
    asio::steady_timer timer(io_);
    auto tok = asio::as_tuple(asio::use_awaitable);
    std::string reply = "error: permission denied\n";
    if (peer_allowed(socket)) {
        std::string line;
        timer.expires_after(io_timeout);
        auto got = co_await (asio::async_read_until(socket, asio::dynamic_buffer(line, max_control_line),
                                                    '\n', tok) ||
                             timer.async_wait(tok));
        if (got.index() == 1) co_return;  // too slow: hung up on
        auto [ec, n] = std::get<0>(got);
        if (ec && ec != asio::error::not_found) co_return;
        if (ec) {
            reply = "error: request too long\n";
        } else {
            line.resize(n - 1);
            reply = co_await perform(line);
        }
    }
    timer.expires_after(io_timeout);
    co_await (asio::async_write(socket, asio::buffer(reply), tok) || timer.async_wait(tok));
}

namespace {

struct Action {
    ControlVerb verb;
    asio::awaitable<std::error_code> (Scheduler::*run)(std::string id);
    const char* done;  // logged as postsuper(1) logs it
};

constexpr Action actions[] = {
    {ControlVerb::flush, &Scheduler::flush, "flush requested"},
    {ControlVerb::hold, &Scheduler::hold, "placed on hold"},
    {ControlVerb::release, &Scheduler::release, "released from hold"},
    {ControlVerb::remove, &Scheduler::remove, "removed"},
};

}  // namespace

asio::awaitable<std::string> ControlServer::perform(const std::string& line) {
    auto parsed = parse_control_request(line);
    if (const auto* why = std::get_if<std::string>(&parsed)) co_return "error: " + *why + "\n";
    const ControlRequest request = std::get<ControlRequest>(parsed);
    const std::string& id = request.id;
    if (request.verb == ControlVerb::list) {
        std::string out;
        for (const auto& w : scheduler_.waiting()) out += format_waiting(w);
        co_return out + "ok\n";
    }
    if (request.verb == ControlVerb::tls_rpt_send) {
        if (!tls_rpt_send_) co_return "error: TLS-RPT is not running\n";
        co_return co_await tls_rpt_send_();
    }
    for (const auto& action : actions) {
        if (action.verb != request.verb) continue;
        std::error_code ec = co_await (scheduler_.*action.run)(id);
        if (ec == std::errc::no_such_file_or_directory) co_return "error: no message " + id + "\n";
        if (ec) co_return "error: " + id + ": " + ec.message() + "\n";
        support::log_info("queue", (id.empty() ? "" : id + ": ") + action.done);
        co_return "ok\n";
    }
    co_return "error: unknown request\n";
}

}  // namespace tlsrelay::relay

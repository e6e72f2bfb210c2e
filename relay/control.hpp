// The daemon's end of the queue control socket <queue.dir>/control (protocol in
// control_protocol.hpp): one coroutine per client with a deadline on every read and
// write, only root and the daemon's own user served (SO_PEERCRED), actions done by
// the Scheduler at once, as Postfix's postqueue/postsuper reach the running qmgr.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <set>
#include <string>

#include "relay/scheduler.hpp"

namespace tlsrelay::relay {

class ControlServer {
public:
    ControlServer(boost::asio::io_context& io, Scheduler& scheduler);
    ~ControlServer();

    // Binds <spool_dir>/control with mode 0600, replacing a stale socket left by a
    // crash. Call it before the privilege drop hands the spool (socket included) to
    // server.user. On false (error says why) the daemon runs on without it and the
    // queue commands act on the spool files.
    bool listen(const std::filesystem::path& spool_dir, std::string& error);
    void start();
    void stop();  // closes the socket, removes its file, ends every session
    // `tls-rpt-send` (relay/tls_rpt.hpp); without one the request is refused.
    void on_tls_rpt_send(std::function<boost::asio::awaitable<std::string>()> send) { tls_rpt_send_ = std::move(send); }

private:
    using Socket = boost::asio::local::stream_protocol::socket;
    boost::asio::awaitable<void> accept_loop();
    boost::asio::awaitable<void> session(Socket socket);
    boost::asio::awaitable<std::string> perform(const std::string& line);
    bool peer_allowed(Socket& socket) const;

    boost::asio::io_context& io_;
    Scheduler& scheduler_;
    boost::asio::local::stream_protocol::acceptor acceptor_;
    int dir_fd_ = -1;                  // the spool folder, to remove the socket by name
    std::function<boost::asio::awaitable<std::string>()> tls_rpt_send_;
    std::set<Socket*> sessions_;       // owned by their coroutines; closed by stop()
    bool stopping_ = false;
    static constexpr std::size_t max_sessions = 16;
    static constexpr std::chrono::seconds io_timeout{10};
};

}  // namespace tlsrelay::relay

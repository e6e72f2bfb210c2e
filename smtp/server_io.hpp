// Drives a SessionCore over a stream: a straight-line coroutine per connection with a
// deadline on every wait. Replies to pipelined commands are flushed when the input
// runs dry (RFC 2920). After STARTTLS the plaintext buffer is dropped before the
// handshake (CVE-2011-0411) and the same loop runs again over the TLS stream.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <string>

#include "smtp/data_reader.hpp"
#include "smtp/line_reader.hpp"
#include "smtp/server_session.hpp"
#include "support/deadline.hpp"
#include "support/log.hpp"

namespace tlsrelay::smtp {

namespace detail {

using boost::asio::awaitable;
using Clock = std::chrono::steady_clock;

// Input and output buffers plus the deadline shared by every wait of one connection.
struct Io {
    explicit Io(const boost::asio::any_io_executor& ex) : deadline(ex) {}
    support::Deadline deadline;
    std::string in;
    std::size_t pos = 0;  // consumed prefix of in
    std::string out;      // replies not yet written

    std::string_view pending() const { return std::string_view(in).substr(pos); }
    void discard_input() {
        in.clear();
        pos = 0;
    }
};

enum class Wait { ok, timeout, failed };

// What an operation bound to io.deadline ended with.
inline Wait outcome(const Io& io, const boost::system::error_code& ec) {
    if (!ec) return Wait::ok;
    return io.deadline.timed_out(ec) ? Wait::timeout : Wait::failed;
}

template <class Stream>
awaitable<Wait> flush(Stream& stream, Io& io, Clock::time_point deadline) {
    if (io.out.empty()) co_return Wait::ok;
    io.deadline.expires_at(deadline);
    if (io.deadline.passed()) co_return Wait::timeout;
    boost::asio::cancellation_state state = co_await boost::asio::this_coro::cancellation_state;
    auto cancel = io.deadline.forward(state.slot());
    auto tok = io.deadline.bind(boost::asio::as_tuple(boost::asio::use_awaitable));
    auto [ec, n] = co_await boost::asio::async_write(stream, boost::asio::buffer(io.out), tok);
    Wait w = outcome(io, ec);
    if (w == Wait::ok) io.out.clear();
    co_return w;
}

// Commands are read 4 KiB at a time, so an idle connection holds little; message text
// 16 KiB at a time, so a typical message arrives in one or two reads.
inline constexpr std::size_t command_chunk = 4096;
inline constexpr std::size_t data_chunk = 16384;

template <class Stream>
awaitable<Wait> read_more(Stream& stream, Io& io, Clock::time_point deadline,
                          std::size_t chunk = command_chunk) {
    if (auto w = co_await flush(stream, io, deadline); w != Wait::ok) co_return w;
    if (io.pos == io.in.size()) io.discard_input();
    io.deadline.expires_at(deadline);
    if (io.deadline.passed()) co_return Wait::timeout;
    std::size_t old = io.in.size();
    io.in.resize(old + chunk);
    boost::asio::cancellation_state state = co_await boost::asio::this_coro::cancellation_state;
    auto cancel = io.deadline.forward(state.slot());
    auto tok = io.deadline.bind(boost::asio::as_tuple(boost::asio::use_awaitable));
    auto [ec, n] = co_await stream.async_read_some(boost::asio::buffer(io.in.data() + old, chunk), tok);
    Wait w = outcome(io, ec);
    io.in.resize(old + (w == Wait::timeout ? 0 : n));
    co_return w;
}

// Reads the message text after 354 into the session's message; returns false if
// the connection must end (timeout reply already queued, or the peer went away).
template <class Stream>
awaitable<bool> read_data(Stream& stream, Io& io, SessionCore& core, const ServerOptions& opt) {
    IncomingMessage& msg = *core.message();
    const std::string received = core.received_header();
    std::error_code write_error = co_await msg.append(received);
    DataReader reader({core.max_message_size(), 50});
    std::string content;
    auto deadline = Clock::now() + opt.data_timeout;
    for (DataReader::Status st = DataReader::Status::need_more; st != DataReader::Status::done;) {
        if (io.pos == io.in.size()) {
            Wait w = co_await read_more(stream, io, deadline, data_chunk);
            if (w == Wait::timeout) core.on_timeout(io.out);
            if (w != Wait::ok) co_return false;
        }
        io.pos += reader.consume(io.pending(), content, st);
        if (content.size() >= 65536 || st == DataReader::Status::done) {
            if (!write_error && !content.empty()) write_error = co_await msg.append(content);
            content.clear();
        }
    }
    std::optional<Reply> failure;
    if (reader.too_big())
        failure = Reply{552, "5.3.4", "Error: message file too big"};
    else if (reader.header_too_long())
        failure = Reply{552, "5.3.4", "Error: message header length exceeds limit"};
    else if (reader.too_many_hops())
        failure = Reply{554, "5.4.0", "Error: too many hops"};
    else if (write_error || (write_error = co_await msg.commit(core.transaction())))
        failure = Reply{451, "4.3.0", "Error: queue file write error"};
    if (write_error) support::log_warning("smtpd", msg.id() + ": queue file write error: " + write_error.message());
    core.finish_data(failure, received.size() + reader.size(), io.out);
    co_return true;
}

enum class LoopEnd { closed, start_tls };

template <class Stream>
awaitable<LoopEnd> command_loop(Stream& stream, Io& io, SessionCore& core, const ServerOptions& opt) {
    LineReader lines;
    for (;;) {
        Next next = Next::read_command;
        auto deadline = Clock::now() + opt.command_timeout;
        for (bool got = false; !got;) {
            LineReader::Status st = LineReader::Status::need_more;
            if (io.pos < io.in.size()) io.pos += lines.consume(io.pending(), st);
            if (st == LineReader::Status::line) {
                next = core.on_line(lines.line(), io.pos < io.in.size(), io.out);
                got = true;
            } else if (st == LineReader::Status::too_long) {
                next = core.on_too_long(io.out);
                got = true;
            } else if (Wait w = co_await read_more(stream, io, deadline); w != Wait::ok) {
                if (w == Wait::timeout) {
                    core.on_timeout(io.out);
                    co_await flush(stream, io, Clock::now() + std::chrono::seconds(10));
                }
                co_return LoopEnd::closed;
            }
        }
        if (next == Next::read_data && !co_await read_data(stream, io, core, opt)) next = Next::close;
        if (next == Next::close || next == Next::start_tls) {
            co_await flush(stream, io, Clock::now() + opt.command_timeout);
            co_return next == Next::close ? LoopEnd::closed : LoopEnd::start_tls;
        }
    }
}

}  // namespace detail

// Runs one SMTP session to its end. tls may be null (no STARTTLS offered).
template <class Stream>
boost::asio::awaitable<void> serve_session(Stream& stream, SessionCore& core,
                                           boost::asio::ssl::context* tls,
                                           const ServerOptions& opt) {
    detail::Io io(stream.get_executor());
    io.out = core.greeting();
    if (co_await detail::command_loop(stream, io, core, opt) != detail::LoopEnd::start_tls || !tls)
        co_return;
    io.discard_input();  // plaintext sent after STARTTLS must not count as encrypted
    boost::asio::ssl::stream<Stream&> secure(stream, *tls);
    io.deadline.expires_after(opt.command_timeout);
    boost::asio::cancellation_state state = co_await boost::asio::this_coro::cancellation_state;
    auto cancel = io.deadline.forward(state.slot());
    auto tok = io.deadline.bind(boost::asio::as_tuple(boost::asio::use_awaitable));
    auto [ec] = co_await secure.async_handshake(boost::asio::ssl::stream_base::server, tok);
    if (ec) {
        support::log_info("smtpd", "SSL_accept error from " + core.client() + ": " +
                                       (io.deadline.timed_out(ec) ? std::string("timeout") : ec.message()));
        core.on_tls_failed();
        co_return;
    }
    core.on_tls_started();
    co_await detail::command_loop(secure, io, core, opt);
}

}  // namespace tlsrelay::smtp

// The SMTP server's protocol state (RFC 5321, 2920, 3207): which command is allowed
// when, what each one answers, and what the connection must do next. No sockets
// here: smtp/server_io.hpp drives this over any stream, with deadlines.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "smtp/command.hpp"
#include "smtp/reply.hpp"
#include "support/network.hpp"

namespace tlsrelay::smtp {

// The envelope the session collected, handed over at commit.
struct Transaction {
    std::string sender;  // "" for <>
    std::vector<std::string> recipients;
    std::string client;  // "name[addr]"
    std::string helo;
    bool smtputf8 = false;
    bool eight_bit = false;
};

// One message being received; relay/ implements it with the queue.
class IncomingMessage {
public:
    virtual ~IncomingMessage() = default;
    virtual const std::string& id() const = 0;
    // Copies content before its first suspension, so the view need not outlive that.
    // (A view, not a string: GCC 12 may destroy a by-value temporary twice, PR 100611.)
    virtual boost::asio::awaitable<std::error_code> append(std::string_view content) = 0;
    // Durable when it returns no error (may run on another thread meanwhile).
    virtual boost::asio::awaitable<std::error_code> commit(const Transaction& t) = 0;
};

class MessageSink {
public:
    virtual ~MessageSink() = default;
    virtual std::uint64_t free_bytes() = 0;
    virtual std::unique_ptr<IncomingMessage> begin(std::error_code& ec) = 0;
};

struct ServerOptions {
    std::string hostname = "localhost";
    std::uint64_t max_message_size = 50ull << 20;
    std::uint32_t max_recipients = 1000;
    std::uint32_t max_connections = 1000;
    std::uint32_t max_connections_per_client = 50;  // 0: none; allow_networks exempt
    std::uint32_t hard_error_limit = 20;
    std::chrono::milliseconds command_timeout = std::chrono::minutes(5);
    std::chrono::milliseconds data_timeout = std::chrono::minutes(10);
    std::vector<support::Network> allow_networks;
    bool tls_available = false;  // a server certificate is configured
};

// What the I/O loop does after a command's reply is queued.
enum class Next {
    read_command,  // carry on
    read_data,     // 354 was queued: read the message text
    start_tls,     // 220 was queued: flush, discard buffered input, handshake
    close,         // flush and hang up
};

class SessionCore {
public:
    SessionCore(const ServerOptions& options, MessageSink& sink, boost::asio::ip::address peer);

    std::string greeting() const;
    // One command line (without CRLF). pipelined: more input was already buffered
    // after this line. Appends the reply to out.
    Next on_line(std::string_view line, bool pipelined, std::string& out);
    Next on_too_long(std::string& out);
    Next on_timeout(std::string& out);  // 421 4.4.2
    // After STARTTLS: forget everything learned in plaintext (RFC 3207 §4.2).
    void on_tls_started();
    void on_tls_failed();

    // DATA: the message under construction and what to answer at its end.
    IncomingMessage* message() { return message_.get(); }
    const Transaction& transaction() const { return transaction_; }
    std::uint64_t max_message_size() const { return options_.max_message_size; }
    std::string received_header() const;
    // Final verdict on the message text (too big, hops, append/commit errors).
    void finish_data(const std::optional<Reply>& failure, std::uint64_t size, std::string& out);

    const std::string& client() const { return client_; }
    std::string disconnect_summary() const;  // "ehlo=1 mail=1 ... commands=5"
    bool tls_active() const { return tls_active_; }

private:
    Next on_command(const Command& cmd, bool pipelined, std::string& out);
    Next on_helo(const Command& cmd, bool extended, std::string& out);
    Next on_mail(const Command& cmd, std::string& out);
    Next on_rcpt(const Command& cmd, std::string& out);
    Next on_data(const Command& cmd, bool pipelined, std::string& out);
    Next on_starttls(const Command& cmd, std::string& out);
    Next error(const Reply& reply, std::string& out);  // counts towards hard_error_limit
    void count(std::string_view verb, bool ok);
    void reset_transaction();

    const ServerOptions& options_;
    MessageSink& sink_;
    boost::asio::ip::address peer_;
    std::string client_;
    bool relay_allowed_;
    std::string helo_;
    bool extended_ = false;
    bool tls_active_ = false;
    std::unique_ptr<IncomingMessage> message_;
    Transaction transaction_;
    bool in_transaction_ = false;
    std::uint32_t errors_ = 0;
    std::vector<std::pair<std::string, std::pair<unsigned, unsigned>>> counts_;  // verb -> ok/total
};

}  // namespace tlsrelay::smtp

// The SMTP client side of one connection (RFC 5321, 2920, 3207), as Postfix's smtp(8)
// speaks it: greeting, EHLO (HELO fallback), STARTTLS as the TLS plan says, EHLO
// again, then one or more mail transactions (pipelined when offered) and QUIT.
// Every wait has a deadline. Failures come back as values with Postfix's texts and
// DSNs; which address or recipient they apply to is decided by the caller.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "smtp/reply_parser.hpp"
#include "smtp/tls_errors.hpp"
#include "support/deadline.hpp"
#include "tls/level.hpp"

namespace tlsrelay::smtp {

struct ServerId {
    std::string hostname;  // MX host name (or the bracketed next hop)
    boost::asio::ip::address address;
    unsigned short port = 25;
    std::string name_addr() const;       // "host[addr]"
    std::string name_addr_port() const;  // "host[addr]:port"
    // As Postfix's TLS layer names the peer (tls_client.c lowercases namaddr): the TLS
    // summary, SSL_connect and certificate verification lines.
    std::string tls_name_addr_port() const;
};

// What the TLS policy asks of this connection (relay/ builds it from tls/).
struct TlsVerdict {
    bool ok = true;
    std::string adjective = "Untrusted";  // Anonymous, Untrusted, Trusted, Verified
    std::string detail;                   // appended to Postfix's reason on failure
    std::vector<std::string> log_lines;   // e.g. "certificate verification failed for ..."
};

struct TlsPlan {
    tls::Level level = tls::Level::may;
    // The policy cannot be used (Postfix: "client TLS configuration problem"): the
    // address is skipped without connecting; warnings say why.
    bool invalid = false;
    std::string invalid_reason;  // the 4.7.5 text; "" = "client TLS configuration problem"
    std::vector<std::string> warnings;
    std::string source;  // "FILE:LINE" of the policy-table entry in force, if any
    boost::asio::ssl::context* context = nullptr;  // null: our TLS engine is unavailable
    std::string sni;                               // "" sends no SNI
    // Configures the SSL object before the handshake (verify names, protocols ...).
    std::function<bool(SSL*, std::string& error)> prepare;
    // Judges the finished handshake; null: level none/may/encrypt rules (no check).
    std::function<TlsVerdict(SSL*)> verify;
};

// What a finished handshake showed, kept for observers (metrics, certificate
// warnings in relay/) whether or not the policy then accepted the session.
struct TlsSession {
    std::string adjective;       // as in the summary line: Anonymous ... Verified
    std::string protocol;        // "TLSv1.3"
    bool policy_ok = true;       // the verdict of plan.verify
    std::shared_ptr<X509> leaf;  // the peer's certificate; null: anonymous
};

struct ClientOptions {
    std::string helo_name = "localhost";
    std::chrono::milliseconds command_timeout = std::chrono::minutes(5);
    std::chrono::milliseconds data_timeout = std::chrono::minutes(10);
};

// A failure that ends the connection or the transaction for everything pending.
struct Failure {
    std::string dsn;     // "4.7.5"
    std::string reason;  // Postfix's text, plus our detail after ": " where it helps
    bool hard = false;   // 5xx: bounce now, no other server
    bool throttle = true;
    bool handshake_failed = false;  // TLS handshake failed (may: plaintext retry rule)
    bool past_tls = false;          // got past EHLO and TLS (counts towards the session limit)
};

struct OutboundMessage {
    std::string sender;
    std::vector<std::string> recipients;
    const std::string* content = nullptr;  // stored form: CRLF lines, not dot-stuffed
    bool smtputf8 = false;       // the client asked for SMTPUTF8 (MAIL FROM ... SMTPUTF8)
    bool eight_bit = false;
    bool needs_smtputf8 = false; // and the envelope or header section holds UTF-8
};

// Postfix's rule (cleanup, smtp_proto.c): a message needs SMTPUTF8 at the next server
// only when the client asked for it and the sender, a recipient or the header section
// is not ASCII; otherwise it goes to a server without SMTPUTF8 as it is.
bool needs_smtputf8(bool requested, std::string_view sender, const std::vector<std::string>& recipients,
                    std::string_view content);

struct RecipientResult {
    enum class State { pending, sent, soft, hard } state = State::pending;
    std::string dsn, reason;
};

class ClientConnection {
public:
    ClientConnection(boost::asio::ip::tcp::socket socket, ServerId server, ClientOptions options);
    ~ClientConnection();

    // Greeting, EHLO, STARTTLS per plan, EHLO again. nullopt: ready for mail.
    // needs_smtputf8: fail with 5.6.7 right after EHLO, before STARTTLS, when the server
    // does not offer SMTPUTF8 (as Postfix's smtp_helo does).
    boost::asio::awaitable<std::optional<Failure>> open(const TlsPlan& plan, bool needs_smtputf8 = false);
    // One transaction; results[i] is for message.recipients[i]. A Failure means the
    // connection is no longer usable or the whole transaction failed at once.
    boost::asio::awaitable<std::optional<Failure>> send(const OutboundMessage& message,
                                                        std::vector<RecipientResult>& results);
    boost::asio::awaitable<void> quit();  // polite end; errors ignored

    bool usable() const { return usable_; }
    bool tls_active() const { return tls_.has_value(); }
    const std::string& tls_summary() const { return tls_summary_; }  // the "TLS connection established" line
    const std::optional<TlsSession>& tls_session() const { return tls_session_; }  // set once handshaken
    const ServerId& server() const { return server_; }
    std::string local_address() const;  // our end of the connection ("" when unknown)
    const ServerReply& greeting() const { return greeting_; }
    const ServerReply& ehlo_reply() const { return ehlo_; }  // the latest EHLO answer

private:
    class Impl;
    friend class Impl;
    // Arguments are views, not strings: GCC 12 can destroy a temporary passed by value to
    // a coroutine twice (PR 100611), so callers keep the text alive in a named object.
    boost::asio::awaitable<std::optional<ServerReply>> command(std::string_view line, const char* what);
    boost::asio::awaitable<std::optional<ServerReply>> read_reply(const char* what);
    boost::asio::awaitable<bool> write(std::string_view data, const char* what);
    boost::asio::awaitable<std::optional<Failure>> ehlo();
    boost::asio::awaitable<std::optional<Failure>> start_tls(const TlsPlan& plan);
    Failure lost(const char* what) const;
    Failure message_refused(const ServerReply& r, const char* command) const;
    Failure smtputf8_not_offered() const;

    boost::asio::ip::tcp::socket socket_;
    TlsErrors tls_errors_;  // OpenSSL's queue when the handshake failed (outlives tls_)
    std::optional<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> tls_;
    ServerId server_;
    ClientOptions options_;
    support::Deadline deadline_;
    std::string in_;
    ReplyParser parser_;
    Capabilities caps_;
    ServerReply greeting_, ehlo_;
    bool usable_ = true;
    bool timed_out_ = false;
    std::string bad_reply_;  // why the last reply could not be parsed
    std::string tls_summary_;
    std::optional<TlsSession> tls_session_;
};

// Dot-stuffs stored content for the wire and folds lines over 998 octets with
// CRLF SPACE (Postfix smtp_line_length_limit), ending with ".\r\n". A bare LF in the
// content ends a line and a bare CR becomes a space: only CRLF reaches the wire.
std::string wire_body(const std::string& content);

// "host H[A] said: 550 5.1.1 text (in reply to RCPT TO command)"
std::string said(const ServerId& s, const ServerReply& r, const char* command);

// A refusal with reason: the reply's DSN, hard when that is 5.x.x; a DSN of another
// class (a 2xx where 354 was due) is "Protocol error: " + reason with 5.5.0.
Failure refused(const ServerReply& r, std::string reason);

}  // namespace tlsrelay::smtp

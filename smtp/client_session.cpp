#include "smtp/client_session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "smtp/tls_summary.hpp"
#include "support/log.hpp"

namespace tlsrelay::smtp {

namespace asio = boost::asio;

std::string ServerId::name_addr() const { return hostname + "[" + address.to_string() + "]"; }
std::string ServerId::name_addr_port() const { return name_addr() + ":" + std::to_string(port); }
std::string ServerId::tls_name_addr_port() const {
    std::string s = name_addr_port();
    for (char& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

std::string said(const ServerId& s, const ServerReply& r, const char* command) {
    return "host " + s.name_addr() + " said: " + r.text() + " (in reply to " + command + " command)";
}

Failure refused(const ServerReply& r, std::string reason) {
    // Postfix's vsmtp_fill_dsn (smtp_trouble.c): a refusal whose DSN is neither 4.x.x nor
    // 5.x.x (a 2xx where DATA wanted 354) is the server breaking the protocol.
    std::string dsn = r.dsn();
    if (dsn[0] != '4' && dsn[0] != '5') {
        reason = "Protocol error: " + reason;
        dsn = "5.5.0";
    }
    bool hard = dsn[0] == '5';
    return Failure{std::move(dsn), std::move(reason), hard};
}

namespace {

bool crlf_only(std::string_view s) {
    for (std::size_t i = s.find_first_of("\r\n"); i != std::string_view::npos; i = s.find_first_of("\r\n", i + 2))
        if (s[i] != '\r' || i + 1 == s.size() || s[i + 1] != '\n') return false;
    return true;
}

// As intake does (Postfix cleanup_replace_stray_cr_lf): a bare LF ends a line, a bare
// CR becomes a space.
std::string canonical_crlf(std::string_view s) {
    std::string out;
    out.reserve(s.size() + s.size() / 32);
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') {
            out += "\r\n";
            ++i;
        } else if (s[i] == '\n') {
            out += "\r\n";
        } else {
            out += s[i] == '\r' ? ' ' : s[i];
        }
    }
    return out;
}

}  // namespace

std::string wire_body(const std::string& content) {
    // Stored content is CRLF-only; content that is not (a foreign or damaged queue
    // file) must still never put a bare CR or LF, a smuggled end of data, on the wire.
    if (!crlf_only(content)) return wire_body(canonical_crlf(content));
    std::string out;
    out.reserve(content.size() + content.size() / 64 + 8);
    std::size_t pos = 0;
    while (pos < content.size()) {
        std::size_t eol = content.find("\r\n", pos);
        std::size_t end = eol == std::string::npos ? content.size() : eol;
        std::string_view line(content.data() + pos, end - pos);
        bool first = true;
        do {  // fold at 998 octets with CRLF SPACE, as Postfix does
            std::size_t room = first ? 998 : 997;
            std::string_view piece = line.substr(0, room);
            line.remove_prefix(piece.size());
            if (!first) out += ' ';
            else if (!piece.empty() && piece[0] == '.') out += '.';
            out.append(piece);
            out += "\r\n";
            first = false;
        } while (!line.empty());
        pos = eol == std::string::npos ? content.size() : eol + 2;
    }
    out += ".\r\n";
    return out;
}

ClientConnection::ClientConnection(asio::ip::tcp::socket socket, ServerId server,
                                   ClientOptions options)
    : socket_(std::move(socket)),
      server_(std::move(server)),
      options_(std::move(options)),
      deadline_(socket_.get_executor()) {}

ClientConnection::~ClientConnection() {
    boost::system::error_code ignored;
    socket_.close(ignored);
}

Failure ClientConnection::lost(const char* what) const {
    // A line that is no SMTP reply: Postfix would glue it to the next reply and go on
    // (smtp_chat.c), which with pipelining can take a later reply as this one. We give
    // up on the connection instead, and say why. A reply we refuse to read on for its
    // size (reply_parser.hpp) is likewise the peer breaking the protocol (X.5.0).
    if (parser_.non_esmtp())
        return Failure{"4.5.0", "non-ESMTP response from " + server_.name_addr() + " while " + what + ": " +
                                    parser_.bad_line()};
    if (!bad_reply_.empty())
        return Failure{"4.5.0", "bad reply from host " + server_.name_addr() + " while " + what + ": " + bad_reply_};
    std::string reason = timed_out_ ? "conversation with " + server_.name_addr() + " timed out while " + what
                                    : "lost connection with " + server_.name_addr() + " while " + what;
    return Failure{"4.4.2", reason};
}

namespace {

// One write or read on whichever stream is current, bound to the connection's
// deadline. Returns false on error or timeout (timed_out set for the latter).
template <class Stream>
asio::awaitable<bool> write_on(Stream& s, support::Deadline& deadline, asio::const_buffer buf, bool& timed_out) {
    if (deadline.passed()) {
        timed_out = true;
        co_return false;
    }
    asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
    auto cancel = deadline.forward(state.slot());
    auto [ec, n] = co_await asio::async_write(s, buf, deadline.bind(asio::as_tuple(asio::use_awaitable)));
    if (deadline.timed_out(ec)) timed_out = true;
    co_return !ec;
}

template <class Stream>
asio::awaitable<std::size_t> read_on(Stream& s, support::Deadline& deadline, asio::mutable_buffer buf,
                                     bool& timed_out) {
    if (deadline.passed()) {
        timed_out = true;
        co_return 0;
    }
    asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
    auto cancel = deadline.forward(state.slot());
    auto [ec, n] = co_await s.async_read_some(buf, deadline.bind(asio::as_tuple(asio::use_awaitable)));
    if (deadline.timed_out(ec)) timed_out = true;
    co_return ec ? 0 : n;
}

}  // namespace

asio::awaitable<bool> ClientConnection::write(std::string_view data, const char* /*what*/) {
    deadline_.expires_after(options_.command_timeout);
    auto buf = asio::buffer(data.data(), data.size());
    bool ok = false;  // (no co_await inside ?:, see client_transaction.cpp)
    if (tls_)
        ok = co_await write_on(*tls_, deadline_, buf, timed_out_);
    else
        ok = co_await write_on(socket_, deadline_, buf, timed_out_);
    if (!ok) usable_ = false;
    co_return ok;
}

asio::awaitable<std::optional<ServerReply>> ClientConnection::read_reply(const char* /*what*/) {
    auto deadline = std::chrono::steady_clock::now() + options_.command_timeout;
    for (;;) {
        if (!in_.empty()) {
            ReplyParser::Status st;
            std::size_t used = parser_.consume(in_, st);
            in_.erase(0, used);
            if (st == ReplyParser::Status::reply) co_return parser_.reply();
            if (st == ReplyParser::Status::error) {
                bad_reply_ = parser_.error();
                break;
            }
        }
        char chunk[4096];
        deadline_.expires_at(deadline);
        auto buf = asio::buffer(chunk);
        std::size_t n = 0;
        if (tls_)
            n = co_await read_on(*tls_, deadline_, buf, timed_out_);
        else
            n = co_await read_on(socket_, deadline_, buf, timed_out_);
        if (n == 0) break;
        in_.append(chunk, n);
    }
    usable_ = false;
    co_return std::nullopt;
}

asio::awaitable<std::optional<ServerReply>> ClientConnection::command(std::string_view text, const char* what) {
    std::string line(text);
    line += "\r\n";
    bool written = co_await write(line, what);
    if (!written) co_return std::nullopt;
    co_return co_await read_reply(what);
}

asio::awaitable<std::optional<Failure>> ClientConnection::ehlo() {
    const std::string ehlo_line = "EHLO " + options_.helo_name;
    auto r = co_await command(ehlo_line, "performing the EHLO handshake");
    if (!r) co_return lost("performing the EHLO handshake");
    if (r->positive()) {
        caps_ = parse_ehlo(*r);
        ehlo_ = *r;
        co_return std::nullopt;
    }
    // Postfix (smtp_proto.c smtp_helo): 421 ends the session, any other refusal of
    // EHLO falls back to HELO.
    if (r->code == 421) co_return refused(*r, "host " + server_.name_addr() + " refused to talk to me: " + r->text());
    caps_ = Capabilities{};
    const std::string helo_line = "HELO " + options_.helo_name;
    r = co_await command(helo_line, "performing the HELO handshake");
    if (!r) co_return lost("performing the HELO handshake");
    if (r->positive()) co_return std::nullopt;
    co_return refused(*r, "host " + server_.name_addr() + " refused to talk to me: " + r->text());
}

asio::awaitable<std::optional<Failure>> ClientConnection::open(const TlsPlan& plan, bool needs_smtputf8) {
    auto greeting = co_await read_reply("receiving the initial server greeting");
    if (!greeting) co_return lost("receiving the initial server greeting");
    greeting_ = *greeting;
    if (greeting->code / 100 != 2) {
        // Postfix's smtp_skip_5xx_greeting (default yes): a 5xx greeting is a soft error
        // like a 4xx one, so the next MX is tried and the last one defers (4.x.x).
        Failure f = refused(*greeting, "host " + server_.name_addr() + " refused to talk to me: " + greeting->text());
        if (greeting->code / 100 == 5) {
            f.dsn[0] = '4';
            f.hard = false;
        }
        co_return f;
    }
    if (auto f = co_await ehlo()) co_return f;
    if (needs_smtputf8 && !caps_.smtputf8) co_return smtputf8_not_offered();
    if (plan.level != tls::Level::none) {
        if (auto f = co_await start_tls(plan)) co_return f;
    }
    co_return std::nullopt;
}

std::string ClientConnection::local_address() const {
    boost::system::error_code ec;
    auto ep = socket_.local_endpoint(ec);
    return ec ? std::string() : ep.address().to_string();
}

asio::awaitable<std::optional<Failure>> ClientConnection::start_tls(const TlsPlan& plan) {
    const bool required = tls::tls_required(plan.level);
    if (!caps_.starttls) {
        if (!required) co_return std::nullopt;
        co_return Failure{"4.7.4", "TLS is required, but was not offered by host " + server_.name_addr()};
    }
    if (!plan.context) {
        if (!required) co_return std::nullopt;
        co_return Failure{"4.7.5", "TLS is required, but our TLS engine is unavailable"};
    }
    // Postfix's smtp_helo() names the whole exchange "receiving the STARTTLS response"
    // (observed for a server that closes on STARTTLS), whether the write or the read failed.
    auto r = co_await command("STARTTLS", "receiving the STARTTLS response");
    if (!r) co_return lost("receiving the STARTTLS response");
    if (!r->positive()) {  // any 2xx starts TLS, as in Postfix
        if (!required) co_return std::nullopt;  // may: carry on in plaintext
        co_return refused(*r, "TLS is required, but host " + server_.name_addr() + " refused to start TLS: " + r->text());
    }
    in_.clear();  // nothing the server sent before the handshake may count afterwards
    parser_ = ReplyParser{};
    tls_.emplace(socket_, *plan.context);
    SSL* ssl = tls_->native_handle();
    std::string error;
    if (!plan.sni.empty()) SSL_set_tlsext_host_name(ssl, plan.sni.c_str());
    if (plan.prepare && !plan.prepare(ssl, error)) {
        support::log_warning("smtp", server_.name_addr_port() + ": " + error);
        usable_ = false;
        co_return Failure{"4.7.5", "Cannot start TLS: handshake failure", false, plan.level != tls::Level::may, true};
    }
    tls_errors_.watch(ssl);
    deadline_.expires_after(options_.command_timeout);
    asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
    auto cancel = deadline_.forward(state.slot());
    auto [hs] = co_await tls_->async_handshake(asio::ssl::stream_base::client,
                                               deadline_.bind(asio::as_tuple(asio::use_awaitable)));
    if (hs) {
        // As Postfix's tls_client_start: OpenSSL's errors when it queued any (SSL_connect's
        // result, then each error), else the system error, else "lost connection" (the
        // peer closed without a TLS alert).
        bool queued = !deadline_.timed_out(hs) && !tls_errors_.empty();
        std::string why = deadline_.timed_out(hs)                   ? "timeout"
                          : queued                                   ? std::to_string(tls_errors_.connect_result())
                          : hs == asio::ssl::error::stream_truncated ? "lost connection"
                                                                     : hs.message();
        support::log_info("smtp", "SSL_connect error to " + server_.tls_name_addr_port() + ": " + why);
        if (queued)
            for (const auto& problem : tls_errors_.problems())
                support::log_warning("smtp", "TLS library problem: " + problem);
        usable_ = false;
        co_return Failure{"4.7.5", "Cannot start TLS: handshake failure", false, plan.level != tls::Level::may, true};
    }
    TlsVerdict verdict;
    if (plan.verify)
        verdict = plan.verify(ssl);
    else
        verdict.adjective = default_adjective(ssl);
    for (const auto& line : verdict.log_lines) support::log_info("smtp", line);
    tls_summary_ = verdict.adjective + " TLS connection established to " + server_.tls_name_addr_port() + ": " +
                   describe_tls_session(ssl);
    support::log_info("smtp", tls_summary_);
    tls_session_ = TlsSession{verdict.adjective, SSL_get_version(ssl), verdict.ok,
                              std::shared_ptr<X509>(SSL_get1_peer_certificate(ssl), X509_free)};
    if (!verdict.ok) {
        std::string reason = "Server certificate not verified";
        if (!verdict.detail.empty()) reason += ": " + verdict.detail;
        co_return Failure{"4.7.5", reason};
    }
    if (auto f = co_await ehlo()) co_return f;
    co_return std::nullopt;
}

}  // namespace tlsrelay::smtp

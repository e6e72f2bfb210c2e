// ClientConnection::send and quit: one mail transaction, pipelined when the server
// offers PIPELINING (RFC 2920), with Postfix's texts for each kind of failure.
#include "smtp/client_session.hpp"

#include <algorithm>

#include "smtp/mime_downgrade.hpp"

namespace tlsrelay::smtp {

namespace asio = boost::asio;
using State = RecipientResult::State;

namespace {

// Postfix's smtp_proto.c: no SIZE= when the content may be downgraded on the way (the
// server lacks 8BITMIME; Postfix also sends it for a message declared BODY=7BIT, which
// we do not keep); BODY=8BITMIME for a message the client declared 8-bit or whose
// MIME headers say 8bit or binary (cleanup's auto_8bit_encoding_header).
std::string mail_command(const OutboundMessage& m, const Capabilities& caps) {
    std::string line = "MAIL FROM:<" + m.sender + ">";
    if (caps.size && caps.eight_bit_mime) line += " SIZE=" + std::to_string(m.content->size());
    if (caps.eight_bit_mime && (m.eight_bit || declares_8bit(*m.content))) line += " BODY=8BITMIME";
    if (m.smtputf8 && caps.smtputf8) line += " SMTPUTF8";
    return line;
}

}  // namespace

bool needs_smtputf8(bool requested, std::string_view sender, const std::vector<std::string>& recipients,
                    std::string_view content) {
    if (!requested) return false;
    auto ascii = [](std::string_view s) {
        return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
    };
    std::size_t end = content.starts_with("\r\n") ? 0 : content.find("\r\n\r\n");
    std::string_view headers = content.substr(0, end);
    return !ascii(sender) || !ascii(headers) ||
           !std::all_of(recipients.begin(), recipients.end(), [&](const std::string& r) { return ascii(r); });
}

Failure ClientConnection::smtputf8_not_offered() const {
    return Failure{"5.6.7", "SMTPUTF8 is required, but was not offered by host " + server_.name_addr(), true,
                   false};
}

Failure ClientConnection::message_refused(const ServerReply& r, const char* command) const {
    Failure f = refused(r, said(server_, r, command));
    f.throttle = false;  // the message, not the host
    return f;
}

asio::awaitable<std::optional<Failure>> ClientConnection::send(const OutboundMessage& m,
                                                              std::vector<RecipientResult>& results) {
    results.assign(m.recipients.size(), RecipientResult{});
    if (caps_.size && *caps_.size > 0 && m.content->size() > *caps_.size)
        co_return Failure{"5.3.4", "message size " + std::to_string(m.content->size()) +
                                       " exceeds size limit " + std::to_string(*caps_.size) +
                                       " of server " + server_.name_addr(), true, false};
    if (m.needs_smtputf8 && !caps_.smtputf8) co_return smtputf8_not_offered();
    const bool pipe = caps_.pipelining;
    std::vector<std::string> lines{mail_command(m, caps_)};
    for (const auto& r : m.recipients) lines.push_back("RCPT TO:<" + r + ">");
    if (pipe) {  // MAIL, every RCPT and DATA in one write; replies read in order
        std::string batch;
        for (const auto& l : lines) batch += l + "\r\n";
        batch += "DATA\r\n";
        bool written = co_await write(batch, "sending MAIL FROM");
        if (!written) co_return lost("sending MAIL FROM");
    }
    // No co_await inside ?: here: GCC 12 destroys such a result twice.
    std::optional<ServerReply> mail;
    if (pipe)
        mail = co_await read_reply("sending MAIL FROM");
    else
        mail = co_await command(lines[0], "sending MAIL FROM");
    if (!mail) co_return lost("sending MAIL FROM");
    std::size_t accepted = 0;
    for (std::size_t i = 0; i < m.recipients.size(); ++i) {
        if (!pipe && !mail->positive()) break;
        std::optional<ServerReply> r;
        if (pipe)
            r = co_await read_reply("sending RCPT TO");
        else
            r = co_await command(lines[i + 1], "sending RCPT TO");
        if (!r) co_return lost("sending RCPT TO");
        if (r->positive()) {
            ++accepted;
        } else if (mail->positive()) {
            Failure f = refused(*r, said(server_, *r, "RCPT TO"));
            results[i] = {f.hard ? State::hard : State::soft, f.dsn, f.reason};
        }
    }
    std::optional<ServerReply> data;
    if (pipe) {
        data = co_await read_reply("sending DATA");
        if (!data) co_return lost("sending DATA");
    }
    if (!mail->positive()) {
        co_await command("RSET", "sending RSET");
        co_return message_refused(*mail, "MAIL FROM");
    }
    if (accepted == 0) {
        co_await command("RSET", "sending RSET");
        co_return std::nullopt;
    }
    if (!pipe) {
        data = co_await command("DATA", "sending DATA");
        if (!data) co_return lost("sending DATA");
    }
    if (!data->go_ahead()) {
        co_await command("RSET", "sending RSET");
        co_return message_refused(*data, "DATA");
    }
    // RFC 6152: 8-bit parts go to a server without 8BITMIME as quoted-printable
    const std::string body = wire_body(caps_.eight_bit_mime ? *m.content : downgrade_8bit(*m.content));
    bool sent_body = co_await write(body, "sending message body");
    if (!sent_body) co_return lost("sending message body");
    auto done = co_await read_reply("sending end of data");
    if (!done) {
        Failure f = lost("sending end of data");
        f.reason += " -- message may be sent more than once";
        co_return f;
    }
    if (!done->positive())
        co_return message_refused(*done, "end of DATA");
    for (auto& r : results)
        if (r.state == State::pending) r = {State::sent, done->dsn(), done->text()};
    co_return std::nullopt;
}

asio::awaitable<void> ClientConnection::quit() {
    if (!usable_) co_return;
    auto saved = options_.command_timeout;
    options_.command_timeout = std::min(saved, std::chrono::milliseconds(5000));
    co_await command("QUIT", "sending QUIT");
    options_.command_timeout = saved;
    usable_ = false;
}

}  // namespace tlsrelay::smtp

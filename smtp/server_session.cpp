#include "smtp/server_session.hpp"

#include <ctime>

#include "support/log.hpp"
#include "tls/text.hpp"

namespace tlsrelay::smtp {
namespace {

// Commands after which nothing may be pipelined (RFC 2920 §3.1; Postfix
// smtpd_forbid_unauth_pipelining). MAIL, RCPT, RSET may be followed by more.
bool must_be_last(Verb v) {
    switch (v) {
        case Verb::mail:
        case Verb::rcpt:
        case Verb::rset:
        case Verb::noop:
        case Verb::vrfy:
        case Verb::help:
        case Verb::quit:
            return false;
        default:
            return true;
    }
}

using tls::lower;

std::string rfc5322_date() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S %z", &tm);
    return buf;
}

}  // namespace

SessionCore::SessionCore(const ServerOptions& options, MessageSink& sink,
                         boost::asio::ip::address peer)
    : options_(options),
      sink_(sink),
      peer_(support::unmap(peer)),
      client_("unknown[" + peer_.to_string() + "]"),
      relay_allowed_(support::any_contains(options.allow_networks, peer)) {}

std::string SessionCore::greeting() const {
    return Reply{220, "", options_.hostname + " ESMTP tlsrelay"}.wire();
}

Next SessionCore::on_line(std::string_view line, bool pipelined, std::string& out) {
    for (unsigned char c : line)
        if (c == '\0' || c == '\r')
            return error({500, "5.5.2", "Error: bad characters in command"}, out);
    Command cmd = parse_command(line);
    return on_command(cmd, pipelined, out);
}

Next SessionCore::on_too_long(std::string& out) {
    return error({500, "5.5.2", "Error: command too long"}, out);
}

Next SessionCore::on_timeout(std::string& out) {
    out += Reply{421, "4.4.2", options_.hostname + " Error: timeout exceeded"}.wire();
    return Next::close;
}

// Like Postfix smtpd_hard_error_limit: the error is answered, and once the limit is
// reached the session ends with 421 before the next command is read.
Next SessionCore::error(const Reply& reply, std::string& out) {
    out += reply.wire();
    if (++errors_ < options_.hard_error_limit) return Next::read_command;
    out += Reply{421, "4.7.0", options_.hostname + " Error: too many errors"}.wire();
    return Next::close;
}

void SessionCore::count(std::string_view verb, bool ok) {
    std::string key = lower(verb);
    for (auto& [name, c] : counts_)
        if (name == key) {
            c.first += ok;
            c.second += 1;
            return;
        }
    counts_.push_back({key, {ok ? 1u : 0u, 1u}});
}

std::string SessionCore::disconnect_summary() const {
    std::string out;
    unsigned ok = 0, total = 0;
    auto fmt = [](unsigned a, unsigned b) {
        return a == b ? std::to_string(a) : std::to_string(a) + "/" + std::to_string(b);
    };
    for (const auto& [name, c] : counts_) {
        out += name + "=" + fmt(c.first, c.second) + " ";
        ok += c.first;
        total += c.second;
    }
    return out + "commands=" + fmt(ok, total);
}

void SessionCore::reset_transaction() {
    message_.reset();  // an uncommitted message leaves nothing behind
    transaction_ = Transaction{};
    in_transaction_ = false;
}

Next SessionCore::on_command(const Command& cmd, bool pipelined, std::string& out) {
    if (cmd.verb == Verb::forbidden) {
        count("unknown", false);
        out += Reply{221, "2.7.0", "Error: I can break rules, too. Goodbye."}.wire();
        return Next::close;
    }
    bool ok_to_pipeline = extended_ && !must_be_last(cmd.verb);
    if (pipelined && !ok_to_pipeline && cmd.verb != Verb::starttls && cmd.verb != Verb::quit) {
        count(cmd.verb == Verb::unknown ? "unknown" : cmd.name, false);
        out += Reply{554, "5.5.0", "Error: SMTP protocol synchronization"}.wire();
        return Next::close;
    }
    Next next = Next::read_command;
    std::size_t before = out.size();
    switch (cmd.verb) {
        case Verb::ehlo: next = on_helo(cmd, true, out); break;
        case Verb::helo: next = on_helo(cmd, false, out); break;
        case Verb::mail: next = on_mail(cmd, out); break;
        case Verb::rcpt: next = on_rcpt(cmd, out); break;
        case Verb::data: next = on_data(cmd, pipelined, out); break;
        case Verb::starttls: next = on_starttls(cmd, out); break;
        case Verb::rset:
            reset_transaction();
            out += Reply{250, "2.0.0", "Ok"}.wire();
            break;
        case Verb::noop: out += Reply{250, "2.0.0", "Ok"}.wire(); break;
        case Verb::quit:
            out += Reply{221, "2.0.0", "Bye"}.wire();
            next = Next::close;
            break;
        case Verb::vrfy:
            if (cmd.argument.empty())
                next = error({501, "5.5.4", "Syntax: VRFY address"}, out);
            else
                out += Reply{252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery"}.wire();
            break;
        case Verb::help:
            out += Reply{214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP" +
                                           std::string(options_.tls_available ? " STARTTLS" : "")}
                       .wire();
            break;
        case Verb::auth: next = error({503, "5.5.1", "Error: authentication not enabled"}, out); break;
        case Verb::expn:
        case Verb::bdat: next = error({502, "5.5.1", "Error: command not implemented"}, out); break;
        default: next = error({500, "5.5.2", "Error: command not recognized"}, out); break;
    }
    if (next == Next::read_data) return next;  // counted when the message text ends
    bool ok = out.size() > before && (out[before] == '2' || out[before] == '3');
    count(cmd.verb == Verb::unknown ? "unknown" : cmd.name, ok);
    return next;
}

Next SessionCore::on_helo(const Command& cmd, bool extended, std::string& out) {
    if (auto bad = check_helo(cmd.argument)) return error(*bad, out);
    reset_transaction();
    helo_ = support::printable(cmd.argument);
    extended_ = extended;
    if (!extended) {
        out += Reply{250, "", options_.hostname}.wire();
        return Next::read_command;
    }
    std::vector<std::string> lines{options_.hostname, "PIPELINING",
                                   "SIZE " + std::to_string(options_.max_message_size)};
    if (options_.tls_available && !tls_active_) lines.push_back("STARTTLS");
    for (const char* ext : {"ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8"}) lines.push_back(ext);
    out += multiline(250, lines);
    return Next::read_command;
}

Next SessionCore::on_mail(const Command& cmd, std::string& out) {
    if (helo_.empty()) return error({503, "5.5.1", "Error: send HELO/EHLO first"}, out);
    if (in_transaction_) return error({503, "5.5.1", "Error: nested MAIL command"}, out);
    auto parsed = parse_mail(cmd.argument, ParseLimits{options_.max_message_size});
    if (auto* reply = std::get_if<Reply>(&parsed)) return error(*reply, out);
    auto& mail = std::get<MailFrom>(parsed);
    // Postfix queue_minfree: room for one and a half messages of the largest size.
    std::uint64_t needed = options_.max_message_size + options_.max_message_size / 2;
    if (mail.size) needed = std::max(needed, *mail.size);
    if (sink_.free_bytes() < needed)
        return error({452, "4.3.1", "Insufficient system storage"}, out);
    std::error_code ec;
    message_ = sink_.begin(ec);
    if (!message_) return error({451, "4.3.0", "Error: queue file write error"}, out);
    transaction_ = Transaction{mail.sender.text, {}, client_, helo_, mail.smtputf8,
                               mail.body == Body::eight_bit_mime};
    in_transaction_ = true;
    support::log_info("smtpd", message_->id() + ": client=" + client_);
    out += Reply{250, "2.1.0", "Ok"}.wire();
    return Next::read_command;
}

Next SessionCore::on_rcpt(const Command& cmd, std::string& out) {
    if (!in_transaction_) return error({503, "5.5.1", "Error: need MAIL command"}, out);
    auto parsed = parse_rcpt(cmd.argument, transaction_.smtputf8);
    if (auto* reply = std::get_if<Reply>(&parsed)) return error(*reply, out);
    const auto& rcpt = std::get<RcptTo>(parsed).recipient;
    if (!relay_allowed_) {
        support::log_info("smtpd", "NOQUEUE: reject: RCPT from " + client_ + ": 554 5.7.1 <" +
                                       rcpt.text + ">: Relay access denied; from=<" +
                                       transaction_.sender + "> to=<" + rcpt.text + "> proto=" +
                                       (extended_ ? "ESMTP" : "SMTP") + " helo=<" + helo_ + ">");
        return error({554, "5.7.1", "<" + rcpt.text + ">: Relay access denied"}, out);
    }
    if (transaction_.recipients.size() >= options_.max_recipients)
        return error({452, "4.5.3", "Error: too many recipients"}, out);
    transaction_.recipients.push_back(rcpt.text);
    out += Reply{250, "2.1.5", "Ok"}.wire();
    return Next::read_command;
}

Next SessionCore::on_data(const Command& cmd, bool pipelined, std::string& out) {
    if (!cmd.argument.empty()) return error({501, "5.5.4", "Syntax: DATA"}, out);
    if (!in_transaction_) return error({503, "5.5.1", "Error: need RCPT command"}, out);
    if (transaction_.recipients.empty())
        return error({554, "5.5.1", "Error: no valid recipients"}, out);
    (void)pipelined;  // on_command already refused text sent ahead of the 354
    out += Reply{354, "", "End data with <CR><LF>.<CR><LF>"}.wire();
    return Next::read_data;
}

std::string SessionCore::received_header() const {
    std::string proto = transaction_.smtputf8 ? "UTF8SMTP" : (extended_ ? "ESMTP" : "SMTP");
    if (tls_active_) proto += "S";
    std::string h = "Received: from " + helo_ + " (" + client_.substr(0, client_.find('[')) + " [" +
                    peer_.to_string() + "])\r\n\tby " + options_.hostname + " (tlsrelay) with " +
                    proto + " id " + message_->id();
    if (transaction_.recipients.size() == 1) h += "\r\n\tfor <" + transaction_.recipients[0] + ">";
    return h + "; " + rfc5322_date() + "\r\n";
}

void SessionCore::finish_data(const std::optional<Reply>& failure, std::uint64_t size,
                              std::string& out) {
    if (failure) {
        reset_transaction();
        count("data", false);
        error(*failure, out);
        return;
    }
    count("data", true);
    // Postfix's qmgr logs this line; pflogsumm takes sender and size only from a
    // non-smtpd line, so the program name matters.
    support::log_info("qmgr", message_->id() + ": from=<" + transaction_.sender +
                                   ">, size=" + std::to_string(size) +
                                   ", nrcpt=" + std::to_string(transaction_.recipients.size()) +
                                   " (queue active)");
    out += Reply{250, "2.0.0", "Ok: queued as " + message_->id()}.wire();
    reset_transaction();
}

Next SessionCore::on_starttls(const Command& cmd, std::string& out) {
    if (!cmd.argument.empty()) return error({501, "5.5.4", "Syntax: STARTTLS"}, out);
    if (tls_active_) return error({554, "5.5.1", "Error: TLS already active"}, out);
    if (!options_.tls_available) return error({502, "5.5.1", "Error: command not implemented"}, out);
    out += Reply{220, "2.0.0", "Ready to start TLS"}.wire();
    return Next::start_tls;
}

void SessionCore::on_tls_started() {
    tls_active_ = true;
    reset_transaction();
    helo_.clear();
    extended_ = false;
}

void SessionCore::on_tls_failed() { reset_transaction(); }

}  // namespace tlsrelay::smtp

#include "smtp/command.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include "smtp/address.hpp"
#include "tls/text.hpp"

namespace tlsrelay::smtp {
namespace {

char to_upper(char c) {
    return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

using tls::iequals;

bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

constexpr std::array<std::pair<std::string_view, Verb>, 14> verbs{{
    {"HELO", Verb::helo},
    {"EHLO", Verb::ehlo},
    {"MAIL", Verb::mail},
    {"RCPT", Verb::rcpt},
    {"DATA", Verb::data},
    {"RSET", Verb::rset},
    {"NOOP", Verb::noop},
    {"QUIT", Verb::quit},
    {"VRFY", Verb::vrfy},
    {"EXPN", Verb::expn},
    {"HELP", Verb::help},
    {"STARTTLS", Verb::starttls},
    {"BDAT", Verb::bdat},
    {"AUTH", Verb::auth},
}};

Verb lookup_verb(std::string_view name) {
    for (const auto& [text, verb] : verbs) {
        if (iequals(name, text)) return verb;
    }
    return Verb::unknown;
}

// Postfix smtpd_forbidden_commands: HTTP verbs, and message header text sent as a
// command ("Subject: x", "X-Foo:bar"), mean the peer is not an SMTP client. A known
// verb followed by a colon ("MAIL:") is a confused client instead: plain unknown.
bool is_forbidden(std::string_view line, std::string_view name) {
    if (iequals(name, "GET") || iequals(name, "POST") || iequals(name, "CONNECT")) return true;
    const std::size_t colon = name.find(':');
    if (colon == name.npos || colon == 0 || !is_alpha(name.front())) return false;
    const std::string_view field = line.substr(0, colon);
    const bool header_name = std::all_of(
        field.begin(), field.end(), [](char c) { return is_alpha(c) || is_digit(c) || c == '-'; });
    return header_name && lookup_verb(field) == Verb::unknown;
}

// Where the path sits in "FROM:<path> params" or "FROM:path params".
struct PathSplit {
    std::string_view path;    // without the angle brackets
    std::string_view params;  // after the path, starts with ' ' unless empty
    bool bracketed = false;
    bool bad_address = false;  // no '>' outside quotes, or text glued to it: 501 5.1.x
};

// Index of the first `stop` character outside a quoted string, or text.size().
std::size_t find_unquoted(std::string_view text, char stop) {
    bool quoted = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (quoted && text[i] == '\\') {
            ++i;
        } else if (text[i] == '"') {
            quoted = !quoted;
        } else if (!quoted && text[i] == stop) {
            return i;
        }
    }
    return text.size();
}

// "FROM:" / "TO:" (any case), one optional space (Postfix), then the path with or
// without brackets. nullopt: the command shape itself is wrong (501 5.5.4).
std::optional<PathSplit> split_path(std::string_view argument, std::string_view keyword) {
    if (argument.size() < keyword.size() || !iequals(argument.substr(0, keyword.size()), keyword))
        return std::nullopt;
    std::string_view rest = argument.substr(keyword.size());
    if (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    if (rest.empty() || rest.front() == ' ') return std::nullopt;
    PathSplit split;
    if (rest.front() != '<') {
        const std::size_t end = find_unquoted(rest, ' ');
        split.path = rest.substr(0, end);
        split.params = rest.substr(end);
        return split;
    }
    split.bracketed = true;
    rest.remove_prefix(1);
    const std::size_t close = find_unquoted(rest, '>');
    if (close == rest.size()) {
        split.path = rest;
        split.bad_address = true;
        return split;
    }
    split.path = rest.substr(0, close);
    split.params = rest.substr(close + 1);
    split.bad_address = !split.params.empty() && split.params.front() != ' ';
    return split;
}

// Space-separated "NAME" or "NAME=value" words; calls on_param(name, value, has_value)
// until it returns a reply.
template <typename OnParam>
std::optional<Reply> for_each_param(std::string_view params, OnParam on_param) {
    while (!params.empty()) {
        if (params.front() == ' ') {
            params.remove_prefix(1);
            continue;
        }
        const std::size_t end = std::min(params.find(' '), params.size());
        const std::string_view word = params.substr(0, end);
        params.remove_prefix(end);
        const std::size_t eq = word.find('=');
        const std::string_view name = word.substr(0, eq);
        if (name.empty() || has_control(word)) return Reply{501, "5.5.4", "Bad parameter syntax"};
        const bool has_value = eq != word.npos;
        if (auto reply = on_param(name, has_value ? word.substr(eq + 1) : "", has_value))
            return reply;
    }
    return std::nullopt;
}

// The parameter name is client text: show it printable and short.
Reply unsupported(std::string_view name) {
    std::string shown;
    for (char c : name.substr(0, 64)) {
        const auto byte = static_cast<unsigned char>(c);
        shown.push_back(byte > 0x20 && byte < 0x7f ? to_upper(c) : '?');
    }
    return Reply{555, "5.5.4", "Unsupported option: " + shown};
}

// RFC 1870 size-value: 1*20DIGIT, and it must fit in 64 bits.
std::optional<Reply> parse_size(std::string_view value, std::uint64_t max, MailFrom& mail) {
    const Reply bad{501, "5.5.4", "Bad SIZE parameter syntax"};
    if (value.empty() || value.size() > 20 || !std::all_of(value.begin(), value.end(), is_digit))
        return bad;
    std::uint64_t size = 0;
    for (char c : value) {
        const auto digit = static_cast<std::uint64_t>(c - '0');
        if (size > (UINT64_MAX - digit) / 10) return bad;
        size = size * 10 + digit;
    }
    if (size > max) return Reply{552, "5.3.4", "Message size exceeds fixed limit"};
    mail.size = size;
    return std::nullopt;
}

struct SeenParams {
    bool size = false, body = false, smtputf8 = false;
};

// Only what we advertise: SIZE, 8BITMIME (BODY=), SMTPUTF8. No DSN, no AUTH.
std::optional<Reply> parse_mail_param(std::string_view name, std::string_view value, bool has_value,
                                      const ParseLimits& limits, SeenParams& seen, MailFrom& mail) {
    auto once = [](bool& flag) { return std::exchange(flag, true); };
    if (iequals(name, "SIZE")) {
        if (once(seen.size)) return Reply{501, "5.5.4", "Duplicate SIZE parameter"};
        return parse_size(value, limits.max_message_size, mail);
    }
    if (iequals(name, "BODY")) {
        if (once(seen.body)) return Reply{501, "5.5.4", "Duplicate BODY parameter"};
        if (iequals(value, "7BIT")) {
            mail.body = Body::seven_bit;
        } else if (iequals(value, "8BITMIME")) {
            mail.body = Body::eight_bit_mime;
        } else {
            return Reply{501, "5.5.4", "Bad BODY keyword syntax"};
        }
        return std::nullopt;
    }
    if (iequals(name, "SMTPUTF8")) {
        if (once(seen.smtputf8)) return Reply{501, "5.5.4", "Duplicate SMTPUTF8 parameter"};
        if (has_value) return Reply{501, "5.5.4", "Bad SMTPUTF8 parameter syntax"};
        mail.smtputf8 = true;
        return std::nullopt;
    }
    return unsupported(name);
}

enum class Role { sender, recipient };

Reply address_reply(AddressError error, Role role) {
    const bool sender = role == Role::sender;
    const std::string enhanced = sender ? "5.1.7" : "5.1.3";
    switch (error) {
        case AddressError::bad_utf8:
            return Reply{501, "5.5.2", "Error: bad UTF-8 syntax"};
        case AddressError::too_long:
            return Reply{501, enhanced,
                         sender ? "Sender address too long" : "Recipient address too long"};
        case AddressError::syntax:
            break;
    }
    return Reply{501, enhanced,
                 sender ? "Bad sender address syntax" : "Bad recipient address syntax"};
}

const Reply need_smtputf8{553, "5.6.7", "Must declare SMTPUTF8 to send unicode address"};

}  // namespace

Command parse_command(std::string_view line) {
    Command command;
    const std::size_t space = line.find(' ');
    command.name = line.substr(0, space);
    if (space != line.npos) {
        std::string_view argument = line.substr(space + 1);
        while (!argument.empty() && argument.back() == ' ') argument.remove_suffix(1);
        command.argument = argument;
    }
    command.verb = lookup_verb(command.name);
    if (command.verb == Verb::unknown && is_forbidden(line, command.name))
        command.verb = Verb::forbidden;
    return command;
}

std::variant<MailFrom, Reply> parse_mail(std::string_view argument, const ParseLimits& limits) {
    const auto split = split_path(argument, "FROM:");
    if (!split) return Reply{501, "5.5.4", "Syntax: MAIL FROM:<address>"};
    if (split->bad_address) return address_reply(AddressError::syntax, Role::sender);
    MailFrom mail;
    if (!(split->bracketed && split->path.empty())) {  // "<>" is the null sender
        auto parsed = parse_mailbox(split->path, false);
        if (auto* error = std::get_if<AddressError>(&parsed))
            return address_reply(*error, Role::sender);
        mail.sender = std::move(std::get<Address>(parsed));
    }
    SeenParams seen;
    const auto reply = for_each_param(split->params, [&](auto name, auto value, bool has_value) {
        return parse_mail_param(name, value, has_value, limits, seen, mail);
    });
    if (reply) return *reply;
    if (mail.sender.utf8 && !mail.smtputf8) return need_smtputf8;
    return mail;
}

std::variant<RcptTo, Reply> parse_rcpt(std::string_view argument, bool utf8_allowed) {
    const auto split = split_path(argument, "TO:");
    if (!split) return Reply{501, "5.5.4", "Syntax: RCPT TO:<address>"};
    if (split->bad_address || split->path.empty())
        return address_reply(AddressError::syntax, Role::recipient);
    auto parsed = parse_mailbox(split->path, true);
    if (auto* error = std::get_if<AddressError>(&parsed))
        return address_reply(*error, Role::recipient);
    // We advertise no RCPT extension (no DSN: no NOTIFY=, no ORCPT=).
    const auto reply = for_each_param(split->params, [](auto name, auto, bool) {
        return std::optional<Reply>(unsupported(name));
    });
    if (reply) return *reply;
    RcptTo rcpt{std::move(std::get<Address>(parsed))};
    if (rcpt.recipient.utf8 && !utf8_allowed) return need_smtputf8;
    return rcpt;
}

std::optional<Reply> check_helo(std::string_view argument) {
    if (argument.empty()) return Reply{501, "5.5.4", "Syntax: EHLO hostname"};
    if (has_control(argument) || !valid_utf8(argument))
        return Reply{501, "5.5.2", "Error: bad characters in HELO argument"};
    return std::nullopt;
}

}  // namespace tlsrelay::smtp

// SMTP command parsing (RFC 5321 §4.1): verbs, paths and ESMTP parameters, as pure
// functions over one command line (without its CRLF). Address rules follow RFC 5321
// and Postfix's smtpd: source routes are stripped, the domain is after the last
// unquoted '@', invalid input is a reply, never a guess.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "smtp/reply.hpp"

namespace tlsrelay::smtp {

enum class Verb {
    helo, ehlo, mail, rcpt, data, rset, noop, quit, vrfy, expn, help, starttls, bdat, auth,
    unknown,    // anything else: 500 5.5.2
    forbidden,  // GET, POST, CONNECT, or "Header-like:" text: hang up (Postfix smtpd_forbidden_commands)
};

struct Command {
    Verb verb = Verb::unknown;
    std::string_view name;      // the verb as sent (for logs and counts)
    std::string_view argument;  // everything after the verb and one space, trailing spaces trimmed
};

// Splits a line into verb and argument. "MAIL FROM:<a@b>" -> {mail, "FROM:<a@b>"}.
// Forbidden: GET/POST/CONNECT, or a first word shaped like "Name:" ([A-Za-z][A-Za-z0-9-]*
// then ':'), unless Name is a verb ("MAIL:" is unknown, a confused client).
Command parse_command(std::string_view line);

struct Address {
    std::string text;    // canonical mailbox as stored and forwarded: local@domain ("" = <>)
    std::string domain;  // lower-cased domain part ("" for <>), literal kept as "[...]"
    bool utf8 = false;   // contains non-ASCII bytes (needs SMTPUTF8)
};

enum class Body { seven_bit, eight_bit_mime };

struct MailFrom {
    Address sender;
    std::optional<std::uint64_t> size;  // SIZE=
    Body body = Body::seven_bit;        // BODY=
    bool smtputf8 = false;              // SMTPUTF8
};

struct RcptTo {
    Address recipient;
};

struct ParseLimits {
    std::uint64_t max_message_size = 50ull << 20;  // SIZE= above this: 552 5.3.4
};

// argument is Command::argument of a MAIL command ("FROM:<a@b> SIZE=10").
// Errors: 501 5.5.4 / 501 5.1.7 syntax, 555 5.5.4 unknown parameter, 552 5.3.4 SIZE too big,
// 553 5.6.7 non-ASCII without SMTPUTF8, 501 5.5.2 non-ASCII that is not UTF-8 (Postfix
// says 500; 501 is RFC 5321 §4.1.2's code for bad characters in an argument).
std::variant<MailFrom, Reply> parse_mail(std::string_view argument, const ParseLimits& limits);

// argument is Command::argument of a RCPT command ("TO:<u@d>"). utf8_allowed: the
// transaction declared SMTPUTF8. Errors: 501 5.1.3 bad address, 501 5.5.4 syntax,
// 555 5.5.4 unknown parameter, 553 5.6.7.
std::variant<RcptTo, Reply> parse_rcpt(std::string_view argument, bool utf8_allowed);

// EHLO/HELO argument check: non-empty, no control characters. Returns the error reply if bad.
std::optional<Reply> check_helo(std::string_view argument);

}  // namespace tlsrelay::smtp

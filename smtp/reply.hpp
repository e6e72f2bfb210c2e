// SMTP replies (RFC 5321 §4.2) with RFC 3463 enhanced status codes, formatted for the
// wire: every line CRLF-terminated, multi-line replies with "250-" continuations.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tlsrelay::smtp {

struct Reply {
    int code = 0;          // 250, 354, 421, 550 ...
    std::string enhanced;  // "2.1.0", or "" for replies that carry none (220, 354, EHLO)
    std::string text;

    std::string wire() const;  // "250 2.1.0 Ok\r\n"
    bool positive() const { return code >= 200 && code < 400; }
};

// "250-first\r\n250-second\r\n250 last\r\n"
std::string multiline(int code, const std::vector<std::string>& lines);

}  // namespace tlsrelay::smtp

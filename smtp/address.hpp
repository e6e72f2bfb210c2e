// Mailbox syntax for MAIL FROM / RCPT TO paths (RFC 5321 §4.1.2, §4.5.3.1; RFC 6531
// for UTF-8). Follows Postfix smtpd: a source route is stripped, the domain is after
// the last unquoted '@', and the local part is kept byte-exact. Pure functions.
#pragma once

#include <cstddef>
#include <string_view>
#include <variant>

#include "smtp/command.hpp"

namespace tlsrelay::smtp {

// RFC 5321 §4.5.3.1 floors, used as our caps: longer input is refused, never truncated.
inline constexpr std::size_t max_local_part = 64;
inline constexpr std::size_t max_domain = 255;
inline constexpr std::size_t max_path = 256;  // including '<' and '>'

enum class AddressError {
    syntax,    // 501 5.1.7 (MAIL) / 5.1.3 (RCPT)
    too_long,  // local part or path over the caps above: same codes
    bad_utf8,  // non-ASCII bytes that are not UTF-8: 501 5.5.2
};

// path is the text between '<' and '>' (or the whole unbracketed address), not empty.
// allow_postmaster: accept the bare local part "postmaster" (any case) without a
// domain, as RFC 5321 §4.1.1.3 requires for RCPT. Address::utf8 reports non-ASCII
// bytes; whether SMTPUTF8 was declared is the caller's check.
std::variant<Address, AddressError> parse_mailbox(std::string_view path, bool allow_postmaster);

// A domain as used after '@': LDH labels of 1-63 octets without leading or trailing
// hyphen (bytes >= 0x80 allowed as U-label text), at most 255 octets; or an address
// literal "[192.0.2.1]" / "[IPv6:2001:db8::1]".
bool valid_domain(std::string_view domain);
bool valid_address_literal(std::string_view literal);  // includes the brackets

// Well-formed UTF-8 (no overlong forms, surrogates or code points above U+10FFFF).
bool valid_utf8(std::string_view text);

// Bytes below 0x20 (CR, LF, NUL ...) and DEL: never legal in a command argument.
bool has_control(std::string_view text);

}  // namespace tlsrelay::smtp

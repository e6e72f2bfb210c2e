#include "smtp/address.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <optional>
#include <string>

#include "tls/text.hpp"

namespace tlsrelay::smtp {
namespace {

bool is_alnum(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

char to_lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

using tls::iequals;

// RFC 5321 atext, plus UTF-8 bytes (RFC 6531 §3.3); validity of the UTF-8 is checked
// once for the whole path.
bool is_atext(unsigned char c) {
    static constexpr std::string_view specials = "!#$%&'*+-/=?^_`{|}~";
    return is_alnum(c) || c >= 0x80 || specials.find(static_cast<char>(c)) != specials.npos;
}

// RFC 5321 Quoted-string: DQUOTE *(qtext / quoted-pair) DQUOTE, filling all of text.
bool valid_quoted_string(std::string_view text) {
    if (text.size() < 2 || text.front() != '"' || text.back() != '"') return false;
    for (std::size_t i = 1; i + 1 < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == '"') return false;  // closes early: `"a"b"`
        if (c == '\\') {
            if (++i + 1 >= text.size()) return false;  // escapes the closing quote
        }
    }
    return true;
}

// Dot-string, leniently like Postfix: atext and dots in any order (real mailboxes
// such as "a..b" exist). Backslashes outside quotes are refused, not re-quoted.
bool valid_local_part(std::string_view local) {
    if (local.empty()) return false;
    if (local.front() == '"') return valid_quoted_string(local);
    return std::all_of(local.begin(), local.end(),
                       [](char c) { return c == '.' || is_atext(static_cast<unsigned char>(c)); });
}

bool valid_label(std::string_view label) {
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    return std::all_of(label.begin(), label.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return is_alnum(byte) || byte == '-' || byte >= 0x80;
    });
}

bool valid_ipv4(std::string_view text) {
    int parts = 0;
    std::size_t start = 0;
    while (true) {
        const std::size_t dot = std::min(text.find('.', start), text.size());
        const std::string_view part = text.substr(start, dot - start);
        if (part.empty() || part.size() > 3) return false;
        if (!std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return false;
        if (std::stoi(std::string(part)) > 255) return false;
        ++parts;
        if (dot == text.size()) break;
        start = dot + 1;
    }
    return parts == 4;
}

bool valid_ipv6(std::string_view text) {
    if (text.empty() || text.size() > 45) return false;
    in6_addr addr{};
    return inet_pton(AF_INET6, std::string(text).c_str(), &addr) == 1;
}

// Strips "@a.example,@b.example:" (RFC 5321 §4.1.2 A-d-l, deprecated): Postfix's
// extract_addr() drops it and routes on the mailbox only. nullopt if malformed.
std::optional<std::string_view> strip_source_route(std::string_view path) {
    if (path.empty() || path.front() != '@') return path;
    const std::size_t colon = path.find(':');
    if (colon == path.npos) return std::nullopt;
    const std::string_view route = path.substr(0, colon);
    std::size_t start = 0;
    while (true) {
        const std::size_t comma = std::min(route.find(',', start), route.size());
        const std::string_view hop = route.substr(start, comma - start);
        if (hop.size() < 2 || hop.front() != '@' || !valid_domain(hop.substr(1)))
            return std::nullopt;
        if (comma == route.size()) break;
        start = comma + 1;
    }
    return path.substr(colon + 1);
}

// Position of the last '@' outside a quoted string; npos if none, nullopt if a
// quote is left open.
std::optional<std::size_t> last_unquoted_at(std::string_view mailbox) {
    std::size_t at = mailbox.npos;
    bool quoted = false;
    for (std::size_t i = 0; i < mailbox.size(); ++i) {
        const char c = mailbox[i];
        if (quoted && c == '\\') {
            ++i;
        } else if (c == '"') {
            quoted = !quoted;
        } else if (c == '@' && !quoted) {
            at = i;
        }
    }
    if (quoted) return std::nullopt;
    return at;
}

struct Utf8Lead {
    std::size_t extra = 0;  // continuation bytes; 0 = not a valid lead byte
    unsigned bits = 0;      // payload bits of the lead byte
    unsigned min = 0;       // smallest code point of this length (refuses overlong forms)
};

Utf8Lead utf8_lead(unsigned char lead) {
    if (lead >= 0xc2 && lead <= 0xdf) return {1, lead & 0x1fu, 0x80};
    if (lead >= 0xe0 && lead <= 0xef) return {2, lead & 0x0fu, 0x800};
    if (lead >= 0xf0 && lead <= 0xf4) return {3, lead & 0x07u, 0x10000};
    return {};
}

}  // namespace

bool has_control(std::string_view text) {
    return std::any_of(text.begin(), text.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte < 0x20 || byte == 0x7f;
    });
}

bool valid_utf8(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size()) {
        const auto lead = static_cast<unsigned char>(text[i]);
        if (lead < 0x80) {
            ++i;
            continue;
        }
        const Utf8Lead shape = utf8_lead(lead);
        if (shape.extra == 0 || i + shape.extra >= text.size()) return false;
        unsigned cp = shape.bits;
        for (std::size_t k = 1; k <= shape.extra; ++k) {
            const auto cont = static_cast<unsigned char>(text[i + k]);
            if ((cont & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (cont & 0x3f);
        }
        if (cp < shape.min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += shape.extra + 1;
    }
    return true;
}

bool valid_address_literal(std::string_view literal) {
    if (literal.size() < 3 || literal.front() != '[' || literal.back() != ']') return false;
    const std::string_view inside = literal.substr(1, literal.size() - 2);
    constexpr std::string_view v6_tag = "IPv6:";
    if (inside.size() > v6_tag.size() && iequals(inside.substr(0, v6_tag.size()), v6_tag))
        return valid_ipv6(inside.substr(v6_tag.size()));
    return valid_ipv4(inside);
}

bool valid_domain(std::string_view domain) {
    if (domain.empty() || domain.size() > max_domain) return false;
    if (domain.front() == '[') return valid_address_literal(domain);
    std::size_t start = 0;
    while (true) {
        const std::size_t dot = std::min(domain.find('.', start), domain.size());
        if (!valid_label(domain.substr(start, dot - start))) return false;
        if (dot == domain.size()) return true;
        start = dot + 1;
    }
}

std::variant<Address, AddressError> parse_mailbox(std::string_view path, bool allow_postmaster) {
    if (path.empty() || has_control(path)) return AddressError::syntax;
    if (path.size() + 2 > max_path) return AddressError::too_long;
    Address address;
    address.utf8 = std::any_of(path.begin(), path.end(),
                               [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
    if (address.utf8 && !valid_utf8(path)) return AddressError::bad_utf8;

    const auto mailbox = strip_source_route(path);
    if (!mailbox || mailbox->empty()) return AddressError::syntax;
    const auto at = last_unquoted_at(*mailbox);
    if (!at) return AddressError::syntax;
    if (*at == mailbox->npos) {
        if (!allow_postmaster || !iequals(*mailbox, "postmaster")) return AddressError::syntax;
        address.text = std::string(*mailbox);
        return address;
    }
    const std::string_view local = mailbox->substr(0, *at);
    const std::string_view domain = mailbox->substr(*at + 1);
    if (local.size() > max_local_part) return AddressError::too_long;
    if (!valid_local_part(local) || !valid_domain(domain)) return AddressError::syntax;

    address.text = std::string(*mailbox);
    address.domain.reserve(domain.size());
    for (char c : domain) address.domain.push_back(to_lower(c));
    return address;
}

}  // namespace tlsrelay::smtp

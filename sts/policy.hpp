// An MTA-STS policy (RFC 8461 section 3.2, the body of
// https://mta-sts.<domain>/.well-known/mta-sts.txt) and the MX host check of section
// 4.1. Pure: the parser takes the body as bytes and either returns the policy or says
// why it is not one; it never throws, whatever the bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tlsrelay::sts {

enum class Mode { enforce, testing, none };
std::string_view to_string(Mode mode);

inline constexpr std::int64_t max_max_age = 31557600;  // one year, section 3.2

struct Policy {
    Mode mode = Mode::none;
    std::vector<std::string> mx;  // lower-case patterns: "mx.example.com" or "*.example.net"
    std::int64_t max_age = 0;     // seconds, at most max_max_age
};

struct PolicyParse {
    std::optional<Policy> policy;
    std::string error;  // why the body is not a policy
};

// Lines end in LF or CRLF; "name: value" with optional blanks after the colon and
// at the end; unknown fields are ignored; mx may repeat, of any other field the first
// one counts. version must be STSv1; mode enforce, testing or none; max_age 1 to 10
// digits (larger than one year is cut to one year); enforce and testing need an mx.
PolicyParse parse_policy(std::string_view body);

// Section 4.1: a pattern "*.example.net" matches exactly one label more on the left
// ("mx.example.net", not "example.net" nor "a.mx.example.net"); other patterns match
// the host name exactly. Case-insensitive; a trailing dot on the host is ignored.
bool mx_pattern_matches(std::string_view pattern, std::string_view host);
bool policy_allows_mx(const Policy& policy, std::string_view host);

// "mx1.example.com, *.example.net", for messages.
std::string mx_list(const Policy& policy);

}  // namespace tlsrelay::sts

// Small text helpers shared by the policy engine: ASCII case folding, Postfix's
// mystrtok()-style splitting (empty tokens skipped) and valid_hostname().
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tlsrelay::tls {

inline constexpr std::string_view comma_space = ", \t\r\n";  // Postfix CHARS_COMMA_SP

std::string lower(std::string_view text);
bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view text, std::string_view prefix);

// Tokens separated by any of `delims`; empty tokens are skipped, as mystrtok().
std::vector<std::string> split(std::string_view text, std::string_view delims);
std::string join(const std::vector<std::string>& items, std::string_view sep);

// Postfix valid_hostname(): labels of letters, digits, '-' and '_', at most 63
// octets each, no empty label, no leading/trailing hyphen, not all-numeric,
// at most 255 octets. Octets >= 0x80 count as letters (valid_utf8_hostname()).
bool valid_hostname(std::string_view name);

// Postfix midna_domain_to_ascii(): a name with non-ASCII octets (UTF-8) as its
// A-label form under UTS #46 (libidn2, NFC input, non-transitional); an all-ASCII
// name unchanged; nullopt when the name cannot be converted.
std::optional<std::string> to_a_label(std::string_view name);

}  // namespace tlsrelay::tls

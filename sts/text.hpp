// Small character helpers shared by the MTA-STS and TLS-RPT parsers (RFC 5234 core
// rules: ALPHA, DIGIT, WSP) and the field grammar both TXT records share. Internal to sts/.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tlsrelay::sts {

inline bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
inline bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
inline bool is_wsp(char c) {
    return c == ' ' || c == '\t';
}

std::string_view trim_wsp(std::string_view s);
std::vector<std::string_view> split_on(std::string_view s, char delimiter);
// (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / "."): extension names in both grammars.
bool extension_name(std::string_view name);
// For messages: control and non-ASCII bytes as \xNN, cut at 100 characters.
std::string printable(std::string_view s);
// RFC 3986 percent-decoding; nullopt for a broken escape.
std::optional<std::string> percent_decode(std::string_view s);

// Whether text starts with version followed by *WSP ";" (e.g. "v=STSv1;").
bool starts_with_version(std::string_view text, std::string_view version);
// The fields after the version of a record that starts_with_version: separated by
// *WSP ";" *WSP, one trailing delimiter allowed, each "name=value". field(name, value)
// returns false to refuse the record; names that are not the caller's go to
// extension_field. false when the record is off the grammar.
bool for_each_field(std::string_view text,
                    const std::function<bool(std::string_view name, std::string_view value)>& field);
// ext-name "=" ext-value, as both grammars define extensions.
bool extension_field(std::string_view name, std::string_view value);
// Of a domain's TXT records, the one starting with version; nullopt with problem set
// ("" when there are no records at all) unless exactly one does.
std::optional<std::string_view> single_record(const std::vector<std::string>& records,
                                              std::string_view version, std::string& problem);

// single_record, then parse on it: Choice{record, ""}, or Choice{nullopt, why not}.
template <class Choice, class Parse>
Choice choose_record(const std::vector<std::string>& records, std::string_view version, Parse parse) {
    std::string problem;
    auto one = single_record(records, version, problem);
    if (!one) return {std::nullopt, problem};
    auto record = parse(*one);
    if (!record) return {std::nullopt, "malformed TXT record \"" + printable(*one) + "\""};
    return {std::move(record), ""};
}

}  // namespace tlsrelay::sts

#include "sts/record.hpp"

#include <algorithm>

#include "sts/text.hpp"

namespace tlsrelay::sts {
namespace {

bool id_char(char c) {
    return is_alpha(c) || is_digit(c);
}

// sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E): no '=', ';', space or controls.
bool ext_value_char(char c) {
    return c >= 0x21 && c <= 0x7e && c != '=' && c != ';';
}

bool starts_as_sts(std::string_view text) {
    if (!text.starts_with("v=STSv1")) return false;
    text.remove_prefix(7);
    text = trim_wsp(text);
    return !text.empty() && text.front() == ';';
}

}  // namespace

std::optional<TxtRecord> parse_txt_record(std::string_view text) {
    if (!starts_as_sts(text)) return std::nullopt;
    auto fields = split_on(text, ';');
    std::optional<TxtRecord> record;
    for (std::size_t i = 1; i < fields.size(); ++i) {
        std::string_view field = trim_wsp(fields[i]);
        if (field.empty()) {
            if (i + 1 == fields.size() && i > 1) break;  // one trailing delimiter
            return std::nullopt;
        }
        auto eq = field.find('=');
        if (eq == std::string_view::npos) return std::nullopt;
        std::string_view name = field.substr(0, eq), value = field.substr(eq + 1);
        if (name == "id") {
            if (record || value.empty() || value.size() > 32 ||
                !std::all_of(value.begin(), value.end(), id_char))
                return std::nullopt;
            record = TxtRecord{std::string(value)};
        } else if (!extension_name(name) || value.empty() ||
                   !std::all_of(value.begin(), value.end(), ext_value_char)) {
            return std::nullopt;
        }
    }
    return record;
}

RecordChoice choose_txt_record(const std::vector<std::string>& records) {
    std::vector<std::string_view> sts;
    for (const auto& r : records)
        if (starts_as_sts(r)) sts.push_back(r);
    if (sts.empty())
        return {std::nullopt, records.empty() ? "" : "no TXT record starts with v=STSv1"};
    if (sts.size() > 1)
        return {std::nullopt,
                std::to_string(sts.size()) + " v=STSv1 TXT records (exactly one is allowed)"};
    auto record = parse_txt_record(sts.front());
    if (!record) return {std::nullopt, "malformed TXT record \"" + printable(sts.front()) + "\""};
    return {record, ""};
}

}  // namespace tlsrelay::sts

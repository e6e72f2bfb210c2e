#include "sts/record.hpp"

#include <algorithm>

#include "sts/text.hpp"

namespace tlsrelay::sts {
namespace {

constexpr std::string_view version = "v=STSv1";

bool id_char(char c) {
    return is_alpha(c) || is_digit(c);
}

}  // namespace

std::optional<TxtRecord> parse_txt_record(std::string_view text) {
    if (!starts_with_version(text, version)) return std::nullopt;
    std::optional<TxtRecord> record;
    bool ok = for_each_field(text, [&](std::string_view name, std::string_view value) {
        if (name != "id") return extension_field(name, value);
        if (record || value.empty() || value.size() > 32 || !std::all_of(value.begin(), value.end(), id_char))
            return false;
        record = TxtRecord{std::string(value)};
        return true;
    });
    return ok ? record : std::nullopt;
}

RecordChoice choose_txt_record(const std::vector<std::string>& records) {
    return choose_record<RecordChoice>(records, version, [](std::string_view r) { return parse_txt_record(r); });
}

}  // namespace tlsrelay::sts

#include "sts/rpt_record.hpp"

#include <algorithm>

#include "sts/text.hpp"

namespace tlsrelay::sts {
namespace {

constexpr std::string_view version = "v=TLSRPTv1";

// local@domain, printable ASCII without blanks, brackets, quotes or a second '@'.
bool plain_address(std::string_view a) {
    auto at = a.find('@');
    if (at == std::string_view::npos || at == 0 || at + 1 == a.size() || a.size() > 254) return false;
    if (a.find('@', at + 1) != std::string_view::npos) return false;
    return std::all_of(a.begin(), a.end(), [](char c) {
        return c > 0x20 && c < 0x7f && c != '<' && c != '>' && c != '"' && c != '\\' && c != ',' &&
               c != ';' && c != '(' && c != ')';
    });
}

// One URI of rua=: adds it to the record; false when it is malformed.
bool add_uri(std::string_view uri, RptRecord& r) {
    if (uri.empty() || !std::all_of(uri.begin(), uri.end(), [](char c) { return c > 0x20 && c < 0x7f; }))
        return false;
    if (uri.starts_with("mailto:")) {
        std::string_view to = uri.substr(7);
        to = to.substr(0, to.find('?'));  // hfields (RFC 6068) are not ours to honour
        auto address = percent_decode(to);
        if (!address || !plain_address(*address)) return false;
        if (std::find(r.mailto.begin(), r.mailto.end(), *address) == r.mailto.end())
            r.mailto.push_back(*address);
    } else if (uri.starts_with("https://") && uri.size() > 8) {
        r.https.emplace_back(uri);
    }
    return true;  // another scheme: a superset of the specification, ignored
}

bool parse_rua(std::string_view value, RptRecord& r) {
    std::size_t taken = 0;
    for (std::string_view uri : split_on(value, ',')) {
        if (!add_uri(trim_wsp(uri), r)) return false;
        if (++taken == max_rua) break;
    }
    return !r.mailto.empty() || !r.https.empty();
}

}  // namespace

std::optional<RptRecord> parse_rpt_record(std::string_view text) {
    if (!starts_with_version(text, version)) return std::nullopt;
    std::optional<RptRecord> record;
    bool ok = for_each_field(text, [&](std::string_view name, std::string_view value) {
        if (name != "rua") return extension_field(name, value);
        RptRecord r;
        if (record || !parse_rua(value, r)) return false;
        record = std::move(r);
        return true;
    });
    return ok ? record : std::nullopt;
}

RptRecordChoice choose_rpt_record(const std::vector<std::string>& records) {
    return choose_record<RptRecordChoice>(records, version, [](std::string_view r) { return parse_rpt_record(r); });
}

std::string describe(const RptRecord& record) {
    std::string out;
    for (const auto& m : record.mailto) out += (out.empty() ? "" : ", ") + ("mailto:" + m);
    for (const auto& h : record.https) out += (out.empty() ? "" : ", ") + h;
    return out;
}

}  // namespace tlsrelay::sts

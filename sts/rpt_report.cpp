#include "sts/rpt_report.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <ctime>

#include "sts/text.hpp"
#include "support/log.hpp"

namespace tlsrelay::sts {
namespace {

constexpr std::array<std::string_view, 11> type_names{
    "starttls-not-supported", "certificate-host-mismatch", "certificate-expired",
    "certificate-not-trusted", "validation-failure", "tlsa-invalid", "dnssec-invalid",
    "dane-required", "sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid",
};

struct TextToType {
    std::string_view needle;
    ResultType type;
};

// First match wins: an expired certificate whose names also differ is reported expired.
constexpr TextToType result_table[] = {
    {"was not offered by host", ResultType::starttls_not_supported},
    {"refused to start TLS", ResultType::starttls_not_supported},
    {"certificate has expired", ResultType::certificate_expired},
    {"certificate verification failed", ResultType::certificate_not_trusted},
    {" do not match ", ResultType::certificate_host_mismatch},
    {"the certificate has no DNS names", ResultType::certificate_host_mismatch},
    {"TLSA records unusable", ResultType::tlsa_invalid},
    {"TLSA lookup error", ResultType::dnssec_invalid},
    {"no TLSA records found", ResultType::dane_required},
    {"non DNSSEC destination", ResultType::dane_required},
    {"MTA-STS policy fetch failed", ResultType::sts_policy_fetch_error},
    {"MTA-STS policy invalid", ResultType::sts_policy_invalid},
    {"MTA-STS policy server certificate", ResultType::sts_webpki_invalid},
};

constexpr std::string_view magic = "tlsrpt-period 1";

// Fields of the durable form are tab-separated; %, tab, CR, LF and controls escaped.
std::string escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || c == '%' || u == 0x7f) {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", u);
            out += buf;
        } else {
            out += c;
        }
    }
    return out;
}

template <class T>
std::optional<T> number(std::string_view s) {
    T v{};
    if (s.empty() || s.size() > 20) return std::nullopt;
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc{} || r.ptr != s.data() + s.size()) return std::nullopt;
    return v;
}

std::optional<std::vector<std::string>> fields_of(std::string_view line, std::size_t count) {
    auto parts = split_on(line, '\t');
    if (parts.size() != count) return std::nullopt;
    std::vector<std::string> out;
    for (auto p : parts) {
        auto u = percent_decode(p);
        if (!u) return std::nullopt;
        out.push_back(std::move(*u));
    }
    return out;
}

// One line after the header into period; false when it does not parse.
bool parse_line(std::string_view line, RptPeriod& period) {
    std::string_view tag = line.substr(0, line.find('\t'));
    if (tag == "P") {
        auto f = fields_of(line, 5);
        if (!f) return false;
        auto s = number<std::uint64_t>((*f)[2]), fl = number<std::uint64_t>((*f)[3]);
        if (!s || !fl || (*f)[4] != "-") return false;
        period.policies.push_back({RptPolicy{(*f)[1], {}, {}}, *s, *fl, {}});
        return true;
    }
    if (period.policies.empty()) return false;
    RptPolicyCounts& p = period.policies.back();
    if (tag == "S" || tag == "M") {
        auto f = fields_of(line, 2);
        if (!f) return false;
        (tag == "S" ? p.policy.strings : p.policy.mx_hosts).push_back((*f)[1]);
        return true;
    }
    if (tag != "F") return false;
    auto f = fields_of(line, 7);
    if (!f) return false;
    auto n = number<std::uint64_t>((*f)[6]);
    if (!n) return false;
    p.details[RptFailure{(*f)[1], (*f)[2], (*f)[3], (*f)[4], (*f)[5]}] = *n;
    return true;
}

std::string json_list(const std::vector<std::string>& items) {
    std::string out = "[";
    for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + json_string(items[i]);
    return out + "]";
}

std::string failure_json(const RptFailure& f, std::uint64_t count) {
    std::string out = "{\"result-type\": " + json_string(f.result_type);
    if (!f.sending_mta_ip.empty()) out += ", \"sending-mta-ip\": " + json_string(f.sending_mta_ip);
    if (!f.receiving_mx_hostname.empty())
        out += ", \"receiving-mx-hostname\": " + json_string(f.receiving_mx_hostname);
    if (!f.receiving_ip.empty()) out += ", \"receiving-ip\": " + json_string(f.receiving_ip);
    out += ", \"failed-session-count\": " + std::to_string(count);
    if (!f.reason_code.empty()) out += ", \"failure-reason-code\": " + json_string(f.reason_code);
    return out + "}";
}

std::string policy_json(const RptPolicyCounts& p, const std::string& domain) {
    std::string out = "{\"policy\": {\"policy-type\": " + json_string(p.policy.type);
    if (!p.policy.strings.empty()) out += ", \"policy-string\": " + json_list(p.policy.strings);
    out += ", \"policy-domain\": " + json_string(domain);
    if (!p.policy.mx_hosts.empty()) out += ", \"mx-host\": " + json_list(p.policy.mx_hosts);
    out += "}, \"summary\": {\"total-successful-session-count\": " + std::to_string(p.successes) +
           ", \"total-failure-session-count\": " + std::to_string(p.failures) + "}";
    if (!p.details.empty()) {
        out += ", \"failure-details\": [";
        bool first = true;
        for (const auto& [f, n] : p.details) {
            out += (first ? "" : ", ") + failure_json(f, n);
            first = false;
        }
        out += "]";
    }
    return out + "}";
}

}  // namespace

std::string_view to_string(ResultType type) {
    return type_names[static_cast<std::size_t>(type)];
}

ResultType result_type_for(std::string_view reason) {
    for (const auto& row : result_table)
        if (reason.find(row.needle) != std::string_view::npos) return row.type;
    return ResultType::validation_failure;
}

void RptPeriod::add(const RptSession& session) {
    auto it = std::find_if(policies.begin(), policies.end(),
                           [&](const RptPolicyCounts& p) { return p.policy == session.policy; });
    if (it == policies.end()) it = policies.insert(policies.end(), RptPolicyCounts{session.policy, 0, 0, {}});
    if (!session.failure) {
        ++it->successes;
        return;
    }
    ++it->failures;
    ++it->details[*session.failure];
}

std::uint64_t RptPeriod::sessions() const {
    std::uint64_t n = 0;
    for (const auto& p : policies) n += p.successes + p.failures;
    return n;
}

std::int64_t utc_day_begin(std::int64_t t) {
    std::int64_t day = t / 86400;
    if (t % 86400 < 0) --day;
    return day * 86400;
}

std::string rfc3339(std::int64_t t) { return support::utc_time(t, "%Y-%m-%dT%H:%M:%SZ"); }

std::string serialize(const RptPeriod& period) {
    std::string out = std::string(magic) + "\n" + escape(period.domain) + "\t" +
                      std::to_string(period.begin) + "\t" + std::to_string(period.end) + "\n";
    for (const auto& p : period.policies) {
        out += "P\t" + escape(p.policy.type) + "\t" + std::to_string(p.successes) + "\t" +
               std::to_string(p.failures) + "\t-\n";
        for (const auto& s : p.policy.strings) out += "S\t" + escape(s) + "\n";
        for (const auto& m : p.policy.mx_hosts) out += "M\t" + escape(m) + "\n";
        for (const auto& [f, n] : p.details)
            out += "F\t" + escape(f.result_type) + "\t" + escape(f.sending_mta_ip) + "\t" +
                   escape(f.receiving_mx_hostname) + "\t" + escape(f.receiving_ip) + "\t" +
                   escape(f.reason_code) + "\t" + std::to_string(n) + "\n";
    }
    return out + "end\n";
}

std::optional<RptPeriod> parse_period(std::string_view text) {
    if (!text.ends_with("\nend\n")) return std::nullopt;
    text.remove_suffix(4);
    auto lines = split_on(text, '\n');
    lines.pop_back();  // after the last LF
    if (lines.size() < 2 || lines[0] != magic) return std::nullopt;
    auto head = fields_of(lines[1], 3);
    if (!head) return std::nullopt;
    auto begin = number<std::int64_t>((*head)[1]), end = number<std::int64_t>((*head)[2]);
    if (!begin || !end || *end <= *begin || (*head)[0].empty()) return std::nullopt;
    RptPeriod period{(*head)[0], *begin, *end, {}};
    for (std::size_t i = 2; i < lines.size(); ++i)
        if (!parse_line(lines[i], period)) return std::nullopt;
    return period;
}

std::string report_json(const RptPeriod& period, const ReportMeta& meta) {
    std::string out = "{\"organization-name\": " + json_string(meta.organization) +
                      ", \"date-range\": {\"start-datetime\": " + json_string(rfc3339(period.begin)) +
                      ", \"end-datetime\": " + json_string(rfc3339(period.end - 1)) +
                      "}, \"contact-info\": " + json_string(meta.contact) +
                      ", \"report-id\": " + json_string(meta.report_id) + ", \"policies\": [";
    for (std::size_t i = 0; i < period.policies.size(); ++i)
        out += (i ? ", " : "") + policy_json(period.policies[i], period.domain);
    return out + "]}";
}

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u >= 0x7f) {  // our strings are ASCII; anything else escaped byte-wise
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", u);
            out += buf;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

}  // namespace tlsrelay::sts

#include "sts/policy.hpp"

#include <algorithm>

#include "sts/text.hpp"
#include "tls/text.hpp"

namespace tlsrelay::sts {
namespace {

// RFC 5321 Domain: LDH labels of 1-63 octets, no leading or trailing hyphen.
bool valid_domain(std::string_view d) {
    if (d.empty() || d.size() > 253) return false;
    for (auto label : split_on(d, '.')) {
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
            return false;
        if (!std::all_of(label.begin(), label.end(),
                         [](char c) { return is_alpha(c) || is_digit(c) || c == '-'; }))
            return false;
    }
    return true;
}

bool valid_pattern(std::string_view p) {
    if (p.starts_with("*.")) p.remove_prefix(2);
    return valid_domain(p);
}

// Visible ASCII and blanks: what any field value may hold.
bool clean_value(std::string_view v) {
    return std::all_of(v.begin(), v.end(),
                       [](char c) { return (c >= 0x21 && c <= 0x7e) || is_wsp(c); });
}

struct Fields {
    std::optional<std::string> version, mode, max_age;
    std::vector<std::string> mx;
};

// Splits the body into fields; an error text when a line is not "name: value".
std::string read_fields(std::string_view body, Fields& f) {
    auto lines = split_on(body, '\n');
    for (std::size_t n = 0; n < lines.size(); ++n) {
        std::string_view line = lines[n];
        if (line.ends_with('\r')) line.remove_suffix(1);
        if (trim_wsp(line).empty()) continue;
        const std::string where = "line " + std::to_string(n + 1) + ": ";
        auto colon = line.find(':');
        if (colon == std::string_view::npos)
            return where + "no \"name:\" in \"" + printable(line) + "\"";
        std::string_view name = line.substr(0, colon), value = trim_wsp(line.substr(colon + 1));
        if (!extension_name(name)) return where + "bad field name \"" + printable(name) + "\"";
        if (!clean_value(value))
            return where + "control or non-ASCII characters in \"" + printable(line) + "\"";
        auto first = [&](std::optional<std::string>& slot) {
            if (!slot) slot = std::string(value);
        };
        if (name == "version")
            first(f.version);
        else if (name == "mode")
            first(f.mode);
        else if (name == "max_age")
            first(f.max_age);
        else if (name == "mx")
            f.mx.push_back(tls::lower(value));
    }
    return "";
}

std::optional<Mode> parse_mode(std::string_view m) {
    if (m == "enforce") return Mode::enforce;
    if (m == "testing") return Mode::testing;
    if (m == "none") return Mode::none;
    return std::nullopt;
}

}  // namespace

std::string_view to_string(Mode mode) {
    switch (mode) {
        case Mode::enforce:
            return "enforce";
        case Mode::testing:
            return "testing";
        case Mode::none:
            break;
    }
    return "none";
}

PolicyParse parse_policy(std::string_view body) {
    Fields f;
    if (auto error = read_fields(body, f); !error.empty()) return {std::nullopt, error};
    if (!f.version) return {std::nullopt, "no version field"};
    if (*f.version != "STSv1")
        return {std::nullopt, "version \"" + printable(*f.version) + "\" is not STSv1"};
    if (!f.mode) return {std::nullopt, "no mode field"};
    auto mode = parse_mode(*f.mode);
    if (!mode)
        return {std::nullopt,
                "mode \"" + printable(*f.mode) + "\" is not enforce, testing or none"};
    if (!f.max_age) return {std::nullopt, "no max_age field"};
    const std::string& age = *f.max_age;
    if (age.empty() || age.size() > 10 || !std::all_of(age.begin(), age.end(), is_digit))
        return {std::nullopt, "max_age \"" + printable(age) + "\" is not 1 to 10 digits"};
    for (const auto& p : f.mx)
        if (!valid_pattern(p))
            return {std::nullopt, "mx \"" + printable(p) + "\" is not a host name or *.domain"};
    if (f.mx.empty() && *mode != Mode::none)
        return {std::nullopt, "mode " + std::string(to_string(*mode)) + " without an mx field"};
    Policy p;
    p.mode = *mode;
    p.mx = std::move(f.mx);
    p.max_age = std::min<std::int64_t>(std::stoll(age), max_max_age);
    return {std::move(p), ""};
}

bool mx_pattern_matches(std::string_view pattern, std::string_view host) {
    if (host.ends_with('.')) host.remove_suffix(1);
    std::string h = tls::lower(host), p = tls::lower(pattern);
    if (!p.starts_with("*.")) return h == p;
    std::string_view parent(p);
    parent.remove_prefix(1);  // ".example.net"
    if (h.size() <= parent.size() || !std::string_view(h).ends_with(parent)) return false;
    std::string_view label(h.data(), h.size() - parent.size());
    return label.find('.') == std::string_view::npos;  // exactly one label, not empty
}

bool policy_allows_mx(const Policy& policy, std::string_view host) {
    return std::any_of(policy.mx.begin(), policy.mx.end(),
                       [&](const std::string& p) { return mx_pattern_matches(p, host); });
}

std::string mx_list(const Policy& policy) {
    std::string out;
    for (const auto& p : policy.mx) out += (out.empty() ? "" : ", ") + p;
    return out;
}

}  // namespace tlsrelay::sts

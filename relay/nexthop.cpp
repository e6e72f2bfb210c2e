#include "relay/nexthop.hpp"

#include <charconv>

#include "tls/text.hpp"

namespace tlsrelay::relay {
namespace {

using tls::lower;

std::optional<unsigned short> parse_port(std::string_view p) {
    if (p == "smtp") return 25;
    if (p == "submission") return 587;
    if (p == "smtps" || p == "submissions") return 465;
    unsigned v = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (p.empty() || ec != std::errc() || end != p.data() + p.size() || v == 0 || v > 65535)
        return std::nullopt;
    return static_cast<unsigned short>(v);
}

std::optional<NextHop> parse_one(std::string_view text, unsigned short default_port);

}  // namespace

std::optional<NextHop> parse_nexthop(std::string_view text, unsigned short default_port) {
    std::vector<NextHop> list;
    size_t pos = 0;
    while ((pos = text.find_first_not_of(", \t", pos)) != std::string_view::npos) {
        size_t end = std::min(text.find_first_of(", \t", pos), text.size());
        auto one = parse_one(text.substr(pos, end - pos), default_port);
        if (!one) return std::nullopt;
        list.push_back(std::move(*one));
        pos = end;
    }
    if (list.empty()) return std::nullopt;
    if (list.size() == 1) return list.front();  // stray separators around one destination
    NextHop hop = list.front();
    hop.text = std::string(text);
    hop.list = std::move(list);
    return hop;
}

namespace {

std::optional<NextHop> parse_one(std::string_view text, unsigned short default_port) {
    NextHop hop;
    hop.text = std::string(text);
    hop.port = default_port;
    std::string_view host = text, port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        host = text.substr(1, close - 1);
        hop.mx_lookup = false;
        if (close + 1 < text.size()) {
            if (text[close + 1] != ':') return std::nullopt;
            port = text.substr(close + 2);
            if (port.empty()) return std::nullopt;
        }
        if (host.rfind("ipv6:", 0) == 0 || host.rfind("IPv6:", 0) == 0) host.remove_prefix(5);
    } else if (auto colon = text.rfind(':'); colon != std::string_view::npos) {
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (port.empty()) return std::nullopt;
    }
    if (host.empty()) return std::nullopt;
    if (!port.empty()) {
        auto p = parse_port(port);
        if (!p) return std::nullopt;
        hop.port = *p;
    }
    hop.domain = lower(host);
    hop.host = std::string(host);
    return hop;
}

// transport_maps lookup order (src/global/transport.c find_transport): the whole
// domain, then ".parent" for each parent from the longest to the shortest; the first
// key that has an entry decides, wherever the entry stands in the list.
const config::Route* route_for(const config::DeliveryConfig& d, const std::string& domain) {
    auto entry = [&](std::string_view key) -> const config::Route* {
        for (const auto& r : d.routes)
            if (tls::iequals(r.destination, key)) return &r;
        return nullptr;
    };
    if (domain.empty()) return nullptr;
    if (const auto* r = entry(domain)) return r;
    for (size_t dot = domain.find('.'); dot != std::string::npos; dot = domain.find('.', dot + 1))
        if (const auto* r = entry(std::string_view(domain).substr(dot))) return r;
    return nullptr;
}

}  // namespace

std::optional<NextHop> nexthop_for(const config::DeliveryConfig& d, std::string_view rcpt_domain) {
    std::string domain = lower(rcpt_domain);
    if (const auto* r = route_for(d, domain)) return parse_nexthop(r->nexthop.empty() ? domain : r->nexthop, d.port);
    if (!d.relayhost.empty()) return parse_nexthop(d.relayhost, d.port);
    if (domain.empty()) return std::nullopt;
    return parse_nexthop(domain, d.port);
}

std::string domain_of(std::string_view address) {
    auto at = address.rfind('@');
    if (at == std::string_view::npos) return "";
    return lower(address.substr(at + 1));
}

bool delivered_before(std::string_view a, std::string_view b) {
    auto at_a = a.rfind('@');
    auto at_b = b.rfind('@');
    if (at_a != std::string_view::npos && at_b != std::string_view::npos) {
        // char_traits<char> compares as unsigned bytes, like strcmp and strcasecmp
        int by_domain = lower(a.substr(at_a)).compare(lower(b.substr(at_b)));
        if (by_domain != 0) return by_domain < 0;
    }
    return a < b;
}

}  // namespace tlsrelay::relay

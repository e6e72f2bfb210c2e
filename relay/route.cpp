#include "relay/route.hpp"

#include <algorithm>
#include <random>

#include "support/log.hpp"

namespace tlsrelay::relay {
namespace {

std::string lookup_error(const std::string& name, const char* type, dns::Status s) {
    return "Host or domain name not found. Name service error for name=" + name + " type=" + type +
           ": " + std::string(dns::postfix_text(s));
}

// Postfix's DSN for a failed lookup: temporary 4.4.3, not found 5.4.4, failed 5.4.3.
RouteError dns_error(const std::string& name, const char* type, dns::Status s) {
    const char* dsn = s == dns::Status::try_again ? "4.4.3" : s == dns::Status::failed ? "5.4.3" : "5.4.4";
    return {dsn, lookup_error(name, type, s)};
}

// Postfix (smtp_find_self) compares addresses only: an MX host, or a domain's own
// address, that is one of ours loops back whatever port we listen on (MX -> 127.0.0.1
// with tlsrelay on 127.0.0.1:2525 is 5.4.6, as for Postfix). A bracketed next hop
// names its port on purpose, so there address and port must both be ours.
bool is_self(const Target& t, const std::vector<boost::asio::ip::tcp::endpoint>& self, bool from_dns) {
    namespace ip = boost::asio::ip;
    const ip::address& a = t.address;
    const bool lo = a == ip::address_v4::loopback() || a == ip::address_v6::loopback();
    for (const auto& ep : self) {
        const bool same_port = ep.port() == t.port;
        if (ep.address() == a && (same_port || from_dns)) return true;
        // a wildcard listener: every loopback address reaches it on its port; by
        // address alone, the loopback interface's own address is ours
        if (ep.address().is_unspecified() && a.is_loopback() && (same_port || (from_dns && lo))) return true;
    }
    return false;
}

void shuffle_equal_preferences(std::vector<Target>& targets) {
    static thread_local std::mt19937 rng{std::random_device{}()};
    std::shuffle(targets.begin(), targets.end(), rng);
    std::stable_sort(targets.begin(), targets.end(),
                     [](const Target& a, const Target& b) { return a.preference < b.preference; });
}

}  // namespace

namespace {

// Postfix 3.5+ next-hop list (smtp_connect_remote): each destination in turn with
// its own lookup and address limit; one that does not resolve is passed over, and
// its error stands only when no destination left an address to try.
boost::asio::awaitable<Route> resolve_list(dns::Resolver& resolver, const NextHop& hop,
                                           const std::vector<boost::asio::ip::tcp::endpoint>& self) {
    Route route;
    for (const NextHop& one : hop.list) {
        Route part = co_await resolve_route(resolver, one, self);
        if (part.error) route.error = part.error;
        for (auto& t : part.targets) {
            t.nexthop = one.text;
            route.targets.push_back(std::move(t));
        }
    }
    if (!route.targets.empty()) route.error.reset();
    co_return route;
}

}  // namespace

std::optional<RouteError> relayhost_problem(const RouteError& e, std::string_view hop, std::string_view relayhost) {
    if (!e.hard() || relayhost.empty() || hop != relayhost) return std::nullopt;
    return RouteError{"4.3.5", e.reason};
}

boost::asio::awaitable<Route> resolve_route(dns::Resolver& resolver, const NextHop& hop,
                                            const std::vector<boost::asio::ip::tcp::endpoint>& self) {
    if (!hop.list.empty()) co_return co_await resolve_list(resolver, hop, self);
    Route route;
    const std::string& name = hop.host.empty() ? hop.domain : hop.host;  // as written, for texts
    std::vector<dns::MxRecord> hosts;
    bool mx_secure = true;
    if (hop.mx_lookup) {
        dns::MxResult mx = co_await resolver.mx(hop.domain);
        if (mx.status == dns::Status::ok && mx.null_mx()) {
            route.error = RouteError{"5.1.0", "Domain " + name + " does not accept mail (nullMX)"};
            co_return route;
        }
        if (mx.status == dns::Status::ok) {
            hosts = mx.records;
            mx_secure = mx.secure;
        } else if (mx.status != dns::Status::nxdomain && mx.status != dns::Status::nodata) {
            route.error = dns_error(name, "MX", mx.status);
            co_return route;
        }
    }
    bool implicit = hosts.empty();
    if (implicit) hosts.push_back({0, name});  // [MX1.Example.COM] stays as written
    std::optional<RouteError> last;
    bool soft_seen = false;
    for (const auto& h : hosts) {
        dns::AddressResult a = co_await resolver.addresses(h.host);
        if (a.status != dns::Status::ok) {
            last = dns_error(h.host, a.error_type, a.status);  // the type whose error decided, AAAA on a tie
            if (!last->hard())
                soft_seen = true;
            else if (soft_seen)  // Postfix: a hard error after a soft one is soft (4.4.4), the text stays
                last->dsn = "4.4.4";
            continue;
        }
        for (const auto& addr : a.addresses)
            route.targets.push_back({h.host, addr, hop.port, h.preference, mx_secure, a.secure,
                                     implicit ? std::string() : hop.domain, a.canonical});
    }
    shuffle_equal_preferences(route.targets);
    // Postfix (smtp_addr.c smtp_find_self/smtp_truncate_self): when we are one of the MX
    // hosts, only better MX hosts are candidates. None left: the mail loops back to us,
    // unless a better MX exists that has no address (then it waits for that primary).
    std::optional<int> self_pref;
    for (const auto& t : route.targets)
        if (is_self(t, self, hop.mx_lookup) && (!self_pref || t.preference < *self_pref)) self_pref = t.preference;
    if (self_pref) {
        int best_found = route.targets.front().preference;  // sorted by preference
        int best_pref = best_found;
        for (const auto& h : hosts)
            if (!h.host.empty()) best_pref = std::min<int>(best_pref, h.preference);
        std::erase_if(route.targets, [&](const Target& t) { return t.preference >= *self_pref; });
        if (route.targets.empty()) {
            route.error = best_pref != best_found
                              ? RouteError{"4.4.4", "unable to find primary relay for " + name}
                              : RouteError{"5.4.6", "mail for " + name + " loops back to myself"};
            co_return route;
        }
    }
    if (route.targets.size() > mx_address_limit) route.targets.resize(mx_address_limit);
    if (route.targets.empty() && !implicit)
        support::log_warning("smtp", "no MX host for " + name + " has a valid address record");
    if (route.targets.empty())
        route.error = last ? *last : RouteError{"4.4.3", lookup_error(name, "AAAA", dns::Status::try_again)};
    co_return route;
}

}  // namespace tlsrelay::relay

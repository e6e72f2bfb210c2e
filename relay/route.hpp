// From a next hop to the ordered list of server addresses to try, as Postfix's
// smtp_addr.c does: MX sorted by preference (equal preferences shuffled), implicit MX
// when there is none, null MX, the address limit (5), and Postfix's DSNs and texts
// for every DNS failure.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <optional>
#include <string>
#include <vector>

#include "dns/resolver.hpp"
#include "relay/nexthop.hpp"

namespace tlsrelay::relay {

struct Target {
    std::string hostname;  // MX host (or the next-hop host)
    boost::asio::ip::address address;
    unsigned short port = 25;
    int preference = 0;
    // DNSSEC facts for DANE (meaningful with dns.dnssec): the MX RRset that named this
    // host was validated (true when no MX RRset was used: a bracketed next hop or an
    // implicit MX, as Postfix treats them), and this host's address records were.
    bool mx_secure = true;
    bool host_secure = false;
    std::string mx_qname;  // the domain whose MX RRset named this host ("" when none)
    std::string canonical; // the CNAME target of hostname's address lookup ("" when no alias)
    std::string nexthop;   // the list element this address came from: its policy-table key ("" = the hop)
};

struct RouteError {
    std::string dsn;
    std::string reason;
    bool hard() const { return !dsn.empty() && dsn[0] == '5'; }
};

struct Route {
    std::vector<Target> targets;
    std::optional<RouteError> error;  // set when targets is empty
};

// Postfix smtp_connect.c: when the next hop is the relayhost itself (compared as
// written) a hard outcome (it does not resolve, has a null MX, loops back) is taken
// for a configuration problem and deferred as 4.3.5 with the same reason, not
// bounced. nullopt when that does not apply.
std::optional<RouteError> relayhost_problem(const RouteError& e, std::string_view hop, std::string_view relayhost);

constexpr std::size_t mx_address_limit = 5;  // smtp_mx_address_limit
constexpr unsigned mx_session_limit = 2;     // smtp_mx_session_limit

// self: our own listening endpoints, for "mail for X loops back to myself".
boost::asio::awaitable<Route> resolve_route(dns::Resolver& resolver, const NextHop& hop,
                                            const std::vector<boost::asio::ip::tcp::endpoint>& self);

}  // namespace tlsrelay::relay

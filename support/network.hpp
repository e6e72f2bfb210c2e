// IP networks in CIDR notation ("127.0.0.0/8", "::1/128") and membership tests.
// IPv4-mapped IPv6 peers (::ffff:a.b.c.d) are matched against IPv4 networks,
// as Postfix's mynetworks does.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tlsrelay::support {

struct Network {
    boost::asio::ip::address base;
    unsigned prefix = 0;

    bool contains(const boost::asio::ip::address& addr) const;
    std::string to_string() const;
};

// Parses "a.b.c.d/n", "x::y/n" or a bare address (a host network). Host bits
// set beyond the prefix are rejected, like Postfix's "non-null host address bits".
std::optional<Network> parse_network(std::string_view text, std::string* error = nullptr);

bool any_contains(const std::vector<Network>& nets, const boost::asio::ip::address& addr);

// Unwraps ::ffff:a.b.c.d into a.b.c.d; other addresses are returned unchanged.
boost::asio::ip::address unmap(const boost::asio::ip::address& addr);

}  // namespace tlsrelay::support

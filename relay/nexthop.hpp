// Postfix next-hop syntax (src/util/host_port.c, trivial-rewrite): "[host]:port",
// "[host]", "host:port", "host"; brackets suppress the MX lookup. Also the choice of
// next hop for a recipient domain: [[delivery.route]], then relayhost, then the domain.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace tlsrelay::relay {

struct NextHop {
    std::string text;    // verbatim, as written: the TLS policy-table key
    std::string domain;  // host or domain without brackets and port (lower case)
    unsigned short port = 25;
    bool mx_lookup = true;  // false for [host] forms
    std::string host;       // domain as written: Postfix names a relayhost so in relay= and texts
    // Postfix 3.5+ next-hop list ("[a], [b]": relayhost, transport): each destination
    // in turn, each with its own policy-table key; empty for a single destination,
    // whose fields above then describe it (for a list they are the first element's).
    std::vector<NextHop> list;
};

// Parses a next-hop destination, or a list of them separated by commas and/or
// whitespace; default_port applies when none is written.
std::optional<NextHop> parse_nexthop(std::string_view text, unsigned short default_port);

// The next hop for a recipient domain under the delivery configuration.
std::optional<NextHop> nexthop_for(const config::DeliveryConfig& d, std::string_view rcpt_domain);

// Lower-cased domain part of an address ("" for none).
std::string domain_of(std::string_view address);

// The order in which Postfix's queue manager hands one next hop's recipients to smtp(8)
// (qmgr_message_sort): by "@domain" ignoring ASCII case, then by the whole address byte
// by byte. A server that takes only so many recipients per transaction then accepts and
// refuses the same ones from both engines.
bool delivered_before(std::string_view a, std::string_view b);

}  // namespace tlsrelay::relay

// Postfix next-hop syntax and the choice of next hop for a recipient domain.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "relay/nexthop.hpp"

namespace tlsrelay::relay {
namespace {

TEST(NextHop, Syntax) {
    struct Case {
        const char* text;
        bool ok;
        const char* domain;
        unsigned port;
        bool mx;
    };
    const Case cases[] = {
        {"example.com", true, "example.com", 25, true},
        {"Example.COM:2525", true, "example.com", 2525, true},  // a port alone keeps the MX lookup
        {"[mx.example.com]", true, "mx.example.com", 25, false},
        {"[mx.example.com]:587", true, "mx.example.com", 587, false},
        {"[192.0.2.1]:26", true, "192.0.2.1", 26, false},
        {"[ipv6:2001:db8::1]:25", true, "2001:db8::1", 25, false},
        {"example.com:submission", true, "example.com", 587, true},
        {"example.com:smtp", true, "example.com", 25, true},
        {"[mx.example.com", false, "", 0, false},
        {"[mx.example.com]x", false, "", 0, false},
        {"example.com:", false, "", 0, false},
        {"example.com:0", false, "", 0, false},
        {"example.com:70000", false, "", 0, false},
        {"", false, "", 0, false},
    };
    for (const auto& c : cases) {
        auto hop = parse_nexthop(c.text, 25);
        ASSERT_EQ(hop.has_value(), c.ok) << c.text;
        if (!c.ok) continue;
        EXPECT_EQ(hop->text, c.text);  // the policy-table key is verbatim
        EXPECT_EQ(hop->domain, c.domain) << c.text;
        EXPECT_EQ(hop->port, c.port) << c.text;
        EXPECT_EQ(hop->mx_lookup, c.mx) << c.text;
    }
    // the host as written: Postfix logs relay=MX.Example.COM[...] for [MX.Example.COM]
    EXPECT_EQ(parse_nexthop("[MX.Example.COM]:587", 25)->host, "MX.Example.COM");
    EXPECT_EQ(parse_nexthop("Example.COM:2525", 25)->host, "Example.COM");
}

TEST(NextHop, ListsOfDestinations) {
    // Postfix 3.5+: commas and/or whitespace; the text stays whole, each element parsed
    auto hop = parse_nexthop("[a.example]:587, b.example\t[c.example]", 25);
    ASSERT_TRUE(hop);
    EXPECT_EQ(hop->text, "[a.example]:587, b.example\t[c.example]");
    ASSERT_EQ(hop->list.size(), 3u);
    EXPECT_EQ(hop->list[0].text, "[a.example]:587");
    EXPECT_EQ(hop->list[0].port, 587);
    EXPECT_FALSE(hop->list[0].mx_lookup);
    EXPECT_EQ(hop->list[1].text, "b.example");
    EXPECT_TRUE(hop->list[1].mx_lookup);
    EXPECT_EQ(hop->list[2].domain, "c.example");
    EXPECT_EQ(hop->domain, "a.example");  // the first element's, for what names one destination
    EXPECT_TRUE(parse_nexthop("[one.example]", 25)->list.empty());
    EXPECT_EQ(parse_nexthop(" [one.example], ", 25)->text, "[one.example]");
    EXPECT_FALSE(parse_nexthop(" , ", 25));
    EXPECT_FALSE(parse_nexthop("[a.example], [b.example", 25));  // one bad element: the list is bad
}

TEST(NextHop, RoutesThenRelayhostThenDomain) {
    config::DeliveryConfig d;
    d.port = 2525;
    d.routes = {{"partner.example", "[mx.partner.example]:587", 1}, {".sub.example", "relay.example", 2}};
    EXPECT_EQ(nexthop_for(d, "partner.example")->text, "[mx.partner.example]:587");
    EXPECT_EQ(nexthop_for(d, "a.sub.example")->text, "relay.example");
    EXPECT_EQ(nexthop_for(d, "a.sub.example")->port, 2525);
    EXPECT_EQ(nexthop_for(d, "sub.example")->text, "sub.example");  // ".x" is subdomains only
    EXPECT_EQ(nexthop_for(d, "other.example")->text, "other.example");
    d.relayhost = "[smarthost.example]";
    EXPECT_EQ(nexthop_for(d, "other.example")->text, "[smarthost.example]");
    EXPECT_EQ(nexthop_for(d, "partner.example")->text, "[mx.partner.example]:587");
}

TEST(NextHop, MostSpecificRouteWinsWhateverItsPlaceInTheList) {
    // transport_maps: the whole domain first, then ".parent" from the longest parent
    config::DeliveryConfig d;
    d.routes = {{".test", "[any.test]", 1}, {".example.test", "[parent.test]", 2},
                {"sub.example.test", "[exact.test]", 3}, {"Example.TEST", "[bare.test]", 4}};
    EXPECT_EQ(nexthop_for(d, "sub.example.test")->text, "[exact.test]");
    EXPECT_EQ(nexthop_for(d, "a.sub.example.test")->text, "[parent.test]");
    EXPECT_EQ(nexthop_for(d, "other.example.test")->text, "[parent.test]");
    EXPECT_EQ(nexthop_for(d, "example.test")->text, "[bare.test]");
    EXPECT_EQ(nexthop_for(d, "other.test")->text, "[any.test]");
    EXPECT_EQ(nexthop_for(d, "example.org")->text, "example.org");
}

TEST(NextHop, DomainOf) {
    EXPECT_EQ(domain_of("u@Example.COM"), "example.com");
    EXPECT_EQ(domain_of("\"a@b\"@c.example"), "c.example");
    EXPECT_EQ(domain_of("postmaster"), "");
}

TEST(NextHop, RecipientsInPostfixOrder) {
    // by domain ignoring case, then the whole address byte by byte (uppercase first)
    std::vector<std::string> rcpts{"two@example.test", "b@A.test", "one@example.test", "Three@example.test",
                                   "three@example.test", "a@a.TEST"};
    std::stable_sort(rcpts.begin(), rcpts.end(), delivered_before);
    EXPECT_EQ(rcpts, (std::vector<std::string>{"a@a.TEST", "b@A.test", "Three@example.test", "one@example.test",
                                               "three@example.test", "two@example.test"}));
    EXPECT_FALSE(delivered_before("x@b.test", "x@B.test"));
    EXPECT_TRUE(delivered_before("x@B.test", "x@b.test"));
}

}  // namespace
}  // namespace tlsrelay::relay

// Route outcomes that are pure decisions: the relayhost's hard failures deferred 4.3.5.
#include "relay/route.hpp"

#include <gtest/gtest.h>

namespace tlsrelay::relay {
namespace {

TEST(Route, RelayhostHardFailureIsAConfigurationProblem) {
    const RouteError nx{"5.4.4", "Host or domain name not found. Name service error for name=x.test type=AAAA: "
                                 "Host not found"};
    auto soft = relayhost_problem(nx, "[x.test]", "[x.test]");
    ASSERT_TRUE(soft);
    EXPECT_EQ(soft->dsn, "4.3.5");
    EXPECT_EQ(soft->reason, nx.reason);
    EXPECT_FALSE(soft->hard());
    EXPECT_EQ(relayhost_problem({"5.1.0", "Domain r.test does not accept mail (nullMX)"}, "r.test", "r.test")->dsn,
              "4.3.5");
}

TEST(Route, OnlyTheRelayhostAsWrittenAndOnlyHardFailures) {
    const RouteError nx{"5.4.4", "not found"};
    EXPECT_FALSE(relayhost_problem(nx, "x.test", ""));               // no relayhost: a domain bounces
    EXPECT_FALSE(relayhost_problem(nx, "[x.test]", "[x.test]:25"));  // a route to another spelling
    EXPECT_FALSE(relayhost_problem({"4.4.3", "try again"}, "[x.test]", "[x.test]"));  // soft stays as it is
}

}  // namespace
}  // namespace tlsrelay::relay

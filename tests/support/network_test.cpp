#include "support/network.hpp"

#include <gtest/gtest.h>

namespace tlsrelay::support {
namespace {

struct Case {
    const char* network;
    const char* address;
    bool inside;
};

TEST(Network, Membership) {
    const Case cases[] = {
        {"127.0.0.0/8", "127.0.0.1", true},
        {"127.0.0.0/8", "127.255.1.2", true},
        {"127.0.0.0/8", "128.0.0.1", false},
        {"10.0.0.0/8", "::ffff:10.1.2.3", true},     // IPv4-mapped IPv6 peer
        {"10.0.0.0/8", "::ffff:192.0.2.1", false},
        {"::1/128", "::1", true},
        {"::1/128", "127.0.0.1", false},
        {"2001:db8::/32", "2001:db8:1::5", true},
        {"2001:db8::/32", "2001:db9::5", false},
        {"192.0.2.7", "192.0.2.7", true},            // bare address: a host network
        {"192.0.2.7", "192.0.2.8", false},
        {"0.0.0.0/0", "203.0.113.9", true},
        {"192.168.0.0/23", "192.168.1.200", true},
        {"192.168.0.0/23", "192.168.2.1", false},
    };
    for (const auto& c : cases) {
        auto net = parse_network(c.network);
        ASSERT_TRUE(net) << c.network;
        EXPECT_EQ(net->contains(boost::asio::ip::make_address(c.address)), c.inside)
            << c.network << " " << c.address;
    }
}

TEST(Network, RejectsMalformed) {
    for (const char* bad : {"", "/8", "127.0.0.1/33", "127.0.0.1/", "127.0.0.1/8x",
                            "10.1.0.0/8", "::1/129", "example.com/8", "1.2.3/24"}) {
        std::string why;
        EXPECT_FALSE(parse_network(bad, &why)) << bad;
        EXPECT_FALSE(why.empty()) << bad;
    }
}

}  // namespace
}  // namespace tlsrelay::support

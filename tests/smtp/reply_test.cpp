#include "smtp/reply.hpp"

#include <gtest/gtest.h>

namespace tlsrelay::smtp {
namespace {

TEST(Reply, Wire) {
    struct Case {
        Reply reply;
        const char* wire;
    };
    const Case cases[] = {
        {{250, "2.1.0", "Ok"}, "250 2.1.0 Ok\r\n"},
        {{354, "", "End data with <CR><LF>.<CR><LF>"}, "354 End data with <CR><LF>.<CR><LF>\r\n"},
        {{220, "", ""}, "220\r\n"},
        {{421, "4.4.2", ""}, "421 4.4.2\r\n"},
        // Quoted client text can never start a second reply line.
        {{555, "5.5.4", "Unsupported option: A\r\n250 ok"},
         "555 5.5.4 Unsupported option: A??250 ok\r\n"},
    };
    for (const auto& c : cases) EXPECT_EQ(c.reply.wire(), c.wire);
}

TEST(Reply, Positive) {
    EXPECT_TRUE((Reply{250, "", ""}.positive()));
    EXPECT_TRUE((Reply{354, "", ""}.positive()));
    EXPECT_FALSE((Reply{421, "", ""}.positive()));
    EXPECT_FALSE((Reply{550, "", ""}.positive()));
}

TEST(Reply, Multiline) {
    EXPECT_EQ(multiline(250, {"relay.example", "PIPELINING", "SIZE 10240000"}),
              "250-relay.example\r\n250-PIPELINING\r\n250 SIZE 10240000\r\n");
    EXPECT_EQ(multiline(250, {"only"}), "250 only\r\n");
    EXPECT_EQ(multiline(250, {}), "250\r\n");
    EXPECT_EQ(multiline(250, {"a\nb", ""}), "250-a?b\r\n250\r\n");
}

}  // namespace
}  // namespace tlsrelay::smtp

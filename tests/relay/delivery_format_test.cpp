// Postfix's number format for delay= and delays= (src/util/format_tv.c), and the
// RFC 3464 bounce report.
#include <gtest/gtest.h>

#include "relay/bounce.hpp"
#include "relay/delivery.hpp"

namespace tlsrelay::relay {
namespace {

TEST(DelayFormat, AsPostfix) {
    struct Case {
        double seconds;
        const char* text;
    };
    const Case cases[] = {{0, "0"},       {0.001, "0"},    {0.004, "0"},  {0.005, "0.01"},
                          {0.02, "0.02"}, {0.1, "0.1"},    {0.17, "0.17"}, {0.999, "1"},
                          {1.0, "1"},     {1.44, "1.4"},   {1.45, "1.5"},  {9.94, "9.9"},
                          {12.4, "12"},   {12.5, "13"},    {300, "300"}};
    for (const auto& c : cases) EXPECT_EQ(format_delay(c.seconds), c.text) << c.seconds;
}

TEST(Bounce, MultipartReportWithOriginalHeaders) {
    queue::Envelope env;
    env.id = "ABCDEF0123456";
    env.sender = "alice@example.com";
    env.arrival_us = 1'700'000'000'000'000;
    queue::Recipient ok, bad;
    ok.address = "bob@example.net";
    bad.address = "carol@example.net";
    bad.last_dsn = "5.1.1";
    bad.last_reason = "host mx.example.net[192.0.2.1] said: 550 5.1.1 no such user (in reply to RCPT TO command)";
    env.recipients = {ok, bad};
    std::string original = "Subject: hello\r\nFrom: alice@example.com\r\n\r\nbody text\r\n";
    std::string b = make_bounce(env, {1}, original, "relay.example.com");
    EXPECT_NE(b.find("Content-Type: multipart/report; report-type=delivery-status;"), std::string::npos);
    EXPECT_NE(b.find("To: <alice@example.com>\r\n"), std::string::npos);
    EXPECT_NE(b.find("Final-Recipient: rfc822; carol@example.net\r\nOriginal-Recipient: rfc822; "
                     "carol@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n"
                     "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"),
              std::string::npos);
    EXPECT_EQ(b.find("bob@example.net"), std::string::npos);  // only the failed recipient
    EXPECT_NE(b.find("Content-Type: text/rfc822-headers\r\n\r\nSubject: hello\r\nFrom: alice@example.com\r\n"),
              std::string::npos);
    EXPECT_EQ(b.find("body text"), std::string::npos);  // headers only
    for (std::size_t i = 0; i < b.size(); ++i)
        if (b[i] == '\n') ASSERT_EQ(b[i - 1], '\r') << i;
}

}  // namespace
}  // namespace tlsrelay::relay

// The policy body (RFC 8461 3.2) and MX matching (4.1): valid policies in their
// allowed spellings, hostile bodies (binary, huge numbers, missing fields), and the
// one-label wildcard rule.
#include "sts/policy.hpp"

#include <gtest/gtest.h>

namespace tlsrelay::sts {
namespace {

using Mx = std::vector<std::string>;
using namespace std::string_literals;

TEST(Policy, ParsesValidBodies) {
    struct Case {
        std::string body;
        Mode mode;
        Mx mx;
        std::int64_t max_age;
    } cases[] = {
        {"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: "
         "86400\r\n",
         Mode::enforce,
         {"mail.example.com", "*.example.net"},
         86400},
        {"version: STSv1\nmode: testing\nmx: MX.Example.COM\nmax_age: 604800",
         Mode::testing,
         {"mx.example.com"},
         604800},
        {"version:STSv1\nmode:none\nmax_age:0\n", Mode::none, {}, 0},
        {"max_age: 31557601\nmx: a.example\nmode: enforce\nversion: STSv1\n",
         Mode::enforce,
         {"a.example"},
         max_max_age},
        {"version: STSv1  \nmode: enforce\t\nmx: a.example\nmax_age: 9999999999\nfuture_field: "
         "what ever\n",
         Mode::enforce,
         {"a.example"},
         max_max_age},
        {"\nversion: STSv1\n\nmode: enforce\nmode: none\nmx: a.example\nmax_age: 1\nmax_age: 2\n",
         Mode::enforce,
         {"a.example"},
         1},
    };
    for (const auto& c : cases) {
        auto r = parse_policy(c.body);
        ASSERT_TRUE(r.policy) << c.body << ": " << r.error;
        EXPECT_EQ(r.policy->mode, c.mode) << c.body;
        EXPECT_EQ(r.policy->mx, c.mx) << c.body;
        EXPECT_EQ(r.policy->max_age, c.max_age) << c.body;
    }
}

TEST(Policy, RefusesInvalidBodies) {
    struct Case {
        std::string body;
        const char* error;
    } cases[] = {
        {"", "no version field"},
        {"mode: enforce\nmx: a.example\nmax_age: 1\n", "no version field"},
        {"version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",
         "version \"STSv2\" is not STSv1"},
        {"version: STSv1\nmx: a.example\nmax_age: 1\n", "no mode field"},
        {"version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n",
         "mode \"Enforce\" is not enforce, testing or none"},
        {"version: STSv1\nmode: enforce\nmx: a.example\n", "no max_age field"},
        {"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n",
         "max_age \"-1\" is not 1 to 10 digits"},
        {"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 12345678901\n",
         "max_age \"12345678901\" is not 1 to 10 digits"},
        {"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: \n",
         "max_age \"\" is not 1 to 10 digits"},
        {"version: STSv1\nmode: enforce\nmax_age: 1\n", "mode enforce without an mx field"},
        {"version: STSv1\nmode: testing\nmax_age: 1\n", "mode testing without an mx field"},
        {"version: STSv1\nmode: enforce\nmx: *.*.example\nmax_age: 1\n",
         "mx \"*.*.example\" is not a host name or *.domain"},
        {"version: STSv1\nmode: enforce\nmx: mx.-bad.example\nmax_age: 1\n",
         "mx \"mx.-bad.example\" is not a host name or *.domain"},
        {"version: STSv1\nmode: enforce\nmx: mx..example\nmax_age: 1\n",
         "mx \"mx..example\" is not a host name or *.domain"},
        {"version: STSv1\nmode: enforce\nmx: *\nmax_age: 1\n",
         "mx \"*\" is not a host name or *.domain"},
        {"version: STSv1\nmode: enforce\nmx: mx.example.\nmax_age: 1\n",
         "mx \"mx.example.\" is not a host name or *.domain"},
        {"version STSv1\n", "line 1: no \"name:\" in \"version STSv1\""},
        {"version : STSv1\n", "line 1: bad field name \"version \""},
        {"version: STSv1\n x: y\n", "line 2: bad field name \" x\""},
        {"version: STSv1\nmode: enf\0rce\n"s,
         "line 2: control or non-ASCII characters in \"mode: enf\\x00rce\""},
        {"version: STSv1\rmode: enforce\n",
         "line 1: control or non-ASCII characters in \"version: STSv1\\x0dmode: enforce\""},
        {"<html><body>Not Found</body></html>",
         "line 1: no \"name:\" in \"<html><body>Not Found</body></html>\""},
        {"\xef\xbb\xbfversion: STSv1\n", "line 1: bad field name \"\\xef\\xbb\\xbfversion\""},
    };
    for (const auto& c : cases) {
        auto r = parse_policy(c.body);
        EXPECT_FALSE(r.policy) << c.body;
        EXPECT_EQ(r.error, c.error) << c.body;
    }
}

TEST(Policy, SurvivesBinaryNoise) {
    std::string body;
    for (int i = 0; i < 4096; ++i) body += static_cast<char>((i * 7919) & 0xff);
    EXPECT_FALSE(parse_policy(body).policy);
    EXPECT_FALSE(parse_policy(std::string(70000, ':')).policy);
    EXPECT_FALSE(parse_policy(std::string(70000, '\n')).policy);
}

TEST(MxPattern, WildcardMatchesExactlyOneLabel) {
    struct Case {
        const char* pattern;
        const char* host;
        bool match;
    } cases[] = {
        {"mail.example.com", "mail.example.com", true},
        {"mail.example.com", "MAIL.Example.Com.", true},
        {"mail.example.com", "mail2.example.com", false},
        {"mail.example.com", "example.com", false},
        {"*.example.net", "mx1.example.net", true},
        {"*.example.net", "MX1.EXAMPLE.NET.", true},
        {"*.example.net", "example.net", false},
        {"*.example.net", "a.mx1.example.net", false},
        {"*.example.net", ".example.net", false},
        {"*.example.net", "mx1.example.net.evil", false},
        {"*.example.net", "mx1example.net", false},
        {"*.Example.NET", "mx.example.net", true},
    };
    for (const auto& c : cases)
        EXPECT_EQ(mx_pattern_matches(c.pattern, c.host), c.match) << c.pattern << " " << c.host;
    Policy p{Mode::enforce, {"mail.example.com", "*.example.net"}, 1};
    EXPECT_TRUE(policy_allows_mx(p, "mx9.example.net"));
    EXPECT_FALSE(policy_allows_mx(p, "mx.example.org"));
    EXPECT_EQ(mx_list(p), "mail.example.com, *.example.net");
}

}  // namespace
}  // namespace tlsrelay::sts

// The "_smtp._tls" TXT record (RFC 8460 section 3): valid forms, hostile and malformed
// ones (which mean "no TLS-RPT record"), and the choice among a domain's TXT records.
#include "sts/rpt_record.hpp"

#include <gtest/gtest.h>

namespace tlsrelay::sts {
namespace {

using Strings = std::vector<std::string>;

TEST(RptRecord, ParsesValidRecords) {
    struct Case {
        const char* text;
        Strings mailto, https;
    } cases[] = {
        {"v=TLSRPTv1; rua=mailto:reports@example.com", {"reports@example.com"}, {}},
        {"v=TLSRPTv1;rua=mailto:reports@example.com;", {"reports@example.com"}, {}},
        {"v=TLSRPTv1 ;\trua=mailto:a@example.com , mailto:b@example.net\t; ", {"a@example.com", "b@example.net"}, {}},
        {"v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt", {}, {"https://reporting.example.com/v1/tlsrpt"}},
        {"v=TLSRPTv1; rua=mailto:a@example.com,https://r.example/x", {"a@example.com"}, {"https://r.example/x"}},
        {"v=TLSRPTv1; rua=mailto:tls%2Brpt@example.com", {"tls+rpt@example.com"}, {}},
        {"v=TLSRPTv1; rua=mailto:a@example.com?subject=hi", {"a@example.com"}, {}},
        {"v=TLSRPTv1; ext.name-1=x/y; rua=mailto:a@example.com", {"a@example.com"}, {}},
        {"v=TLSRPTv1; rua=mailto:a@example.com,mailto:a@example.com", {"a@example.com"}, {}},
        {"v=TLSRPTv1; rua=ftp://x.example/,mailto:a@example.com", {"a@example.com"}, {}},
    };
    for (const auto& c : cases) {
        auto r = parse_rpt_record(c.text);
        ASSERT_TRUE(r) << c.text;
        EXPECT_EQ(r->mailto, c.mailto) << c.text;
        EXPECT_EQ(r->https, c.https) << c.text;
    }
}

TEST(RptRecord, RefusesMalformedAndHostileRecords) {
    const std::string nul("v=TLSRPTv1; rua=mailto:a\0b@example.com", 38);
    const std::string cases[] = {
        "",
        "v=TLSRPTv1",
        "v=TLSRPTv1;",
        "v=TLSRPTv2; rua=mailto:a@example.com",
        "v=tlsrptv1; rua=mailto:a@example.com",
        " v=TLSRPTv1; rua=mailto:a@example.com",
        "rua=mailto:a@example.com; v=TLSRPTv1",
        "v=TLSRPTv1; RUA=mailto:a@example.com",
        "v=TLSRPTv1; rua=",
        "v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com",
        "v=TLSRPTv1; rua=mailto:a@example.com;;",
        "v=TLSRPTv1;; rua=mailto:a@example.com",
        "v=TLSRPTv1; rua=mailto:a@example.com; ext",
        "v=TLSRPTv1; rua=mailto:a@example.com; ext=",
        "v=TLSRPTv1; rua=mailto:",
        "v=TLSRPTv1; rua=mailto:nobody",
        "v=TLSRPTv1; rua=mailto:@example.com",
        "v=TLSRPTv1; rua=mailto:a@",
        "v=TLSRPTv1; rua=mailto:a@b@example.com",
        "v=TLSRPTv1; rua=mailto:a%40b@example.com",
        "v=TLSRPTv1; rua=mailto:a%0d%0aRCPT TO:<x>@example.com",
        "v=TLSRPTv1; rua=mailto:a%0@example.com",
        "v=TLSRPTv1; rua=mailto:a%zz@example.com",
        "v=TLSRPTv1; rua=mailto:a%",
        "v=TLSRPTv1; rua=mailto:<a@example.com>",
        "v=TLSRPTv1; rua=mailto:a b@example.com",
        "v=TLSRPTv1; rua=mailto:a@example.com,,mailto:b@example.com",
        "v=TLSRPTv1; rua=ftp://only.example/",
        "v=TLSRPTv1; rua=https://",
        "v=TLSRPTv1; rua=mailto:\xc3\xa4@example.com",
        nul,
    };
    for (const auto& c : cases) EXPECT_FALSE(parse_rpt_record(c)) << c;
}

TEST(RptRecord, TakesAtMostTenUris) {
    std::string text = "v=TLSRPTv1; rua=";
    for (int i = 0; i < 50; ++i) text += (i ? "," : "") + ("mailto:r" + std::to_string(i) + "@example.com");
    auto r = parse_rpt_record(text);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->mailto.size(), max_rua);
    EXPECT_EQ(r->mailto.back(), "r9@example.com");
}

TEST(RptRecord, SurvivesEveryPrefixOfAValidRecord) {
    const std::string full = "v=TLSRPTv1; rua=mailto:a%2Bb@example.com, https://r.example/x; ext=1;";
    for (std::size_t n = 0; n <= full.size(); ++n) {
        auto r = parse_rpt_record(full.substr(0, n));
        if (r) {
            EXPECT_FALSE(r->mailto.empty() && r->https.empty());
        }
    }
    for (int b = 0; b < 256; ++b) {
        std::string t = full;
        t[20] = static_cast<char>(b);
        (void)parse_rpt_record(t);  // never crashes, whatever the byte
    }
}

TEST(RptRecord, ChoosesExactlyOneRecord) {
    auto one = choose_rpt_record({"v=spf1 -all", "v=TLSRPTv1; rua=mailto:a@example.com"});
    ASSERT_TRUE(one.record);
    EXPECT_EQ(describe(*one.record), "mailto:a@example.com");
    auto two = choose_rpt_record({"v=TLSRPTv1; rua=mailto:a@example.com", "v=TLSRPTv1; rua=mailto:b@example.com"});
    EXPECT_FALSE(two.record);
    EXPECT_EQ(two.problem, "2 v=TLSRPTv1 TXT records (exactly one is allowed)");
    auto none = choose_rpt_record({"v=spf1 -all"});
    EXPECT_FALSE(none.record);
    EXPECT_EQ(none.problem, "no TXT record starts with v=TLSRPTv1");
    EXPECT_EQ(choose_rpt_record({}).problem, "");
    auto bad = choose_rpt_record({"v=TLSRPTv1; rua=mailto:nobody"});
    EXPECT_FALSE(bad.record);
    EXPECT_EQ(bad.problem, "malformed TXT record \"v=TLSRPTv1; rua=mailto:nobody\"");
}

}  // namespace
}  // namespace tlsrelay::sts

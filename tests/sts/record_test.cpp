// The "_mta-sts" TXT record (RFC 8461 3.1): valid forms, and every way a record can
// be off the grammar, which means "no MTA-STS record" rather than a guess.
#include "sts/record.hpp"

#include <gtest/gtest.h>

namespace tlsrelay::sts {
namespace {

TEST(TxtRecord, ParsesValidRecords) {
    struct Case {
        const char* text;
        const char* id;
    } cases[] = {
        {"v=STSv1; id=20160831085700Z;", "20160831085700Z"},
        {"v=STSv1; id=20160831085700Z", "20160831085700Z"},
        {"v=STSv1;id=abc", "abc"},
        {"v=STSv1 ;\tid=abc\t; ", "abc"},
        {"v=STSv1; id=abc; ext.name-1=some/value", "abc"},
        {"v=STSv1; foo=bar; id=X1", "X1"},
        {"v=STSv1; id=12345678901234567890123456789012;", "12345678901234567890123456789012"},
    };
    for (const auto& c : cases) {
        auto r = parse_txt_record(c.text);
        ASSERT_TRUE(r) << c.text;
        EXPECT_EQ(r->id, c.id) << c.text;
    }
}

TEST(TxtRecord, RefusesMalformedRecords) {
    const char* cases[] = {
        "",
        "v=STSv1",
        "v=STSv1;",
        "v=STSv1; ",
        "v=STSv2; id=abc;",
        "v=stsv1; id=abc;",
        " v=STSv1; id=abc;",
        "id=abc; v=STSv1;",
        "v=STSv1; ID=abc;",
        "v=STSv1; id=;",
        "v=STSv1; id=abc-def;",
        "v=STSv1; id=123456789012345678901234567890123;",  // 33 characters
        "v=STSv1; id=abc; id=def;",
        "v=STSv1; id=abc;;",
        "v=STSv1;; id=abc;",
        "v=STSv1; id=abc; ext",
        "v=STSv1; id=abc; ext=",
        "v=STSv1; id=abc; ext=a b",
        "v=STSv1; id=abc; _ext=a",
        "v=STSv1; id=abc; ext=a=b",
        "v=STSv1; id=a\x01"
        "bc;",
        "v=STSv1; id=abc\r\n",
        "v=STSv1; foo=bar",
    };
    for (const char* c : cases) EXPECT_FALSE(parse_txt_record(c)) << '"' << c << '"';
}

TEST(TxtRecord, ExactlyOneStsRecordMustRemain) {
    auto one = choose_txt_record({"spf1 -all", "v=STSv1; id=a1;", "google-site-verification=x"});
    ASSERT_TRUE(one.record);
    EXPECT_EQ(one.record->id, "a1");

    auto none = choose_txt_record({});
    EXPECT_FALSE(none.record);
    EXPECT_EQ(none.problem, "");

    auto other = choose_txt_record({"v=spf1 -all"});
    EXPECT_FALSE(other.record);
    EXPECT_EQ(other.problem, "no TXT record starts with v=STSv1");

    auto two = choose_txt_record({"v=STSv1; id=a1;", "v=STSv1; id=a2;"});
    EXPECT_FALSE(two.record);
    EXPECT_EQ(two.problem, "2 v=STSv1 TXT records (exactly one is allowed)");

    auto bad = choose_txt_record({"v=STSv1; id=a\x7f;"});
    EXPECT_FALSE(bad.record);
    EXPECT_EQ(bad.problem, "malformed TXT record \"v=STSv1; id=a\\x7f;\"");
}

}  // namespace
}  // namespace tlsrelay::sts

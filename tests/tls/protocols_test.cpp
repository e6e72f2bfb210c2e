// Protocol lists (tls_proto_mask_lims and OpenSSL's contiguous-range rule) and
// cipher lists (Postfix 3.7 grades plus exclusions).
#include <gtest/gtest.h>

#include "tls/protocols.hpp"

namespace tlsrelay::tls {
namespace {

constexpr int v10 = 0x0301, v11 = 0x0302, v12 = 0x0303, v13 = 0x0304;

TEST(Protocols, Ranges) {
    struct Case {
        std::string list;
        int min, max;
        bool empty;
    };
    const std::vector<Case> cases = {
        {"", v10, v13, false},
        {">=TLSv1", v10, v13, false},
        {">=TLSv1.2", v12, v13, false},
        {">=tlsv1.3", v13, v13, false},
        {"<=TLSv1.2", v10, v12, false},
        {">=TLSv1.1, <=TLSv1.2", v11, v12, false},
        {">=0x0302:<=0303", v11, v12, false},
        {">=303", v12, v13, false},
        {">=None", v10, v13, false},
        {">=", v10, v13, false},
        {">=0x305", v10, v13, false},  // outside SSLv3..TLSv1.3: OpenSSL ignores the bound
        {"!SSLv2, !SSLv3", v10, v13, false},
        {"!SSLv2:!SSLv3:!TLSv1:!TLSv1.1", v12, v13, false},
        {"!TLSv1.3", v10, v12, false},
        {"!TLSv1.1", v10, v10, false},  // the gap caps the range below it
        {"!TLSv1.2", v10, v11, false},
        {"TLSv1.2", v12, v12, false},
        {"TLSv1.2 TLSv1.3", v12, v13, false},
        {"TLSv1 TLSv1.3", v10, v10, false},
        {"TLSv1.2, !TLSv1.2", 0, 0, true},
        {"SSLv3", 0, 0, true},
        {">=TLSv1.3 <=TLSv1.2", 0, 0, true},
        {"\tTLSv1.2,,TLSv1.3 ", v12, v13, false},
    };
    for (const auto& c : cases) {
        auto r = parse_protocols(c.list);
        ASSERT_TRUE(r.range) << c.list;
        EXPECT_EQ(r.range->empty, c.empty) << c.list;
        if (!c.empty) {
            EXPECT_EQ(r.range->min_version, c.min) << c.list;
            EXPECT_EQ(r.range->max_version, c.max) << c.list;
        }
    }
}

TEST(Protocols, InvalidLists) {
    for (std::string list : {"TLSv1.4", ">=TLSv9", "!bogus", ">=SSLv2", ">=0x", "<=-1", "TLS1.2", ">=0xfffffffff"}) {
        auto r = parse_protocols(list);
        EXPECT_FALSE(r.range) << list;
        EXPECT_EQ(r.error, "Invalid TLS protocol list \"" + list + "\"");
    }
}

TEST(Protocols, Names) {
    EXPECT_EQ(protocol_name(0x0303), "TLSv1.2");
    EXPECT_EQ(protocol_name(0x0305), "0x305");
}

TEST(Ciphers, GradesOfPostfix37) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"high", "aNULL:-aNULL:HIGH:@STRENGTH"},
        {"Medium", "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH"},
        {"low", "aNULL:-aNULL:HIGH:MEDIUM:LOW:+RC4:@STRENGTH"},
        {"EXPORT", "aNULL:-aNULL:HIGH:MEDIUM:LOW:EXPORT:+RC4:@STRENGTH"},
        {"null", "eNULL:!aNULL"},
    };
    for (const auto& [grade, list] : cases) EXPECT_EQ(cipher_list(grade, "").cipher_list, list) << grade;
}

TEST(Ciphers, Exclusions) {
    EXPECT_EQ(cipher_list("high", "RC4, MD5:3DES aNULL").cipher_list,
              "aNULL:-aNULL:HIGH:@STRENGTH:!RC4:!MD5:!3DES:!aNULL");
    for (std::string bad : {"!RC4", "+RC4", "-RC4", "@STRENGTH"}) {
        auto r = cipher_list("medium", "MD5 " + bad);
        EXPECT_FALSE(r.cipher_list) << bad;
        EXPECT_EQ(r.error, "invalid unary '!+-@' in cipher exclusion: " + bad);
    }
}

TEST(Ciphers, InvalidGrade) {
    for (std::string g : {"bogus", "invalid", "", "HIGH:MEDIUM"}) {
        auto r = cipher_list(g, "");
        EXPECT_FALSE(r.cipher_list) << g;
        EXPECT_EQ(r.error, "invalid cipher grade: \"" + g + "\"");
    }
}

}  // namespace
}  // namespace tlsrelay::tls

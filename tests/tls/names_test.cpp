// Name checks: every row of the spec's OpenSSL 3.0 probe table (section 4.4),
// run through OpenSSL itself and through our string rule, which must agree.
#include <gtest/gtest.h>

#include "tests/tls/test_certs.hpp"
#include "tls/names.hpp"
#include "tls/text.hpp"

namespace tlsrelay::tls {
namespace {

using test::CertSpec;
using test::make_cert;

struct Row {
    CertSpec cert;
    std::string reference;
    bool match;
};

const std::string ip_only("\x7f\x00\x00\x01", 4);

const std::vector<Row> probe_table = {
    {{{"*.example.com"}, {}, {}}, "a.example.com", true},
    {{{"*.example.com"}, {}, {}}, "example.com", false},
    {{{"*.example.com"}, {}, {}}, "a.b.example.com", false},
    {{{"*.example.com"}, {}, {}}, ".example.com", true},
    {{{"*.example.com"}, {}, {}}, "a.example.com.", false},
    {{{"*.a.example.com"}, {}, {}}, ".example.com", true},
    {{{"mail.example.com"}, {}, {}}, ".example.com", true},
    {{{"mail.example.com"}, {}, {}}, "mail.example.com.", false},
    {{{"other.example.net"}, {}, {"mail.example.com"}}, "mail.example.com", false},
    {{{}, {ip_only}, {"mail.example.com"}}, "mail.example.com", true},
    {{{}, {}, {"*.example.com"}}, "a.example.com", true},
    {{{"*.com"}, {}, {}}, "example.com", false},
    {{{"mx*.example.com"}, {}, {}}, "mx1.example.com", false},
    {{{"MAIL.Example.COM"}, {}, {}}, "mail.example.com", true},
    // Ours, beyond the probe table.
    {{{"example.com"}, {}, {}}, ".example.com", false},
    {{{"a.b.example.com"}, {}, {}}, ".example.com", true},
    {{{"mx*.example.com"}, {}, {}}, ".example.com", true},
    {{{"xexample.com"}, {}, {}}, ".example.com", false},
    {{{"*.example.com"}, {}, {}}, "*.example.com", true},
    {{{"mail.example.com.evil"}, {}, {}}, "mail.example.com", false},
    {{{std::string("mail.example.com\0.evil.net", 26)}, {}, {}}, "mail.example.com", false},
    {{{std::string("evil\0.example.com", 17)}, {}, {}}, ".example.com", false},
    {{{std::string("a.example.com\0", 14)}, {}, {}}, "a.example.com", false},
    {{{"other.example.net", "mail.example.com"}, {}, {}}, "mail.example.com", true},
    {{{}, {}, {"mail.example.com"}}, "mail.example.com", true},
    {{{}, {}, {"a.example.org", "mail.example.com"}}, "mail.example.com", true},
    {{{"*.xn--bcher-kva.example"}, {}, {}}, "a.xn--bcher-kva.example", true},
    {{{"*.example.com"}, {}, {}}, "a_b.example.com", false},
};

TEST(Names, ProbeTableThroughOpenSSL) {
    for (const auto& row : probe_table) {
        auto cert = make_cert(row.cert);
        EXPECT_EQ(names_match(cert.get(), {row.reference}), row.match)
            << (row.cert.dns_sans.empty() ? "CN " + row.cert.cns.front() : row.cert.dns_sans.front())
            << " vs " << row.reference;
    }
}

TEST(Names, StringRuleAgreesWithOpenSSL) {
    for (const auto& row : probe_table) {
        auto cert = make_cert(row.cert);
        const auto& names = row.cert.dns_sans.empty() ? row.cert.cns : row.cert.dns_sans;
        bool any = false;
        for (const auto& n : names) any = any || dns_name_matches(n, row.reference);
        EXPECT_EQ(any, row.match) << names.front() << " vs " << row.reference;
    }
}

TEST(Names, AnyReferenceNameMatchesAndReportsWhich) {
    auto cert = make_cert({{"mx.example.net"}, {}, {}});
    std::string matched;
    EXPECT_TRUE(names_match(cert.get(), {"example.com", ".example.com", ".example.net"}, &matched));
    EXPECT_EQ(matched, ".example.net");
    EXPECT_FALSE(names_match(cert.get(), {}));
}

TEST(Names, CertificateNamesAreDnsSansElseCns) {
    EXPECT_EQ(certificate_names(make_cert({{"a.example", "b.example"}, {}, {"cn.example"}}).get()),
              (std::vector<std::string>{"a.example", "b.example"}));
    EXPECT_EQ(certificate_names(make_cert({{}, {ip_only}, {"cn.example"}}).get()),
              (std::vector<std::string>{"cn.example"}));
    EXPECT_EQ(certificate_names(make_cert({{std::string("a\0b", 3)}, {}, {}}).get()),
              (std::vector<std::string>{"a\\0b"}));
    EXPECT_TRUE(certificate_names(make_cert({}).get()).empty());
}

TEST(Names, NexthopDomain) {
    EXPECT_EQ(nexthop_domain("example.com"), "example.com");
    EXPECT_EQ(nexthop_domain("example.com:2525"), "example.com");
    EXPECT_EQ(nexthop_domain("[mx.example.com]"), "mx.example.com");
    EXPECT_EQ(nexthop_domain("[mx.example.com]:587"), "mx.example.com");
    EXPECT_EQ(nexthop_domain("[ipv6:2001:db8::1]:25"), "ipv6:2001:db8::1");
}

TEST(Names, ResolveStrategies) {
    struct Case {
        std::vector<std::string> match;
        std::vector<std::string> names;
    };
    const std::vector<Case> cases = {
        {{"nexthop", "dot-nexthop"}, {"example.com", ".example.com"}},
        {{"hostname"}, {"mx1.example.net"}},
        {{"NextHop", "HOSTNAME", "Dot-Nexthop"}, {"example.com", "mx1.example.net", ".example.com"}},
        {{".example.org", "mail.example.org"}, {".example.org", "mail.example.org"}},
        {{"hostname", "hostname"}, {"mx1.example.net", "mx1.example.net"}},
        // U-labels become A-labels (UTS #46: NFC, lower case), also after a leading dot
        {{"b\u00fccher.example", ".B\u00fccher.example", "M\u00fcller.example"},
         {"xn--bcher-kva.example", ".xn--bcher-kva.example", "xn--mller-kva.example"}},
        {{"MX.Example.COM"}, {"MX.Example.COM"}},  // ASCII stays as written
    };
    for (const auto& c : cases)
        EXPECT_EQ(resolve_match_names(c.match, "example.com", "mx1.example.net").names, c.names);
    auto dot = resolve_match_names({".", "nexthop"}, "example.com", "mx");
    EXPECT_EQ(dot.names, std::vector<std::string>{"example.com"});
    EXPECT_EQ(dot.warnings, std::vector<std::string>{"ignoring invalid match name: \".\""});
    auto idn = resolve_match_names({"nexthop"}, "b\u00fccher.example", "mx");  // a UTF-8 next hop too
    EXPECT_EQ(idn.names, std::vector<std::string>{"xn--bcher-kva.example"});
}

TEST(Names, ALabels) {
    EXPECT_EQ(to_a_label("b\u00fccher.example"), "xn--bcher-kva.example");
    EXPECT_EQ(to_a_label("plain.example"), "plain.example");
    EXPECT_EQ(to_a_label("\u00df.example"), "xn--zca.example");  // non-transitional: sharp s stays
    EXPECT_FALSE(to_a_label("a\xff.example"));                   // not UTF-8
}

}  // namespace
}  // namespace tlsrelay::tls

// Policy-table lookup order (Postfix tls_policy_lookup) and the [[tls.policy]]
// conversion into table entries.
#include <gtest/gtest.h>

#include "tls/policy_table.hpp"

namespace tlsrelay::tls {
namespace {

TableEntry entry(std::string key, std::string value) {
    TableEntry e;
    e.key = std::move(key);
    e.value = value;
    e.tokens = tokenize_policy_value(value);
    return e;
}

PolicyTable sample_table() {
    PolicyTable t;
    for (auto [k, v] : std::vector<std::pair<std::string, std::string>>{
             {"example.com", "secure"},
             {".example.com", "verify"},
             {".com", "encrypt"},
             {"[mx.example.com]:587", "encrypt"},
             {"[mx.example.com]", "may"},
             {"Mixed.Example.ORG", "none"},
             {"192.0.2.1", "fingerprint"},
         })
        t.add(entry(k, v));
    return t;
}

TEST(PolicyTable, LookupOrder) {
    struct Case {
        std::string nexthop;
        std::string hit;  // site name that hit; empty: none
        std::vector<std::string> tried;
    };
    const std::vector<Case> cases = {
        {"example.com", "example.com", {"example.com"}},
        {"a.b.example.com", ".example.com", {"a.b.example.com", ".b.example.com", ".example.com"}},
        {"mail.other.com", ".com", {"mail.other.com", ".other.com", ".com"}},
        {"example.net", "", {"example.net", ".net"}},
        {"[mx.example.com]:587", "[mx.example.com]:587", {"[mx.example.com]:587"}},
        {"[mx.example.com]", "[mx.example.com]", {"[mx.example.com]"}},
        {"[mx.example.com]:25", "", {"[mx.example.com]:25"}},
        {"example.com:2525", "", {"example.com:2525"}},
        {"mixed.example.org", "mixed.example.org", {"mixed.example.org"}},
        {"MIXED.example.ORG", "MIXED.example.ORG", {"MIXED.example.ORG"}},
        {"A.Example.COM", ".Example.COM", {"A.Example.COM", ".Example.COM"}},
        {"192.0.2.1", "192.0.2.1", {"192.0.2.1"}},
        {"10.0.0.1", "", {"10.0.0.1"}},
        {"localhost", "", {"localhost"}},
    };
    PolicyTable t = sample_table();
    for (const auto& c : cases) {
        LookupResult r = t.lookup(c.nexthop);
        EXPECT_EQ(r.site_name, c.hit) << c.nexthop;
        EXPECT_EQ(r.entry != nullptr, !c.hit.empty()) << c.nexthop;
        EXPECT_EQ(r.tried, c.tried) << c.nexthop;
    }
}

TEST(PolicyTable, BareParentIsNeverTriedForASubdomain) {
    PolicyTable t;
    t.add(entry("example.com", "secure"));
    EXPECT_EQ(t.lookup("mail.example.com").entry, nullptr);
}

TEST(PolicyTable, FirstOfDuplicateKeysWins) {
    PolicyTable t;
    EXPECT_EQ(t.add(entry("example.com", "secure")), nullptr);
    const TableEntry* first = t.add(entry("EXAMPLE.com", "none"));
    ASSERT_NE(first, nullptr);
    EXPECT_EQ(first->value, "secure");
    EXPECT_EQ(t.find("example.COM")->value, "secure");
    EXPECT_EQ(t.entries().size(), 1u);
}

TEST(PolicyTable, TokensSplitOnCommasAndWhitespace) {
    EXPECT_EQ(tokenize_policy_value("secure match=a:b, ,ciphers=high\tprotocols=>=TLSv1.2\r\n x"),
              (std::vector<std::string>{"secure", "match=a:b", "ciphers=high", "protocols=>=TLSv1.2", "x"}));
    EXPECT_TRUE(tokenize_policy_value(" , ").empty());
}

TEST(PolicyTable, TomlEntryBecomesTokens) {
    PolicyEntry p;
    p.destination = "Example.COM";
    p.level = "secure";
    p.match = {"nexthop", ".example.net"};
    p.ciphers = "high";
    p.tafile = {"/etc/ta.pem"};
    p.file = "relay.toml";
    p.line = 12;
    TableEntry e = to_table_entry(p);
    EXPECT_EQ(e.key, "example.com");
    EXPECT_EQ(e.tokens, (std::vector<std::string>{"secure", "match=nexthop", "match=.example.net",
                                                  "ciphers=high", "tafile=/etc/ta.pem"}));
    EXPECT_EQ(e.value, "secure match=nexthop match=.example.net ciphers=high tafile=/etc/ta.pem");
    EXPECT_EQ(e.file, "relay.toml");
    EXPECT_EQ(e.line, 12);
    PolicyEntry empty;
    empty.destination = "x";
    EXPECT_TRUE(to_table_entry(empty).tokens.empty());
}

}  // namespace
}  // namespace tlsrelay::tls

// Policy files read as postmap reads a table source: comments, blank lines,
// continuation lines, key folding, duplicates, and problems at FILE:LINE.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "config/policy_file.hpp"

namespace tlsrelay::config {
namespace {

std::vector<std::string> messages(const std::vector<Problem>& problems) {
    std::vector<std::string> out;
    for (const auto& p : problems) out.push_back(p.to_string());
    return out;
}

TEST(PolicyFile, SyntaxLikePostmap) {
    // Each case checked against `postmap -q KEY texthash:FILE` of Postfix 3.7.11.
    const std::string text =
        "# comment\n"
        "Example.COM   secure match=a:b\n"
        "  ,match=c\n"
        "   # indented comment\n"
        "\n"
        ".Example.com encrypt\n"
        "example.com may\n"
        "foo.com\n"
        "bar.com\t\tnone   \n"
        "  continued\n"
        "#x\n"
        "  cont-after-comment\n"
        "c.com\tencrypt\n"
        "\n"
        "  z\n"
        "f.com  v  \n"
        "  \n"
        " g\r\n"
        "[mx.example.com]:587 fingerprint match=AA:BB|CC:DD\n";
    auto r = parse_policy_text(text, "tls_policy");
    const auto& t = r.table;
    ASSERT_NE(t.find("example.com"), nullptr);
    EXPECT_EQ(t.find("example.com")->value, "secure match=a:b  ,match=c");
    EXPECT_EQ(t.find("example.com")->tokens, (std::vector<std::string>{"secure", "match=a:b", "match=c"}));
    EXPECT_EQ(t.find("example.com")->line, 2);
    EXPECT_EQ(t.find(".example.com")->value, "encrypt");
    EXPECT_EQ(t.find(".example.com")->line, 6);
    EXPECT_EQ(t.find("foo.com"), nullptr);
    EXPECT_EQ(t.find("bar.com")->value, "none     continued  cont-after-comment");
    EXPECT_EQ(t.find("c.com")->value, "encrypt  z");
    EXPECT_EQ(t.find("f.com")->value, "v   g");
    EXPECT_EQ(t.find("[mx.example.com]:587")->tokens,
              (std::vector<std::string>{"fingerprint", "match=AA:BB|CC:DD"}));
    EXPECT_EQ(t.find("[mx.example.com]:587")->line, 19);
    EXPECT_EQ(messages(r.problems),
              (std::vector<std::string>{
                  "tls_policy:7: duplicate entry: \"example.com\" (first at line 2): the whole table is unusable, "
                  "all mail is deferred (client TLS configuration problem)",
                  "tls_policy:8: expected format: key whitespace value -- ignoring this line"}));
}

TEST(PolicyFile, LeadingWhitespaceLogicalLine) {
    auto r = parse_policy_text("  lead.com may\n  more\nz.com v\nz.com\n\n  w\n  q\nnokey\n  #c\n\n", "p");
    EXPECT_EQ(r.table.entries().size(), 1u);
    EXPECT_EQ(r.table.find("z.com")->value, "v");
    EXPECT_EQ(messages(r.problems),
              (std::vector<std::string>{
                  "p:1: logical line must not start with whitespace: \"  lead.com may  more\"",
                  "p:4: duplicate entry: \"z.com\" (first at line 3): the whole table is unusable, "
                  "all mail is deferred (client TLS configuration problem)",
                  "p:8: expected format: key whitespace value -- ignoring this line"}));
}

TEST(PolicyFile, DuplicateKeyMakesEveryLookupFail) {
    // Postfix texthash: a duplicate key (after case folding) refuses the whole file
    auto r = parse_policy_text("a.com may\nother.com encrypt\nA.COM encrypt\n", "p");
    EXPECT_EQ(r.table.unavailable(), "p, line 3: duplicate entry: \"a.com\"");
    for (const char* hop : {"a.com", "other.com", "[x.net]:25", "sub.other.com"}) {
        auto hit = r.table.lookup(hop);
        EXPECT_EQ(hit.entry, nullptr) << hop;
        EXPECT_EQ(hit.error, "p, line 3: duplicate entry: \"a.com\"") << hop;
        EXPECT_EQ(hit.site_name, hop);
        EXPECT_EQ(hit.tried, std::vector<std::string>{hop});
    }
    EXPECT_TRUE(parse_policy_text("a.com may\nb.com may\n", "p").table.lookup("a.com").error.empty());
}

TEST(PolicyFile, EmptyAndCommentOnly) {
    EXPECT_TRUE(parse_policy_text("", "p").table.empty());
    EXPECT_TRUE(parse_policy_text("# only\n\n   \n\t# x\n", "p").table.empty());
    EXPECT_EQ(parse_policy_text("k v", "p").table.find("k")->value, "v");  // no final newline
}

TEST(PolicyFile, LoadsFromDiskAndReportsMissingFile) {
    auto dir = std::filesystem::temp_directory_path() / "tlsrelay_policy_file_test";
    std::filesystem::create_directories(dir);
    auto file = dir / "tls_policy";
    std::ofstream(file) << "example.com secure\n";
    auto r = load_policy_file(file);
    EXPECT_TRUE(r.problems.empty());
    EXPECT_EQ(r.table.find("example.com")->file, file.string());
    auto missing = load_policy_file(dir / "nope");
    ASSERT_EQ(missing.problems.size(), 1u);
    EXPECT_EQ(missing.problems[0].message, "cannot open policy file: No such file or directory");
    std::filesystem::remove_all(dir);
}

TEST(PolicyFile, FileEntriesComeBeforeInlineEntries) {
    auto dir = std::filesystem::temp_directory_path() / "tlsrelay_policy_file_test2";
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "p") << "example.com secure\n";
    TlsConfig tls;
    tls.policy_file = dir / "p";
    tls::PolicyEntry inline_entry{"EXAMPLE.com", "none", {}, "", "", "", "", {}, "relay.toml", 30};
    tls::PolicyEntry other{"other.example", "verify", {"hostname"}, "", "", "", "", {}, "relay.toml", 35};
    tls.policy = {inline_entry, other};
    auto r = build_policy_table(tls);
    EXPECT_EQ(r.table.find("example.com")->value, "secure");
    EXPECT_EQ(r.table.find("other.example")->tokens, (std::vector<std::string>{"verify", "match=hostname"}));
    EXPECT_EQ(messages(r.problems),
              std::vector<std::string>{"relay.toml:30: duplicate entry: \"example.com\"; the entry at " +
                                       (dir / "p").string() + ":1 is used"});
    std::filesystem::remove_all(dir);
}

TEST(PolicyFile, CheckPoliciesReportsEveryProblemAtItsLine) {
    auto r = parse_policy_text(
        "good.example secure\n"
        "bad.example bogus\n"
        "fp.example fingerprint match=zz|0011223344556677889900AABBCCDDEEFF\n"
        "proto.example encrypt protocols=TLSv1.4\n"
        "ciph.example encrypt ciphers=bogus\n"
        "off.example none ciphers=high\n"
        "ta.example secure tafile=/nonexistent/ta.pem\n",
        "tp");
    tls::MainSettings main;
    auto problems = check_policies(r.table, main, "relay.toml");
    const std::string w = "smtp_tls_policy_maps, next-hop destination ";
    EXPECT_EQ(messages(problems),
              (std::vector<std::string>{
                  "tp:2: " + w + "\"bad.example\": invalid security level \"bogus\"",
                  "tp:3: malformed fingerprint value: zz",
                  "tp:3: fingerprint 0011223344556677889900AABBCCDDEEFF: this 17-byte value is not a "
                  "sha256 fingerprint (32 bytes); Postfix ignores it as an unusable TLSA RR",
                  "tp:4: Invalid TLS protocol list \"TLSv1.4\" (every handshake would fail)",
                  "tp:5: invalid cipher grade: \"bogus\" (every handshake would fail)",
                  "tp:6: " + w + "\"off.example\": ignoring attribute \"ciphers=high\" with TLS disabled",
                  "tp:7: error opening trust anchor file: /nonexistent/ta.pem: No such file or directory",
              }));
}

TEST(PolicyFile, CheckPoliciesReportsGlobalSettings) {
    tls::MainSettings main;
    main.level = tls::Level::fingerprint;
    main.mandatory_protocols = ">=TLSv9";
    auto problems = check_policies({}, main, "relay.toml");
    EXPECT_EQ(messages(problems),
              (std::vector<std::string>{
                  "relay.toml:0: nexthop domain (default): configured at fingerprint security level, "
                  "but with no fingerprints to match.",
                  "relay.toml:0: Invalid TLS protocol list \">=TLSv9\" (every handshake would fail)"}));
}

TEST(PolicyFile, MainSettingsFromConfig) {
    TlsConfig tls;
    tls.security_level = "secure";
    tls.exclude_ciphers = {"RC4"};
    auto m = main_settings(tls, true);
    EXPECT_EQ(m.level, tls::Level::secure);
    EXPECT_EQ(m.exclude_ciphers, std::vector<std::string>{"RC4"});
    EXPECT_TRUE(m.dnssec);
    EXPECT_EQ(m.mandatory_protocols, ">=TLSv1.2");
}

}  // namespace
}  // namespace tlsrelay::config

// Effective policy: every malformed-entry case of spec section 3.3 with
// Postfix's exact warning, attributes ignored at "none", main-config fallbacks.
#include <gtest/gtest.h>

#include "tls/effective_policy.hpp"

namespace tlsrelay::tls {
namespace {

const std::string where = "smtp_tls_policy_maps, next-hop destination \"[localhost]:2616\"";

MainSettings main_at(Level level) {
    MainSettings m;
    m.level = level;
    return m;
}

MainSettings with_dnssec() {
    MainSettings m;
    m.dnssec = true;
    return m;
}

Policy evaluate(const std::string& value, const MainSettings& main = {},
                const TafileCheck& check = {}, const std::string& nexthop = "[localhost]:2616") {
    TableEntry e;
    e.key = nexthop;
    e.value = value;
    e.tokens = tokenize_policy_value(value);
    e.file = "tls_policy";
    e.line = 3;
    return evaluate_policy(LookupResult{&e, nexthop, {nexthop}, {}}, nexthop, main, check);
}

TEST(EffectivePolicy, InvalidEntriesCarryPostfixWarnings) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"", where + ": invalid empty policy"},
        {"bogus", where + ": invalid security level \"bogus\""},
        {"halfdane", where + ": invalid security level \"halfdane\""},
        {"secure x", where + ": malformed attribute/value pair \"x\": missing '=' after attribute name"},
        {"secure match = nexthop", where + ": malformed attribute/value pair \"match\": missing '=' after attribute name"},
        {"secure foo=bar", where + ": invalid attribute name: \"foo\""},
        {"secure enable_rpk=yes", where + ": invalid attribute name: \"enable_rpk\""},
        {"secure =x", where + ": invalid attribute name: \"\""},
        {"encrypt ciphers=high ciphers=medium", where + ": attribute \"ciphers\" is specified multiple times"},
        {"encrypt protocols=TLSv1.2 Protocols=TLSv1.3", where + ": attribute \"Protocols\" is specified multiple times"},
        {"encrypt exclude=RC4 exclude=MD5", where + ": attribute \"exclude\" is specified multiple times"},
        {"encrypt servername=a.example servername=b.example", where + ": attribute \"servername\" is specified multiple times"},
        {"encrypt ciphers=", where + ": attribute \"ciphers\" has empty value"},
        {"secure match=", where + ": attribute \"match\" has empty value"},
        {"verify tafile=", where + ": attribute \"tafile\" has empty value"},
        {"encrypt match=nexthop", where + ": attribute \"match\" invalid at security level \"encrypt\""},
        {"may match=nexthop", where + ": attribute \"match\" invalid at security level \"may\""},
        {"dane match=nexthop", where + ": attribute \"match\" invalid at security level \"dane\""},
        {"fingerprint tafile=/x.pem", where + ": attribute \"tafile\" invalid at security level \"fingerprint\""},
        {"encrypt tafile=", where + ": attribute \"tafile\" invalid at security level \"encrypt\""},
        {"encrypt servername=-bad-.example", where + ": \"servername=-bad-.example\" specifies an invalid hostname"},
        {"encrypt servername=a..b", where + ": \"servername=a..b\" specifies an invalid hostname"},
        {"encrypt connection_reuse=maybe", where + ": attribute \"connection_reuse\" has bad value: \"maybe\""},
        {"fingerprint match=zz", "nexthop domain [localhost]:2616: configured at fingerprint security level, but with no fingerprints to match."},
        {"fingerprint", "nexthop domain [localhost]:2616: configured at fingerprint security level, but with no fingerprints to match."},
    };
    for (const auto& [value, warning] : cases) {
        Policy p = evaluate(value);
        EXPECT_TRUE(p.invalid) << value;
        EXPECT_EQ(p.warning, warning) << value;
        ASSERT_FALSE(p.warnings.empty()) << value;
        EXPECT_EQ(p.warnings.back(), warning) << value;
    }
}

TEST(EffectivePolicy, FirstErrorWins) {
    Policy p = evaluate("secure foo=1 match=");
    EXPECT_EQ(p.warnings.size(), 1u);
    EXPECT_EQ(p.warning, where + ": invalid attribute name: \"foo\"");
}

TEST(EffectivePolicy, AttributesAreIgnoredWithWarningsAtNone) {
    Policy p = evaluate("none ciphers=high bogus", main_at(Level::secure));
    EXPECT_FALSE(p.invalid);
    EXPECT_EQ(p.level, Level::none);
    EXPECT_EQ(p.warnings, (std::vector<std::string>{
                              where + ": ignoring attribute \"ciphers=high\" with TLS disabled",
                              where + ": ignoring attribute \"bogus\" with TLS disabled"}));
}

TEST(EffectivePolicy, HitReplacesTheMainLevel) {
    EXPECT_EQ(evaluate("NONE", main_at(Level::secure)).level, Level::none);
    EXPECT_EQ(evaluate("Encrypt", main_at(Level::secure)).level, Level::encrypt);
    Policy miss = evaluate_policy({}, "example.com", main_at(Level::verify));
    EXPECT_EQ(miss.level, Level::verify);
    EXPECT_EQ(miss.match, std::vector<std::string>{"hostname"});
    EXPECT_FALSE(miss.source);
}

TEST(EffectivePolicy, UnavailableTableIsAConfigProblemEvenAtNone) {
    LookupResult failed;
    failed.site_name = "example.com";
    failed.error = "tls_policy, line 3: duplicate entry: \"a.com\"";
    Policy p = evaluate_policy(failed, "example.com", main_at(Level::none));
    EXPECT_TRUE(p.invalid);
    EXPECT_EQ(p.warning, "smtp_tls_policy_maps, next-hop destination \"example.com\": policy table lookup error");
    EXPECT_EQ(p.warnings.front(), "smtp_tls_policy_maps is unavailable. tls_policy, line 3: duplicate entry: \"a.com\"");
}

TEST(EffectivePolicy, MatchListsAppendAndFallBack) {
    EXPECT_EQ(evaluate("secure match=nexthop:.example.net, match=mx.example.org").match,
              (std::vector<std::string>{"nexthop", ".example.net", "mx.example.org"}));
    EXPECT_EQ(evaluate("secure").match, (std::vector<std::string>{"nexthop", "dot-nexthop"}));
    EXPECT_EQ(evaluate("verify").match, std::vector<std::string>{"hostname"});
    MainSettings main;
    main.secure_cert_match = {"nexthop, dot-nexthop:hostname"};
    EXPECT_EQ(evaluate("secure", main).match,
              (std::vector<std::string>{"nexthop", "dot-nexthop", "hostname"}));
}

TEST(EffectivePolicy, FingerprintsSplitOnBarsAndSkipMalformed) {
    Policy p = evaluate("fingerprint match=AB:CD|zz|ef01 match=:AA, match=0102");
    EXPECT_FALSE(p.invalid);
    ASSERT_EQ(p.fingerprints.size(), 3u);
    EXPECT_EQ(p.fingerprints[0].bytes, (Bytes{0xab, 0xcd}));
    EXPECT_EQ(p.fingerprints[1].text, "ef01");
    EXPECT_EQ(p.fingerprints[2].bytes, (Bytes{1, 2}));
    EXPECT_EQ(p.warnings, (std::vector<std::string>{"malformed fingerprint value: zz",
                                                    "malformed fingerprint value: :AA"}));
}

TEST(EffectivePolicy, MainFingerprintsWhenThePolicyHasNoneUsable) {
    MainSettings main;
    main.fingerprint_cert_match = {"AA:BB, CC|DD", "EE"};
    Policy p = evaluate("fingerprint match=zz", main);
    EXPECT_FALSE(p.invalid);
    ASSERT_EQ(p.fingerprints.size(), 2u);  // "CC|DD" is malformed: '|' separates only in the table
    EXPECT_EQ(p.fingerprints[1].text, "EE");
    EXPECT_EQ(p.warnings.size(), 2u);
}

TEST(EffectivePolicy, CipherGradeAndExclusionsPerLevel) {
    MainSettings main;
    main.ciphers = "high";
    main.exclude_ciphers = {"RC4", "MD5"};
    main.mandatory_exclude_ciphers = {"3DES"};
    struct Case {
        std::string value, ciphers, exclude, protocols;
    };
    const std::vector<Case> cases = {
        {"may", "high", "RC4 MD5", ">=TLSv1"},
        {"encrypt", "medium", "RC4 MD5 3DES eNULL", ">=TLSv1.2"},
        {"secure", "medium", "RC4 MD5 3DES aNULL", ">=TLSv1.2"},
        {"fingerprint match=AA", "medium", "RC4 MD5 3DES aNULL", ">=TLSv1.2"},
        {"encrypt exclude=SEED:IDEA ciphers=null protocols=", "null", "SEED:IDEA eNULL", ""},
        {"may exclude=x", "high", "x", ">=TLSv1"},
    };
    for (const auto& c : cases) {
        Policy p = evaluate(c.value, main);
        EXPECT_EQ(p.ciphers, c.ciphers) << c.value;
        EXPECT_EQ(p.exclude, c.exclude) << c.value;
        EXPECT_EQ(p.protocols, c.protocols) << c.value;
    }
}

TEST(EffectivePolicy, Servername) {
    EXPECT_EQ(evaluate("encrypt servername=hostname").servername, "hostname");
    MainSettings main;
    main.servername = "nexthop";
    EXPECT_EQ(evaluate("encrypt", main).servername, "nexthop");
    main.servername = "bad name";
    Policy p = evaluate("encrypt", main);
    EXPECT_TRUE(p.invalid);
    EXPECT_EQ(p.warning, "\"smtp_tls_servername = bad name\" specifies an invalid hostname");
    EXPECT_FALSE(evaluate("encrypt servername=ok.example", main).invalid);
    // valid_hostname() is ASCII only: a U-label is invalid in the table and in main.cf
    EXPECT_TRUE(evaluate("encrypt servername=b\u00fccher.example", main).invalid);
    main.servername = "b\u00fccher.example";
    EXPECT_TRUE(evaluate("encrypt", main).invalid);
}

TEST(EffectivePolicy, DaneNeedsDnssec) {
    Policy dane = evaluate("dane");
    EXPECT_FALSE(dane.invalid);
    EXPECT_EQ(dane.level, Level::may);
    EXPECT_EQ(dane.warnings, std::vector<std::string>{"[localhost]:2616: dane configured with dnssec lookups disabled"});
    EXPECT_EQ(dane.protocols, ">=TLSv1");
    Policy only = evaluate("dane-only");
    EXPECT_TRUE(only.invalid);
    EXPECT_EQ(only.warning, "[localhost]:2616: dane-only configured with dnssec lookups disabled");
    EXPECT_EQ(evaluate("dane", with_dnssec()).level, Level::dane);
}

TEST(EffectivePolicy, TafilesAreCheckedThroughTheCaller) {
    TafileCheck check = [](const std::string& f) -> std::optional<std::string> {
        if (f == "/ok.pem") return std::nullopt;
        return "error opening trust anchor file: " + f + ": No such file or directory";
    };
    Policy ok = evaluate("secure tafile=/ok.pem tafile=/ok.pem", {}, check);
    EXPECT_EQ(ok.tafiles, (std::vector<std::string>{"/ok.pem", "/ok.pem"}));
    Policy bad = evaluate("verify tafile=/missing.pem", {}, check);
    EXPECT_TRUE(bad.invalid);
    EXPECT_EQ(bad.warning, "error opening trust anchor file: /missing.pem: No such file or directory");
    MainSettings main;
    main.tafiles = {"/missing.pem"};
    EXPECT_TRUE(evaluate("secure", main, check).invalid);
    EXPECT_EQ(evaluate("secure tafile=/ok.pem", main, check).tafiles, std::vector<std::string>{"/ok.pem"});
}

TEST(EffectivePolicy, SourceNamesTheEntry) {
    Policy p = evaluate("secure");
    ASSERT_TRUE(p.source);
    EXPECT_EQ(p.source->file, "tls_policy");
    EXPECT_EQ(p.source->line, 3);
    EXPECT_EQ(p.source->value, "secure");
}

TEST(EffectivePolicy, ParentHitNamesTheParentInWarnings) {
    PolicyTable t;
    TableEntry e;
    e.key = ".example.com";
    e.tokens = {"bogus"};
    t.add(e);
    Policy p = policy_for(t, "mail.Example.com", {});
    EXPECT_EQ(p.warning, "smtp_tls_policy_maps, next-hop destination \".Example.com\": invalid security level \"bogus\"");
}

}  // namespace
}  // namespace tlsrelay::tls

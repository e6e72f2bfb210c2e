// DANE decisions before connecting (postfix-tls-semantics.md §7, Postfix 3.7
// smtp_tls_policy.c dane_init): levels x MX RRset security x host security x TLSA
// lookup outcome, and how the decision becomes the effective policy.
#include <gtest/gtest.h>

#include "tls/dane.hpp"
#include "tls/effective_policy.hpp"

namespace tlsrelay::tls {
namespace {

TlsaRecord rec(std::uint8_t u, std::uint8_t s, std::uint8_t m) { return {u, s, m, {0xAB, 0xCD}}; }

enum class Tlsa { none, usable, unusable, error };

DaneInput input(Level level, bool mx_secure, InsecureMxPolicy policy, bool host_secure, Tlsa tlsa) {
    DaneInput in;
    in.level = level;
    in.mx_secure = mx_secure;
    in.insecure_mx_policy = policy;
    in.host = "mx1.example.test";
    in.port = 25;
    in.mx_qname = "example.test";
    in.host_secure = host_secure;
    switch (tlsa) {
        case Tlsa::none: in.tlsa = TlsaStatus::not_found; break;
        case Tlsa::usable:
            in.tlsa = TlsaStatus::found;
            in.records = {rec(3, 1, 1), rec(1, 1, 1)};
            break;
        case Tlsa::unusable:
            in.tlsa = TlsaStatus::found;
            in.records = {rec(1, 1, 1), rec(3, 1, 255)};
            break;
        case Tlsa::error: in.tlsa = TlsaStatus::error; break;
    }
    return in;
}

struct Row {
    const char* name;
    Level level;
    bool mx_secure;
    InsecureMxPolicy policy;
    bool host_secure;
    Tlsa tlsa;
    Level want_level;
    const char* want_reason;  // "" = not invalid
    bool want_records;
};

constexpr auto D = Level::dane, DO = Level::dane_only;
constexpr auto PM = InsecureMxPolicy::may, PE = InsecureMxPolicy::encrypt, PD = InsecureMxPolicy::dane;

const Row rows[] = {
    // secure MX, secure host
    {"dane usable", D, true, PM, true, Tlsa::usable, Level::dane, "", true},
    {"dane-only usable", DO, true, PM, true, Tlsa::usable, Level::dane_only, "", true},
    {"dane not found -> may", D, true, PM, true, Tlsa::none, Level::may, "", false},
    {"dane-only not found", DO, true, PM, true, Tlsa::none, Level::dane_only, "no TLSA records found", false},
    {"dane unusable -> encrypt", D, true, PM, true, Tlsa::unusable, Level::encrypt, "", false},
    {"dane-only unusable", DO, true, PM, true, Tlsa::unusable, Level::dane_only, "TLSA records unusable", false},
    {"dane lookup error", D, true, PM, true, Tlsa::error, Level::dane,
     "TLSA lookup error for mx1.example.test:25", false},
    {"dane-only lookup error", DO, true, PM, true, Tlsa::error, Level::dane_only,
     "TLSA lookup error for mx1.example.test:25", false},
    // insecure host addresses: no TLSA lookup, "not found" whatever DNS holds
    {"dane insecure host", D, true, PM, false, Tlsa::usable, Level::may, "", false},
    {"dane-only insecure host", DO, true, PM, false, Tlsa::usable, Level::dane_only, "no TLSA records found", false},
    {"dane insecure host, error never seen", D, true, PM, false, Tlsa::error, Level::may, "", false},
    // insecure MX RRset
    {"dane insecure MX, policy may", D, false, PM, true, Tlsa::usable, Level::may, "", false},
    {"dane-only insecure MX", DO, false, PD, true, Tlsa::usable, Level::dane_only, "non DNSSEC destination", false},
    {"dane insecure MX, policy dane -> halfdane", D, false, PD, true, Tlsa::usable, Level::halfdane, "", true},
    {"dane insecure MX, policy dane, no TLSA", D, false, PD, true, Tlsa::none, Level::may, "", false},
    {"dane insecure MX, policy dane, unusable", D, false, PD, true, Tlsa::unusable, Level::encrypt, "", false},
    {"dane insecure MX, policy dane, error", D, false, PD, true, Tlsa::error, Level::dane,
     "TLSA lookup error for mx1.example.test:25", false},
    {"dane insecure MX, policy encrypt", D, false, PE, true, Tlsa::usable, Level::encrypt, "", false},
    {"dane insecure MX, policy dane, insecure host", D, false, PD, false, Tlsa::usable, Level::may, "", false},
};

TEST(Dane, DecisionTable) {
    for (const auto& r : rows) {
        SCOPED_TRACE(r.name);
        DaneInput in = input(r.level, r.mx_secure, r.policy, r.host_secure, r.tlsa);
        DaneDecision d = decide_dane(in);
        EXPECT_EQ(d.level, r.want_level);
        EXPECT_EQ(d.invalid, *r.want_reason != 0);
        EXPECT_EQ(d.reason, r.want_reason);
        EXPECT_EQ(d.has_tlsa(), r.want_records);
        if (d.has_tlsa()) {
            EXPECT_EQ(d.base_domain, "mx1.example.test");
            EXPECT_EQ(d.match_names, (std::vector<std::string>{"mx1.example.test", "example.test"}));
        }
    }
}

TEST(Dane, LookupNeededOnlyForSecureHostsPastTheMxCheck) {
    EXPECT_TRUE(tlsa_lookup_needed(input(D, true, PM, true, Tlsa::none)));
    EXPECT_FALSE(tlsa_lookup_needed(input(D, true, PM, false, Tlsa::none)));
    EXPECT_FALSE(tlsa_lookup_needed(input(D, false, PM, true, Tlsa::none)));
    EXPECT_FALSE(tlsa_lookup_needed(input(DO, false, PD, true, Tlsa::none)));
    EXPECT_TRUE(tlsa_lookup_needed(input(D, false, PD, true, Tlsa::none)));
}

TEST(Dane, DroppedRecordsWarnAsPostfix) {
    DaneDecision d = decide_dane(input(D, true, PM, true, Tlsa::usable));
    ASSERT_EQ(d.usable.size(), 1u);
    EXPECT_EQ(d.usable[0].usage, 3);
    EXPECT_EQ(d.warnings, (std::vector<std::string>{
                              "_25._tcp.mx1.example.test unsupported TLSA certificate usage: 1 1 1 ABCD"}));
    d = decide_dane(input(D, true, PM, true, Tlsa::unusable));
    EXPECT_EQ(d.warnings.size(), 2u);
    EXPECT_EQ(d.warnings[1], "_25._tcp.mx1.example.test reserved private-use matching type: 3 1 255 ABCD");
    EXPECT_EQ(tlsa_unusable_reason(rec(2, 0, 1)), "");
    EXPECT_EQ(tlsa_unusable_reason(rec(3, 7, 9)), "");  // left to OpenSSL, as Postfix does
    EXPECT_EQ(tlsa_unusable_reason(rec(0, 0, 1)), "unsupported TLSA certificate usage");
}

TEST(Dane, NoMxRRsetCountsAsSecureAndNamesOnlyTheHost) {
    DaneInput in = input(DO, true, PM, true, Tlsa::usable);
    in.mx_qname.clear();  // bracketed next hop or implicit MX
    DaneDecision d = decide_dane(in);
    EXPECT_EQ(d.match_names, (std::vector<std::string>{"mx1.example.test"}));
}

TEST(Dane, DefaultInsecureMxPolicyOfPostfix3711) {
    EXPECT_EQ(default_insecure_mx_policy(Level::dane), InsecureMxPolicy::dane);
    EXPECT_EQ(default_insecure_mx_policy(Level::may), InsecureMxPolicy::may);
    EXPECT_EQ(default_insecure_mx_policy(Level::dane_only), InsecureMxPolicy::may);
}

Policy with_decision(const std::string& value, const DaneDecision& d) {
    MainSettings main;
    main.dnssec = true;
    TableEntry e;
    e.key = "example.test";
    e.value = value;
    e.tokens = tokenize_policy_value(value);
    return evaluate_policy(LookupResult{&e, "example.test", {"example.test"}, {}}, "example.test", main, {}, &d);
}

TEST(Dane, DecisionShapesThePolicy) {
    // Without a decision the level stays dane: the caller must resolve DANE first.
    MainSettings main;
    main.dnssec = true;
    main.level = Level::dane;
    EXPECT_EQ(policy_for(PolicyTable{}, "example.test", main).level, Level::dane);

    DaneDecision may = decide_dane(input(D, true, PM, true, Tlsa::none));
    Policy p = with_decision("dane", may);
    EXPECT_EQ(p.level, Level::may);
    EXPECT_EQ(p.protocols, main.protocols);         // may's protocols and grade
    EXPECT_EQ(p.exclude, "");
    EXPECT_TRUE(p.tlsa.empty());

    DaneDecision encrypt = decide_dane(input(D, true, PM, true, Tlsa::unusable));
    p = with_decision("dane", encrypt);
    EXPECT_EQ(p.level, Level::encrypt);
    EXPECT_EQ(p.exclude, "eNULL");
    EXPECT_EQ(p.warnings.size(), 2u);

    DaneDecision full = decide_dane(input(DO, true, PM, true, Tlsa::usable));
    p = with_decision("dane-only", full);
    EXPECT_EQ(p.level, Level::dane_only);
    EXPECT_EQ(p.tlsa.size(), 1u);
    EXPECT_EQ(p.dane_base_domain, "mx1.example.test");
    EXPECT_EQ(p.protocols, main.mandatory_protocols);
    EXPECT_EQ(p.exclude, "aNULL");

    DaneDecision none = decide_dane(input(DO, true, PM, true, Tlsa::none));
    p = with_decision("dane-only", none);
    EXPECT_TRUE(p.invalid);
    EXPECT_EQ(p.invalid_reason, "no TLSA records found");
}

}  // namespace
}  // namespace tlsrelay::tls

// Decisions for every failure row of spec section 1.3 at each level, the
// summary-line adjective, the plaintext-retry rule and policy-line suggestions.
#include <gtest/gtest.h>

#include "tls/decision.hpp"

namespace tlsrelay::tls {
namespace {

Policy at(Level level) {
    Policy p;
    p.level = level;
    p.digest = "sha256";
    return p;
}

SessionFacts base() {
    SessionFacts f;
    f.host = "mx.example.com";
    f.addr = "192.0.2.1";
    f.starttls_offered = true;
    f.starttls_reply = StarttlsReply{220, "220 2.0.0 Ready to start TLS"};
    f.handshake_ok = true;
    f.peer_cert_present = true;
    f.verify_result = 0;
    f.names_matched = true;
    f.fingerprint_matched = true;
    return f;
}

const std::vector<Level> required = {Level::encrypt, Level::fingerprint, Level::dane,
                                     Level::dane_only, Level::verify, Level::secure};

TEST(Decision, NotOffered) {
    SessionFacts f = base();
    f.starttls_offered = false;
    for (Level l : {Level::none, Level::may}) EXPECT_EQ(decide(at(l), f).outcome, Outcome::proceed_plaintext);
    for (Level l : required) {
        Decision d = decide(at(l), f);
        EXPECT_EQ(d.outcome, Outcome::defer);
        EXPECT_EQ(d.dsn, "4.7.4");
        EXPECT_EQ(d.reason, "TLS is required, but was not offered by host mx.example.com[192.0.2.1]");
        EXPECT_TRUE(d.throttle);
    }
    f.final_server = false;
    EXPECT_EQ(decide(at(Level::encrypt), f).outcome, Outcome::try_next_mx);
}

TEST(Decision, Refused) {
    SessionFacts f = base();
    f.starttls_reply = StarttlsReply{454, "454 TLS not available due to local problem"};
    EXPECT_EQ(decide(at(Level::may), f).outcome, Outcome::proceed_plaintext);
    Decision d = decide(at(Level::secure), f);
    EXPECT_EQ(d.outcome, Outcome::defer);
    EXPECT_EQ(d.dsn, "4.0.0");
    EXPECT_EQ(d.reason, "TLS is required, but host mx.example.com[192.0.2.1] refused to start TLS: "
                        "454 TLS not available due to local problem");
    EXPECT_TRUE(d.throttle);
    const std::vector<std::tuple<int, std::string, std::string, Outcome>> replies = {
        {454, "454 4.7.0 Not now", "4.7.0", Outcome::defer},
        {502, "502 5.5.1 Unrecognized command", "5.5.1", Outcome::bounce},
        {554, "554 no", "5.0.0", Outcome::bounce},
        {454, "454 5.7.0 class mismatch", "4.0.0", Outcome::defer},
        {454, "454-4.7.0 first line 454 4.7.0 second", "4.7.0", Outcome::defer},
    };
    for (const auto& [code, text, dsn, outcome] : replies) {
        f.starttls_reply = StarttlsReply{code, text};
        Decision r = decide(at(Level::encrypt), f);
        EXPECT_EQ(r.dsn, dsn) << text;
        EXPECT_EQ(r.outcome, outcome) << text;
    }
    f.final_server = false;
    EXPECT_EQ(decide(at(Level::encrypt), f).outcome, Outcome::try_next_mx);
    f.starttls_reply = StarttlsReply{502, "502 5.5.1 Unrecognized command"};
    EXPECT_EQ(decide(at(Level::encrypt), f).outcome, Outcome::bounce);  // on any server
}

TEST(Decision, HandshakeFailure) {
    SessionFacts f = base();
    f.handshake_ok = false;
    f.handshake_error = "invalid cipher grade: \"bogus\"";
    for (Level l : {Level::may, Level::encrypt, Level::secure}) {
        Decision d = decide(at(l), f);
        EXPECT_EQ(d.outcome, Outcome::defer);
        EXPECT_EQ(d.dsn, "4.7.5");
        EXPECT_EQ(d.reason, "Cannot start TLS: handshake failure");
        EXPECT_EQ(d.throttle, l != Level::may);
        EXPECT_FALSE(d.send_quit);
        EXPECT_EQ(d.detail, f.handshake_error);
    }
    f.plaintext_retry = true;
    EXPECT_EQ(decide(at(Level::may), f).outcome, Outcome::retry_plaintext);
    EXPECT_EQ(decide(at(Level::encrypt), f).outcome, Outcome::defer);
}

TEST(Decision, UntrustedChain) {
    SessionFacts f = base();
    f.verify_result = 18;
    f.verify_text = "self-signed certificate";
    for (Level l : {Level::may, Level::encrypt}) {
        Decision d = decide(at(l), f);
        EXPECT_EQ(d.outcome, Outcome::proceed_tls);
        EXPECT_EQ(d.adjective, Adjective::untrusted);
    }
    EXPECT_EQ(decide(at(Level::fingerprint), f).adjective, Adjective::verified);
    for (Level l : {Level::verify, Level::secure}) {
        Decision d = decide(at(l), f);
        EXPECT_EQ(d.outcome, Outcome::defer);
        EXPECT_EQ(d.dsn, "4.7.5");
        EXPECT_EQ(d.reason, "Server certificate not verified");
        EXPECT_TRUE(d.throttle);
        EXPECT_TRUE(d.send_quit);
        EXPECT_EQ(d.adjective, Adjective::untrusted);
        EXPECT_EQ(d.detail, "certificate verification failed: self-signed certificate");
    }
}

TEST(Decision, NameMismatch) {
    SessionFacts f = base();
    f.names_matched = false;
    f.cert_names = {"*.example.net", "example.net"};
    f.reference_names = {"example.com", ".example.com"};
    for (Level l : {Level::may, Level::encrypt, Level::fingerprint}) {
        Decision d = decide(at(l), f);
        EXPECT_EQ(d.outcome, Outcome::proceed_tls);
    }
    EXPECT_EQ(decide(at(Level::may), f).adjective, Adjective::trusted);
    Decision d = decide(at(Level::secure), f);
    EXPECT_EQ(d.reason, "Server certificate not verified");
    EXPECT_EQ(d.dsn, "4.7.5");
    EXPECT_EQ(d.adjective, Adjective::untrusted);
    EXPECT_EQ(d.detail, "names *.example.net, example.net do not match example.com, .example.com; "
                        "match=.example.net would pass");
}

TEST(Decision, FingerprintAndTlsaMismatch) {
    SessionFacts f = base();
    f.fingerprint_matched = false;
    Policy p = at(Level::fingerprint);
    p.fingerprints = {{"AA", Bytes(16, 0xaa)}};
    Decision d = decide(p, f);
    EXPECT_EQ(d.reason, "Server certificate not verified");
    EXPECT_EQ(d.dsn, "4.7.5");
    EXPECT_TRUE(d.throttle);
    EXPECT_EQ(d.detail, "no configured sha256 fingerprint matches the certificate or its public key; "
                        "AA: this 16-byte value is an md5 fingerprint, but fingerprint_digest is sha256");
    for (Level l : {Level::dane, Level::dane_only}) EXPECT_EQ(decide(at(l), f).reason, "Server certificate not verified");
}

TEST(Decision, ConfigProblemAndEngine) {
    Policy p = at(Level::secure);
    p.invalid = true;
    p.warning = "smtp_tls_policy_maps, next-hop destination \"x\": invalid security level \"bogus\"";
    SessionFacts f = base();
    Decision d = decide(p, f);
    EXPECT_EQ(d.outcome, Outcome::defer);
    EXPECT_EQ(d.dsn, "4.7.5");
    EXPECT_EQ(d.reason, "client TLS configuration problem");
    EXPECT_EQ(d.detail, p.warning);
    f.final_server = false;
    EXPECT_EQ(decide(p, f).outcome, Outcome::try_next_mx);
    SessionFacts g = base();
    g.tls_engine_available = false;
    EXPECT_EQ(decide(at(Level::may), g).outcome, Outcome::proceed_plaintext);
    EXPECT_EQ(decide(at(Level::encrypt), g).reason, "TLS is required, but our TLS engine is unavailable");
    EXPECT_EQ(decide(at(Level::encrypt), g).dsn, "4.7.5");
}

TEST(Decision, Adjectives) {
    SessionFacts f = base();
    EXPECT_EQ(decide(at(Level::none), f).outcome, Outcome::proceed_plaintext);
    EXPECT_EQ(decide(at(Level::may), f).adjective, Adjective::trusted);
    EXPECT_EQ(decide(at(Level::encrypt), f).adjective, Adjective::trusted);
    for (Level l : {Level::fingerprint, Level::dane, Level::dane_only, Level::verify, Level::secure})
        EXPECT_EQ(decide(at(l), f).adjective, Adjective::verified) << to_string(l);
    EXPECT_EQ(decide(at(Level::halfdane), f).adjective, Adjective::trusted);
    f.peer_cert_present = false;
    EXPECT_EQ(decide(at(Level::encrypt), f).adjective, Adjective::anonymous);
    EXPECT_EQ(decide(at(Level::encrypt), f).outcome, Outcome::proceed_tls);
    EXPECT_EQ(decide(at(Level::secure), f).outcome, Outcome::defer);
    EXPECT_EQ(to_string(Adjective::verified), "Verified");
}

TEST(Decision, PlaintextRetryRule) {
    using namespace std::chrono_literals;
    PlaintextRetryFacts f;
    f.waited = 300s;
    EXPECT_TRUE(plaintext_retry_allowed(f));
    f.waited = 299s;
    EXPECT_FALSE(plaintext_retry_allowed(f));
    f.trace_only = true;
    EXPECT_TRUE(plaintext_retry_allowed(f));
    f = {};
    f.waited = 1h;
    f.level = Level::encrypt;
    EXPECT_FALSE(plaintext_retry_allowed(f));
    f.level = Level::may;
    f.sasl_credentials = true;
    EXPECT_FALSE(plaintext_retry_allowed(f));
    f.sasl_credentials = false;
    f.failure = TlsFailure::session;
    EXPECT_TRUE(plaintext_retry_allowed(f));
    f.recipients_pending = false;
    EXPECT_FALSE(plaintext_retry_allowed(f));
}

TEST(Decision, Suggestions) {
    CertificateFacts c;
    c.chain_trusted = true;
    c.names = {"mx.example.com"};
    EXPECT_EQ(suggest_policy_line("example.com", "example.com", c), "example.com secure");
    c.names = {"example.net", "*.example.net"};
    EXPECT_EQ(suggest_policy_line("example.com", "example.com", c), "example.com secure match=.example.net");
    c.names = {"mx.hoster.example"};
    EXPECT_EQ(suggest_policy_line("[mx]:587", "mx", c), "[mx]:587 secure match=mx.hoster.example");
    c.chain_trusted = false;
    c.pubkey_fingerprint = "AB:CD";
    EXPECT_EQ(suggest_policy_line("example.com", "example.com", c), "example.com fingerprint match=AB:CD");
    c.pubkey_fingerprint.clear();
    EXPECT_EQ(suggest_policy_line("example.com", "example.com", c), "example.com encrypt");
    EXPECT_EQ(suggest_match({}), "");
}

}  // namespace
}  // namespace tlsrelay::tls

// Certificate early warnings: when an expiry warning is due and repeats, how dates and
// distances read, what a session with a policy destination is observed as, and which
// sequences of sessions produce which warnings and counts.
#include "relay/cert_watch.hpp"

#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>

#include "relay/monitor.hpp"
#include "relay/nexthop.hpp"
#include "relay/watch_probe.hpp"
#include "tls/fingerprint.hpp"

namespace tlsrelay::relay {
namespace {

using namespace std::chrono_literals;
constexpr std::int64_t day = 86400;
constexpr std::int64_t now = 1'800'000'000;  // Jan 15 08:00:00 2027 GMT

TEST(CertWatch, ExpiryWarningDue) {
    struct {
        std::int64_t not_after;
        std::chrono::seconds window;
        bool due;
    } cases[] = {
        {now + 5 * day, 14 * 24h, true},    {now + 14 * day - 1, 14 * 24h, true},
        {now + 14 * day, 14 * 24h, false},  {now + 100 * day, 14 * 24h, false},
        {now - day, 14 * 24h, true},        // already expired
        {now + 5 * day, 0s, false},         // 0s disables
        {now - day, 0s, false},
    };
    for (const auto& c : cases)
        EXPECT_EQ(expiry_warning_due(c.not_after, now, c.window), c.due) << c.not_after - now;
}

TEST(CertWatch, ExpiryWarningRepeatsOncePerDay) {
    EXPECT_TRUE(expiry_warning_repeats(std::nullopt, now));
    EXPECT_FALSE(expiry_warning_repeats(now, now));
    EXPECT_FALSE(expiry_warning_repeats(now - day + 1, now));
    EXPECT_TRUE(expiry_warning_repeats(now - day, now));
}

TEST(CertWatch, DistancesAndDates) {
    EXPECT_EQ(expiry_distance(now + 5 * day + 3600, now), "expires in 5 days");
    EXPECT_EQ(expiry_distance(now + day, now), "expires in 1 day");
    EXPECT_EQ(expiry_distance(now + 3 * 3600 + 59, now), "expires in 3 hours");
    EXPECT_EQ(expiry_distance(now + 600, now), "expires in 10 minutes");
    EXPECT_EQ(expiry_distance(now - 2 * day, now), "expired 2 days ago");
    EXPECT_EQ(expiry_distance(now - 3600, now), "expired 1 hour ago");
    EXPECT_EQ(certificate_time(1'796'083'200), "Dec  1 00:00:00 2026 GMT");
    EXPECT_EQ(certificate_time(now), "Jan 15 08:00:00 2027 GMT");
}

CertObservation seen(const char* host, const char* key, std::int64_t not_after) {
    CertObservation o;
    o.destination = "example.test";
    o.host = host;
    o.server = std::string(host) + "[192.0.2.1]:25";
    o.not_after = not_after;
    o.key_sha256 = key;
    return o;
}

TEST(CertWatch, WarnsOnExpiryOncePerDayAndHost) {
    metrics::Registry r;
    CertWatch w(r);
    auto o = seen("mx1.example.test", "AA", now + 5 * day);
    auto first = w.observe(o, now, 14 * 24h);
    ASSERT_EQ(first.size(), 1u);
    EXPECT_EQ(first[0], "TLS certificate of mx1.example.test[192.0.2.1]:25 for destination example.test "
                        "expires in 5 days (Jan 20 08:00:00 2027 GMT)");
    EXPECT_TRUE(w.observe(o, now + 3600, 14 * 24h).empty());
    EXPECT_EQ(w.observe(seen("mx2.example.test", "BB", now + 5 * day), now, 14 * 24h).size(), 1u);
    EXPECT_EQ(w.observe(o, now + day, 14 * 24h).size(), 1u);
    EXPECT_TRUE(w.observe(seen("mx3.example.test", "CC", now + 5 * day), now, 0s).empty());
    std::string text = r.render();
    EXPECT_NE(text.find("tlsrelay_tls_certificate_expiry_warnings_total{destination=\"example.test\","
                        "host=\"mx1.example.test\"} 2\n"), std::string::npos) << text;
    EXPECT_NE(text.find("tlsrelay_tls_certificate_not_after_timestamp_seconds{destination=\"example.test\","
                        "host=\"mx3.example.test\"} 1800432000\n"), std::string::npos) << text;
}

TEST(CertWatch, WarnsWhenThePublicKeyChanges) {
    metrics::Registry r;
    CertWatch w(r);
    EXPECT_TRUE(w.observe(seen("mx1.example.test", "AA:01", now + 90 * day), now, 14 * 24h).empty());
    EXPECT_TRUE(w.observe(seen("mx1.example.test", "AA:01", now + 90 * day), now, 14 * 24h).empty());
    EXPECT_TRUE(w.observe(seen("mx2.example.test", "BB:02", now + 90 * day), now, 14 * 24h).empty());
    auto changed = w.observe(seen("mx1.example.test", "CC:03", now + 90 * day), now, 14 * 24h);
    ASSERT_EQ(changed.size(), 1u);
    EXPECT_EQ(changed[0], "public key of TLS certificate of mx1.example.test[192.0.2.1]:25 for destination "
                          "example.test changed: sha256 AA:01 before, CC:03 now");
    EXPECT_TRUE(w.observe(seen("mx1.example.test", "CC:03", now + 90 * day), now, 14 * 24h).empty());
    EXPECT_NE(r.render().find("tlsrelay_tls_public_key_changes_total{destination=\"example.test\","
                              "host=\"mx1.example.test\"} 1\n"), std::string::npos);
}

// A self-signed EC certificate valid until not_after.
std::shared_ptr<X509> make_cert(std::int64_t not_after) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    ASN1_TIME_set(X509_getm_notAfter(x), static_cast<time_t>(not_after));
    X509_set_pubkey(x, key);
    X509_sign(x, key, EVP_sha256());
    EVP_PKEY_free(key);
    return std::shared_ptr<X509>(x, X509_free);
}

tls::Policy pinned(const std::vector<std::string>& pins, const char* digest) {
    tls::Policy p;
    p.level = tls::Level::fingerprint;
    p.digest = digest;
    for (const auto& pin : pins) p.fingerprints.push_back({pin, *tls::parse_fingerprint(pin)});
    p.source = tls::PolicySource{"example.test", "example.test", "fingerprint", "/etc/tlsrelay/tls_policy", 7};
    return p;
}

TEST(CertWatch, ObservesPinsInTheConfiguredDigest) {
    auto cert = make_cert(now + 30 * day);
    NextHop hop{"example.test", "example.test", 25, true};
    smtp::ServerId server{"MX1.example.test", boost::asio::ip::make_address("192.0.2.1"), 25};
    std::string key_sha1 = tls::hex_colons(tls::public_key_digest(cert.get(), "sha1"));
    std::string cert_sha1 = tls::hex_colons(tls::certificate_digest(cert.get(), "sha1"));
    auto o = observe_certificate(pinned({"00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33"}, "sha1"),
                                 hop, server, cert.get());
    ASSERT_TRUE(o);
    EXPECT_EQ(o->not_after, now + 30 * day);
    EXPECT_EQ(o->server, "mx1.example.test[192.0.2.1]:25");
    EXPECT_EQ(o->key_sha256, tls::hex_colons(tls::public_key_digest(cert.get(), "sha256")));
    EXPECT_TRUE(o->pinned);
    EXPECT_FALSE(o->pin_matched);
    EXPECT_EQ(o->pin_line, "example.test fingerprint match=" + key_sha1);
    metrics::Registry r;
    auto warnings = CertWatch(r).observe(*o, now, 14 * 24h);
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_EQ(warnings[0], "TLS certificate of mx1.example.test[192.0.2.1]:25 for destination example.test "
                           "matches none of the fingerprints pinned in /etc/tlsrelay/tls_policy:7; this "
                           "policy line would match: example.test fingerprint match=" + key_sha1);
    EXPECT_TRUE(observe_certificate(pinned({cert_sha1}, "sha1"), hop, server, cert.get())->pin_matched);
    EXPECT_TRUE(observe_certificate(pinned({key_sha1}, "sha1"), hop, server, cert.get())->pin_matched);
}

TEST(CertWatch, OnlyPolicyDestinationsWithACertificateAreObserved) {
    auto cert = make_cert(now + 30 * day);
    NextHop hop{"example.test", "example.test", 25, true};
    smtp::ServerId server{"mx1.example.test", boost::asio::ip::make_address("192.0.2.1"), 25};
    tls::Policy main_level;  // no table entry
    main_level.level = tls::Level::may;
    EXPECT_FALSE(observe_certificate(main_level, hop, server, cert.get()));
    tls::Policy secure = pinned({}, "sha256");
    secure.level = tls::Level::secure;
    EXPECT_FALSE(observe_certificate(secure, hop, server, nullptr));
    auto o = observe_certificate(secure, hop, server, cert.get());
    ASSERT_TRUE(o);
    EXPECT_FALSE(o->pinned);
}

TEST(CertWatch, ActiveChecksVisitKeysThatNameANextHop) {
    tls::PolicyTable table;
    for (const char* key : {"example.test", ".example.test", "[mx.partner.test]:587", "[192.0.2.7]"})
        table.add(tls::TableEntry{key, {"secure"}, "secure", "tls_policy", 1});
    EXPECT_EQ(watched_nexthops(table),
              (std::vector<std::string>{"example.test", "[mx.partner.test]:587", "[192.0.2.7]"}));
    EXPECT_TRUE(watched_nexthops(tls::PolicyTable{}).empty());
}

}  // namespace
}  // namespace tlsrelay::relay

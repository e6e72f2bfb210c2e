// Fingerprint values (hex pairs, colons only between pairs) and matching of the
// certificate or public-key digest, interchangeably, in each digest.
#include <gtest/gtest.h>

#include "tests/tls/test_certs.hpp"
#include "tls/fingerprint.hpp"

namespace tlsrelay::tls {
namespace {

TEST(Fingerprint, ValueSyntax) {
    const std::vector<std::pair<std::string, std::optional<Bytes>>> cases = {
        {"AB", Bytes{0xab}},
        {"abCD01", Bytes{0xab, 0xcd, 0x01}},
        {"AB:cd:01", Bytes{0xab, 0xcd, 0x01}},
        {"AB:CD01", Bytes{0xab, 0xcd, 0x01}},
        {":AB", std::nullopt},
        {"AB:", std::nullopt},
        {"AB::CD", std::nullopt},
        {"A:BC", std::nullopt},
        {"ABC", std::nullopt},
        {"zz", std::nullopt},
        {"AB CD", std::nullopt},
        {std::string(192, 'a'), Bytes(96, 0xaa)},
        {std::string(194, 'a'), std::nullopt},
    };
    for (const auto& [text, bytes] : cases) EXPECT_EQ(parse_fingerprint(text), bytes) << text;
}

TEST(Fingerprint, MalformedWarningTruncates) {
    EXPECT_EQ(malformed_fingerprint_warning("zz"), "malformed fingerprint value: zz");
    EXPECT_EQ(malformed_fingerprint_warning(std::string(200, 'z')),
              "malformed fingerprint value: " + std::string(100, 'z') + "...");
}

TEST(Fingerprint, CertificateAndPublicKeyDigestsBothMatch) {
    auto cert = test::make_cert({{"mx.example"}, {}, {}});
    for (std::string digest : {"md5", "sha1", "sha256", "sha512", "SHA256"}) {
        Bytes c = certificate_digest(cert.get(), digest), k = public_key_digest(cert.get(), digest);
        ASSERT_EQ(c.size(), digest_size(digest)) << digest;
        ASSERT_EQ(k.size(), digest_size(digest)) << digest;
        EXPECT_NE(c, k);
        auto from_text = [&](const Bytes& b) { return Fingerprint{hex_colons(b), *parse_fingerprint(hex_colons(b))}; };
        EXPECT_TRUE(fingerprint_matches(cert.get(), {from_text(c)}, digest)) << digest;
        EXPECT_TRUE(fingerprint_matches(cert.get(), {from_text(k)}, digest)) << digest;
        Bytes other = c;
        other[0] ^= 1;
        EXPECT_FALSE(fingerprint_matches(cert.get(), {from_text(other)}, digest)) << digest;
    }
}

TEST(Fingerprint, PublicKeyDigestIsOverTheDerSubjectPublicKeyInfo) {
    auto cert = test::make_cert({{"mx.example"}, {}, {}});
    unsigned char* der = nullptr;
    int len = i2d_PUBKEY(X509_get0_pubkey(cert.get()), &der);
    Bytes want(32);
    unsigned int n = 0;
    EVP_Digest(der, len, want.data(), &n, EVP_sha256(), nullptr);
    OPENSSL_free(der);
    EXPECT_EQ(public_key_digest(cert.get(), "sha256"), want);
}

TEST(Fingerprint, WrongLengthValuesAreUnusable) {
    auto cert = test::make_cert({{"mx.example"}, {}, {}});
    Bytes md5 = public_key_digest(cert.get(), "md5");
    Fingerprint fp{hex_colons(md5), md5};
    EXPECT_FALSE(usable_fingerprint(fp, "sha256"));
    EXPECT_FALSE(fingerprint_matches(cert.get(), {fp}, "sha256"));
    EXPECT_TRUE(fingerprint_matches(cert.get(), {fp}, "md5"));
}

TEST(Fingerprint, LengthExplanations) {
    auto fp = [](size_t n) { return Fingerprint{"x", Bytes(n, 1)}; };
    EXPECT_EQ(fingerprint_length_problem(fp(16), "sha256"),
              "this 16-byte value is an md5 fingerprint, but fingerprint_digest is sha256");
    EXPECT_EQ(fingerprint_length_problem(fp(20), "sha256"),
              "this 20-byte value is a sha1 fingerprint, but fingerprint_digest is sha256");
    EXPECT_EQ(fingerprint_length_problem(fp(32), "md5"),
              "this 32-byte value is a sha256 fingerprint, but fingerprint_digest is md5");
    EXPECT_EQ(fingerprint_length_problem(fp(4), "sha256"),
              "this 4-byte value is not a sha256 fingerprint (32 bytes); Postfix ignores it as an unusable TLSA RR");
    EXPECT_EQ(fingerprint_length_problem(fp(32), "sha256"), "");
}

TEST(Fingerprint, HexColons) {
    EXPECT_EQ(hex_colons({0x00, 0xab, 0x0f}), "00:AB:0F");
    EXPECT_EQ(hex_colons({}), "");
}

}  // namespace
}  // namespace tlsrelay::tls

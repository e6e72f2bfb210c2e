// Postfix 3.7's words for the verification error it logs (tls_verify.c
// tls_log_verify_error), one row per case, and the choice of that error.
#include "relay/verify_errors.hpp"

#include <gtest/gtest.h>
#include <openssl/x509_vfy.h>

namespace tlsrelay::relay {
namespace {

const std::string where = "mx1.example.test[127.0.1.1]:25";

TEST(VerifyFailureLine, PostfixWordsPerErrorAndDepth) {
    struct Row {
        VerifyError e;
        std::string line;
    };
    const std::string issuer = "/O=tlsrelay tests/CN=Unknown Root";
    const Row rows[] = {
        {{0, X509_V_ERR_CERT_HAS_EXPIRED, issuer}, "server certificate verification failed for " + where + ": certificate has expired"},
        {{1, X509_V_ERR_CERT_HAS_EXPIRED, issuer}, "CA certificate verification failed for " + where + ": certificate has expired"},
        {{1, X509_V_ERR_CERT_NOT_YET_VALID, issuer}, "CA certificate verification failed for " + where + ": certificate not yet valid"},
        {{0, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, issuer}, "certificate verification failed for " + where + ": self-signed certificate"},
        {{2, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, issuer}, "certificate verification failed for " + where + ": untrusted issuer " + issuer},
        {{1, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, issuer}, "certificate verification failed for " + where + ": untrusted issuer " + issuer},
        {{1, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, issuer}, "CA certificate verification failed for " + where + ": num=2:unable to get issuer certificate"},
        {{0, X509_V_ERR_CERT_UNTRUSTED, issuer}, "certificate verification failed for " + where + ": not trusted by local or TLSA policy"},
        {{0, X509_V_ERR_INVALID_PURPOSE, issuer}, "certificate verification failed for " + where + ": not designated for use as a server certificate"},
        {{1, X509_V_ERR_INVALID_PURPOSE, issuer}, "certificate verification failed for " + where + ": not designated for use as a CA certificate"},
        {{11, X509_V_ERR_CERT_CHAIN_TOO_LONG, issuer}, "certificate verification failed for " + where + ": certificate chain longer than limit(10)"},
        {{1, X509_V_ERR_INVALID_CA, issuer}, "CA certificate verification failed for " + where + ": num=79:invalid CA certificate"},
        {{0, X509_V_ERR_HOSTNAME_MISMATCH, issuer}, "server certificate verification failed for " + where + ": num=62:hostname mismatch"},
    };
    for (const auto& r : rows) EXPECT_EQ(verify_failure_line(r.e, where), r.line) << r.e.code << " at " << r.e.depth;
}

}  // namespace
}  // namespace tlsrelay::relay

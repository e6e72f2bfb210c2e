// The errors OpenSSL reports while it verifies a server's chain, as Postfix's
// tls_verify_certificate_callback sees them (src/tls/tls_verify.c): verification goes
// on past each one, and the one Postfix logs is the first found at the lowest depth
// (update_error_state), worded by tls_log_verify_error.
#pragma once

#include <openssl/ssl.h>

#include <optional>
#include <string>
#include <vector>

namespace tlsrelay::relay {

struct VerifyError {
    int depth = 0;
    long code = X509_V_OK;
    std::string issuer;  // the failing certificate's issuer, as X509_NAME_oneline prints it
};

class VerifyErrors {
public:
    // Records ssl's verification from now on, in an object the SSL owns (freed with it).
    static void watch(SSL* ssl);
    static const VerifyErrors* of(const SSL* ssl);  // null when nothing watches ssl

    const std::vector<VerifyError>& all() const { return all_; }
    std::optional<VerifyError> lowest() const;  // the first error at the lowest depth

private:
    static int on_verify(int ok, X509_STORE_CTX* ctx);
    std::vector<VerifyError> all_;
};

// The error Postfix would log for ssl's finished verification: nullopt when it passed
// (OpenSSL's result decides), else the first recorded error at the lowest depth, or
// OpenSSL's result at depth 0 when nothing watched the verification.
std::optional<VerifyError> logged_error(const SSL* ssl);

// Postfix's line for the error it logs; "CA" names a certificate above the leaf.
std::string verify_failure_line(const VerifyError& e, const std::string& where);

}  // namespace tlsrelay::relay

#include "relay/verify_errors.hpp"

#include <openssl/x509_vfy.h>

namespace tlsrelay::relay {
namespace {

void free_errors(void*, void* errors, CRYPTO_EX_DATA*, int, long, void*) {
    delete static_cast<VerifyErrors*>(errors);
}

int watch_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_errors);
    return index;
}

}  // namespace

void VerifyErrors::watch(SSL* ssl) {
    delete static_cast<VerifyErrors*>(SSL_get_ex_data(ssl, watch_index()));
    SSL_set_ex_data(ssl, watch_index(), new VerifyErrors);
    SSL_set_verify(ssl, SSL_get_verify_mode(ssl), &VerifyErrors::on_verify);
}

const VerifyErrors* VerifyErrors::of(const SSL* ssl) {
    return static_cast<const VerifyErrors*>(SSL_get_ex_data(ssl, watch_index()));
}

// Never stops the verification: the level decides after the handshake, as in Postfix.
int VerifyErrors::on_verify(int ok, X509_STORE_CTX* ctx) {
    if (ok) return 1;
    auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
    auto* self = ssl ? static_cast<VerifyErrors*>(SSL_get_ex_data(ssl, watch_index())) : nullptr;
    if (!self) return 1;
    VerifyError e;
    e.depth = X509_STORE_CTX_get_error_depth(ctx);
    e.code = X509_STORE_CTX_get_error(ctx);
    if (X509* cert = X509_STORE_CTX_get_current_cert(ctx)) {
        char issuer[256] = {};
        X509_NAME_oneline(X509_get_issuer_name(cert), issuer, sizeof issuer);
        e.issuer = issuer;
    } else {
        e.issuer = "<unknown>";
    }
    self->all_.push_back(std::move(e));
    return 1;
}

std::optional<VerifyError> VerifyErrors::lowest() const {
    const VerifyError* best = nullptr;
    for (const auto& e : all_)
        if (!best || e.depth < best->depth) best = &e;
    if (!best) return std::nullopt;
    return *best;
}

std::optional<VerifyError> logged_error(const SSL* ssl) {
    long result = SSL_get_verify_result(ssl);
    if (result == X509_V_OK) return std::nullopt;
    const VerifyErrors* seen = VerifyErrors::of(ssl);
    if (auto e = seen ? seen->lowest() : std::nullopt) return e;
    return VerifyError{0, result, "<unknown>"};
}

std::string verify_failure_line(const VerifyError& e, const std::string& where) {
    const std::string purpose = e.depth > 0 ? "CA" : "server";
    const std::string failed = "certificate verification failed for " + where + ": ";
    switch (e.code) {
        case X509_V_ERR_CERT_UNTRUSTED:
            return failed + "not trusted by local or TLSA policy";
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
            return failed + "self-signed certificate";
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
            return failed + "untrusted issuer " + e.issuer;
        case X509_V_ERR_CERT_NOT_YET_VALID:
        case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
            return purpose + " " + failed + "certificate not yet valid";
        case X509_V_ERR_CERT_HAS_EXPIRED:
        case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
            return purpose + " " + failed + "certificate has expired";
        case X509_V_ERR_INVALID_PURPOSE:
            return failed + "not designated for use as a " + purpose + " certificate";
        case X509_V_ERR_CERT_CHAIN_TOO_LONG:
            return failed + "certificate chain longer than limit(" + std::to_string(e.depth - 1) + ")";
        default:
            return purpose + " " + failed + "num=" + std::to_string(e.code) + ":" +
                   X509_verify_cert_error_string(e.code);
    }
}

}  // namespace tlsrelay::relay

#include "smtp/tls_summary.hpp"

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

namespace tlsrelay::smtp {
namespace {

std::string key_description(EVP_PKEY* key, bool for_signature, int sig_type_nid) {
    std::string out;
    char group[80] = {};
    size_t len = 0;
    switch (EVP_PKEY_get_base_id(key)) {
        case EVP_PKEY_RSA:
            out = sig_type_nid == EVP_PKEY_RSA_PSS ? "RSA-PSS" : "RSA";
            out += " (" + std::to_string(EVP_PKEY_get_bits(key)) + " bits)";
            break;
        case EVP_PKEY_DH:
            out = "DHE (" + std::to_string(EVP_PKEY_get_bits(key)) + " bits)";
            break;
        case EVP_PKEY_EC:
            out = for_signature ? "ECDSA" : "ECDHE";
            // OpenSSL's curve name, as Postfix logs it: "prime256v1", not "P-256".
            if (EVP_PKEY_get_group_name(key, group, sizeof group, &len))
                out += std::string(" (") + group + ")";
            break;
        default: {  // e.g. "ED25519", or "RSASSA-PSS" for a key restricted to PSS (no bits)
            const char* sn = OBJ_nid2sn(EVP_PKEY_get_base_id(key));
            out = sn ? sn : "unknown";
        }
    }
    return out;
}

}  // namespace

std::string describe_tls_session(SSL* ssl, bool every_version) {
    const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
    int alg_bits = 0;
    int use_bits = SSL_CIPHER_get_bits(cipher, &alg_bits);
    std::string out = std::string(SSL_get_version(ssl)) + " with cipher " + SSL_CIPHER_get_name(cipher) +
                      " (" + std::to_string(use_bits) + "/" + std::to_string(alg_bits) + " bits)";
    // Postfix 3.7 (tls_get_signature_params) names the key exchange and the server's
    // signature for TLS 1.3 only: an older session's line ends with the cipher's bits.
    if (SSL_version(ssl) < TLS1_3_VERSION && !every_version) return out;
    EVP_PKEY* kex = nullptr;
    if (SSL_get_peer_tmp_key(ssl, &kex)) {
        out += " key-exchange " + key_description(kex, false, NID_undef);
        EVP_PKEY_free(kex);
    }
    X509* peer = SSL_get1_peer_certificate(ssl);
    if (peer) {
        EVP_PKEY* pk = X509_get0_pubkey(peer);
        int sig_type = NID_undef, digest = NID_undef;
        SSL_get_peer_signature_type_nid(ssl, &sig_type);
        if (pk) out += " server-signature " + key_description(pk, true, sig_type);
        if (SSL_get_peer_signature_nid(ssl, &digest) && digest != NID_undef)
            out += std::string(" server-digest ") + OBJ_nid2sn(digest);
        X509_free(peer);
    }
    return out;
}

std::string default_adjective(SSL* ssl) {
    X509* peer = SSL_get1_peer_certificate(ssl);
    if (!peer) return "Anonymous";
    X509_free(peer);
    return SSL_get_verify_result(ssl) == X509_V_OK ? "Trusted" : "Untrusted";
}

}  // namespace tlsrelay::smtp

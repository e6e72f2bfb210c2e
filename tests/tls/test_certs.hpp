// Certificates built in memory for the tests: chosen DNS/IP subjectAltNames
// (DNS names may hold NULs) and subject CNs, self-signed with a fresh P-256 key.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <vector>

namespace tlsrelay::tls::test {

struct X509Free {
    void operator()(X509* x) const { X509_free(x); }
};
using CertPtr = std::unique_ptr<X509, X509Free>;

struct CertSpec {
    std::vector<std::string> dns_sans;
    std::vector<std::string> ip_sans;  // 4-byte strings, e.g. std::string("\x7f\0\0\x01", 4)
    std::vector<std::string> cns;
};

inline EVP_PKEY* test_key() {
    static EVP_PKEY* key = EVP_EC_gen("P-256");
    return key;
}

inline void add_sans(X509* cert, const CertSpec& spec) {
    if (spec.dns_sans.empty() && spec.ip_sans.empty()) return;
    GENERAL_NAMES* names = sk_GENERAL_NAME_new_null();
    auto add = [&](int type, const std::string& value) {
        GENERAL_NAME* gn = GENERAL_NAME_new();
        ASN1_STRING* s = ASN1_STRING_type_new(type == GEN_DNS ? V_ASN1_IA5STRING : V_ASN1_OCTET_STRING);
        ASN1_STRING_set(s, value.data(), static_cast<int>(value.size()));
        GENERAL_NAME_set0_value(gn, type, s);
        sk_GENERAL_NAME_push(names, gn);
    };
    for (const auto& d : spec.dns_sans) add(GEN_DNS, d);
    for (const auto& ip : spec.ip_sans) add(GEN_IPADD, ip);
    X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT);
    GENERAL_NAMES_free(names);
}

inline CertPtr make_cert(const CertSpec& spec) {
    CertPtr cert(X509_new());
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
    X509_NAME* name = X509_get_subject_name(cert.get());
    for (const auto& cn : spec.cns)
        X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(cn.data()),
                                   static_cast<int>(cn.size()), -1, 0);
    X509_set_issuer_name(cert.get(), name);
    X509_set_pubkey(cert.get(), test_key());
    add_sans(cert.get(), spec);
    X509_sign(cert.get(), test_key(), EVP_sha256());
    return cert;
}

}  // namespace tlsrelay::tls::test

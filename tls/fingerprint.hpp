// Fingerprint security level (Postfix src/tls/tls_dane.c tls_dane_add_fpt_digests,
// src/util/hex_code.c): hex values with optional colons between byte pairs, each
// compared with the digest of the whole DER certificate and of its DER
// SubjectPublicKeyInfo, interchangeably, under smtp_tls_fingerprint_digest.
#pragma once

#include <openssl/x509.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tlsrelay::tls {

using Bytes = std::vector<std::uint8_t>;

struct Fingerprint {
    std::string text;  // as configured
    Bytes bytes;
};

// Decodes "AB:cd:01" or "abcd01": hex pairs, colons only between pairs. Returns
// nullopt for a malformed value (and for one longer than 3 * EVP_MAX_MD_SIZE).
std::optional<Bytes> parse_fingerprint(std::string_view text);

// Postfix's warning for a value parse_fingerprint() rejects:
// "malformed fingerprint value: zz".
std::string malformed_fingerprint_warning(std::string_view text);

// Output size of "md5", "sha1", "sha256", "sha512" (case-insensitive); 0 if unknown.
size_t digest_size(std::string_view digest);

// Upper-case hex with colons, as Postfix logs fingerprints.
std::string hex_colons(const Bytes& bytes);

// Digest of the DER certificate / DER SubjectPublicKeyInfo; empty if the digest is unknown.
Bytes certificate_digest(X509* cert, std::string_view digest);
Bytes public_key_digest(X509* cert, std::string_view digest);

// Postfix compares only values of the digest's length; others are "unusable TLSA RR".
bool usable_fingerprint(const Fingerprint& fp, std::string_view digest);

// True if any usable value equals the certificate or public-key digest.
bool fingerprint_matches(X509* cert, const std::vector<Fingerprint>& fingerprints,
                         std::string_view digest);

// Our explanation for a value of the wrong length, e.g. "this 16-byte value is an
// md5 fingerprint, but fingerprint_digest is sha256"; empty if the length fits.
std::string fingerprint_length_problem(const Fingerprint& fp, std::string_view digest);

}  // namespace tlsrelay::tls

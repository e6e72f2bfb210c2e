#include "tls/fingerprint.hpp"

#include <openssl/evp.h>

#include <array>
#include <memory>

#include "tls/text.hpp"

namespace tlsrelay::tls {
namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

constexpr std::array<std::pair<std::string_view, size_t>, 4> digests{{
    {"md5", 16}, {"sha1", 20}, {"sha256", 32}, {"sha512", 64}}};

const EVP_MD* digest_by_name(std::string_view digest) {
    if (digest_size(digest) == 0) return nullptr;
    return EVP_get_digestbyname(lower(digest).c_str());
}

Bytes digest_of(const unsigned char* data, size_t size, std::string_view digest) {
    const EVP_MD* md = digest_by_name(digest);
    if (!md) return {};
    Bytes out(EVP_MAX_MD_SIZE);
    unsigned int len = 0;
    if (!EVP_Digest(data, size, out.data(), &len, md, nullptr)) return {};
    out.resize(len);
    return out;
}

template <class F>
Bytes der_digest(F&& encode, std::string_view digest) {
    unsigned char* der = nullptr;
    int len = encode(&der);
    if (len <= 0) return {};
    std::unique_ptr<unsigned char, void (*)(unsigned char*)> owner(
        der, [](unsigned char* p) { OPENSSL_free(p); });
    return digest_of(der, static_cast<size_t>(len), digest);
}

}  // namespace

std::optional<Bytes> parse_fingerprint(std::string_view text) {
    if (text.size() > 3 * EVP_MAX_MD_SIZE) return std::nullopt;
    Bytes out;
    size_t i = 0;
    while (i < text.size()) {
        if (text.size() - i < 2) return std::nullopt;
        int hi = hex_value(text[i]), lo = hex_value(text[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
        // A colon is skipped only when another pair follows it.
        if (text.size() - i > 4 && text[i + 2] == ':') ++i;
        i += 2;
    }
    return out;
}

std::string malformed_fingerprint_warning(std::string_view text) {
    if (text.size() > 3 * EVP_MAX_MD_SIZE)
        return "malformed fingerprint value: " + std::string(text.substr(0, 100)) + "...";
    return "malformed fingerprint value: " + std::string(text.substr(0, 384));
}

size_t digest_size(std::string_view digest) {
    for (const auto& [name, size] : digests)
        if (iequals(name, digest)) return size;
    return 0;
}

std::string hex_colons(const Bytes& bytes) {
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    for (auto b : bytes) {
        if (!out.empty()) out += ':';
        out += hex[b >> 4];
        out += hex[b & 15];
    }
    return out;
}

Bytes certificate_digest(X509* cert, std::string_view digest) {
    return der_digest([&](unsigned char** der) { return i2d_X509(cert, der); }, digest);
}

Bytes public_key_digest(X509* cert, std::string_view digest) {
    X509_PUBKEY* key = X509_get_X509_PUBKEY(cert);
    return der_digest([&](unsigned char** der) { return i2d_X509_PUBKEY(key, der); }, digest);
}

bool usable_fingerprint(const Fingerprint& fp, std::string_view digest) {
    return !fp.bytes.empty() && fp.bytes.size() == digest_size(digest);
}

bool fingerprint_matches(X509* cert, const std::vector<Fingerprint>& fingerprints,
                         std::string_view digest) {
    Bytes cert_fp = certificate_digest(cert, digest);
    Bytes key_fp = public_key_digest(cert, digest);
    for (const auto& fp : fingerprints) {
        if (!usable_fingerprint(fp, digest)) continue;
        if (fp.bytes == cert_fp || fp.bytes == key_fp) return true;
    }
    return false;
}

std::string fingerprint_length_problem(const Fingerprint& fp, std::string_view digest) {
    size_t want = digest_size(digest);
    if (fp.bytes.size() == want) return {};
    std::string text = "this " + std::to_string(fp.bytes.size()) + "-byte value ";
    for (const auto& [name, size] : digests)
        if (size == fp.bytes.size())
            return text + "is " + (name == "md5" ? "an " : "a ") + std::string(name) +
                   " fingerprint, but fingerprint_digest is " + lower(digest);
    return text + "is not a " + lower(digest) + " fingerprint (" + std::to_string(want) +
           " bytes); Postfix ignores it as an unusable TLSA RR";
}

}  // namespace tlsrelay::tls

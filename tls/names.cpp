#include "tls/names.hpp"

#include <openssl/err.h>

#include <openssl/x509v3.h>

#include <memory>

#include "tls/text.hpp"

namespace tlsrelay::tls {
namespace {

bool is_ldh(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

// Case-insensitive equality that never matches a NUL in the certificate name.
bool equal_nocase(std::string_view pattern, std::string_view subject) {
    if (pattern.size() != subject.size()) return false;
    for (size_t i = 0; i < pattern.size(); ++i) {
        if (pattern[i] == '\0') return false;
        if (!iequals(pattern.substr(i, 1), subject.substr(i, 1))) return false;
    }
    return true;
}

// The only wildcard OpenSSL honours here: '*' as the whole left-most label of a
// name with at least two more labels, no IDNA label before it.
bool full_label_wildcard(std::string_view p) {
    if (p.size() < 2 || p[0] != '*' || p[1] != '.') return false;
    size_t dots = 0;
    bool label_start = false, hyphen = false;
    for (size_t i = 1; i < p.size(); ++i) {
        auto c = static_cast<unsigned char>(p[i]);
        if (c == '.') {
            if (label_start || hyphen) return false;
            label_start = true;
            ++dots;
        } else if (c == '-') {
            if (label_start) return false;
            hyphen = true;
        } else if (is_ldh(c)) {
            label_start = hyphen = false;
        } else {
            return false;
        }
    }
    return !label_start && !hyphen && dots >= 2;
}

bool wildcard_match(std::string_view pattern, std::string_view subject) {
    std::string_view suffix = pattern.substr(1);  // ".example.com"
    if (subject.size() <= suffix.size()) return false;
    size_t label = subject.size() - suffix.size();
    if (!equal_nocase(subject.substr(label), suffix)) return false;
    if (label == 1 && subject[0] == '*') return true;
    for (size_t i = 0; i < label; ++i)
        if (!is_ldh(static_cast<unsigned char>(subject[i]))) return false;
    return true;
}

std::string show(const unsigned char* data, int length) {
    std::string out;
    for (int i = 0; i < length; ++i) {
        if (data[i] == '\0') out += "\\0";
        else out += static_cast<char>(data[i]);
    }
    return out;
}

}  // namespace

std::string nexthop_domain(std::string_view nexthop) {
    if (nexthop.starts_with("[")) {
        size_t close = nexthop.find(']');
        if (close != std::string_view::npos) return std::string(nexthop.substr(1, close - 1));
        return std::string(nexthop);
    }
    return std::string(nexthop.substr(0, nexthop.find(':')));
}

ReferenceNames resolve_match_names(const std::vector<std::string>& match,
                                   std::string_view nexthop_domain,
                                   std::string_view mx_hostname) {
    ReferenceNames out;
    for (const auto& m : match) {
        std::string name;
        if (iequals(m, "nexthop")) {
            name = nexthop_domain;
        } else if (iequals(m, "dot-nexthop")) {
            name = "." + std::string(nexthop_domain);
        } else if (iequals(m, "hostname")) {
            name = mx_hostname;
        } else if (m == ".") {
            out.warnings.push_back("ignoring invalid match name: \".\"");
            continue;
        } else {
            name = m;
        }
        // add_namechecks(): a non-ASCII name is checked as its A-label (as written
        // when it cannot be converted); certificates carry A-labels only.
        const bool dot = name.size() > 1 && name[0] == '.';
        if (auto a_label = to_a_label(std::string_view(name).substr(dot ? 1 : 0)))
            name = (dot ? "." : "") + *a_label;
        out.names.push_back(std::move(name));
    }
    return out;
}

bool dns_name_matches(std::string_view cert_name, std::string_view reference) {
    if (reference.empty() || cert_name.empty()) return false;
    if (reference.size() > 1 && reference[0] == '.') {
        // Dot-subdomain mode: drop a NUL-free prefix of the certificate name
        // so that it is as long as the reference, then compare.
        if (cert_name.size() > reference.size()) {
            std::string_view prefix = cert_name.substr(0, cert_name.size() - reference.size());
            if (prefix.find('\0') != std::string_view::npos) return false;
            cert_name.remove_prefix(prefix.size());
        }
        return equal_nocase(cert_name, reference);
    }
    if (full_label_wildcard(cert_name)) return wildcard_match(cert_name, reference);
    return equal_nocase(cert_name, reference);
}

bool is_ip_reference(const std::string& name) {
    ASN1_OCTET_STRING* ip = a2i_IPADDRESS(name.c_str());
    if (!ip) {
        ERR_clear_error();
        return false;
    }
    ASN1_OCTET_STRING_free(ip);
    return true;
}

// As OpenSSL's check_id() with the names Postfix hands to SSL_add1_host(): a name
// that parses as an IP address (a bracketed IP next hop) becomes the one expected
// IP, matched only against IP SANs (a second IP is refused by OpenSSL); the others
// are host names, one of which must match. When both kinds are present, both must.
bool names_match(X509* cert, const std::vector<std::string>& reference_names,
                 std::string* matched) {
    std::string ip, host;
    bool any_host = false;
    for (const auto& name : reference_names) {
        if (name.empty()) continue;
        if (is_ip_reference(name)) {
            if (ip.empty()) ip = name;
            continue;
        }
        any_host = true;
        if (host.empty() && X509_check_host(cert, name.data(), name.size(),
                                            X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr) == 1)
            host = name;
    }
    if (!any_host && ip.empty()) return false;
    if (any_host && host.empty()) return false;
    if (!ip.empty() && X509_check_ip_asc(cert, ip.c_str(), 0) != 1) return false;
    if (matched) *matched = any_host ? host : ip;
    return true;
}

std::vector<std::string> certificate_names(X509* cert) {
    std::vector<std::string> out;
    auto* sans = static_cast<GENERAL_NAMES*>(
        X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    if (sans) {
        for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
            const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
            if (gn->type != GEN_DNS) continue;
            const ASN1_IA5STRING* s = gn->d.dNSName;
            out.push_back(show(ASN1_STRING_get0_data(s), ASN1_STRING_length(s)));
        }
        GENERAL_NAMES_free(sans);
    }
    if (!out.empty()) return out;
    X509_NAME* subject = X509_get_subject_name(cert);
    for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;) {
        ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
        unsigned char* utf8 = nullptr;
        int len = ASN1_STRING_to_UTF8(&utf8, s);
        if (len < 0) continue;
        out.push_back(show(utf8, len));
        OPENSSL_free(utf8);
    }
    return out;
}

}  // namespace tlsrelay::tls

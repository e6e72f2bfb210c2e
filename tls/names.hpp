// Certificate name checks at verify/secure (Postfix 3.6+ src/tls/tls_client.c
// add_namechecks): match strategies become OpenSSL reference names, checked with
// X509_check_host() and X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS; a reference name
// with a leading '.' matches any subdomain (OpenSSL's dot-subdomain mode).
#pragma once

#include <openssl/x509.h>

#include <string>
#include <string_view>
#include <vector>

namespace tlsrelay::tls {

struct ReferenceNames {
    std::vector<std::string> names;     // in match order; ".x" means any subdomain of x
    std::vector<std::string> warnings;  // e.g. ignoring invalid match name: "."
};

// The next-hop domain of a verbatim next-hop: brackets and ":port" removed
// ("[mx.example.com]:587" -> "mx.example.com", "example.com:2525" -> "example.com").
std::string nexthop_domain(std::string_view nexthop);

// Expands match strategies: "nexthop" (the next-hop domain, brackets and port
// already stripped by the caller), "dot-nexthop" (".nexthop"), "hostname" (the MX
// host name), ".suffix" and literal names. Keywords are case-insensitive.
ReferenceNames resolve_match_names(const std::vector<std::string>& match,
                                   std::string_view nexthop_domain,
                                   std::string_view mx_hostname);

// True when a reference name is an IP address literal (OpenSSL a2i_IPADDRESS).
bool is_ip_reference(const std::string& name);

// OpenSSL 3.0 X509_check_host() with NO_PARTIAL_WILDCARDS against any host name;
// an IP reference (the first one) must also match an IP SAN, as SSL_add1_host does.
// `matched` (optional) receives the reference name that matched.
bool names_match(X509* cert, const std::vector<std::string>& reference_names,
                 std::string* matched = nullptr);

// The same rule for one certificate name and one reference name, on strings,
// for explanations and suggestions without a certificate.
bool dns_name_matches(std::string_view cert_name, std::string_view reference);

// The names OpenSSL compares: every DNS subjectAltName, or every subject CN
// when there is no DNS subjectAltName. Embedded NULs are shown as "\0".
std::vector<std::string> certificate_names(X509* cert);

}  // namespace tlsrelay::tls

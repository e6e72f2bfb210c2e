// Pure parsing of DNS replies into the resolver's result values: header flags
// (rcode, AD, TC) by hand, MX/A/AAAA through c-ares' parsers, TLSA by hand (c-ares
// 1.18 has none). Malformed input is a temporary error, never a crash, and names are
// checked as LDH hostnames before they leave this file (security checklist item 66).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "dns/resolver.hpp"

namespace tlsrelay::dns {

// Caps on what one reply may contribute (a hostile zone can list thousands).
inline constexpr std::size_t max_mx_records = 100;
inline constexpr std::size_t max_addresses_per_family = 64;
inline constexpr std::size_t max_tlsa_records = 100;
inline constexpr int max_cname_hops = 8;

inline constexpr int type_a = 1, type_cname = 5, type_mx = 15, type_aaaa = 28, type_tlsa = 52;

struct ReplyHeader {
    std::uint16_t id = 0;
    bool response = false;        // QR
    bool truncated = false;       // TC
    bool authentic_data = false;  // AD
    int rcode = 0;
    std::uint16_t qdcount = 0, ancount = 0, nscount = 0, arcount = 0;
};

std::optional<ReplyHeader> parse_header(std::span<const std::uint8_t> reply);

// Which characters a name may hold: `host` is LDH (RFC 1123); `tlsa_owner` also
// allows '_' for "_25._tcp.host".
enum class NameKind { host, tlsa_owner };

// Lower-cases, strips one trailing dot and validates (labels 1..63 octets, total
// <= 253, no leading/trailing hyphen, not all-numeric); nullopt when invalid.
std::optional<std::string> normalize_name(std::string_view name, NameKind kind);

// For a query that ended without a reply (c-ares status other than ARES_SUCCESS).
Status status_from_ares(int ares_status);
// For a reply's RCODE, as libresolv maps it (REFUSED is temporary here: another
// server may answer).
Status status_from_rcode(int rcode);

MxResult parse_mx_reply(std::span<const std::uint8_t> reply, bool dnssec);
// rr_type is type_a or type_aaaa.
AddressResult parse_address_reply(std::span<const std::uint8_t> reply, int rr_type, bool dnssec);
// qname is the normalized query name; records at the end of a CNAME chain count.
TlsaResult parse_tlsa_reply(std::span<const std::uint8_t> reply, std::string_view qname,
                            bool dnssec);

// The CNAME record owned by qname (not followed further).
CnameResult parse_cname_reply(std::span<const std::uint8_t> reply, std::string_view qname, bool dnssec);

// The name a CNAME chain in the answer leads qname to (lower-case); "" when qname
// is no alias in this reply or the reply cannot be read.
std::string cname_target(std::span<const std::uint8_t> reply, std::string_view qname);

// A and AAAA of one host merged: ok if either has addresses (A first); otherwise
// try_again if either is try_again, failed if either failed, nxdomain if both are
// nxdomain, else nodata. secure only if both replies were secure.
AddressResult merge_addresses(AddressResult a, AddressResult aaaa);

}  // namespace tlsrelay::dns

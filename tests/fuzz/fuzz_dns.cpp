// DNS reply handling (dns/answer): raw reply messages as a hostile or broken server
// would send them, through c-ares' MX/A/AAAA parsers and our own header, record and
// TLSA walking. Invariants: malformed input becomes a status, never a crash; results
// respect the per-reply caps; every name that leaves is a valid LDH host name; ok
// always carries data; secure needs dnssec.
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>

#include "harness.hpp"
#include "dns/answer.hpp"

namespace {

using tlsrelay::fuzz::require;
using namespace tlsrelay::dns;

bool valid_host(const std::string& h) {
    auto n = normalize_name(h, NameKind::host);
    return n && *n == [&] {
        std::string l(h);
        for (auto& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return l;
    }();
}

void check_mx(const MxResult& r, bool dnssec) {
    require(!r.secure || dnssec, "secure needs dnssec");
    require(r.records.size() <= max_mx_records, "MX cap");
    require(r.status != Status::ok || !r.records.empty(), "ok has records");
    require(r.status == Status::ok || r.records.empty(), "only ok has records");
    for (const auto& mx : r.records) {
        // "." is kept beside real hosts and makes the whole answer a null MX (Postfix).
        if (mx.host.empty()) require(r.null_mx(), "a '.' target is a null MX");
        else require(valid_host(mx.host), "MX hosts are valid names");
    }
}

void check_addresses(const AddressResult& r, int type, bool dnssec) {
    require(!r.secure || dnssec, "secure needs dnssec");
    require(r.addresses.size() <= max_addresses_per_family, "address cap");
    require((r.status == Status::ok) == !r.addresses.empty(), "ok iff addresses");
    for (const auto& a : r.addresses) require(a.is_v4() == (type == type_a), "family matches the query");
}

void check_tlsa(const TlsaResult& r, bool dnssec) {
    require(!r.secure || dnssec, "secure needs dnssec");
    require(r.records.size() <= max_tlsa_records, "TLSA cap");
    require((r.status == Status::ok) == !r.records.empty(), "ok iff records");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::span<const std::uint8_t> reply(data, size);
    if (auto h = parse_header(reply)) require(size >= 12 && h->rcode <= 15, "header read in bounds");
    for (bool dnssec : {false, true}) {
        check_mx(parse_mx_reply(reply, dnssec), dnssec);
        AddressResult a = parse_address_reply(reply, type_a, dnssec);
        AddressResult aaaa = parse_address_reply(reply, type_aaaa, dnssec);
        check_addresses(a, type_a, dnssec);
        check_addresses(aaaa, type_aaaa, dnssec);
        AddressResult both = merge_addresses(a, aaaa);
        require(both.addresses.size() == a.addresses.size() + aaaa.addresses.size(), "merge keeps all");
        for (std::string_view qname : {"_25._tcp.mx.example", "mx.example"})
            check_tlsa(parse_tlsa_reply(reply, qname, dnssec), dnssec);
    }
    std::string target = cname_target(reply, "mx.example");
    require(target.empty() || valid_host(target), "CNAME targets are valid names");
    return 0;
}

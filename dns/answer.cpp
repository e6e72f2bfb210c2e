// Reply parsing; see answer.hpp. Every read is bounds-checked against the reply
// length, and loops over header counts stop at the end of the data, so a count of
// 65535 in a 40-byte reply costs one iteration, not 65535.
#include "dns/answer.hpp"

#include <ares.h>
#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <set>

namespace tlsrelay::dns {
namespace {

constexpr std::size_t header_size = 12;
constexpr int class_in = 1;
constexpr int rcode_noerror = 0, rcode_formerr = 1, rcode_servfail = 2, rcode_nxdomain = 3,
              rcode_notimp = 4, rcode_refused = 5;

std::uint16_t read16(std::span<const std::uint8_t> b, std::size_t at) {
    return static_cast<std::uint16_t>(b[at] << 8 | b[at + 1]);
}

bool valid_label_char(char c, NameKind kind) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           (c == '_' && kind == NameKind::tlsa_owner);
}

bool valid_label(std::string_view label, NameKind kind) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
        return false;
    return std::all_of(label.begin(), label.end(),
                       [kind](char c) { return valid_label_char(c, kind); });
}

// What the header says before any record is looked at; ok means "NOERROR, now look
// at the records". secure is set even for denials (DANE cares about secure NODATA).
struct ReplyCheck {
    Status status = Status::try_again;
    bool secure = false;
};

ReplyCheck check_reply(std::span<const std::uint8_t> reply, bool dnssec) {
    auto header = parse_header(reply);
    if (!header || !header->response || header->truncated) return {};
    return {status_from_rcode(header->rcode), dnssec && header->authentic_data};
}

// A name expanded by c-ares (which follows compression pointers with a loop
// bound) and then normalized; nullopt if either step fails.
std::optional<std::string> expand_name(std::span<const std::uint8_t> reply, std::size_t at,
                                       NameKind kind, std::size_t& encoded_length) {
    if (at >= reply.size()) return std::nullopt;
    char* expanded = nullptr;
    long length = 0;
    if (ares_expand_name(reply.data() + at, reply.data(), static_cast<int>(reply.size()), &expanded,
                         &length) != ARES_SUCCESS)
        return std::nullopt;
    std::unique_ptr<char, decltype(&ares_free_string)> guard(expanded, &ares_free_string);
    encoded_length = static_cast<std::size_t>(length);
    return normalize_name(expanded, kind);
}

// One resource record of the answer section, rdata as offsets into the reply so
// names inside it can still be expanded against the whole message.
struct Record {
    std::string owner;
    int type = 0, rr_class = 0;
    std::size_t rdata = 0, rdlength = 0;
};

// Walks questions and answers; nullopt on any bounds or name error.
std::optional<std::vector<Record>> answer_records(std::span<const std::uint8_t> reply) {
    auto header = parse_header(reply);
    if (!header) return std::nullopt;
    std::size_t at = header_size, used = 0;
    for (int i = 0; i < header->qdcount; ++i) {
        if (!expand_name(reply, at, NameKind::tlsa_owner, used) || at + used + 4 > reply.size())
            return std::nullopt;
        at += used + 4;
    }
    std::vector<Record> records;
    for (int i = 0; i < header->ancount; ++i) {
        auto owner = expand_name(reply, at, NameKind::tlsa_owner, used);
        if (!owner || at + used + 10 > reply.size()) return std::nullopt;
        at += used;
        Record r{*owner, read16(reply, at), read16(reply, at + 2), at + 10, read16(reply, at + 8)};
        if (r.rdata + r.rdlength > reply.size()) return std::nullopt;
        at = r.rdata + r.rdlength;
        records.push_back(std::move(r));
    }
    return records;
}

// The query name and every alias a CNAME chain in the answer leads to.
std::optional<std::set<std::string>> cname_chain(std::span<const std::uint8_t> reply,
                                                 const std::vector<Record>& records,
                                                 std::string_view qname) {
    std::map<std::string, std::string> aliases;
    for (const auto& r : records) {
        if (r.type != type_cname || r.rr_class != class_in) continue;
        std::size_t used = 0;
        auto target = expand_name(reply, r.rdata, NameKind::tlsa_owner, used);
        if (!target || used > r.rdlength) return std::nullopt;
        aliases[r.owner] = *target;
    }
    std::set<std::string> chain{std::string(qname)};
    std::string name(qname);
    for (int hop = 0; hop < max_cname_hops; ++hop) {
        auto next = aliases.find(name);
        if (next == aliases.end()) break;
        name = next->second;
        chain.insert(name);
    }
    return chain;
}

}  // namespace

std::optional<ReplyHeader> parse_header(std::span<const std::uint8_t> reply) {
    if (reply.size() < header_size) return std::nullopt;
    ReplyHeader h;
    h.id = read16(reply, 0);
    h.response = (reply[2] & 0x80) != 0;
    h.truncated = (reply[2] & 0x02) != 0;
    h.authentic_data = (reply[3] & 0x20) != 0;
    h.rcode = reply[3] & 0x0f;
    h.qdcount = read16(reply, 4);
    h.ancount = read16(reply, 6);
    h.nscount = read16(reply, 8);
    h.arcount = read16(reply, 10);
    return h;
}

std::optional<std::string> normalize_name(std::string_view name, NameKind kind) {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    if (name.empty() || name.size() > 253) return std::nullopt;
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) {
        return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    });
    bool numeric = true;
    for (std::size_t start = 0; start <= lower.size();) {
        auto end = std::min(lower.find('.', start), lower.size());
        std::string_view label(lower.data() + start, end - start);
        if (!valid_label(label, kind)) return std::nullopt;
        numeric = numeric && std::all_of(label.begin(), label.end(),
                                         [](char c) { return c >= '0' && c <= '9'; });
        start = end + 1;
    }
    if (numeric)  // "1.2.3.4" as a host name: Postfix's valid_hostname refuses it too
        return std::nullopt;
    return lower;
}

Status status_from_ares(int ares_status) {
    switch (ares_status) {
        case ARES_ENOTFOUND:
            return Status::nxdomain;
        case ARES_ENODATA:
            return Status::nodata;
        case ARES_EFORMERR:
        case ARES_ENOTIMP:
        case ARES_EBADNAME:
            return Status::failed;
        default:
            return Status::try_again;  // timeout, refused, servfail, cancelled, ...
    }
}

Status status_from_rcode(int rcode) {
    switch (rcode) {
        case rcode_noerror:
            return Status::ok;
        case rcode_nxdomain:
            return Status::nxdomain;
        case rcode_servfail:
        case rcode_refused:
            return Status::try_again;
        case rcode_formerr:
        case rcode_notimp:
        default:
            return Status::failed;
    }
}

MxResult parse_mx_reply(std::span<const std::uint8_t> reply, bool dnssec) {
    auto check = check_reply(reply, dnssec);
    MxResult result{check.status, check.secure, {}};
    if (check.status != Status::ok) return result;
    ares_mx_reply* head = nullptr;
    int rc = ares_parse_mx_reply(reply.data(), static_cast<int>(reply.size()), &head);
    std::unique_ptr<ares_mx_reply, decltype(&ares_free_data)> guard(head, &ares_free_data);
    if (rc != ARES_SUCCESS && rc != ARES_ENODATA) return {Status::try_again, check.secure, {}};
    for (auto* mx = head; mx && result.records.size() < max_mx_records; mx = mx->next) {
        std::string_view host = mx->host ? mx->host : "";
        if (host.empty() || host == ".") {  // RFC 7505 null MX target
            result.records.push_back({mx->priority, ""});
            continue;
        }
        if (!normalize_name(host, NameKind::host))  // CR/LF, '<', spaces, escapes: hostile, not data
            return {Status::try_again, check.secure, {}};
        // Valid, but kept as the reply spells it: Postfix logs relay=MX1.Example.COM[...]
        // and checks and sends that name (name checks ignore case anyway).
        if (host.back() == '.') host.remove_suffix(1);
        result.records.push_back({mx->priority, std::string(host)});
    }
    // A "." target is kept even beside real hosts: Postfix's dns_get_rr() then answers
    // DNS_NULLMX for the whole lookup (observed: "0 ." + "10 mx1" bounces 5.1.0).
    if (result.records.empty()) result.status = Status::nodata;
    return result;
}

AddressResult parse_address_reply(std::span<const std::uint8_t> reply, int rr_type, bool dnssec) {
    auto check = check_reply(reply, dnssec);
    AddressResult result{check.status, check.secure, {}};
    if (check.status != Status::ok) return result;
    const auto* data = reply.data();
    const int size = static_cast<int>(reply.size());
    int count = static_cast<int>(max_addresses_per_family);
    int rc = ARES_SUCCESS;
    if (rr_type == type_a) {
        std::array<ares_addrttl, max_addresses_per_family> found{};
        rc = ares_parse_a_reply(data, size, nullptr, found.data(), &count);
        for (int i = 0; rc == ARES_SUCCESS && i < count; ++i)
            result.addresses.push_back(boost::asio::ip::address_v4(ntohl(found[i].ipaddr.s_addr)));
    } else {
        std::array<ares_addr6ttl, max_addresses_per_family> found{};
        rc = ares_parse_aaaa_reply(data, size, nullptr, found.data(), &count);
        for (int i = 0; rc == ARES_SUCCESS && i < count; ++i) {
            boost::asio::ip::address_v6::bytes_type bytes;
            std::copy_n(found[i].ip6addr._S6_un._S6_u8, 16, bytes.begin());
            result.addresses.push_back(boost::asio::ip::address_v6(bytes));
        }
    }
    if (rc != ARES_SUCCESS && rc != ARES_ENODATA) return {Status::try_again, check.secure, {}};
    if (result.addresses.empty()) result.status = Status::nodata;
    return result;
}

namespace {

// The rdata of every record of rr_type owned by qname or an alias of it that the
// answer's CNAME chain leads to; nullopt when the answer cannot be read.
std::optional<std::vector<std::span<const std::uint8_t>>> chain_rdata(std::span<const std::uint8_t> reply,
                                                                      std::string_view qname, int rr_type) {
    auto records = answer_records(reply);
    auto chain = records ? cname_chain(reply, *records, qname) : std::nullopt;
    if (!chain) return std::nullopt;
    std::vector<std::span<const std::uint8_t>> out;
    for (const auto& r : *records)
        if (r.type == rr_type && r.rr_class == class_in && chain->contains(r.owner))
            out.push_back(reply.subspan(r.rdata, r.rdlength));  // not CNAME, RRSIG or other owners' noise
    return out;
}

// RFC 1035 3.3.14: one or more <character-string>s (a length octet and that many
// octets), joined without separators (RFC 7208 3.3, RFC 8461 3.1).
std::optional<std::string> txt_text(std::span<const std::uint8_t> rdata) {
    std::string text;
    for (std::size_t at = 0; at < rdata.size();) {
        std::size_t n = rdata[at];
        if (at + 1 + n > rdata.size()) return std::nullopt;
        text.append(reinterpret_cast<const char*>(rdata.data() + at + 1), n);
        at += 1 + n;
    }
    return text;
}

}  // namespace

TlsaResult parse_tlsa_reply(std::span<const std::uint8_t> reply, std::string_view qname,
                            bool dnssec) {
    auto check = check_reply(reply, dnssec);
    TlsaResult result{check.status, check.secure, {}};
    if (check.status != Status::ok) return result;
    auto rdatas = chain_rdata(reply, qname, type_tlsa);
    if (!rdatas) return {Status::try_again, check.secure, {}};
    for (const auto& rdata : *rdatas) {
        if (rdata.size() < 3) return {Status::try_again, check.secure, {}};
        if (result.records.size() == max_tlsa_records) break;
        result.records.push_back({rdata[0], rdata[1], rdata[2], {rdata.begin() + 3, rdata.end()}});
    }
    if (result.records.empty()) result.status = Status::nodata;
    return result;
}

CnameResult parse_cname_reply(std::span<const std::uint8_t> reply, std::string_view qname, bool dnssec) {
    auto check = check_reply(reply, dnssec);
    CnameResult result{check.status, check.secure, {}};
    if (check.status != Status::ok) return result;
    auto records = answer_records(reply);
    if (!records) return {Status::try_again, check.secure, {}};
    for (const auto& r : *records) {
        if (r.type != type_cname || r.rr_class != class_in || r.owner != qname) continue;
        std::size_t used = 0;
        auto target = expand_name(reply, r.rdata, NameKind::host, used);
        if (!target || used > r.rdlength) return {Status::try_again, check.secure, {}};
        result.target = *target;
        return result;
    }
    result.status = Status::nodata;
    return result;
}

TxtResult parse_txt_reply(std::span<const std::uint8_t> reply, std::string_view qname, bool dnssec) {
    auto check = check_reply(reply, dnssec);
    TxtResult result{check.status, check.secure, {}};
    if (check.status != Status::ok) return result;
    auto rdatas = chain_rdata(reply, qname, type_txt);
    if (!rdatas) return {Status::try_again, check.secure, {}};
    for (const auto& rdata : *rdatas) {
        auto text = txt_text(rdata);
        if (!text) return {Status::try_again, check.secure, {}};
        if (result.records.size() == max_txt_records) break;
        result.records.push_back(std::move(*text));
    }
    if (result.records.empty()) result.status = Status::nodata;
    return result;
}

std::string cname_target(std::span<const std::uint8_t> reply, std::string_view qname) {
    auto records = answer_records(reply);
    if (!records) return "";
    std::map<std::string, std::string> aliases;
    for (const auto& r : *records) {
        if (r.type != type_cname || r.rr_class != class_in) continue;
        std::size_t used = 0;
        auto target = expand_name(reply, r.rdata, NameKind::host, used);
        if (!target || used > r.rdlength) return "";
        aliases[r.owner] = *target;
    }
    std::string name(qname);
    for (int hop = 0; hop < max_cname_hops; ++hop) {
        auto next = aliases.find(name);
        if (next == aliases.end()) break;
        name = next->second;
    }
    return name == qname ? std::string() : name;
}

AddressResult merge_addresses(AddressResult a, AddressResult aaaa) {
    AddressResult merged;
    merged.canonical = !a.canonical.empty() ? a.canonical : aaaa.canonical;
    merged.secure = a.secure && aaaa.secure;
    merged.addresses = std::move(a.addresses);
    merged.addresses.insert(merged.addresses.end(), aaaa.addresses.begin(), aaaa.addresses.end());
    auto either = [&](Status s) { return a.status == s || aaaa.status == s; };
    if (!merged.addresses.empty())
        merged.status = Status::ok;
    else if (either(Status::try_again))
        merged.status = Status::try_again;
    else if (either(Status::failed))
        merged.status = Status::failed;
    else if (a.status == Status::nxdomain && aaaa.status == Status::nxdomain)
        merged.status = Status::nxdomain;
    else
        merged.status = Status::nodata;
    if (merged.status != Status::ok && aaaa.status != merged.status && a.status == merged.status)
        merged.error_type = "A";
    return merged;
}

std::string_view postfix_text(Status s) {
    switch (s) {
        case Status::ok:
            return "Success";
        case Status::nxdomain:
            return "Host not found";
        case Status::nodata:
            return "Host found but no data record of requested type";
        case Status::try_again:
            return "Host not found, try again";
        case Status::failed:
            return "Non-recoverable error";
    }
    return "Non-recoverable error";
}

}  // namespace tlsrelay::dns

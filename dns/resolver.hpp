// DNS lookups the delivery side needs (MX, A/AAAA, TLSA, TXT), behind a small interface
// with c-ares driven by the Asio event loop behind it: no blocking calls, no thread
// per query. Results are values that keep Postfix's distinctions (no such domain,
// no data, try again, failed) so delivery can produce Postfix's DSNs and texts.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tlsrelay::dns {

enum class Status {
    ok,
    nxdomain,   // name does not exist: "Host not found"
    nodata,     // name exists, no record of this type: "Host found but no data record of requested
                // type"
    try_again,  // SERVFAIL, timeout, refused, malformed or truncated answer: "Host not found, try
                // again"
    failed,     // non-recoverable (e.g. FORMERR, NOTIMP): "Non-recoverable error"
};

struct MxRecord {
    std::uint16_t preference = 0;
    std::string host;  // lower-case, no trailing dot; "" for a null MX target "."
};

struct MxResult {
    Status status = Status::try_again;
    bool secure = false;            // the resolver set AD (only meaningful with dnssec)
    std::vector<MxRecord> records;  // as received (unsorted)
    // Postfix's dns_get_rr() answers DNS_NULLMX for any "." target, even one listed
    // beside real MX hosts (observed: "0 ." + "10 mx1" bounces 5.1.0 nullMX).
    bool null_mx() const {
        for (const auto& r : records)
            if (r.host.empty()) return true;
        return false;
    }
};

struct AddressResult {
    Status status = Status::try_again;
    bool secure = false;
    std::vector<boost::asio::ip::address> addresses;  // A then AAAA
    std::string canonical;  // the end of a CNAME chain in the answer ("" when the name is no alias)
    // The type whose failure gave `status` (Postfix names it in its error text): AAAA
    // when both failed alike, A when only A's error decides (e.g. A SERVFAIL, AAAA NODATA).
    const char* error_type = "AAAA";
};

struct TlsaRecord {
    std::uint8_t usage = 0, selector = 0, matching_type = 0;
    std::vector<std::uint8_t> data;
};

struct TlsaResult {
    Status status = Status::try_again;
    bool secure = false;
    std::vector<TlsaRecord> records;
};

// The CNAME record of a name itself (Postfix asks for it to learn whether an alias
// is DNSSEC-validated when its target's addresses are not).
struct CnameResult {
    Status status = Status::try_again;
    bool secure = false;
    std::string target;  // "" with nodata: the name is no alias
};

// TXT records, each record's character-strings joined without separators (RFC 8461
// 3.1 reads "_mta-sts" records this way).
struct TxtResult {
    Status status = Status::try_again;
    bool secure = false;
    std::vector<std::string> records;
};

struct ResolverOptions {
    std::vector<std::string>
        servers;          // "ip:port" or "[ipv6]:port" or "ip"; empty: /etc/resolv.conf
    bool dnssec = false;  // ask for and report the AD bit
    std::chrono::milliseconds timeout = std::chrono::seconds(5);
    int tries = 2;
};

class Resolver {
  public:
    virtual ~Resolver() = default;
    virtual boost::asio::awaitable<MxResult> mx(std::string domain) = 0;
    // A and AAAA of one host; ok if either has records.
    virtual boost::asio::awaitable<AddressResult> addresses(std::string host) = 0;
    virtual boost::asio::awaitable<TlsaResult> tlsa(std::string name) = 0;  // "_25._tcp.host"
    virtual boost::asio::awaitable<CnameResult> cname(std::string name) = 0;
    virtual boost::asio::awaitable<TxtResult> txt(std::string name) = 0;    // "_mta-sts.example.com"
};

// Text for Postfix's "Name service error for name=N type=T: <text>".
std::string_view postfix_text(Status s);

// The c-ares resolver (dns/ares_channel.hpp does the event-loop plumbing).
// - Queries go out with RD, EDNS0 (payload 1232) and, with options.dnssec, the AD bit
//   and DO; search domains are never appended. Replies too big for UDP go over TCP.
// - Invalid query names (not LDH; TLSA owners may hold '_') answer nxdomain without a
//   query, as Postfix's dns_lookup does. IP literals given to addresses() come back
//   as they are (ok, not secure).
// - Reply names are lower-cased and checked; a reply with a bad name, a bad pointer,
//   bogus counts or any other malformation is try_again. At most 100 MX, 64 addresses
//   per family, 100 TLSA and 32 TXT records are kept.
// - Lookups can be cancelled (e.g. `co_await (r.mx(d) || timer.async_wait(...))`);
//   a cancelled lookup returns try_again at once.
// - Use from one thread (or strand), and destroy the Resolver before its execution
//   context; lookups still waiting then complete with try_again.
// On a bad server list or c-ares failure: nullptr and `error` set.
std::unique_ptr<Resolver> make_resolver(const boost::asio::any_io_executor& ex,
                                        const ResolverOptions& options, std::string& error);

}  // namespace tlsrelay::dns

// The c-ares Resolver: validate the name, send the query on the shared channel,
// parse the reply. Each lookup is a free coroutine holding its own shared_ptr to the
// channel, so destroying the Resolver while lookups wait is safe: ares_destroy
// completes them with try_again and they never touch the Resolver again.
#include "dns/resolver.hpp"

#include <ares.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "dns/answer.hpp"
#include "dns/ares_channel.hpp"

namespace tlsrelay::dns {
namespace {

using boost::asio::awaitable;
using boost::asio::use_awaitable;
using Channel = std::shared_ptr<AresChannel>;

awaitable<MxResult> lookup_mx(Channel channel, std::string domain) {
    // An invalid name is "not found", as Postfix's dns_lookup answers it.
    auto name = normalize_name(domain, NameKind::host);
    if (!name) co_return MxResult{Status::nxdomain, false, {}};
    RawReply reply = co_await channel->async_query(*name, type_mx, use_awaitable);
    if (reply.ares_status != ARES_SUCCESS)
        co_return MxResult{status_from_ares(reply.ares_status), false, {}};
    co_return parse_mx_reply(reply.bytes, channel->dnssec());
}

AddressResult to_addresses(const RawReply& reply, int rr_type, bool dnssec) {
    if (reply.ares_status != ARES_SUCCESS) return {status_from_ares(reply.ares_status), false, {}};
    return parse_address_reply(reply.bytes, rr_type, dnssec);
}

awaitable<AddressResult> lookup_addresses(Channel channel, std::string host) {
    boost::system::error_code ec;
    auto literal = boost::asio::ip::make_address(host, ec);
    if (!ec)  // no DNS involved, so nothing DNSSEC could vouch for
        co_return AddressResult{Status::ok, false, {literal}};
    auto name = normalize_name(host, NameKind::host);
    if (!name) co_return AddressResult{Status::nxdomain, false, {}};
    using namespace boost::asio::experimental::awaitable_operators;
    auto [a, aaaa] = co_await (channel->async_query(*name, type_a, use_awaitable) &&
                               channel->async_query(*name, type_aaaa, use_awaitable));
    AddressResult v4 = to_addresses(a, type_a, channel->dnssec());
    AddressResult v6 = to_addresses(aaaa, type_aaaa, channel->dnssec());
    if (a.ares_status == ARES_SUCCESS) v4.canonical = cname_target(a.bytes, *name);
    if (aaaa.ares_status == ARES_SUCCESS) v6.canonical = cname_target(aaaa.bytes, *name);
    co_return merge_addresses(std::move(v4), std::move(v6));
}

awaitable<CnameResult> lookup_cname(Channel channel, std::string host) {
    auto name = normalize_name(host, NameKind::host);
    if (!name) co_return CnameResult{Status::nxdomain, false, {}};
    RawReply reply = co_await channel->async_query(*name, type_cname, use_awaitable);
    if (reply.ares_status != ARES_SUCCESS)
        co_return CnameResult{status_from_ares(reply.ares_status), false, {}};
    co_return parse_cname_reply(reply.bytes, *name, channel->dnssec());
}

awaitable<TlsaResult> lookup_tlsa(Channel channel, std::string owner) {
    auto name = normalize_name(owner, NameKind::tlsa_owner);
    if (!name) co_return TlsaResult{Status::nxdomain, false, {}};
    RawReply reply = co_await channel->async_query(*name, type_tlsa, use_awaitable);
    if (reply.ares_status != ARES_SUCCESS)
        co_return TlsaResult{status_from_ares(reply.ares_status), false, {}};
    co_return parse_tlsa_reply(reply.bytes, *name, channel->dnssec());
}

class AresResolver final : public Resolver {
  public:
    explicit AresResolver(Channel channel) : channel_(std::move(channel)) {}
    ~AresResolver() override { channel_->shutdown(); }

    // Not coroutines themselves: they hand back the free coroutine, which owns a
    // copy of channel_ and therefore outlives `this` safely.
    awaitable<MxResult> mx(std::string domain) override {
        return lookup_mx(channel_, std::move(domain));
    }
    awaitable<AddressResult> addresses(std::string host) override {
        return lookup_addresses(channel_, std::move(host));
    }
    awaitable<TlsaResult> tlsa(std::string name) override {
        return lookup_tlsa(channel_, std::move(name));
    }
    awaitable<CnameResult> cname(std::string name) override {
        return lookup_cname(channel_, std::move(name));
    }

  private:
    Channel channel_;
};

}  // namespace

std::unique_ptr<Resolver> make_resolver(const boost::asio::any_io_executor& ex,
                                        const ResolverOptions& options, std::string& error) {
    auto channel = AresChannel::create(ex, options, error);
    if (!channel) return nullptr;
    return std::make_unique<AresResolver>(std::move(channel));
}

}  // namespace tlsrelay::dns

// [watch] interval: active certificate checks without mail (beyond Postfix). Every
// interval each policy-table key that names a next hop ("domain", "[host]",
// "[host]:port"; ".parent" patterns name no server) is resolved like a delivery, and
// each server gets a session up to TLS and QUIT (no MAIL FROM), so the checks of
// relay/cert_watch.hpp notice an expiring or changed certificate before mail waits.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <string>
#include <vector>

#include "relay/delivery.hpp"
#include "tls/policy_table.hpp"

namespace tlsrelay::relay {

// The next hops an active check visits: the policy-table keys but ".parent" patterns.
std::vector<std::string> watched_nexthops(const tls::PolicyTable& table);

class ActiveWatch {
public:
    using NextHops = std::function<std::vector<std::string>()>;  // watched_nexthops() of the table now
    using Seen = std::function<void(const NextHop&, const smtp::ServerId&, const smtp::TlsSession&)>;
    // Reads ctx.config.watch.interval on every round: 0 keeps it idle (checked each second).
    ActiveWatch(boost::asio::io_context& io, DeliveryContext& ctx, NextHops nexthops, Seen seen);
    void start();
    void stop();

private:
    boost::asio::awaitable<void> loop();
    boost::asio::awaitable<void> round();  // every watched next hop once
    boost::asio::awaitable<void> check(const std::string& nexthop);
    boost::asio::awaitable<void> check_server(const NextHop& hop, const Target& t);

    boost::asio::io_context& io_;
    DeliveryContext& ctx_;
    NextHops nexthops_;
    Seen seen_;
    boost::asio::steady_timer wake_;
    boost::asio::cancellation_signal cancel_;
    bool stopping_ = false;
};

}  // namespace tlsrelay::relay

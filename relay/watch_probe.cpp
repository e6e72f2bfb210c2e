#include "relay/watch_probe.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "relay/nexthop.hpp"
#include "relay/route.hpp"
#include "support/log.hpp"

namespace tlsrelay::relay {

namespace asio = boost::asio;

std::vector<std::string> watched_nexthops(const tls::PolicyTable& table) {
    std::vector<std::string> out;
    for (const auto& e : table.entries())
        if (!e.key.empty() && e.key.front() != '.') out.push_back(e.key);
    return out;
}

ActiveWatch::ActiveWatch(asio::io_context& io, DeliveryContext& ctx, NextHops nexthops, Seen seen)
    : io_(io), ctx_(ctx), nexthops_(std::move(nexthops)), seen_(std::move(seen)), wake_(io) {}

void ActiveWatch::start() { asio::co_spawn(io_, loop(), asio::detached); }

void ActiveWatch::stop() {
    stopping_ = true;
    wake_.cancel();
    cancel_.emit(asio::cancellation_type::terminal);
}

asio::awaitable<void> ActiveWatch::round() {
    for (const auto& hop : nexthops_()) {
        if (stopping_) co_return;
        co_await check(hop);
    }
}

asio::awaitable<void> ActiveWatch::loop() {
    auto tok = asio::as_tuple(asio::use_awaitable);
    while (!stopping_) {
        auto interval = ctx_.config.watch.interval;
        if (interval > interval.zero()) {  // a child with its own slot, so that stop() ends a session
            auto ex = co_await asio::this_coro::executor;
            co_await asio::co_spawn(ex, round(),
                                    asio::bind_cancellation_slot(cancel_.slot(), asio::as_tuple(asio::use_awaitable)));
        }
        wake_.expires_after(interval > interval.zero() ? interval : std::chrono::seconds(1));
        co_await wake_.async_wait(tok);
    }
}

asio::awaitable<void> ActiveWatch::check(const std::string& nexthop) {
    auto hop = parse_nexthop(nexthop, ctx_.config.delivery.port);
    if (!hop) co_return;
    Route route = co_await resolve_route(ctx_.resolver, *hop, ctx_.self);
    if (route.error) {
        support::log_info("smtp", "watch: " + nexthop + ": " + route.error->reason);
        co_return;
    }
    for (const auto& t : route.targets) {
        if (stopping_) co_return;
        co_await check_server(*hop, t);
    }
}

asio::awaitable<void> ActiveWatch::check_server(const NextHop& hop, const Target& t) {
    smtp::ServerId server{t.hostname, t.address, t.port};
    smtp::TlsPlan plan = ctx_.plan(hop.text, server);
    // Without TLS there is nothing to check; DANE levels would need the TLSA lookups
    // of a delivery to judge the session, so they are left to deliveries.
    if (plan.invalid || plan.level == tls::Level::none || plan.level == tls::Level::dane ||
        plan.level == tls::Level::dane_only)
        co_return;
    std::string error;
    auto socket = co_await connect_target(t, ctx_.config.delivery.connect_timeout, error);
    if (!socket) {
        support::log_info("smtp", "watch: connect to " + server.name_addr_port() + ": " + error);
        co_return;
    }
    smtp::ClientOptions opts;
    opts.helo_name = ctx_.config.delivery.helo_name.empty() ? ctx_.config.server.hostname
                                                            : ctx_.config.delivery.helo_name;
    opts.command_timeout = std::chrono::seconds(30);
    smtp::ClientConnection conn(std::move(*socket), server, opts);
    auto failure = co_await conn.open(plan);
    if (conn.tls_session()) seen_(hop, server, *conn.tls_session());
    else if (failure) support::log_info("smtp", "watch: " + server.name_addr_port() + ": " + failure->reason);
    co_await conn.quit();
}

}  // namespace tlsrelay::relay

#include "relay/connection_cache.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace tlsrelay::relay {

namespace asio = boost::asio;

std::unique_ptr<smtp::ClientConnection> ConnectionCache::take(const std::string& key) {
    auto it = idle_conns_.find(key);
    while (it != idle_conns_.end() && !it->second.empty()) {
        Entry e = std::move(it->second.back());
        it->second.pop_back();
        if (!e.conn->usable()) continue;
        uses_[e.conn.get()] = e.uses;
        return std::move(e.conn);
    }
    return nullptr;
}

unsigned ConnectionCache::uses_of(const smtp::ClientConnection* conn) const {
    auto it = uses_.find(conn);
    return it == uses_.end() ? 0 : it->second;
}

void ConnectionCache::put(const std::string& key, std::unique_ptr<smtp::ClientConnection> conn, unsigned uses) {
    uses_.erase(conn.get());
    auto& list = idle_conns_[key];
    if (!conn->usable() || list.size() >= max_per_key) {
        auto* c = conn.release();  // polite QUIT, then gone
        asio::co_spawn(ex_, [c]() -> asio::awaitable<void> {
            std::unique_ptr<smtp::ClientConnection> owned(c);
            co_await owned->quit();
        }, asio::detached);
        return;
    }
    std::uint64_t gen = ++next_generation_;
    auto timer = std::make_shared<asio::steady_timer>(ex_, idle_);
    list.push_back({std::move(conn), uses, gen, timer});
    asio::co_spawn(ex_, [this, key, gen, timer]() -> asio::awaitable<void> {
        auto [ec] = co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
        if (!ec) expire(key, gen);
    }, asio::detached);
}

void ConnectionCache::expire(const std::string& key, std::uint64_t generation) {
    auto it = idle_conns_.find(key);
    if (it == idle_conns_.end()) return;
    auto& list = it->second;
    for (auto e = list.begin(); e != list.end(); ++e) {
        if (e->generation != generation) continue;
        auto* c = e->conn.release();
        list.erase(e);
        asio::co_spawn(ex_, [c]() -> asio::awaitable<void> {
            std::unique_ptr<smtp::ClientConnection> owned(c);
            co_await owned->quit();
        }, asio::detached);
        return;
    }
}

void ConnectionCache::close_all() {
    for (auto& [key, list] : idle_conns_)
        for (auto& e : list) e.idle_timer->cancel();
    idle_conns_.clear();
}

}  // namespace tlsrelay::relay

// Open SMTP connections kept for the next message to the same next hop (Postfix's
// connection cache: smtp_connection_cache_on_demand, 2 s idle limit). A connection
// is only cached after a completed transaction, under the TLS level it was opened
// with; an idle one is closed with QUIT.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "smtp/client_session.hpp"

namespace tlsrelay::relay {

class ConnectionCache {
public:
    explicit ConnectionCache(boost::asio::any_io_executor ex,
                             std::chrono::milliseconds idle = std::chrono::seconds(2))
        : ex_(std::move(ex)), idle_(idle) {}

    // key: next hop and TLS level, e.g. "[mx.example]:25|encrypt".
    std::unique_ptr<smtp::ClientConnection> take(const std::string& key);
    void put(const std::string& key, std::unique_ptr<smtp::ClientConnection> conn, unsigned uses);
    unsigned uses_of(const smtp::ClientConnection* conn) const;
    void close_all();  // shutdown: close at once (no QUIT), stop the idle timers

private:
    struct Entry {
        std::unique_ptr<smtp::ClientConnection> conn;
        unsigned uses = 0;
        std::uint64_t generation = 0;
        std::shared_ptr<boost::asio::steady_timer> idle_timer;
    };
    void expire(const std::string& key, std::uint64_t generation);

    boost::asio::any_io_executor ex_;
    std::chrono::milliseconds idle_;
    std::map<std::string, std::vector<Entry>> idle_conns_;
    std::map<const smtp::ClientConnection*, unsigned> uses_;  // connections taken out
    std::uint64_t next_generation_ = 0;
    static constexpr std::size_t max_per_key = 20;
};

}  // namespace tlsrelay::relay

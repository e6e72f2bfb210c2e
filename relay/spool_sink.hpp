// Connects the SMTP server to the queue: each accepted message becomes a spool draft,
// and its commit (fsync, rename, directory fsync) runs on a small thread pool so the
// network thread never blocks on the disk.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <functional>

#include "queue/queue.hpp"
#include "smtp/server_session.hpp"

namespace tlsrelay::relay {

class SpoolSink : public smtp::MessageSink {
public:
    using Committed = std::function<void(const queue::Envelope&)>;
    SpoolSink(queue::Spool& spool, boost::asio::thread_pool& pool, Committed on_committed)
        : spool_(spool), pool_(pool), on_committed_(std::move(on_committed)) {}

    std::uint64_t free_bytes() override { return spool_.free_bytes(); }
    std::unique_ptr<smtp::IncomingMessage> begin(std::error_code& ec) override;

private:
    queue::Spool& spool_;
    boost::asio::thread_pool& pool_;
    Committed on_committed_;
};

}  // namespace tlsrelay::relay

// Connects the SMTP server to the queue: each accepted message becomes a spool draft,
// and its commit (fsync, rename, directory fsync) runs on a small thread pool so the
// network thread never blocks on the disk. A committed message is handed on with its
// content when that is still in memory, so its first delivery need not read it back.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <optional>
#include <string>

#include "queue/queue.hpp"
#include "smtp/server_session.hpp"

namespace tlsrelay::relay {

class SpoolSink : public smtp::MessageSink {
public:
    // The envelope as the spool now holds it (id, arrival, size; every recipient
    // pending) and the content when it never left the buffer (messages below
    // SpoolMessage's flush size), else nullopt.
    using Committed = std::function<void(const queue::Envelope&, std::optional<std::string>)>;
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

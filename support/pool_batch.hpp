// Small blocking jobs (a delivery state to write, a spent message to retire) run on a
// thread pool in batches: a job queued while a batch is running waits for the next one,
// and one pool task runs the whole batch in order. A burst of N deferrals then costs a
// handful of hand-offs to the pool instead of N (each a wake-up of a pool thread and a
// context switch). For jobs that must overlap (commits waiting on fsync), use on_pool.
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <exception>
#include <functional>
#include <mutex>
#include <system_error>
#include <vector>

namespace tlsrelay::support {

class PoolBatch {
public:
    // Results are handed back on io, where the callers of run() live.
    PoolBatch(boost::asio::io_context& io, boost::asio::thread_pool& pool) : io_(io), pool_(pool) {}

    // Runs job on the pool after every job queued before it; resumes with its result
    // (an exception it throws is rethrown here, as on_pool does).
    boost::asio::awaitable<std::error_code> run(std::function<std::error_code()> job);

    // How many pool tasks have run batches so far (for tests).
    std::size_t batches() const;

private:
    struct Job {
        std::function<std::error_code()> work;
        boost::asio::any_completion_handler<void(std::exception_ptr, std::error_code)> done;
    };
    void drain();  // on the pool: runs batches until the queue is empty

    boost::asio::io_context& io_;
    boost::asio::thread_pool& pool_;
    mutable std::mutex mutex_;
    std::vector<Job> queued_;  // under mutex_
    bool draining_ = false;    // under mutex_: a pool task is (about to be) running batches
    std::size_t batches_ = 0;  // under mutex_
};

}  // namespace tlsrelay::support

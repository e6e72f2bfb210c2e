#include "support/pool_batch.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <utility>

namespace tlsrelay::support {

namespace asio = boost::asio;

asio::awaitable<std::error_code> PoolBatch::run(std::function<std::error_code()> job) {
    auto initiate = [this, &job](asio::any_completion_handler<void(std::exception_ptr, std::error_code)> done) {
        bool start = false;
        {
            std::lock_guard lock(mutex_);
            queued_.push_back({std::move(job), std::move(done)});
            start = !std::exchange(draining_, true);
        }
        if (start) asio::post(pool_, [this] { drain(); });
    };
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::exception_ptr, std::error_code)>(
        std::move(initiate), asio::use_awaitable);
}

void PoolBatch::drain() {
    for (;;) {
        std::vector<Job> batch;
        {
            std::lock_guard lock(mutex_);
            if (queued_.empty()) {
                draining_ = false;
                return;
            }
            batch.swap(queued_);
            ++batches_;
        }
        for (auto& job : batch) {
            std::error_code ec;
            std::exception_ptr error;
            try {
                ec = job.work();
            } catch (...) {
                error = std::current_exception();
            }
            // The caller's coroutine resumes on its own thread, never on the pool's.
            asio::post(io_, [done = std::move(job.done), error, ec]() mutable { std::move(done)(error, ec); });
        }
    }
}

std::size_t PoolBatch::batches() const {
    std::lock_guard lock(mutex_);
    return batches_;
}

}  // namespace tlsrelay::support

#include "support/pool_batch.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <future>
#include <stdexcept>
#include <thread>

namespace {

namespace asio = boost::asio;
using tlsrelay::support::PoolBatch;

// Jobs queued while a batch runs go together in the next one, in order, and each
// caller gets its own result back on the io thread.
TEST(PoolBatch, JobsQueuedDuringABatchShareTheNextOne) {
    asio::io_context io;
    asio::thread_pool pool(4);
    PoolBatch batch(io, pool);
    std::promise<void> started, release;
    auto released = release.get_future().share();
    std::vector<int> ran;  // written on the pool, one batch at a time
    std::vector<std::pair<int, std::error_code>> results;
    const auto io_thread = std::this_thread::get_id();
    bool resumed_elsewhere = false;
    auto spawn = [&](int i) {
        asio::co_spawn(io, [&, i]() -> asio::awaitable<void> {
            auto ec = co_await batch.run([&, i] {
                if (i == 0) {  // the first batch holds job 0 until the others are queued
                    started.set_value();
                    released.wait();
                }
                ran.push_back(i);
                return i % 2 ? std::make_error_code(std::errc::io_error) : std::error_code{};
            });
            resumed_elsewhere = resumed_elsewhere || std::this_thread::get_id() != io_thread;
            results.emplace_back(i, ec);
        }, asio::detached);
    };
    spawn(0);
    io.poll();
    started.get_future().wait();
    for (int i = 1; i < 11; ++i) spawn(i);
    io.poll();  // jobs 1-10 queued while the first batch runs
    release.set_value();
    io.restart();
    io.run();
    pool.join();
    ASSERT_EQ(results.size(), 11u);
    std::vector<int> order;
    for (int i = 0; i < 11; ++i) order.push_back(i);
    EXPECT_EQ(ran, order);
    for (const auto& [i, ec] : results)
        EXPECT_EQ(bool(ec), i % 2 == 1) << i;
    EXPECT_FALSE(resumed_elsewhere);
    EXPECT_EQ(batch.batches(), 2u);  // job 0 alone, then jobs 1-10 together
}

TEST(PoolBatch, AnExceptionReachesItsCallerOnly) {
    asio::io_context io;
    asio::thread_pool pool(2);
    PoolBatch batch(io, pool);
    std::string first, second;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        try {
            co_await batch.run([]() -> std::error_code { throw std::runtime_error("disk on fire"); });
        } catch (const std::runtime_error& e) {
            first = e.what();
        }
        auto ec = co_await batch.run([] { return std::error_code{}; });
        second = ec ? "error" : "ok";
    }, asio::detached);
    io.run();
    pool.join();
    EXPECT_EQ(first, "disk on fire");
    EXPECT_EQ(second, "ok");
}

}  // namespace

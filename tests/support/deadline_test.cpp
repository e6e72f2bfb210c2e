// support::Deadline against a real socket pair: a read with nothing to read ends at the
// deadline, a deadline moved later does not fire early, and cancelling the coroutine
// (as the scheduler does at shutdown) still cancels the bound read.
#include "support/deadline.hpp"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace tlsrelay::support {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Socket = asio::local::stream_protocol::socket;

struct ReadResult {
    boost::system::error_code ec;
    bool timed_out = false;
    std::chrono::steady_clock::duration took{};
};

asio::awaitable<ReadResult> bounded_read(Socket& s, Deadline& deadline) {
    auto start = std::chrono::steady_clock::now();
    asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
    auto forward = deadline.forward(state.slot());
    char buf[16];
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), deadline.bind(asio::as_tuple(asio::use_awaitable)));
    co_return ReadResult{ec, deadline.timed_out(ec), std::chrono::steady_clock::now() - start};
}

class DeadlineTest : public ::testing::Test {
protected:
    DeadlineTest() : a_(io_), b_(io_) { asio::local::connect_pair(a_, b_); }

    ReadResult run(asio::awaitable<ReadResult> task, asio::cancellation_slot slot = {}) {
        std::optional<ReadResult> out;
        asio::co_spawn(io_, std::move(task), asio::bind_cancellation_slot(slot, [&](std::exception_ptr e, ReadResult r) {
            if (e) std::rethrow_exception(e);
            out = r;
            io_.stop();  // the watchdog sleeps on while its Deadline lives
        }));
        io_.run_for(10s);  // bounded: a watchdog that never fires fails the test, not CI
        EXPECT_TRUE(out.has_value());
        return out.value_or(ReadResult{});
    }

    asio::io_context io_;
    Socket a_, b_;
};

TEST_F(DeadlineTest, AReadWithNothingToReadEndsAtTheDeadline) {
    Deadline deadline(io_.get_executor());
    deadline.expires_after(100ms);
    ReadResult r = run(bounded_read(a_, deadline));
    EXPECT_TRUE(r.timed_out) << r.ec.message();
    EXPECT_GE(r.took, 90ms);
    EXPECT_LT(r.took, 5s);
}

TEST_F(DeadlineTest, ADeadlineMovedLaterDoesNotFireEarly) {
    Deadline deadline(io_.get_executor());
    deadline.expires_after(50ms);
    deadline.expires_after(400ms);  // the watchdog first wakes at 50 ms and sleeps again
    asio::steady_timer writer(io_, 200ms);
    writer.async_wait([&](boost::system::error_code) { asio::write(b_, asio::buffer("x", 1)); });
    ReadResult r = run(bounded_read(a_, deadline));
    EXPECT_FALSE(r.ec) << r.ec.message();
    EXPECT_FALSE(r.timed_out);
    EXPECT_GE(r.took, 190ms);
}

TEST_F(DeadlineTest, AnEarlierDeadlineWakesTheWatchdog) {
    Deadline deadline(io_.get_executor());
    deadline.expires_after(1h);
    deadline.expires_after(100ms);
    ReadResult r = run(bounded_read(a_, deadline));
    EXPECT_TRUE(r.timed_out);
    EXPECT_LT(r.took, 5s);
}

TEST_F(DeadlineTest, CancellingTheCoroutineCancelsTheBoundRead) {
    Deadline deadline(io_.get_executor());
    deadline.expires_after(1h);
    asio::cancellation_signal stop;
    asio::steady_timer stopper(io_, 100ms);
    stopper.async_wait([&](boost::system::error_code) { stop.emit(asio::cancellation_type::terminal); });
    ReadResult r = run(bounded_read(a_, deadline), stop.slot());
    EXPECT_EQ(r.ec, asio::error::operation_aborted);
    EXPECT_FALSE(r.timed_out);  // cancelled, not timed out
    EXPECT_LT(r.took, 5s);
}

}  // namespace
}  // namespace tlsrelay::support

// One deadline per connection, enforced by a single watchdog timer: every read, write
// or handshake binds the deadline's cancellation slot, and the watchdog cancels the
// operation in flight once the deadline has passed. Moving the deadline later (each
// command does) is an assignment, not a timer update; racing a timer against every
// operation (`read || timer`) cost two coroutines and a parallel group per read.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <utility>

namespace tlsrelay::support {

class Deadline {
public:
    using Clock = std::chrono::steady_clock;

    struct State {  // shared with the watchdog coroutine
        explicit State(const boost::asio::any_io_executor& ex) : timer(ex) {}
        boost::asio::steady_timer timer;
        boost::asio::cancellation_signal signal;
        Clock::time_point at = Clock::time_point::max();
        bool fired = false;
        bool stopped = false;
    };

    explicit Deadline(const boost::asio::any_io_executor& ex);
    ~Deadline();  // stops the watchdog; an operation still bound stays uncancelled
    Deadline(const Deadline&) = delete;
    Deadline& operator=(const Deadline&) = delete;

    // The deadline of the operations that follow; also clears fired(). Set it before
    // every operation: once it has cancelled one, the watchdog sleeps until the next.
    void expires_at(Clock::time_point at);
    void expires_after(Clock::duration d) { expires_at(Clock::now() + d); }
    bool passed() const { return Clock::now() >= state_->at; }
    // Whether the watchdog cancelled an operation since the last expires_at().
    bool fired() const { return state_->fired; }
    // Whether an operation that ended with ec was cancelled by the deadline.
    bool timed_out(const boost::system::error_code& ec) const {
        return ec == boost::asio::error::operation_aborted && fired();
    }

    // A completion token whose operation the watchdog cancels at the deadline.
    template <class Token>
    auto bind(Token&& token) {
        return boost::asio::bind_cancellation_slot(state_->signal.slot(), std::forward<Token>(token));
    }

    // A bound operation no longer listens to its coroutine's cancellation (shutdown
    // stops deliveries that way): while a Forward lives, that cancellation is passed on.
    // Use: `cancellation_state s = co_await this_coro::cancellation_state;`
    //      `auto forward = deadline.forward(s.slot());` then the bound operation.
    class Forward {
    public:
        Forward(boost::asio::cancellation_slot from, State& to) : from_(from) {
            if (from_.is_connected())
                from_.assign([&to](boost::asio::cancellation_type type) { to.signal.emit(type); });
        }
        ~Forward() {
            if (from_.is_connected()) from_.clear();
        }
        Forward(const Forward&) = delete;
        Forward& operator=(const Forward&) = delete;

    private:
        boost::asio::cancellation_slot from_;
    };
    Forward forward(boost::asio::cancellation_slot from) { return Forward(from, *state_); }


private:
    std::shared_ptr<State> state_;
};

}  // namespace tlsrelay::support

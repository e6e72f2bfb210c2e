#include "support/deadline.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace tlsrelay::support {

namespace asio = boost::asio;

namespace {

// Sleeps until the current deadline; a deadline moved later in the meantime only
// means another sleep. The watchdog owns the state with the Deadline, so it can
// outlive it until its last wake-up.
asio::awaitable<void> watch(std::shared_ptr<Deadline::State> s);

}  // namespace

Deadline::Deadline(const asio::any_io_executor& ex) : state_(std::make_shared<State>(ex)) {
    asio::co_spawn(ex, watch(state_), asio::detached);
}

Deadline::~Deadline() {
    state_->stopped = true;
    state_->timer.cancel();
}

void Deadline::expires_at(Clock::time_point at) {
    state_->at = at;
    state_->fired = false;
    // Earlier than the watchdog's wake-up: wake it to sleep again until `at`.
    if (at < state_->timer.expiry()) state_->timer.cancel();
}

namespace {

asio::awaitable<void> watch(std::shared_ptr<Deadline::State> s) {
    while (!s->stopped) {
        s->timer.expires_at(s->at);
        co_await s->timer.async_wait(asio::as_tuple(asio::use_awaitable));
        if (s->stopped || Deadline::Clock::now() < s->at) continue;
        s->fired = true;
        s->at = Deadline::Clock::time_point::max();
        s->signal.emit(asio::cancellation_type::terminal);
    }
}

}  // namespace

}  // namespace tlsrelay::support

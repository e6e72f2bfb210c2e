#include "relay/throttle.hpp"

#include <algorithm>

namespace tlsrelay::relay {

namespace {

const std::string suspended_prefix = "delivery temporarily suspended: ";

}  // namespace

void Throttle::begin(const std::string& dest) {
    auto [it, fresh] = dests_.try_emplace(dest);
    if (fresh)  // a new queue starts at the initial concurrency, within the limit
        it->second.window = limits_.limit > 0 ? std::min(limits_.initial, limits_.limit) : limits_.initial;
    ++it->second.busy;
}

void Throttle::end(const std::string& dest, Clock::time_point now) {
    auto it = dests_.find(dest);
    if (it == dests_.end()) return;
    Dest& d = it->second;
    if (d.busy > 0) --d.busy;
    if (d.busy > 0) return;
    if (!d.dead_until || now >= *d.dead_until) dests_.erase(it);
}

std::optional<HopStatus> Throttle::suspended(const std::string& dest, Clock::time_point now) {
    auto it = dests_.find(dest);
    if (it == dests_.end() || !it->second.dead_until) return std::nullopt;
    Dest& d = it->second;
    if (now < *d.dead_until) return d.why;
    bring_back(d);  // minimal_backoff_time is over
    if (d.busy == 0) dests_.erase(it);
    return std::nullopt;
}

// qmgr_queue_unthrottle on a dead queue: a fresh start at the concurrency in flight.
void Throttle::bring_back(Dest& d) const {
    d.dead_until.reset();
    d.why = {};
    d.window = d.busy > 0 ? static_cast<int>(d.busy) : limits_.initial;
    d.success = d.failure = d.fail_cohorts = 0;
}

void Throttle::failed(const std::string& dest, const HopStatus& why, Clock::time_point now) {
    auto it = dests_.find(dest);
    if (it == dests_.end() || it->second.dead_until) return;  // already dead: nothing more to learn
    Dest& d = it->second;
    // Each failure is a fraction of a cohort: 1/window. At defaults (window 5, limit 1)
    // the third failure in a row kills: 1/5 + 1/3 + 1/2, as the window drops 5, 3, 2.
    d.fail_cohorts += 1.0 / d.window;
    if (limits_.cohort_limit > 0 && d.fail_cohorts >= limits_.cohort_limit) {
        d.dead_until = now + limits_.dead_for;
        d.why = {why.dsn.empty() ? "4.0.0" : why.dsn,
                 suspended_prefix + (why.reason.empty() ? "unknown error" : why.reason)};
        return;
    }
    // Negative feedback of 1 per failure with a hysteresis of 1 (the defaults); the
    // first failure after a success costs two, as in Postfix. Never below 1.
    d.failure -= 1;
    while (d.failure - 0.5 < 0) {
        d.window -= 1;
        d.success = 0;
        d.failure += 1;
    }
    d.window = std::max(d.window, 1);
}

void Throttle::succeeded(const std::string& dest) {
    auto it = dests_.find(dest);
    if (it == dests_.end()) return;
    Dest& d = it->second;
    d.fail_cohorts = 0;
    if (d.dead_until) {  // a delivery that was in flight when it died got through
        bring_back(d);
        return;
    }
    // Positive feedback 1/window, growing up to the limit and to what is in flight
    // plus the initial concurrency.
    if (limits_.limit > 0 && d.window >= limits_.limit) return;
    if (d.window >= static_cast<int>(d.busy) + limits_.initial) return;
    double feedback = 1.0 / d.window;
    d.success += feedback;
    while (d.success + feedback / 2 >= 1) {
        d.window += 1;
        d.success -= 1;
        d.failure = 0;
    }
    if (limits_.limit > 0) d.window = std::min(d.window, limits_.limit);
}

void Throttle::revive(const std::string& dest) {
    auto it = dests_.find(dest);
    if (it == dests_.end() || !it->second.dead_until) return;
    bring_back(it->second);
    if (it->second.busy == 0) dests_.erase(it);
}

void Throttle::revive_all() {
    for (auto it = dests_.begin(); it != dests_.end();) {
        if (it->second.dead_until) bring_back(it->second);
        if (it->second.busy == 0)
            it = dests_.erase(it);
        else
            ++it;
    }
}

std::optional<Throttle::State> Throttle::state(const std::string& dest) const {
    auto it = dests_.find(dest);
    if (it == dests_.end()) return std::nullopt;
    const Dest& d = it->second;
    State s{d.window, d.fail_cohorts, std::nullopt};
    if (d.dead_until) s.dead = d.why;
    return s;
}

}  // namespace tlsrelay::relay

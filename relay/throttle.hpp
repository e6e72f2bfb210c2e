// Dead-destination throttling as Postfix's queue manager does it (src/qmgr/qmgr_queue.c
// qmgr_queue_throttle/unthrottle, qmgr_deliver.c, qmgr_message.c): each site failure
// adds 1/window to the destination's failed cohorts and shrinks the window; at the
// cohort limit the destination is dead for minimal_backoff_time and its mail is deferred
// with "delivery temporarily suspended: " and the failure's DSN, without connecting.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace tlsrelay::relay {

// A destination's failure as smtp(8) reports it to the queue manager (the hop status).
struct HopStatus {
    std::string dsn;     // "4.4.1"
    std::string reason;  // "connect to host[addr]:25: Connection refused"
};

// Values only, no clock of its own: callers pass the time. One instance per daemon,
// keyed by destination (the scheduler's dest_of_: next-hop domain).
class Throttle {
public:
    using Clock = std::chrono::steady_clock;
    struct Limits {
        int initial = 5;            // initial_destination_concurrency
        int limit = 20;             // *_destination_concurrency_limit (0: none)
        double cohort_limit = 1;    // *_destination_concurrency_failed_cohort_limit (0: never dead)
        Clock::duration dead_for = std::chrono::minutes(5);  // minimal_backoff_time
    };
    struct State {  // for tests and `queue list`
        int window;
        double fail_cohorts;
        std::optional<HopStatus> dead;  // what suspended deliveries are deferred with
    };

    void set_limits(const Limits& l) { limits_ = l; }

    // A delivery to dest starts / ends. When the last one ends, a live destination's
    // history is forgotten, as Postfix drops an in-core queue with nothing to do; a dead
    // one stays dead until its time is up.
    void begin(const std::string& dest);
    void end(const std::string& dest, Clock::time_point now);

    // Dead now: the DSN and the reason ("delivery temporarily suspended: ...") to defer
    // with, without trying. A destination whose time is up comes back to life here.
    std::optional<HopStatus> suspended(const std::string& dest, Clock::time_point now);

    // The outcome of one delivery to dest: a site failure (what site_failure() says) or
    // anything else, which Postfix counts as the destination being alive.
    void failed(const std::string& dest, const HopStatus& why, Clock::time_point now);
    void succeeded(const std::string& dest);

    // `queue flush` (postqueue -f, -i): dead destinations get another chance now.
    void revive(const std::string& dest);
    void revive_all();

    std::optional<State> state(const std::string& dest) const;

private:
    struct Dest {
        int window = 0;
        double success = 0, failure = 0, fail_cohorts = 0;  // feedback hysteresis
        unsigned busy = 0;
        std::optional<Clock::time_point> dead_until;
        HopStatus why;
    };
    void bring_back(Dest& d) const;

    Limits limits_;
    std::map<std::string, Dest> dests_;
};

}  // namespace tlsrelay::relay

// Throttle: Postfix's qmgr window / failed-cohort arithmetic at its defaults
// (initial_destination_concurrency 5, failed cohort limit 1, negative feedback 1,
// positive feedback 1/concurrency), the dead period and what revives a destination.
#include "relay/throttle.hpp"

#include <gtest/gtest.h>

namespace tlsrelay::relay {
namespace {

using namespace std::chrono_literals;
using Clock = Throttle::Clock;

const HopStatus refused{"4.4.1", "connect to mx[192.0.2.1]:25: Connection refused"};

Throttle defaults(Clock::duration dead_for = 300s) {
    Throttle t;
    t.set_limits({5, 20, 1, dead_for});
    return t;
}

TEST(Throttle, ThirdFailureInARowKillsAtDefaults) {
    auto t = defaults();
    const auto now = Clock::now();
    t.begin("d");
    struct Step {
        int window;
        double cohorts;
        bool dead;
    };
    // window 5 -> 3 (the first failure costs two) -> 2; cohorts 1/5, +1/3, +1/2 >= 1
    const Step steps[] = {{3, 0.2, false}, {2, 0.2 + 1.0 / 3, false}, {2, 0.2 + 1.0 / 3 + 0.5, true}};
    for (const auto& want : steps) {
        EXPECT_FALSE(t.suspended("d", now));
        t.failed("d", refused, now);
        auto s = t.state("d");
        ASSERT_TRUE(s);
        EXPECT_EQ(s->window, want.window);
        EXPECT_NEAR(s->fail_cohorts, want.cohorts, 1e-9);
        EXPECT_EQ(s->dead.has_value(), want.dead);
    }
    auto why = t.suspended("d", now);
    ASSERT_TRUE(why);
    EXPECT_EQ(why->dsn, "4.4.1");
    EXPECT_EQ(why->reason, "delivery temporarily suspended: connect to mx[192.0.2.1]:25: Connection refused");
}

TEST(Throttle, FailuresInFlightAfterDeathChangeNothing) {
    auto t = defaults();
    const auto now = Clock::now();
    t.begin("d");
    for (int i = 0; i < 3; ++i) t.failed("d", refused, now);
    t.failed("d", HopStatus{"4.7.5", "Server certificate not verified"}, now + 1s);
    auto why = t.suspended("d", now + 2s);
    ASSERT_TRUE(why);
    EXPECT_EQ(why->dsn, "4.4.1");  // the failure that killed it, not a later one
    EXPECT_FALSE(t.suspended("d", now + 301s)) << "dead for minimal_backoff_time from the third failure";
}

TEST(Throttle, DeadForTheBackoffThenAFreshStart) {
    auto t = defaults(10s);
    const auto now = Clock::now();
    t.begin("d");
    for (int i = 0; i < 3; ++i) t.failed("d", refused, now);
    EXPECT_TRUE(t.suspended("d", now + 9s));
    EXPECT_FALSE(t.suspended("d", now + 10s));
    auto s = t.state("d");
    ASSERT_TRUE(s);  // one delivery is still in flight: the window is what is in flight
    EXPECT_EQ(s->window, 1);
    EXPECT_EQ(s->fail_cohorts, 0);
    EXPECT_FALSE(s->dead);
}

TEST(Throttle, ASuccessResetsTheCohortsButNotTheWindow) {
    auto t = defaults();
    const auto now = Clock::now();
    t.begin("d");
    t.failed("d", refused, now);  // window 3, cohorts 0.2
    t.succeeded("d");             // cohorts 0; 1/3 of a window step
    EXPECT_EQ(t.state("d")->window, 3);
    EXPECT_EQ(t.state("d")->fail_cohorts, 0);
    // Now 1/3 + 1/2 + 1/1: three more failures, the window dropping 3, 2, 1.
    t.failed("d", refused, now);
    t.failed("d", refused, now);
    EXPECT_FALSE(t.suspended("d", now));
    t.failed("d", refused, now);
    EXPECT_TRUE(t.suspended("d", now));
}

TEST(Throttle, ForgottenWhenTheLastDeliveryEndsAlive) {
    auto t = defaults();
    const auto now = Clock::now();
    for (int round = 0; round < 5; ++round) {  // one message at a time never kills it
        t.begin("d");
        t.failed("d", refused, now);
        t.end("d", now);
        EXPECT_FALSE(t.state("d"));
    }
    t.begin("d");
    t.begin("d");  // overlapping deliveries share the history
    t.failed("d", refused, now);
    t.end("d", now);
    t.begin("d");
    t.failed("d", refused, now);
    t.failed("d", refused, now);
    t.end("d", now);
    t.end("d", now);
    EXPECT_TRUE(t.suspended("d", now)) << "a dead destination outlives its deliveries";
    EXPECT_FALSE(t.suspended("other", now));
}

TEST(Throttle, ASuccessInFlightRevives) {
    auto t = defaults();
    const auto now = Clock::now();
    t.begin("d");
    for (int i = 0; i < 3; ++i) t.failed("d", refused, now);
    t.succeeded("d");
    EXPECT_FALSE(t.suspended("d", now));
}

TEST(Throttle, FlushRevives) {
    auto t = defaults();
    const auto now = Clock::now();
    for (const char* d : {"a", "b"}) {
        t.begin(d);
        for (int i = 0; i < 3; ++i) t.failed(d, refused, now);
        t.end(d, now);
    }
    t.revive("a");
    EXPECT_FALSE(t.suspended("a", now));
    EXPECT_TRUE(t.suspended("b", now));
    t.revive_all();
    EXPECT_FALSE(t.suspended("b", now));
    EXPECT_FALSE(t.state("b")) << "nothing in flight: nothing kept";
}

TEST(Throttle, WindowGrowsWithSuccessesUpToInFlightPlusInitial) {
    auto t = defaults();
    t.begin("d");
    for (int i = 0; i < 100; ++i) t.succeeded("d");
    EXPECT_EQ(t.state("d")->window, 6);  // busy 1 + initial 5
    for (int i = 0; i < 30; ++i) t.begin("d");
    for (int i = 0; i < 1000; ++i) t.succeeded("d");
    EXPECT_EQ(t.state("d")->window, 20);  // the destination concurrency limit
}

TEST(Throttle, CohortLimitZeroNeverKills) {
    Throttle t;
    t.set_limits({5, 20, 0, 300s});
    const auto now = Clock::now();
    t.begin("d");
    for (int i = 0; i < 50; ++i) t.failed("d", refused, now);
    EXPECT_FALSE(t.suspended("d", now));
    EXPECT_EQ(t.state("d")->window, 1);
}

TEST(Throttle, EmptyStatusGetsPostfixDefaults) {
    auto t = defaults();
    const auto now = Clock::now();
    t.begin("d");
    for (int i = 0; i < 3; ++i) t.failed("d", HopStatus{}, now);
    auto why = t.suspended("d", now);
    ASSERT_TRUE(why);
    EXPECT_EQ(why->dsn, "4.0.0");
    EXPECT_EQ(why->reason, "delivery temporarily suspended: unknown error");
}

}  // namespace
}  // namespace tlsrelay::relay

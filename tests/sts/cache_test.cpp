// The cache record of a policy (round trip, damaged files) and the choice between
// using it, refreshing it in the background and fetching before delivery (RFC 8461 5.1).
#include "sts/cache.hpp"

#include <gtest/gtest.h>

namespace tlsrelay::sts {
namespace {

const std::string body = "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 1000\n";

CachedPolicy cached(std::string id = "a1", std::int64_t fetched = 10000) {
    return *parse_cached("tlsrelay-mta-sts 1\nid " + id + "\nfetched " + std::to_string(fetched) +
                         "\n\n" + body);
}

TEST(CachedPolicy, RoundTrips) {
    CachedPolicy c = cached();
    EXPECT_EQ(c.id, "a1");
    EXPECT_EQ(c.fetched, 10000);
    EXPECT_EQ(c.body, body);
    EXPECT_EQ(c.policy.mode, Mode::enforce);
    EXPECT_EQ(c.expires(), 11000);
    auto again = parse_cached(format_cached(c));
    ASSERT_TRUE(again);
    EXPECT_EQ(again->id, c.id);
    EXPECT_EQ(again->fetched, c.fetched);
    EXPECT_EQ(again->body, c.body);
}

TEST(CachedPolicy, DamagedFilesAreNoCache) {
    const std::string good = format_cached(cached());
    for (std::size_t n = 0; n < good.find("max_age"); ++n)
        EXPECT_FALSE(parse_cached(good.substr(0, n))) << n;
    const char* bad[] = {
        "tlsrelay-mta-sts 2\nid a\nfetched 1\n\nversion: STSv1\nmode: none\nmax_age: 1\n",
        "tlsrelay-mta-sts 1\nid \nfetched 1\n\nversion: STSv1\nmode: none\nmax_age: 1\n",
        "tlsrelay-mta-sts 1\nid a\nfetched -1\n\nversion: STSv1\nmode: none\nmax_age: 1\n",
        "tlsrelay-mta-sts 1\nid a\nfetched 1x\n\nversion: STSv1\nmode: none\nmax_age: 1\n",
        "tlsrelay-mta-sts 1\nfetched 1\nid a\n\nversion: STSv1\nmode: none\nmax_age: 1\n",
        "tlsrelay-mta-sts 1\nid a\nfetched 1\nx\nversion: STSv1\nmode: none\nmax_age: 1\n",
        "tlsrelay-mta-sts 1\nid a\nfetched 1\n\nversion: STSv1\nmode: enforce\nmax_age: 1\n",
    };
    for (const char* b : bad) EXPECT_FALSE(parse_cached(b)) << b;
}

TEST(CachedPolicy, NextStep) {
    struct Case {
        const char* what;
        std::optional<CachedPolicy> cached;
        std::optional<std::string> txt_id;
        std::int64_t now;
        Step step;
    } cases[] = {
        {"no cache, no record", std::nullopt, std::nullopt, 10000, Step::no_policy},
        {"no cache, a record", std::nullopt, "a1", 10000, Step::fetch_now},
        {"valid, same id", cached(), "a1", 10500, Step::use_cached},
        {"valid, record gone", cached(), std::nullopt, 10999, Step::use_cached},
        {"valid, new id", cached(), "b2", 10001, Step::use_cached_and_refresh},
        {"valid, near expiry", cached(), "a1", 10800, Step::use_cached_and_refresh},
        {"expired, same id", cached(), "a1", 11000, Step::fetch_now},
        {"expired, no record", cached(), std::nullopt, 11000, Step::no_policy},
        {"fetched in the future", cached("a1", 20000), "a1", 10000, Step::fetch_now},
    };
    for (const auto& c : cases) EXPECT_EQ(next_step(c.cached, c.txt_id, c.now), c.step) << c.what;
}

}  // namespace
}  // namespace tlsrelay::sts

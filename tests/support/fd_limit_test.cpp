#include "support/fd_limit.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>

namespace tlsrelay::support {
namespace {

rlimit current() {
    rlimit lim{};
    getrlimit(RLIMIT_NOFILE, &lim);
    return lim;
}

TEST(FdLimit, RaisesTheSoftLimitToTheHardOne) {
    rlimit start = current();
    if (start.rlim_max == RLIM_INFINITY || start.rlim_max < 64) GTEST_FAIL() << "unusual hard limit";
    rlimit low{64, start.rlim_max};  // as systemd's 1024 does to a daemon that wants thousands
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    EXPECT_EQ(raise_fd_limit(start.rlim_max), std::nullopt);
    EXPECT_EQ(current().rlim_cur, start.rlim_max);
}

TEST(FdLimit, SaysWhenEvenTheHardLimitIsShort) {
    rlimit lim = current();
    auto warning = raise_fd_limit(lim.rlim_max + 1);
    ASSERT_TRUE(warning.has_value());
    EXPECT_NE(warning->find("below the " + std::to_string(lim.rlim_max + 1)), std::string::npos) << *warning;
}

}  // namespace
}  // namespace tlsrelay::support

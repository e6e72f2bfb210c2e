// support::log batching: lines the io thread logs reach stderr together once the ready
// handlers have run, a warning takes what was gathered with it (order kept), lines of
// other threads are written at once, and log_batch_end() leaves nothing behind.
#include "support/log.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <algorithm>
#include <string>
#include <thread>

namespace tlsrelay::support {
namespace {

namespace asio = boost::asio;

// Redirects stderr into a pipe for the test's lifetime; taken() is what arrived so far.
class CapturedStderr {
public:
    CapturedStderr() {
        EXPECT_EQ(::pipe2(fds_, O_NONBLOCK), 0);
        saved_ = ::dup(STDERR_FILENO);
        ::dup2(fds_[1], STDERR_FILENO);
    }
    ~CapturedStderr() {
        ::dup2(saved_, STDERR_FILENO);
        ::close(saved_);
        ::close(fds_[0]);
        ::close(fds_[1]);
    }
    std::string taken() {
        char buf[4096];
        for (ssize_t n; (n = ::read(fds_[0], buf, sizeof buf)) > 0;) text_.append(buf, static_cast<size_t>(n));
        return text_;
    }

private:
    int fds_[2] = {-1, -1};
    int saved_ = -1;
    std::string text_;
};

std::size_t lines(const std::string& text) { return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')); }

TEST(LogBatch, LinesOfTheReadyHandlersAreWrittenTogetherInOrder) {
    CapturedStderr err;
    asio::io_context io;
    log_batch_on(io.get_executor());
    std::size_t written_before_second = 99;
    asio::post(io, [&] { log_info("smtpd", "one"); });
    asio::post(io, [&] {  // ready together with the first: its line is not out yet
        written_before_second = lines(err.taken());
        log_info("smtpd", "two");
    });
    io.run();
    EXPECT_EQ(written_before_second, 0u);
    std::string out = err.taken();
    EXPECT_EQ(lines(out), 2u) << out;
    EXPECT_LT(out.find(": one"), out.find(": two")) << out;
    log_batch_end();
}

TEST(LogBatch, WarningsAndOtherThreadsWriteAtOnceAfterWhatWasGathered) {
    CapturedStderr err;
    asio::io_context io;
    log_batch_on(io.get_executor());
    log_info("smtpd", "gathered");
    EXPECT_EQ(lines(err.taken()), 0u);
    log_warning("queue", "urgent");
    std::string out = err.taken();
    ASSERT_EQ(lines(out), 2u) << out;
    EXPECT_LT(out.find(": gathered"), out.find(": warning: urgent")) << out;
    std::thread([] { log_info("qmgr", "from a pool thread"); }).join();
    EXPECT_EQ(lines(err.taken()), 3u);
    log_info("smtpd", "last");
    log_batch_end();  // io never ran: the gathered line is written here
    EXPECT_EQ(lines(err.taken()), 4u);
    log_info("smtpd", "after the end");
    EXPECT_EQ(lines(err.taken()), 5u);
}

}  // namespace
}  // namespace tlsrelay::support

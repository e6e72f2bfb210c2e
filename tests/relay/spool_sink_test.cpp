// The SMTP server session wired to the real spool through SpoolSink, with write, fsync,
// close or rename failing at the n-th call (spec 5.G items 55-56, 47): the client sees
// 451 4.3.0 after its final dot, nothing of the message stays in the spool (not even
// after reopening it), and the next transaction of the same session is stored whole.
#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/thread_pool.hpp>
#include <gtest/gtest.h>
#include <mutex>
#include <thread>
#include <tuple>
#include <vector>

#include "../queue/queue_test_util.hpp"
#include "relay/spool_sink.hpp"
#include "smtp/server_io.hpp"

namespace tlsrelay::relay {
namespace {

namespace asio = boost::asio;
using queue::test::Faults;
using queue::test::files_in;

// One server session over a socket pair, storing into a spool whose syscalls fail on demand.
class SpoolSession {
public:
    SpoolSession(queue::Spool& spool, std::atomic<int>& committed)
        : SpoolSession(spool, [&committed](const queue::Envelope&, std::optional<std::string>) {
              ++committed;
          }) {}
    SpoolSession(queue::Spool& spool, SpoolSink::Committed on_committed)
        : sink_(spool, disk_, std::move(on_committed)), server_(io_), client_(io_) {
        asio::local::connect_pair(server_, client_);
        timeval tv{10, 0};
        ::setsockopt(client_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        options_.hostname = "relay.test";
        options_.max_message_size = 4 << 20;
        options_.allow_networks = {*support::parse_network("127.0.0.0/8")};
        asio::co_spawn(io_, run(), asio::detached);
        thread_ = std::thread([this] { io_.run(); });
    }
    ~SpoolSession() {
        boost::system::error_code ignored;
        client_.close(ignored);
        thread_.join();
        disk_.join();
    }

    // Sends bytes and returns the last line of the reply ("" when the server hung up).
    std::string say(std::string_view bytes) {
        if (!bytes.empty()) asio::write(client_, asio::buffer(bytes));
        for (;;) {
            for (std::size_t start = 0, eol; (eol = in_.find("\r\n", start)) != std::string::npos; start = eol + 2) {
                if (eol - start >= 4 && in_[start + 3] == '-') continue;
                std::string last = in_.substr(start, eol - start);
                in_.erase(0, eol + 2);
                return last;
            }
            char chunk[4096];
            ssize_t n = ::recv(client_.native_handle(), chunk, sizeof chunk, 0);
            if (n <= 0) return "";
            in_.append(chunk, static_cast<std::size_t>(n));
        }
    }

private:
    asio::awaitable<void> run() {
        smtp::SessionCore core(options_, sink_, asio::ip::make_address("127.0.0.1"));
        co_await smtp::serve_session(server_, core, nullptr, options_);
        server_.close();
    }

    asio::thread_pool disk_{2};
    SpoolSink sink_;
    smtp::ServerOptions options_;
    asio::io_context io_;
    asio::local::stream_protocol::socket server_, client_;
    std::thread thread_;
    std::string in_;
};

// A body of several spool records, with lines a client must dot-stuff.
std::string body(char tag) {
    std::string b = std::string("Subject: fault ") + tag + "\r\n\r\n";
    for (int i = 0; b.size() < 200000; ++i) b += (i % 7 ? "line " : ".dot line ") + std::to_string(i) + "\r\n";
    return b;
}

std::string stuffed(const std::string& content) {
    std::string out;
    for (std::size_t pos = 0; pos < content.size();) {
        std::size_t eol = content.find("\r\n", pos) + 2;
        if (content[pos] == '.') out += '.';
        out.append(content, pos, eol - pos);
        pos = eol;
    }
    return out + ".\r\n";
}

// MAIL, RCPT, DATA and the message; returns the reply to the final dot.
std::string transaction(SpoolSession& s, const std::string& content) {
    EXPECT_EQ(s.say("MAIL FROM:<a@example.com>\r\n").substr(0, 3), "250");
    EXPECT_EQ(s.say("RCPT TO:<b@example.net>\r\n").substr(0, 3), "250");
    EXPECT_EQ(s.say("DATA\r\n").substr(0, 3), "354");
    return s.say(stuffed(content));
}

struct FaultCase {
    const char* name;
    Faults::Kind kind;
    int error;
    bool named_drafts = false;  // a rename happens only for tmp/<ID>; else drafts are anonymous
};

const FaultCase fault_cases[] = {
    {"write ENOSPC", Faults::write, ENOSPC},
    {"write EIO", Faults::write, EIO},
    {"fsync EIO", Faults::fsync, EIO},
    {"close EIO", Faults::close, EIO},
    {"link EIO", Faults::link, EIO},
    {"link ENOSPC", Faults::link, ENOSPC},
    {"rename EIO", Faults::rename, EIO, true},
    {"rename ENOSPC", Faults::rename, ENOSPC, true},
    {"fsync EIO, named drafts", Faults::fsync, EIO, true},
};

// Stored content of the only message in the spool, "" unless there is exactly one.
std::string only_message(queue::Spool& spool) {
    auto list = spool.list();
    if (list.size() != 1) return "";
    return spool.content(list[0].id).value_or("");
}

TEST(SpoolSink, FailedCommitIs451AndLeavesNothing) {
    const std::string first = body('1'), second = body('2');
    const bool anonymous = queue::test::anonymous_files_work();
    for (const auto& c : fault_cases) {
        if (c.kind == Faults::link && !anonymous) continue;  // every draft is named here
        int n = 1;
        for (;; ++n) {
            SCOPED_TRACE(std::string(c.name) + " at call " + std::to_string(n));
            ASSERT_LT(n, 50);
            queue::test::TempDir dir;
            Faults faults;
            faults.named_drafts = c.named_drafts;
            auto opened = queue::open_spool(dir.path, faults.ops());
            ASSERT_TRUE(opened.spool);
            std::atomic<int> committed = 0;
            SpoolSession s(*opened.spool, committed);
            EXPECT_EQ(s.say("").substr(0, 3), "220");
            EXPECT_EQ(s.say("EHLO client.test\r\n").substr(0, 3), "250");
            faults.arm(c.kind, n, c.error);
            std::string reply = transaction(s, first);
            if (reply.rfind("250 2.0.0 Ok: queued as ", 0) == 0) {  // n is past the last call
                EXPECT_NE(only_message(*opened.spool).find(first), std::string::npos);
                break;
            }
            EXPECT_EQ(reply, "451 4.3.0 Error: queue file write error");
            EXPECT_EQ(committed, 0);
            EXPECT_TRUE(opened.spool->list().empty());
            EXPECT_TRUE(files_in(dir.path / "messages").empty());
            EXPECT_TRUE(files_in(dir.path / "tmp").empty());
            // The session goes on; the next message is stored whole, and only it.
            EXPECT_EQ(transaction(s, second).substr(0, 24), "250 2.0.0 Ok: queued as ");
            EXPECT_EQ(committed, 1);
            std::string stored = only_message(*opened.spool);
            EXPECT_NE(stored.find(second), std::string::npos);
            EXPECT_EQ(stored.find("fault 1"), std::string::npos);
            auto reopened = queue::open_spool(dir.path);
            ASSERT_TRUE(reopened.spool);
            EXPECT_EQ(reopened.spool->list().size(), 1u);
        }
        EXPECT_GT(n, 1) << c.name << ": the commit never made that call";
    }
}

// What the sink hands on at commit is what the spool holds, so the scheduler can start
// the first attempt from it: the envelope field by field, and the content of a message
// that never left the buffer (none for one above the 1 MiB flush size).
TEST(SpoolSink, CommittedEnvelopeAndContentAreWhatTheSpoolHolds) {
    queue::test::TempDir dir;
    auto opened = queue::open_spool(dir.path);
    ASSERT_TRUE(opened.spool);
    std::mutex mutex;
    std::vector<std::pair<queue::Envelope, std::optional<std::string>>> handed;
    SpoolSession s(*opened.spool, [&](const queue::Envelope& e, std::optional<std::string> c) {
        std::lock_guard lock(mutex);
        handed.emplace_back(e, std::move(c));
    });
    EXPECT_EQ(s.say("").substr(0, 3), "220");
    EXPECT_EQ(s.say("EHLO client.test\r\n").substr(0, 3), "250");
    std::string small = body('s'), large = body('l');
    while (large.size() < (3u << 20) / 2) large += large;
    EXPECT_EQ(transaction(s, small).substr(0, 3), "250");
    EXPECT_EQ(transaction(s, large).substr(0, 3), "250");
    std::lock_guard lock(mutex);
    ASSERT_EQ(handed.size(), 2u);
    for (const auto& [e, content] : handed) {
        auto stored = opened.spool->load(e.id);
        ASSERT_TRUE(stored && stored->content);
        const queue::Envelope& d = stored->envelope;
        EXPECT_EQ(std::tie(e.id, e.arrival_us, e.sender, e.client, e.helo, e.size),
                  std::tie(d.id, d.arrival_us, d.sender, d.client, d.helo, d.size));
        EXPECT_EQ(std::tie(e.smtputf8, e.eight_bit, e.held), std::tie(d.smtputf8, d.eight_bit, d.held));
        ASSERT_EQ(e.recipients.size(), d.recipients.size());
        EXPECT_EQ(e.recipients[0].address, d.recipients[0].address);
        EXPECT_EQ(e.recipients[0].state, d.recipients[0].state);
        EXPECT_NE(e.arrival_us, 0);
    }
    ASSERT_TRUE(handed[0].second);  // the stored content: a Received: line, then the body
    EXPECT_TRUE(handed[0].second == opened.spool->content(handed[0].first.id));
    EXPECT_TRUE(handed[0].second->ends_with(small));
    EXPECT_FALSE(handed[1].second);  // flushed during DATA: not kept
}

}  // namespace
}  // namespace tlsrelay::relay

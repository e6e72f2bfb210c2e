// The server session driven over a connected socket pair, with an in-memory sink:
// every reply code of a conversation, pipelining and synchronisation, limits.
#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <gtest/gtest.h>
#include <mutex>
#include <thread>

#include "smtp/server_io.hpp"

namespace tlsrelay::smtp {
namespace {

namespace asio = boost::asio;
using Socket = asio::local::stream_protocol::socket;

struct Stored {
    Transaction transaction;
    std::string content;
};

class MemorySink : public MessageSink {
public:
    std::uint64_t free_bytes() override { return free; }
    std::unique_ptr<IncomingMessage> begin(std::error_code&) override;

    std::uint64_t free = 1ull << 40;
    bool fail_commit = false;
    std::mutex mutex;
    std::vector<Stored> stored;
    int next_id = 1;
};

class MemoryMessage : public IncomingMessage {
public:
    MemoryMessage(MemorySink& sink, std::string id) : sink_(sink), id_(std::move(id)) {}
    const std::string& id() const override { return id_; }
    asio::awaitable<std::error_code> append(std::string_view c) override {
        content_ += c;
        co_return std::error_code{};
    }
    asio::awaitable<std::error_code> commit(const Transaction& t) override {
        if (sink_.fail_commit) co_return std::make_error_code(std::errc::io_error);
        std::lock_guard lock(sink_.mutex);
        sink_.stored.push_back({t, content_});
        co_return std::error_code{};
    }

private:
    MemorySink& sink_;
    std::string id_;
    std::string content_;
};

std::unique_ptr<IncomingMessage> MemorySink::begin(std::error_code&) {
    return std::make_unique<MemoryMessage>(*this, "ID" + std::to_string(next_id++));
}

// A session on a socket pair: the test thread is the client, with blocking reads.
class Harness {
public:
    explicit Harness(ServerOptions opt, const char* peer = "127.0.0.1")
        : options_(std::move(opt)), server_(io_), client_(io_) {
        asio::local::connect_pair(server_, client_);
        timeval tv{5, 0};
        ::setsockopt(client_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        auto addr = asio::ip::make_address(peer);
        asio::co_spawn(io_, run(addr), asio::detached);
        thread_ = std::thread([this] { io_.run(); });
    }
    ~Harness() {
        boost::system::error_code ignored;
        client_.close(ignored);
        thread_.join();
    }

    void send(std::string_view bytes) { asio::write(client_, asio::buffer(bytes)); }

    // One complete reply (all its lines); "" when the server hung up.
    std::string reply() {
        for (;;) {
            auto end = complete_reply_end();
            if (end) {
                std::string r = buffer_.substr(0, *end);
                buffer_.erase(0, *end);
                return r;
            }
            char chunk[4096];
            // Plain recv so SO_RCVTIMEO bounds the wait (Asio's blocking read polls).
            ssize_t n = ::recv(client_.native_handle(), chunk, sizeof chunk, 0);
            if (n <= 0) return "";
            buffer_.append(chunk, static_cast<std::size_t>(n));
        }
    }
    int code() {
        std::string r = reply();
        return r.size() >= 3 ? std::atoi(r.substr(0, 3).c_str()) : 0;
    }
    bool hung_up() { return reply().empty(); }
    MemorySink sink;

private:
    asio::awaitable<void> run(asio::ip::address addr) {
        SessionCore core(options_, sink, addr);
        co_await serve_session(server_, core, nullptr, options_);
        server_.close();
    }
    std::optional<std::size_t> complete_reply_end() const {
        std::size_t start = 0;
        for (;;) {
            auto eol = buffer_.find("\r\n", start);
            if (eol == std::string::npos) return std::nullopt;
            if (eol - start >= 4 && buffer_[start + 3] == ' ') return eol + 2;
            if (eol - start == 3) return eol + 2;
            start = eol + 2;
        }
    }

    ServerOptions options_;
    asio::io_context io_;
    Socket server_, client_;
    std::thread thread_;
    std::string buffer_;
};

ServerOptions options() {
    ServerOptions o;
    o.hostname = "relay.test";
    o.allow_networks = {*support::parse_network("127.0.0.0/8")};
    o.max_message_size = 1000;
    o.max_recipients = 3;
    o.hard_error_limit = 5;
    return o;
}

// Sends each command after reading the previous reply; expects these codes.
void converse(Harness& h, const std::vector<std::pair<std::string, int>>& steps) {
    EXPECT_EQ(h.code(), 220);
    for (const auto& [command, code] : steps) {
        h.send(command);
        EXPECT_EQ(h.code(), code) << command;
    }
}

TEST(ServerSession, OrdinaryMessageIsStoredWithReceivedHeader) {
    Harness h(options());
    converse(h, {{"EHLO client.test\r\n", 250},
                 {"MAIL FROM:<a@example.com>\r\n", 250},
                 {"RCPT TO:<b@example.net>\r\n", 250},
                 {"DATA\r\n", 354},
                 {"Subject: hi\r\n\r\n..dot\r\nbody\r\n.\r\n", 250},
                 {"QUIT\r\n", 221}});
    ASSERT_EQ(h.sink.stored.size(), 1u);
    const auto& m = h.sink.stored[0];
    EXPECT_EQ(m.transaction.sender, "a@example.com");
    EXPECT_EQ(m.transaction.recipients, std::vector<std::string>{"b@example.net"});
    EXPECT_EQ(m.content.rfind("Received: from client.test (unknown [127.0.0.1])\r\n\tby relay.test", 0), 0u);
    EXPECT_NE(m.content.find("\r\n\r\n.dot\r\nbody\r\n"), std::string::npos);
}

TEST(ServerSession, EhloAdvertisesTheExtensions) {
    Harness h(options());
    h.code();
    h.send("EHLO c\r\n");
    std::string r = h.reply();
    for (const char* ext : {"250-relay.test\r\n", "250-PIPELINING\r\n", "250-SIZE 1000\r\n",
                            "ENHANCEDSTATUSCODES", "8BITMIME", "250 SMTPUTF8\r\n"})
        EXPECT_NE(r.find(ext), std::string::npos) << ext;
    EXPECT_EQ(r.find("STARTTLS"), std::string::npos);  // no certificate configured
    EXPECT_EQ(r.find("CHUNKING"), std::string::npos);
}

TEST(ServerSession, SequenceErrors) {
    auto opt = options();
    opt.hard_error_limit = 20;
    Harness h(opt);
    converse(h, {{"MAIL FROM:<a@b.example>\r\n", 503},
                 {"HELO c\r\n", 250},
                 {"RCPT TO:<a@b.example>\r\n", 503},
                 {"DATA\r\n", 503},
                 {"MAIL FROM:<a@b.example>\r\n", 250},
                 {"MAIL FROM:<a@b.example>\r\n", 503},
                 {"DATA\r\n", 554},
                 {"RSET\r\n", 250},
                 {"MAIL FROM:<a@b.example>\r\n", 250},
                 {"QUIT\r\n", 221}});
}

TEST(ServerSession, SimpleCommands) {
    Harness h(options());
    converse(h, {{"NOOP\r\n", 250}, {"VRFY someone\r\n", 252}, {"VRFY\r\n", 501},
                 {"HELP\r\n", 214}, {"EXPN list\r\n", 502}, {"BDAT 10 LAST\r\n", 502},
                 {"FOO\r\n", 500}, {"QUIT\r\n", 221}});
    EXPECT_TRUE(h.hung_up());
}

TEST(ServerSession, PipelinedTransactionGetsRepliesInOrder) {
    Harness h(options());
    h.code();
    h.send("EHLO c\r\n");
    h.reply();
    h.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\nRCPT TO:<z@y.example>\r\nDATA\r\n");
    for (int expected : {250, 250, 250, 354}) EXPECT_EQ(h.code(), expected);
    h.send("hello\r\n.\r\nQUIT\r\n");
    EXPECT_EQ(h.code(), 250);
    EXPECT_EQ(h.code(), 221);
    ASSERT_EQ(h.sink.stored.size(), 1u);
    EXPECT_EQ(h.sink.stored[0].transaction.recipients.size(), 2u);
}

TEST(ServerSession, TextBeforeThe354IsASynchronisationError) {
    Harness h(options());
    h.code();
    h.send("EHLO c\r\n");
    h.reply();
    h.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n");
    EXPECT_EQ(h.code(), 250);
    EXPECT_EQ(h.code(), 250);
    EXPECT_EQ(h.code(), 554);
    EXPECT_TRUE(h.hung_up());
    EXPECT_TRUE(h.sink.stored.empty());
}

TEST(ServerSession, PipeliningWithoutEhloIsASynchronisationError) {
    Harness h(options());
    h.code();
    h.send("HELO c\r\n");
    h.reply();
    h.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\n");
    EXPECT_EQ(h.code(), 554);
    EXPECT_TRUE(h.hung_up());
}

TEST(ServerSession, SmuggledMessageStaysInTheBody) {
    Harness h(options());
    converse(h, {{"EHLO c\r\n", 250}, {"MAIL FROM:<a@b.example>\r\n", 250},
                 {"RCPT TO:<x@y.example>\r\n", 250}, {"DATA\r\n", 354}});
    h.send("one\n.\nMAIL FROM:<evil@x.example>\nRCPT TO:<v@y.example>\nDATA\nsmuggled\n.\nreal end\r\n.\r\n");
    EXPECT_EQ(h.code(), 250);
    h.send("QUIT\r\n");
    EXPECT_EQ(h.code(), 221);
    ASSERT_EQ(h.sink.stored.size(), 1u);
    const std::string& c = h.sink.stored[0].content;
    EXPECT_NE(c.find("MAIL FROM:<evil@x.example>\r\n"), std::string::npos);
    for (std::size_t i = 0; i < c.size(); ++i) {
        if (c[i] == '\r') {
            EXPECT_EQ(c[i + 1], '\n') << i;
        }
        if (c[i] == '\n') {
            EXPECT_EQ(c[i - 1], '\r') << i;
        }
    }
}

TEST(ServerSession, LimitsGiveTheirCodes) {
    Harness h(options());
    converse(h, {{"EHLO c\r\n", 250},
                 {"MAIL FROM:<a@b.example> SIZE=2000\r\n", 552},
                 {"MAIL FROM:<a@b.example>\r\n", 250},
                 {"RCPT TO:<1@y.example>\r\n", 250},
                 {"RCPT TO:<2@y.example>\r\n", 250},
                 {"RCPT TO:<3@y.example>\r\n", 250},
                 {"RCPT TO:<4@y.example>\r\n", 452},
                 {"DATA\r\n", 354},
                 {std::string(1500, 'x') + "\r\n.\r\n", 552},
                 {"RSET\r\n", 250},
                 {"QUIT\r\n", 221}});
    EXPECT_TRUE(h.sink.stored.empty());
}

TEST(ServerSession, TooLongCommandThenTheSessionContinues) {
    Harness h(options());
    converse(h, {{std::string(3000, 'N') + "\r\n", 500}, {"NOOP\r\n", 250}});
}

TEST(ServerSession, ErrorLimitEndsTheSession) {
    Harness h(options());
    h.code();
    for (int i = 0; i < 5; ++i) {
        h.send("BOGUS\r\n");
        EXPECT_EQ(h.code(), 500);
    }
    EXPECT_EQ(h.code(), 421);  // at the limit: 421 without waiting for another command
    EXPECT_TRUE(h.hung_up());
}

TEST(ServerSession, RecipientFloodEndsAtTheErrorLimit) {
    // Checklist 41 (CVE-2020-28017 shape): RCPTs past max_recipients are errors, so a
    // flood ends the session instead of growing anything.
    Harness h(options());
    converse(h, {{"EHLO c\r\n", 250}, {"MAIL FROM:<a@b.example>\r\n", 250}});
    for (int i = 0; i < 3; ++i) {
        h.send("RCPT TO:<r" + std::to_string(i) + "@y.example>\r\n");
        EXPECT_EQ(h.code(), 250);
    }
    for (int i = 0; i < 5; ++i) {  // hard_error_limit is 5 in these options
        h.send("RCPT TO:<x" + std::to_string(i) + "@y.example>\r\n");
        EXPECT_EQ(h.code(), 452);
    }
    EXPECT_EQ(h.code(), 421);
    EXPECT_TRUE(h.hung_up());
    EXPECT_TRUE(h.sink.stored.empty());
}

TEST(ServerSession, HttpRequestIsHungUpOn) {
    Harness h(options());
    h.code();
    h.send("GET / HTTP/1.1\r\n");
    EXPECT_EQ(h.code(), 221);
    EXPECT_TRUE(h.hung_up());
}

TEST(ServerSession, NulAndBareCrInCommandsAreRejected) {
    Harness h(options());
    converse(h, {{std::string("MAIL FROM:<a\0@b.example>\r\n", 26), 500},
                 {"HELO c\r\n", 250},
                 {"MAIL FROM:<a@b\rX-Evil: 1>\r\n", 500}});
}

TEST(ServerSession, ClientsOutsideAllowNetworksCannotRelay) {
    Harness h(options(), "192.0.2.1");
    converse(h, {{"EHLO c\r\n", 250}, {"MAIL FROM:<a@b.example>\r\n", 250},
                 {"RCPT TO:<x@y.example>\r\n", 554}});
}

TEST(ServerSession, IdleClientTimesOut) {
    auto opt = options();
    opt.command_timeout = std::chrono::milliseconds(200);
    Harness h(opt);
    h.code();
    EXPECT_EQ(h.code(), 421);  // no command sent: the deadline passes
    EXPECT_TRUE(h.hung_up());
}

TEST(ServerSession, DiskNearlyFullRefusesMail) {
    Harness h(options());
    h.sink.free = 100;
    converse(h, {{"EHLO c\r\n", 250}, {"MAIL FROM:<a@b.example>\r\n", 452}});
}

TEST(ServerSession, CommitFailureIs451) {
    Harness h(options());
    h.sink.fail_commit = true;
    converse(h, {{"EHLO c\r\n", 250}, {"MAIL FROM:<a@b.example>\r\n", 250},
                 {"RCPT TO:<x@y.example>\r\n", 250}, {"DATA\r\n", 354}, {"hi\r\n.\r\n", 451},
                 {"QUIT\r\n", 221}});
}

}  // namespace
}  // namespace tlsrelay::smtp

// The SMTP server session fed raw client bytes: the real command loop of
// smtp/server_io.hpp (line reader, session core, DATA reader) over an in-memory
// stream that delivers the input in fuzz-chosen pieces. STARTTLS is taken as a
// handshake that succeeded: the buffer is dropped and the loop runs again on the
// rest of the input, so the post-TLS state is fuzzed too (OpenSSL's own record layer
// is not our code). Invariants: replies are well-formed lines without control bytes,
// committed mail respects the recipient and size limits and every stored address
// parses again to itself.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <variant>

#include "harness.hpp"
#include "smtp/address.hpp"
#include "smtp/server_io.hpp"

namespace {

using tlsrelay::fuzz::require;
namespace asio = boost::asio;
using namespace tlsrelay;

constexpr std::uint64_t max_size = 2048;
constexpr std::uint32_t max_rcpt = 4;

// A socket stand-in: reads hand out the next fuzz chunk (then EOF), writes collect.
class MemoryStream {
public:
    using executor_type = asio::any_io_executor;
    MemoryStream(executor_type ex, fuzz::Chunks& input) : ex_(std::move(ex)), input_(input) {}
    executor_type get_executor() { return ex_; }

    template <class Buffers, class Token>
    auto async_read_some(const Buffers& buffers, Token&& token) {
        return asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
            [this](auto handler, const Buffers& b) {
                asio::mutable_buffer buf = *asio::buffer_sequence_begin(b);
                std::string_view piece = input_.next(buf.size());
                std::memcpy(buf.data(), piece.data(), piece.size());
                boost::system::error_code ec;
                if (piece.empty()) ec = asio::error::eof;
                complete(std::move(handler), ec, piece.size());
            },
            token, buffers);
    }

    template <class Buffers, class Token>
    auto async_write_some(const Buffers& buffers, Token&& token) {
        return asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
            [this](auto handler, const Buffers& b) {
                std::size_t n = 0;
                for (auto it = asio::buffer_sequence_begin(b); it != asio::buffer_sequence_end(b); ++it) {
                    written.append(static_cast<const char*>(it->data()), it->size());
                    n += it->size();
                }
                complete(std::move(handler), {}, n);
            },
            token, buffers);
    }

    std::string written;

private:
    template <class Handler>
    void complete(Handler handler, boost::system::error_code ec, std::size_t n) {
        auto ex = asio::get_associated_executor(handler, ex_);
        asio::post(ex, [h = std::move(handler), ec, n]() mutable { h(ec, n); });
    }

    executor_type ex_;
    fuzz::Chunks& input_;
};

struct Stored {
    smtp::Transaction transaction;
    std::string content;
};

class MemorySink : public smtp::MessageSink {
public:
    std::uint64_t free_bytes() override { return 1ull << 40; }
    std::unique_ptr<smtp::IncomingMessage> begin(std::error_code&) override;
    std::vector<Stored> stored;
};

class MemoryMessage : public smtp::IncomingMessage {
public:
    explicit MemoryMessage(MemorySink& sink) : sink_(sink) {}
    const std::string& id() const override { return id_; }
    asio::awaitable<std::error_code> append(std::string_view c) override {
        content_ += c;
        co_return std::error_code{};
    }
    asio::awaitable<std::error_code> commit(const smtp::Transaction& t) override {
        sink_.stored.push_back({t, content_});
        co_return std::error_code{};
    }

private:
    MemorySink& sink_;
    std::string id_ = "4XYZ";
    std::string content_;
};

std::unique_ptr<smtp::IncomingMessage> MemorySink::begin(std::error_code&) {
    return std::make_unique<MemoryMessage>(*this);
}

// serve_session without the handshake (see the file comment).
asio::awaitable<void> serve(MemoryStream& stream, smtp::SessionCore& core,
                            const smtp::ServerOptions& opt) {
    smtp::detail::Io io(stream.get_executor());
    io.out = core.greeting();
    if (co_await smtp::detail::command_loop(stream, io, core, opt) != smtp::detail::LoopEnd::start_tls)
        co_return;
    io.discard_input();
    core.on_tls_started();
    co_await smtp::detail::command_loop(stream, io, core, opt);
}

void check_replies(std::string_view out) {
    require(out.size() >= 5 && out.substr(out.size() - 2) == "\r\n", "output ends with CRLF");
    while (!out.empty()) {
        std::size_t eol = out.find("\r\n");
        require(eol != out.npos, "every reply line ends with CRLF");
        std::string_view line = out.substr(0, eol);
        require(line.size() >= 3 && line[0] >= '2' && line[0] <= '5' && std::isdigit(line[1]) &&
                    std::isdigit(line[2]),
                "reply line starts with a code");
        require(line.size() == 3 || line[3] == ' ' || line[3] == '-', "code then space or hyphen");
        for (unsigned char c : line) require(c >= 0x20 && c != 0x7f, "no control bytes in replies");
        out.remove_prefix(eol + 2);
    }
}

void check_stored(const Stored& s) {
    const auto& t = s.transaction;
    require(!t.recipients.empty() && t.recipients.size() <= max_rcpt, "recipient count in bounds");
    for (const auto& r : t.recipients) {
        auto parsed = smtp::parse_mailbox(r, true);
        require(std::holds_alternative<smtp::Address>(parsed) &&
                    std::get<smtp::Address>(parsed).text == r,
                "a stored recipient parses to itself");
    }
    require(s.content.rfind("Received: ", 0) == 0, "content starts with our Received header");
    require(s.content.size() <= max_size + 1024, "content within the size limit");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Chunks input(data, size);
    smtp::ServerOptions opt;
    opt.hostname = "relay.example";
    opt.max_message_size = max_size;
    opt.max_recipients = max_rcpt;
    opt.tls_available = true;
    opt.allow_networks = {*support::parse_network("127.0.0.0/8")};
    // An odd seed byte connects from outside allow_networks (relay refused).
    auto peer = asio::ip::make_address(size && (data[0] & 1) ? "192.0.2.7" : "127.0.0.1");
    static asio::io_context ctx;  // reused: its epoll, eventfd and timerfd cost more than a run
    ctx.restart();
    MemoryStream stream(ctx.get_executor(), input);
    MemorySink sink;
    smtp::SessionCore core(opt, sink, peer);
    asio::co_spawn(ctx, serve(stream, core, opt), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);  // no exception may leave a session
    });
    ctx.run();
    check_replies(stream.written);
    for (const auto& s : sink.stored) check_stored(s);
    return 0;
}

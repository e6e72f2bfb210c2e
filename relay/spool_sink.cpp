#include "relay/spool_sink.hpp"

#include "support/on_pool.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <exception>
#include <memory>

namespace tlsrelay::relay {
namespace {

namespace asio = boost::asio;

// Every file operation of a message runs on the disk pool: creating a file or
// fsyncing can wait for a journal commit, which must never stall the network thread.
// Content is buffered and written in large pieces.
class SpoolMessage : public smtp::IncomingMessage {
public:
    static constexpr std::size_t flush_at = 1 << 20;

    SpoolMessage(queue::Spool& spool, asio::thread_pool& pool, const SpoolSink::Committed& done)
        : spool_(spool), pool_(pool), on_committed_(done), id_(queue::new_queue_id()) {}

    const std::string& id() const override { return id_; }

    asio::awaitable<std::error_code> append(std::string_view content) override {
        buffer_ += content;
        size_ += content.size();
        if (buffer_.size() < flush_at) co_return std::error_code{};
        flushed_ = true;
        co_return co_await support::on_pool(pool_, [this] { return write_buffer(false); });
    }

    // The envelope gets its arrival and size here, as the draft would give them, so that
    // it is what the spool holds and can be handed on without reading it back.
    // The pool thread that did the blocking part does not wait for the shared
    // directory fsync: the thread running it resumes this coroutine (on its own
    // executor) when it is done.
    asio::awaitable<std::error_code> commit(const smtp::Transaction& t) override {
        queue::Envelope env = envelope(t);
        std::error_code ec = co_await asio::async_initiate<decltype(asio::use_awaitable),
                                                           void(std::exception_ptr, std::error_code)>(
            [this, &env](auto handler) {
                auto resume = std::make_shared<decltype(handler)>(std::move(handler));
                asio::post(pool_, [this, &env, resume] { commit_on_pool(env, resume); });
            },
            asio::use_awaitable);
        if (ec || !on_committed_) co_return ec;
        std::optional<std::string> content;
        if (!flushed_) content = std::move(buffer_);
        on_committed_(env, std::move(content));
        co_return ec;
    }

private:
    template <class Handler>
    void commit_on_pool(const queue::Envelope& env, std::shared_ptr<Handler> resume) {
        auto finish = [resume](std::exception_ptr error, std::error_code ec) {
            auto home = asio::get_associated_executor(*resume);
            asio::post(home, [resume, error, ec] { (*resume)(error, ec); });
        };
        try {
            if (std::error_code ec = write_buffer(!flushed_)) return finish(nullptr, ec);
            draft_->commit(env, [finish](std::error_code ec) { finish(nullptr, ec); });
        } catch (...) {
            finish(std::current_exception(), {});
        }
    }

    // keep: the buffer is the whole content, kept for on_committed_.
    std::error_code write_buffer(bool keep) {  // on the disk pool
        std::error_code ec;
        if (!draft_) draft_ = spool_.begin(id_, ec);
        if (!draft_) return ec ? ec : std::make_error_code(std::errc::io_error);
        ec = draft_->append(buffer_);
        if (!keep) buffer_.clear();
        return ec;
    }

    queue::Envelope envelope(const smtp::Transaction& t) const {
        queue::Envelope env;
        env.id = id_;
        env.sender = t.sender;
        for (const auto& r : t.recipients) {
            queue::Recipient rcpt;
            rcpt.address = r;
            env.recipients.push_back(std::move(rcpt));
        }
        env.client = t.client;
        env.helo = t.helo;
        env.smtputf8 = t.smtputf8;
        env.eight_bit = t.eight_bit;
        env.size = size_;
        env.arrival_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch()).count();
        return env;
    }

    queue::Spool& spool_;
    asio::thread_pool& pool_;
    const SpoolSink::Committed& on_committed_;
    std::string id_;
    std::string buffer_;
    std::uint64_t size_ = 0;  // content bytes so far
    bool flushed_ = false;    // part of the content was written before the commit
    std::unique_ptr<queue::Draft> draft_;  // created and used on the pool only
};

}  // namespace

std::unique_ptr<smtp::IncomingMessage> SpoolSink::begin(std::error_code&) {
    return std::make_unique<SpoolMessage>(spool_, pool_, on_committed_);
}

}  // namespace tlsrelay::relay

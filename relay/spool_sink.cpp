#include "relay/spool_sink.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

namespace tlsrelay::relay {
namespace {

namespace asio = boost::asio;

class SpoolMessage : public smtp::IncomingMessage {
public:
    SpoolMessage(std::unique_ptr<queue::Draft> draft, asio::thread_pool& pool,
                 const SpoolSink::Committed& on_committed)
        : draft_(std::move(draft)), pool_(pool), on_committed_(on_committed) {}

    const std::string& id() const override { return draft_->id(); }

    std::error_code append(std::string_view content) override {
        size_ += content.size();
        return draft_->append(content);
    }

    asio::awaitable<std::error_code> commit(const smtp::Transaction& t) override {
        queue::Envelope env;
        env.id = draft_->id();
        env.arrival_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
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
        auto home = co_await asio::this_coro::executor;
        co_await asio::post(pool_, asio::use_awaitable);  // blocking fsyncs happen here
        std::error_code ec = draft_->commit(env);
        co_await asio::post(home, asio::use_awaitable);
        if (!ec && on_committed_) on_committed_(env);
        co_return ec;
    }

private:
    std::unique_ptr<queue::Draft> draft_;
    asio::thread_pool& pool_;
    const SpoolSink::Committed& on_committed_;
    std::uint64_t size_ = 0;
};

}  // namespace

std::unique_ptr<smtp::IncomingMessage> SpoolSink::begin(std::error_code& ec) {
    auto draft = spool_.begin(ec);
    if (!draft) return nullptr;
    return std::make_unique<SpoolMessage>(std::move(draft), pool_, on_committed_);
}

}  // namespace tlsrelay::relay

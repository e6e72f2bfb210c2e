// One c-ares channel driven by an Asio executor, no threads and no blocking: c-ares
// says which sockets to watch (socket-state callback), Asio waits on them without
// owning them (stream_descriptor, released before c-ares closes the fd), and a timer
// follows ares_timeout() for retransmits. A query is an Asio async operation that
// completes with the raw reply; it supports per-operation cancellation.
//
// Threading: like any Asio I/O object, use it from one thread (or strand) and
// destroy it before its execution context.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dns/resolver.hpp"

struct ares_channeldata;

namespace tlsrelay::dns {

// ares_status is ARES_SUCCESS with the reply bytes, or the c-ares error (ARES_ETIMEOUT,
// ARES_ECONNREFUSED, ARES_EDESTRUCTION, ARES_ECANCELLED, ...) with no bytes.
struct RawReply {
    int ares_status = 0;
    std::vector<std::uint8_t> bytes;
};

namespace detail {

// A query c-ares holds between ares_send and its callback. complete() runs at most
// once: from the c-ares callback or from a cancellation, whichever comes first.
class PendingQuery {
  public:
    virtual ~PendingQuery() = default;
    virtual void complete(RawReply reply, bool from_cancellation_slot) = 0;
};

template <typename Handler>
class PendingQueryImpl final : public PendingQuery,
                               public std::enable_shared_from_this<PendingQueryImpl<Handler>> {
  public:
    PendingQueryImpl(Handler handler, const boost::asio::any_io_executor& ex)
        : handler_(std::move(handler)),
          work_(boost::asio::prefer(boost::asio::get_associated_executor(handler_, ex),
                                    boost::asio::execution::outstanding_work.tracked)),
          slot_(boost::asio::get_associated_cancellation_slot(handler_)) {}

    // Separate from the constructor: the slot handler needs a weak_ptr to us.
    void connect_cancellation(int cancelled_status) {
        if (!slot_.is_connected()) return;
        slot_.assign([weak = this->weak_from_this(), cancelled_status](auto) {
            if (auto self = weak.lock()) self->complete({cancelled_status, {}}, true);
        });
    }

    void complete(RawReply reply, bool from_cancellation_slot) override {
        if (done_) return;
        done_ = true;
        if (!from_cancellation_slot)  // never clear a slot from inside its own handler
            slot_.clear();
        // Always posted: c-ares may call back inside ares_send (our initiation) or
        // inside ares_destroy, and a coroutine must not resume in either.
        boost::asio::post(work_,
                          [handler = std::move(handler_), reply = std::move(reply),
                           work = work_]() mutable { std::move(handler)(std::move(reply)); });
    }

  private:
    Handler handler_;
    boost::asio::any_io_executor work_;  // keeps run() from returning while we wait
    boost::asio::cancellation_slot slot_;
    bool done_ = false;
};

}  // namespace detail

class AresChannel : public std::enable_shared_from_this<AresChannel> {
  public:
    // nullptr and `error` set when c-ares refuses the options or server list.
    static std::shared_ptr<AresChannel> create(const boost::asio::any_io_executor& ex,
                                               const ResolverOptions& options, std::string& error);
    AresChannel(const boost::asio::any_io_executor& ex, bool dnssec);
    ~AresChannel();
    AresChannel(const AresChannel&) = delete;
    AresChannel& operator=(const AresChannel&) = delete;

    bool dnssec() const { return dnssec_; }

    // Sends one IN query for `name` (already validated) and completes with the reply.
    template <typename Token>
    auto async_query(std::string name, int rr_type, Token&& token) {
        return boost::asio::async_initiate<Token, void(RawReply)>(
            [self = shared_from_this()](auto handler, std::string name, int rr_type) {
                using Impl = detail::PendingQueryImpl<decltype(handler)>;
                auto query = std::make_shared<Impl>(std::move(handler), self->ex_);
                query->connect_cancellation(cancelled_status());
                boost::asio::post(self->ex_, [self, name = std::move(name), rr_type,
                                              query = std::move(query)]() mutable {
                    self->send(name, rr_type, std::move(query));
                });
            },
            token, std::move(name), rr_type);
    }

    // ares_destroy: every outstanding query completes (posted) with ARES_EDESTRUCTION;
    // later queries complete with it at once.
    void shutdown();

  private:
    struct Watch;
    static int cancelled_status();
    static void on_socket_state(void* data, int fd, int readable, int writable);
    static void on_reply(void* arg, int status, int timeouts, unsigned char* abuf, int alen);

    void send(const std::string& name, int rr_type, std::shared_ptr<detail::PendingQuery> query);
    void watch(int fd, bool readable, bool writable);
    void unwatch(int fd);
    void arm(int fd, const std::shared_ptr<Watch>& w);
    void on_ready(int fd, bool readable, bool writable);
    void update_timer();

    boost::asio::any_io_executor ex_;
    bool dnssec_;
    ares_channeldata* channel_ = nullptr;
    boost::asio::steady_timer timer_;
    std::map<int, std::shared_ptr<Watch>> watches_;
};

}  // namespace tlsrelay::dns

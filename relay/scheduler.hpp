// The queue manager: keeps the due time of every queued message, starts deliveries
// within the concurrency limits, records their outcome durably, retries deferred
// recipients with backoff (retry_min doubling to retry_max), bounces at max_lifetime,
// and removes a message once every recipient is done. Destinations that keep failing
// are declared dead for retry_min, as Postfix's qmgr does (relay/throttle.hpp); their
// mail is then deferred from its envelope, its content unread. `queue` commands act at once
// through the control socket (scheduler_control.cpp); a flush file within a second.
#pragma once

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "queue/queue.hpp"
#include "relay/control_protocol.hpp"
#include "relay/delivery.hpp"
#include "relay/throttle.hpp"
#include "support/pool_batch.hpp"

namespace tlsrelay::relay {

class Scheduler {
public:
    Scheduler(boost::asio::io_context& io, queue::Spool& spool, boost::asio::thread_pool& disk,
              DeliveryContext& ctx);

    void start();                            // loads the spool and begins
    // A message was just committed. content: what the spool holds, when the caller
    // still had it in memory; its first attempt then skips reading the message back
    // (kept up to max_fresh_bytes in all, until that attempt starts).
    void add(const queue::Envelope& env, std::optional<std::string> content = std::nullopt);
    // No new deliveries; running attempts are cancelled and abandoned without recording
    // anything, so their recipients stay as the spool had them (tried again after a
    // restart: a duplicate at worst, never a loss or a false "sent").
    void stop();
    bool idle() const { return active_.empty(); }
    // For metrics: messages in the queue (held ones too) and the arrival of the oldest.
    std::size_t queued() const { return arrival_.size(); }
    std::optional<std::int64_t> oldest_arrival_us() const;

    // Queue control (`tlsrelay queue` through the control socket), effective at once;
    // an error is the spool's (no_such_file_or_directory: no such message). An attempt
    // in progress runs to its end: after hold it is not rescheduled, after delete its
    // outcome is neither recorded nor bounced, after flush the next attempt follows it.
    boost::asio::awaitable<std::error_code> flush(std::string id);  // "": every message
    boost::asio::awaitable<std::error_code> hold(std::string id);
    boost::asio::awaitable<std::error_code> release(std::string id);
    boost::asio::awaitable<std::error_code> remove(std::string id);
    std::vector<ControlWaiting> waiting() const;  // why each known message waits

private:
    boost::asio::awaitable<void> loop();
    boost::asio::awaitable<void> deliver(std::string id);
    boost::asio::awaitable<bool> defer_unread(const std::string& id);
    bool expired(const queue::Envelope& env) const;  // past max_lifetime: bounce what is deferred
    void retry_if_flushed(const std::string& id);
    boost::asio::awaitable<void> finish(const queue::Envelope& env, const std::string& content,
                                        const std::vector<std::size_t>& newly_bounced);
    std::optional<queue::Envelope> write_bounce(const queue::Envelope& env, const std::string& content,
                                                const std::vector<std::size_t>& bounced,
                                                const std::string& hostname);
    void reload();
    void forget(const std::string& id);
    bool flush_file_due();
    void schedule(const queue::Envelope& env);
    void unschedule(const std::string& id);
    void unblock(const std::string& id);  // out of blocked_ (held or deleted meanwhile)
    void launch(const std::string& id);
    void release_slot(const std::string& id);  // its attempt is over: the next one for its destination
    std::vector<std::string> destinations(const queue::Envelope& env) const;
    std::optional<queue::Spool::Loaded> take_fresh(const std::string& id);
    void drop_fresh(const std::string& id);

    boost::asio::io_context& io_;
    queue::Spool& spool_;
    boost::asio::thread_pool& disk_;
    // Delivery outcomes (state updates, retirements) go to the disk a batch at a time.
    support::PoolBatch records_;
    DeliveryContext& ctx_;
    boost::asio::steady_timer wake_;
    // Due times in order, so each wake-up only looks at what is due (not the queue).
    std::set<std::pair<std::int64_t, std::string>> by_time_;
    std::map<std::string, std::int64_t> due_;         // id -> unix seconds
    std::map<std::string, std::string> dest_of_;      // id -> destination (for limits)
    std::map<std::string, std::vector<std::string>> also_to_;  // id -> its other destinations, if any
    std::set<std::string> active_;
    std::map<std::string, std::unique_ptr<boost::asio::cancellation_signal>> cancel_;  // running attempts
    std::map<std::string, unsigned> per_destination_;
    // active id → destinations begun in the throttle at launch; the first is the one its
    // slot is counted under
    std::map<std::string, std::vector<std::string>> launched_to_;
    Throttle throttle_;  // per dest_of_, as Postfix's in-core queue: lives while it has work
    std::map<std::string, std::deque<std::string>> blocked_;  // due, waiting for a slot
    std::set<std::string> flushed_while_active_;  // retry at once when the attempt ends
    std::map<std::string, std::int64_t> arrival_;  // id -> arrival_us of every queued message
    std::set<std::string> forced_;   // flushed: the next attempt ignores next_attempt
    std::set<std::string> held_;     // on hold: never scheduled until released
    std::set<std::string> deleted_;  // deleted during their attempt: record nothing
    std::map<std::string, queue::Spool::Loaded> fresh_;  // committed, content in memory
    std::size_t fresh_bytes_ = 0;
    bool stopping_ = false;
    std::chrono::steady_clock::time_point flush_checked_{};
    static constexpr unsigned max_active = 100;
    static constexpr std::size_t max_fresh_bytes = 32 << 20;
};

}  // namespace tlsrelay::relay

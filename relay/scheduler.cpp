#include "relay/scheduler.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <unordered_set>

#include "relay/bounce.hpp"
#include "relay/nexthop.hpp"
#include "support/log.hpp"
#include "support/on_pool.hpp"

namespace tlsrelay::relay {

namespace asio = boost::asio;

namespace {

std::int64_t now_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

Scheduler::Scheduler(asio::io_context& io, queue::Spool& spool, asio::thread_pool& disk,
                     DeliveryContext& ctx)
    : io_(io), spool_(spool), disk_(disk), records_(io, disk), ctx_(ctx), wake_(io) {
    ctx_.throttle = &throttle_;
}

void Scheduler::start() {
    reload();
    asio::co_spawn(io_, loop(), asio::detached);
}

void Scheduler::stop() {
    stopping_ = true;
    wake_.cancel();
    for (auto& [id, signal] : cancel_) signal->emit(asio::cancellation_type::terminal);
}

// The next-hop domains of the undone recipients, each once, in recipient order (one
// route lookup per recipient domain: a message may have a thousand recipients).
std::vector<std::string> Scheduler::destinations(const queue::Envelope& env) const {
    std::vector<std::string> out;
    std::unordered_set<std::string> domains, dests;
    for (const auto& r : env.recipients) {
        if (r.done()) continue;
        std::string domain = domain_of(r.address);
        if (!domains.insert(domain).second) continue;
        auto hop = nexthop_for(ctx_.config.delivery, domain);
        std::string dest = hop ? hop->domain : "";
        if (dests.insert(dest).second) out.push_back(std::move(dest));
    }
    return out;
}

void Scheduler::unschedule(const std::string& id) {
    auto it = due_.find(id);
    if (it == due_.end()) return;
    by_time_.erase({it->second, id});
    due_.erase(it);
}

void Scheduler::schedule(const queue::Envelope& env) {
    unschedule(env.id);
    arrival_.emplace(env.id, env.arrival_us ? env.arrival_us : now_s() * 1'000'000);  // 0: just committed
    if (env.held || held_.count(env.id)) {
        held_.insert(env.id);
        return;
    }
    std::int64_t next = INT64_MAX;
    for (const auto& r : env.recipients)
        if (!r.done()) next = std::min(next, r.next_attempt);
    if (next == INT64_MAX) return;
    due_[env.id] = next;
    by_time_.insert({next, env.id});
    std::vector<std::string> dests = destinations(env);
    dest_of_[env.id] = dests.empty() ? "" : dests.front();
    if (dests.size() > 1)
        also_to_[env.id].assign(dests.begin() + 1, dests.end());
    else
        also_to_.erase(env.id);
    wake_.cancel();
}

void Scheduler::add(const queue::Envelope& env, std::optional<std::string> content) {
    schedule(env);
    if (!content || held_.count(env.id) || !due_.count(env.id)) return;
    if (fresh_bytes_ + content->size() > max_fresh_bytes || fresh_.count(env.id)) return;
    fresh_bytes_ += content->size();
    fresh_.emplace(env.id, queue::Spool::Loaded{env, std::move(content)});
}

std::optional<queue::Spool::Loaded> Scheduler::take_fresh(const std::string& id) {
    auto it = fresh_.find(id);
    if (it == fresh_.end()) return std::nullopt;
    std::optional<queue::Spool::Loaded> out = std::move(it->second);
    fresh_bytes_ -= out->content->size();
    fresh_.erase(it);
    return out;
}

void Scheduler::drop_fresh(const std::string& id) { take_fresh(id); }

std::optional<std::int64_t> Scheduler::oldest_arrival_us() const {
    std::optional<std::int64_t> oldest;
    for (const auto& [id, us] : arrival_)
        if (!oldest || us < *oldest) oldest = us;
    return oldest;
}

// The message has left the queue: nothing of it stays behind.
void Scheduler::forget(const std::string& id) {
    arrival_.erase(id);
    dest_of_.erase(id);
    also_to_.erase(id);
}

void Scheduler::reload() {
    arrival_.clear();
    dest_of_.clear();
    also_to_.clear();
    due_.clear();
    by_time_.clear();
    blocked_.clear();
    held_.clear();
    fresh_.clear();  // the spool may have changed under them (a CLI without the daemon)
    fresh_bytes_ = 0;
    for (const auto& env : spool_.list()) schedule(env);
}

void Scheduler::launch(const std::string& id) {
    active_.insert(id);
    // The message's other destinations are in flight too, as their recipients are in
    // Postfix's queues for them: their failures count and can make them dead.
    auto& begun = launched_to_[id] = {dest_of_[id]};
    if (auto also = also_to_.find(id); also != also_to_.end())
        begun.insert(begun.end(), also->second.begin(), also->second.end());
    ++per_destination_[begun.front()];
    const auto& q = ctx_.config.queue;  // read at each launch: a reload may change them
    throttle_.set_limits({5, static_cast<int>(ctx_.config.delivery.max_connections_per_domain), 1,
                          std::chrono::duration_cast<Throttle::Clock::duration>(q.retry_min)});
    for (const auto& dest : begun) throttle_.begin(dest);
    asio::co_spawn(io_, deliver(id), [id](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            support::log_error("qmgr", id + ": delivery aborted: " + x.what());
        }
    });
}

// The loop runs after every commit and delivery too; the flush file (a request from a
// `queue flush` without a daemon to talk to) only needs looking at about once a second.
bool Scheduler::flush_file_due() {
    auto now = std::chrono::steady_clock::now();
    if (now - flush_checked_ < std::chrono::milliseconds(500)) return false;
    flush_checked_ = now;
    return true;
}

asio::awaitable<void> Scheduler::loop() {
    while (!stopping_) {
        if (flush_file_due() && spool_.take_flush_request()) {
            reload();
            throttle_.revive_all();
            std::set<std::pair<std::int64_t, std::string>> now_due;
            for (auto& [id, when] : due_) now_due.insert({when = 0, id});
            by_time_ = std::move(now_due);
            flushed_while_active_.insert(active_.begin(), active_.end());
            forced_.insert(active_.begin(), active_.end());
        }
        std::int64_t now = now_s();
        while (!by_time_.empty() && by_time_.begin()->first <= now && active_.size() < max_active) {
            std::string id = by_time_.begin()->second;
            unschedule(id);
            if (active_.count(id)) continue;  // its delivery reschedules it when done
            const std::string& dest = dest_of_[id];
            if (per_destination_[dest] >= ctx_.config.delivery.max_connections_per_domain)
                blocked_[dest].push_back(id);
            else
                launch(id);
        }
        // Due times, and the flush file within a second of its last look.
        wake_.expires_at(flush_checked_ + std::chrono::seconds(1));
        co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

bool Scheduler::expired(const queue::Envelope& env) const {
    auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
    return std::chrono::microseconds(now_us - env.arrival_us) > ctx_.config.queue.max_lifetime;
}

// `queue flush` during the attempt: the next one follows at once.
void Scheduler::retry_if_flushed(const std::string& id) {
    if (flushed_while_active_.erase(id) && due_.count(id)) {
        unschedule(id);
        due_[id] = 0;
        by_time_.insert({0, id});
    }
}

// A message whose destination is dead is deferred from its envelope alone, as Postfix's
// queue manager defers mail for a dead destination without reading it: a long queue for
// a partner that is down is not read in full at every retry. False when the attempt
// needs the message (a live destination, a hold, expiry, which bounces it), or when the
// message is gone: deliver() then loads it as usual.
asio::awaitable<bool> Scheduler::defer_unread(const std::string& id) {
    if (!throttle_.suspended(dest_of_[id], Throttle::Clock::now())) co_return false;
    auto env = co_await support::on_pool(disk_, [&] { return spool_.envelope(id); });
    if (!env || env->held || forced_.count(id) || expired(*env)) co_return false;
    // Decided here, with nothing awaited in between: the throttle is as it was checked.
    if (!defer_if_suspended(ctx_, *env)) co_return false;
    if (deleted_.count(id))
        support::log_info("qmgr", id + ": deleted during delivery; outcome not recorded");
    else
        co_await finish(*env, std::string(), {});
    retry_if_flushed(id);
    co_return true;
}

asio::awaitable<void> Scheduler::deliver(std::string id) {
    auto loaded = take_fresh(id);  // just committed: no need to read it back
    bool deferred_unread = false;
    if (!loaded) deferred_unread = co_await defer_unread(id);
    if (!loaded && !deferred_unread) loaded = co_await support::on_pool(disk_, [&] { return spool_.load(id); });
    if (loaded && loaded->content) {
        queue::Envelope env = std::move(loaded->envelope);
        if (forced_.erase(id))  // `queue flush`: every undone recipient is due now
            for (auto& r : env.recipients)
                if (!r.done()) r.next_attempt = 0;
        std::vector<bool> was_done;
        for (const auto& r : env.recipients) was_done.push_back(r.done());
        // The attempt runs as a child with a cancellation slot of its own, so that stop()
        // can abandon it mid-conversation (a server holding the final dot would otherwise
        // keep SIGTERM waiting for the data timeout) while this coroutine is not cancelled.
        auto& signal = cancel_[id];
        signal = std::make_unique<asio::cancellation_signal>();
        bool abandoned = false;
        try {
            auto ex = co_await asio::this_coro::executor;
            auto attempt = attempt_delivery(ctx_, env, *loaded->content);
            co_await asio::co_spawn(ex, std::move(attempt),
                                    asio::bind_cancellation_slot(signal->slot(), asio::use_awaitable));
        } catch (const std::exception& e) {
            abandoned = stopping_;
            if (!abandoned) support::log_error("qmgr", id + ": delivery failed: " + e.what());
        }
        cancel_.erase(id);
        if (abandoned) {  // nothing recorded: the spool keeps the state from before
            support::log_info("qmgr", id + ": delivery abandoned on shutdown, recipients stay queued");
            active_.erase(id);
            release_slot(id);  // launches nothing while stopping
            co_return;
        }
        bool too_old = expired(env);
        std::vector<std::size_t> bounced;
        for (std::size_t i = 0; i < env.recipients.size(); ++i) {
            auto& r = env.recipients[i];
            if (too_old && r.state == queue::RecipientState::deferred)
                r.state = queue::RecipientState::bounced;
            if (!was_done[i] && r.state == queue::RecipientState::bounced) bounced.push_back(i);
        }
        if (too_old && !bounced.empty())
            support::log_info("qmgr", id + ": from=<" + env.sender + ">, status=expired, returned to sender");
        if (deleted_.count(id))
            support::log_info("qmgr", id + ": deleted during delivery; outcome not recorded");
        else
            co_await finish(env, *loaded->content, bounced);
        retry_if_flushed(id);
    }
    flushed_while_active_.erase(id);
    deleted_.erase(id);
    if (!due_.count(id)) forced_.erase(id);  // done, held or deleted: no next attempt
    active_.erase(id);
    release_slot(id);
    wake_.cancel();
}

void Scheduler::release_slot(const std::string& id) {
    // The destination it was counted under: its recipients' outcome may have moved
    // dest_of_ on to another one meanwhile.
    auto launched = launched_to_.extract(id);
    std::vector<std::string> begun = launched ? std::move(launched.mapped()) : std::vector{dest_of_[id]};
    const std::string& dest = begun.front();
    --per_destination_[dest];
    auto& waiting = blocked_[dest];
    while (!waiting.empty() && !stopping_) {  // a slot is free: the next due message for it
        std::string next = waiting.front();
        waiting.pop_front();
        if (!active_.count(next)) {
            launch(next);
            break;
        }
    }
    // After the next launch: a destination whose mail keeps coming keeps its history.
    auto now = Throttle::Clock::now();
    for (const auto& each : begun) throttle_.end(each, now);
}

// On the disk pool: the non-delivery notice for `bounced`, committed to the spool.
// `hostname` is a copy taken on the network thread (a reload may change the config).
std::optional<queue::Envelope> Scheduler::write_bounce(const queue::Envelope& env,
                                                       const std::string& content,
                                                       const std::vector<std::size_t>& bounced,
                                                       const std::string& hostname) {
    std::error_code ec;
    auto draft = spool_.begin(ec);
    if (!draft) return std::nullopt;
    queue::Envelope b;
    b.sender = "";
    queue::Recipient r;
    r.address = env.sender;
    b.recipients.push_back(r);
    b.client = "local";
    if (draft->append(make_bounce(env, bounced, content, hostname)) ||
        draft->commit(b))
        return std::nullopt;
    return spool_.envelope(draft->id());
}

asio::awaitable<void> Scheduler::finish(const queue::Envelope& env, const std::string& content,
                                        const std::vector<std::size_t>& bounced) {
    const std::string hostname = ctx_.config.server.hostname;
    std::optional<queue::Envelope> notice;
    if (!bounced.empty() && !env.sender.empty())  // no trip to the disk pool otherwise
        notice = co_await support::on_pool(disk_, [&] { return write_bounce(env, content, bounced, hostname); });
    if (notice) {
        support::log_info("bounce", env.id + ": sender non-delivery notification: " + notice->id);
        schedule(*notice);
    }
    bool all_done = true;
    for (const auto& r : env.recipients) all_done = all_done && r.done();
    auto ec = co_await records_.run([&] { return all_done ? spool_.retire(env.id) : spool_.update(env); });
    if (deleted_.count(env.id)) co_return;  // `queue delete` while this was recorded
    if (ec) {
        support::log_warning("qmgr", env.id + ": cannot record delivery state: " + ec.message());
    }
    if (all_done && !ec) {
        support::log_info("qmgr", env.id + ": removed");
        forget(env.id);
    } else if (!all_done) {
        schedule(env);
    }
}

}  // namespace tlsrelay::relay

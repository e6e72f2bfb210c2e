// Scheduler's queue control (`tlsrelay queue flush|hold|release|delete|list` through
// the control socket): the spool records holds and deletions durably, the in-memory
// schedule changes at once. Like postsuper(1), an attempt in progress is never cut
// short: its end sees the hold or deletion and neither reschedules nor records.
#include <algorithm>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <map>

#include "relay/scheduler.hpp"
#include "support/on_pool.hpp"

namespace tlsrelay::relay {

namespace asio = boost::asio;

namespace {

const std::error_code no_such_message = std::make_error_code(std::errc::no_such_file_or_directory);

}  // namespace

void Scheduler::unblock(const std::string& id) {
    auto it = dest_of_.find(id);
    if (it == dest_of_.end()) return;
    auto q = blocked_.find(it->second);
    if (q == blocked_.end()) return;
    std::erase(q->second, id);
}

asio::awaitable<std::error_code> Scheduler::flush(std::string id) {
    std::vector<std::string> ids;
    if (id.empty()) {
        throttle_.revive_all();  // postqueue -f: QMGR_REQ_FLUSH_DEAD
        for (const auto& [each, when] : due_) ids.push_back(each);
        ids.insert(ids.end(), active_.begin(), active_.end());
        for (const auto& [dest, waiting] : blocked_) ids.insert(ids.end(), waiting.begin(), waiting.end());
    } else if (!held_.count(id)) {  // a held message stays held, as with the spool files
        bool blocked = dest_of_.count(id) && std::ranges::count(blocked_[dest_of_[id]], id) > 0;
        if (!active_.count(id) && !due_.count(id) && !blocked) {  // not scheduled: is it there?
            auto env = co_await support::on_pool(disk_, [&] { return spool_.envelope(id); });
            if (!env) co_return no_such_message;
            if (!active_.count(id)) schedule(*env);
        }
        ids.push_back(id);
        if (dest_of_.count(id)) throttle_.revive(dest_of_[id]);  // postqueue -i: its destinations too
        if (auto also = also_to_.find(id); also != also_to_.end())
            for (const auto& other : also->second) throttle_.revive(other);
    }
    for (const auto& each : ids) {
        forced_.insert(each);
        if (active_.count(each)) {
            flushed_while_active_.insert(each);
        } else if (due_.count(each)) {
            unschedule(each);
            due_[each] = 0;
            by_time_.insert({0, each});
        }
    }
    wake_.cancel();
    co_return std::error_code{};
}

asio::awaitable<std::error_code> Scheduler::hold(std::string id) {
    auto ec = co_await support::on_pool(disk_, [&] { return spool_.set_held(id, true); });
    if (ec) co_return ec;
    held_.insert(id);
    drop_fresh(id);
    unschedule(id);
    unblock(id);
    forced_.erase(id);
    flushed_while_active_.erase(id);
    co_return std::error_code{};
}

asio::awaitable<std::error_code> Scheduler::release(std::string id) {
    using Result = std::pair<std::error_code, std::optional<queue::Envelope>>;
    auto [ec, env] = co_await support::on_pool(disk_, [&]() -> Result {
        if (auto ec = spool_.set_held(id, false)) return {ec, std::nullopt};
        return {std::error_code{}, spool_.envelope(id)};
    });
    if (ec) co_return ec;
    held_.erase(id);
    if (env && !active_.count(id)) schedule(*env);  // an active one is rescheduled by its end
    co_return std::error_code{};
}

asio::awaitable<std::error_code> Scheduler::remove(std::string id) {
    if (active_.count(id)) deleted_.insert(id);
    drop_fresh(id);
    unschedule(id);
    unblock(id);
    held_.erase(id);
    forced_.erase(id);
    auto ec = co_await support::on_pool(disk_, [&] { return spool_.remove(id); });
    if (!ec || ec == no_such_message) forget(id);
    if (ec && ec != no_such_message) {  // still there: back to how it was
        deleted_.erase(id);
        auto env = co_await support::on_pool(disk_, [&] { return spool_.envelope(id); });
        if (env && !active_.count(id)) schedule(*env);
    }
    co_return ec;
}

std::vector<ControlWaiting> Scheduler::waiting() const {
    using S = ControlWaiting::State;
    std::map<std::string, ControlWaiting> out;  // the first state found for an id wins
    for (const auto& id : active_) out.emplace(id, ControlWaiting{S::active, id, 0, {}});
    for (const auto& [dest, ids] : blocked_)
        for (const auto& id : ids) out.emplace(id, ControlWaiting{S::blocked, id, 0, dest});
    for (const auto& id : held_) out.emplace(id, ControlWaiting{S::held, id, 0, {}});
    for (const auto& [id, when] : due_) out.emplace(id, ControlWaiting{S::due, id, when, {}});
    std::vector<ControlWaiting> list;
    for (auto& [id, w] : out) list.push_back(std::move(w));
    return list;
}

}  // namespace tlsrelay::relay

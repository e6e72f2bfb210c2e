// `tlsrelay queue ...`: asks a running daemon over its control socket to act at once
// (control_client.hpp) and, with no daemon, changes the spool directly (queue/ locks
// each message while it changes it). `list` reads the spool and adds why each message
// waits when a daemon can say.
#include <ctime>
#include <iostream>
#include <map>

#include "queue/queue.hpp"
#include "relay/cli.hpp"
#include "relay/control_client.hpp"
#include "support/log.hpp"

namespace tlsrelay::relay {
namespace {

std::string format_time(std::int64_t unix_seconds) {
    if (unix_seconds == 0) return "now";
    std::time_t t = unix_seconds;
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

std::string recipient_status(const queue::Envelope& e, const queue::Recipient& r) {
    if (e.held && !r.done()) return "held";
    if (r.state == queue::RecipientState::pending) return "queued";
    return std::string(queue::to_string(r.state));
}

// id -> why the daemon keeps it waiting; empty when no daemon answered.
using Waiting = std::map<std::string, ControlWaiting>;

std::int64_t now_s() { return static_cast<std::int64_t>(std::time(nullptr)); }

// What `list` says about a message the daemon knows (or does not know) of.
std::string waiting_text(const queue::Envelope& e, const Waiting& waiting) {
    auto it = waiting.find(e.id);
    if (it == waiting.end()) return "not scheduled";
    const ControlWaiting& w = it->second;
    using S = ControlWaiting::State;
    if (w.state == S::active) return "active (delivery in progress)";
    if (w.state == S::held) return "held";
    if (w.state == S::blocked) return "waiting for a connection slot to " + support::printable(w.destination);
    if (w.due <= now_s()) return "due now";
    std::string text = "deferred until " + format_time(w.due);
    for (const auto& r : e.recipients)
        if (!r.done() && !r.last_reason.empty()) return text + ": " + r.last_reason;
    return text;
}

void print_json(const std::vector<queue::Envelope>& list, const Waiting* waiting) {
    std::cout << "[";
    bool first = true;
    for (const auto& e : list) {
        std::cout << (first ? "\n" : ",\n") << "  {\"id\": " << support::json_string(e.id)
                  << ", \"arrival\": " << e.arrival_us / 1000000 << ", \"size\": " << e.size
                  << ", \"sender\": " << support::json_string(e.sender)
                  << ", \"held\": " << (e.held ? "true" : "false");
        if (waiting) std::cout << ", \"waiting\": " << support::json_string(waiting_text(e, *waiting));
        std::cout << ", \"recipients\": [";
        for (std::size_t i = 0; i < e.recipients.size(); ++i) {
            const auto& r = e.recipients[i];
            std::cout << (i ? ", " : "") << "{\"address\": " << support::json_string(r.address)
                      << ", \"status\": " << support::json_string(recipient_status(e, r))
                      << ", \"attempts\": " << r.attempts << ", \"next_attempt\": " << r.next_attempt
                      << ", \"last_dsn\": " << support::json_string(r.last_dsn)
                      << ", \"last_reason\": " << support::json_string(r.last_reason) << "}";
        }
        std::cout << "]}";
        first = false;
    }
    std::cout << (list.empty() ? "]\n" : "\n]\n");
}

// As Postfix's mailq: `*` after the id while a delivery is in progress, `!` when held.
void print_table(const std::vector<queue::Envelope>& list, const Waiting* waiting) {
    if (list.empty()) {
        std::cout << "Mail queue is empty\n";
        return;
    }
    for (const auto& e : list) {
        auto w = waiting ? waiting->find(e.id) : Waiting::const_iterator{};
        bool active = waiting && w != waiting->end() && w->second.state == ControlWaiting::State::active;
        std::cout << e.id << (active ? "*" : "") << (e.held ? "!" : "") << "  " << e.size << "  "
                  << format_time(e.arrival_us / 1000000) << "  <" << e.sender << ">\n";
        if (waiting) std::cout << "  (" << waiting_text(e, *waiting) << ")\n";
        for (const auto& r : e.recipients) {
            std::cout << "    <" << r.address << "> " << recipient_status(e, r)
                      << " attempts=" << r.attempts;
            if (!r.done() && r.attempts > 0) std::cout << " next=" << format_time(r.next_attempt);
            if (!r.last_dsn.empty())
                std::cout << " dsn=" << r.last_dsn << " (" << r.last_reason << ")";
            std::cout << "\n";
        }
    }
}

int no_such(const std::string& id) {
    std::cerr << "tlsrelay: queue: no message " << id << "\n";
    return 1;
}

int flush(queue::Spool& spool, const std::optional<std::string>& only) {
    for (auto e : spool.list()) {
        if (only && e.id != *only) continue;
        for (auto& r : e.recipients)
            if (!r.done()) r.next_attempt = 0;
        if (auto ec = spool.update(e)) {
            std::cerr << "tlsrelay: queue: " << e.id << ": " << ec.message() << "\n";
            return 1;
        }
    }
    return 0;
}

// The daemon's view for `list`, or nullopt when no daemon answered.
std::optional<Waiting> ask_waiting(const std::filesystem::path& spool_dir) {
    auto reply = ask_daemon(spool_dir, ControlRequest{ControlVerb::list, ""});
    if (!reply.reached) return std::nullopt;
    if (!reply.ok) {
        std::cerr << "tlsrelay: queue: the daemon cannot say why mail waits: "
                  << support::printable(reply.error) << "\n";
        return std::nullopt;
    }
    Waiting waiting;
    for (const auto& line : reply.lines)
        if (auto w = parse_waiting(line)) waiting[w->id] = *w;
    return waiting;
}

// flush/hold/release/delete by the running daemon: its exit status, or nullopt when no
// daemon answered and the spool files are to be changed here.
std::optional<int> ask_to_act(const std::filesystem::path& spool_dir, ControlVerb verb,
                              const std::string& id) {
    if (!id.empty() && !queue::is_queue_id(id)) return std::nullopt;  // the spool says "no such"
    auto reply = ask_daemon(spool_dir, ControlRequest{verb, id});
    if (!reply.reached) {
        if (!reply.unreachable.empty())
            std::cerr << "tlsrelay: queue: cannot reach the daemon (" << reply.unreachable
                      << "): changing the spool files\n";
        return std::nullopt;
    }
    if (reply.ok) return 0;
    std::cerr << "tlsrelay: queue: " << support::printable(reply.error) << "\n";
    return 1;
}

std::optional<ControlVerb> verb_of(const std::string& what) {
    if (what == "hold") return ControlVerb::hold;
    if (what == "release") return ControlVerb::release;
    if (what == "delete") return ControlVerb::remove;
    return std::nullopt;
}

// hold/release/delete with no daemon running: the spool files themselves.
int change_files(queue::Spool& spool, ControlVerb verb, const std::string& id) {
    std::error_code ec = verb == ControlVerb::remove ? spool.remove(id)
                                                     : spool.set_held(id, verb == ControlVerb::hold);
    if (ec) {
        std::cerr << "tlsrelay: queue: " << id << ": " << ec.message() << "\n";
        return 1;
    }
    spool.request_flush();  // a daemon starting meanwhile re-reads the queue within a second
    return 0;
}

}  // namespace

int run_queue(const Args& args) {
    const auto& p = args.positional;
    if (p.size() < 2) {
        std::cerr << "usage: tlsrelay queue list|show|flush|hold|release|delete [ID]\n";
        return 2;
    }
    auto cfg = load_config_or_report(args);
    if (!cfg) return 1;
    auto opened = queue::open_spool(cfg->queue.dir);
    if (!opened.spool) {
        std::cerr << "tlsrelay: queue: " << opened.error << "\n";
        return 1;
    }
    auto& spool = *opened.spool;
    const std::string& what = p[1];
    if (what == "list" && p.size() == 2) {
        auto waiting = ask_waiting(cfg->queue.dir);
        auto list = spool.list();
        args.json ? print_json(list, waiting ? &*waiting : nullptr)
                  : print_table(list, waiting ? &*waiting : nullptr);
        return 0;
    }
    if (what == "flush" && p.size() <= 3) {
        if (auto rc = ask_to_act(cfg->queue.dir, ControlVerb::flush, p.size() == 3 ? p[2] : ""))
            return *rc;
        int rc = flush(spool, p.size() == 3 ? std::optional<std::string>(p[2]) : std::nullopt);
        if (rc == 0) spool.request_flush();  // a running daemon retries within a second
        return rc;
    }
    if (p.size() != 3) {
        std::cerr << "usage: tlsrelay queue " << what << " ID\n";
        return 2;
    }
    const std::string& id = p[2];
    if (what == "show") {
        auto env = spool.envelope(id);
        auto content = spool.content(id);
        if (!env || !content) return no_such(id);
        print_table({*env}, nullptr);
        std::cout << "\n" << *content;
        return 0;
    }
    auto verb = verb_of(what);
    if (!verb) {
        std::cerr << "tlsrelay: queue: unknown action " << what << "\n";
        return 2;
    }
    if (auto rc = ask_to_act(cfg->queue.dir, *verb, id)) return *rc;
    return change_files(spool, *verb, id);
}

}  // namespace tlsrelay::relay

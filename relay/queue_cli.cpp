// `tlsrelay queue ...`: inspects and changes the spool directly, safely beside a
// running daemon (queue/ locks each message while it changes it).
#include <ctime>
#include <iostream>

#include "queue/queue.hpp"
#include "relay/cli.hpp"
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

void print_json(const std::vector<queue::Envelope>& list) {
    std::cout << "[";
    bool first = true;
    for (const auto& e : list) {
        std::cout << (first ? "\n" : ",\n") << "  {\"id\": " << support::json_string(e.id)
                  << ", \"arrival\": " << e.arrival_us / 1000000 << ", \"size\": " << e.size
                  << ", \"sender\": " << support::json_string(e.sender)
                  << ", \"held\": " << (e.held ? "true" : "false") << ", \"recipients\": [";
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

void print_table(const std::vector<queue::Envelope>& list) {
    if (list.empty()) {
        std::cout << "Mail queue is empty\n";
        return;
    }
    for (const auto& e : list) {
        std::cout << e.id << (e.held ? "!" : "") << "  " << e.size << "  "
                  << format_time(e.arrival_us / 1000000) << "  <" << e.sender << ">\n";
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
        args.json ? print_json(spool.list()) : print_table(spool.list());
        return 0;
    }
    if (what == "flush" && p.size() <= 3) {
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
        print_table({*env});
        std::cout << "\n" << *content;
        return 0;
    }
    std::error_code ec;
    if (what == "hold") ec = spool.set_held(id, true);
    else if (what == "release") ec = spool.set_held(id, false);
    else if (what == "delete") ec = spool.remove(id);
    else {
        std::cerr << "tlsrelay: queue: unknown action " << what << "\n";
        return 2;
    }
    if (ec) {
        std::cerr << "tlsrelay: queue: " << id << ": " << ec.message() << "\n";
        return 1;
    }
    spool.request_flush();  // a running daemon re-reads the queue within a second
    return 0;
}

}  // namespace tlsrelay::relay

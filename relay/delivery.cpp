#include "relay/delivery.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <cmath>
#include <map>

#include "relay/dane.hpp"
#include "relay/mta_sts.hpp"
#include "relay/nexthop.hpp"
#include "relay/route.hpp"
#include "relay/tls_rpt.hpp"
#include "support/log.hpp"

namespace tlsrelay::relay {

namespace asio = boost::asio;
using Clock = std::chrono::system_clock;
using State = smtp::RecipientResult::State;

std::string format_delay(double s) {
    // 10 s and more: whole seconds; 1-10 s: one decimal; below: two significant
    // digits but at most two decimals. Trailing zeros are dropped.
    double r;
    int decimals;
    if (s >= 9.95) {
        r = std::floor(s + 0.5);
        decimals = 0;
    } else if (s >= 0.995) {
        r = std::floor(s * 10 + 0.5) / 10;
        decimals = 1;
    } else {
        r = std::floor(s * 100 + 0.5) / 100;
        decimals = 2;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, r);
    std::string t = buf;
    if (t.find('.') != std::string::npos) {
        while (t.back() == '0') t.pop_back();
        if (t.back() == '.') t.pop_back();
    }
    return t;
}

std::optional<HopStatus> site_failure(const smtp::Failure& f) {
    if (!f.throttle || f.hard) return std::nullopt;
    return HopStatus{f.dsn, f.reason};
}

namespace {

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

struct Group {
    NextHop hop;
    std::vector<std::size_t> rcpts;  // indexes into env.recipients
};

// Shared by one attempt: what gets logged for each recipient.
struct Attempt {
    queue::Envelope& env;
    Clock::time_point arrival, start;
    Clock::time_point connected;  // end of connection setup (c), start of transfer (d)
    const config::Config& config;
    DeliveryObserver* observer = nullptr;
    std::string destination;  // of the recipients being finished, for the observer
    std::optional<HopStatus> hop_status;  // the group's site failure, for the throttle

    void log(std::size_t i, const std::string& relay, const std::string& dsn, const char* status,
             const std::string& reason) {
        auto now = Clock::now();
        if (connected < start) connected = now;
        std::string delays = format_delay(seconds(start - arrival)) + "/0/" +
                             format_delay(seconds(connected - start)) + "/" +
                             format_delay(seconds(now - connected));
        support::log_info("smtp", env.id + ": to=<" + env.recipients[i].address + ">, relay=" + relay +
                                      ", delay=" + format_delay(seconds(now - arrival)) +
                                      ", delays=" + delays + ", dsn=" + dsn + ", status=" + status +
                                      " (" + reason + ")");
        if (observer) observer->outcome(destination, status, dsn);
    }

    std::int64_t backoff(std::uint32_t attempts) const {
        auto min = std::chrono::duration_cast<std::chrono::seconds>(config.queue.retry_min).count();
        auto max = std::chrono::duration_cast<std::chrono::seconds>(config.queue.retry_max).count();
        std::int64_t wait = min;
        for (std::uint32_t i = 1; i < attempts && wait < max; ++i) wait *= 2;
        return std::min<std::int64_t>(std::max<std::int64_t>(wait, 1), std::max<std::int64_t>(max, 1));
    }

    // Final outcome for recipient i in this attempt.
    void finish(std::size_t i, const std::string& relay, const std::string& dsn, const std::string& reason,
                bool sent, bool hard) {
        auto& r = env.recipients[i];
        r.attempts += 1;
        r.last_dsn = dsn;
        r.last_reason = reason;
        if (sent) {
            r.state = queue::RecipientState::sent;
            log(i, relay, dsn, "sent", reason);
        } else if (hard) {
            r.state = queue::RecipientState::bounced;
            log(i, relay, dsn, "bounced", reason);
        } else {
            r.state = queue::RecipientState::deferred;
            r.next_attempt = std::chrono::duration_cast<std::chrono::seconds>(
                                 Clock::now().time_since_epoch()).count() + backoff(r.attempts);
            log(i, relay, dsn, "deferred", reason);
        }
    }
};

}  // namespace

asio::awaitable<std::optional<asio::ip::tcp::socket>> connect_target(const Target& t,
                                                                     std::chrono::milliseconds timeout,
                                                                     std::string& error) {
    using namespace asio::experimental::awaitable_operators;
    auto ex = co_await asio::this_coro::executor;
    asio::ip::tcp::socket socket(ex);
    asio::steady_timer timer(ex);
    timer.expires_after(timeout);
    auto tok = asio::as_tuple(asio::use_awaitable);
    asio::ip::tcp::endpoint ep(t.address, t.port);
    auto r = co_await (socket.async_connect(ep, tok) || timer.async_wait(tok));
    if (r.index() == 1) {
        error = "Connection timed out";
        co_return std::nullopt;
    }
    if (auto ec = std::get<0>(std::get<0>(r))) {
        error = ec.message();
        co_return std::nullopt;
    }
    co_return std::optional<asio::ip::tcp::socket>(std::move(socket));
}

namespace {

struct Pending {
    std::vector<std::size_t> idx;
    bool empty() const { return idx.empty(); }
};

struct SessionOutcome {
    std::unique_ptr<smtp::ClientConnection> conn;  // after the transaction: cache or QUIT
    bool connected = false;
    std::string connect_error;  // "connect to H[A]:P: why"
    bool past_tls = false;      // counts towards the session limit
    std::optional<smtp::Failure> failure;
};

// Connects, greets, does TLS per plan and sends one transaction.
asio::awaitable<SessionOutcome> one_session(DeliveryContext& ctx, const Target& t, const smtp::ServerId& server,
                                            const smtp::TlsPlan& plan, const smtp::OutboundMessage& msg,
                                            std::vector<smtp::RecipientResult>& results) {
    SessionOutcome out;
    std::string error;
    auto socket = co_await connect_target(t, ctx.config.delivery.connect_timeout, error);
    if (!socket) {
        out.connect_error = "connect to " + server.name_addr_port() + ": " + error;
        support::log_info("smtp", out.connect_error);
        co_return out;
    }
    out.connected = true;
    smtp::ClientOptions opts;
    opts.helo_name = ctx.config.delivery.helo_name.empty() ? ctx.config.server.hostname
                                                            : ctx.config.delivery.helo_name;
    out.conn = std::make_unique<smtp::ClientConnection>(std::move(*socket), server, opts);
    results.clear();
    out.failure = co_await out.conn->open(plan, msg.needs_smtputf8);
    if (!out.failure) {
        out.past_tls = true;
        out.failure = co_await out.conn->send(msg, results);
    }
    co_return out;
}

smtp::OutboundMessage outbound(const Attempt& at, const std::vector<std::size_t>& pending,
                               const std::string& content) {
    std::vector<std::string> rcpts;
    for (auto i : pending) rcpts.push_back(at.env.recipients[i].address);
    bool needs = smtp::needs_smtputf8(at.env.smtputf8, at.env.sender, rcpts, content);
    return smtp::OutboundMessage{at.env.sender, rcpts, &content, at.env.smtputf8, at.env.eight_bit, needs};
}

// After a transaction: keep the connection for the next message to this next hop,
// or end it politely.
asio::awaitable<void> release(DeliveryContext& ctx, const std::string& key,
                              std::unique_ptr<smtp::ClientConnection>& conn,
                              const std::optional<smtp::Failure>& failure, unsigned uses) {
    if (!conn) co_return;
    if (ctx.cache && conn->usable() && !failure) {
        ctx.cache->put(key, std::move(conn), uses);
        co_return;
    }
    co_await conn->quit();
}

// Postfix 1.4: a failed handshake at "may" is retried in plaintext once the message
// has waited minimal_backoff_time (our retry_min) before this attempt. Postfix
// (smtp.h PREACTIVE_DELAY) subtracts whole seconds, arrival and start each truncated:
// a retry 0.99 s after an arrival late in its second counts as one second.
bool plaintext_retry_ok(const DeliveryContext& ctx, const Attempt& at, const smtp::TlsPlan& plan) {
    using std::chrono::floor;
    using std::chrono::seconds;
    auto waited = floor<seconds>(at.start.time_since_epoch()) - floor<seconds>(at.arrival.time_since_epoch());
    return plan.level == tls::Level::may && waited >= ctx.config.queue.retry_min;
}

// TLS-RPT: tells the observer what one server of a group showed. domain is "" unless
// the group's next hop is its recipient domain looked up by MX; skipped is the reason
// when the policy skipped the server without connecting. Sessions that never tried
// TLS (plaintext at "may") are not reported: RFC 8460 counts TLS negotiations.
void report_tls(DeliveryContext& ctx, const std::string& domain, const sts::RptPolicy& policy,
                const smtp::ServerId& server, const SessionOutcome* outcome, const std::string& skipped) {
    if (!ctx.observer || domain.empty()) return;
    sts::RptSession session{domain, policy, std::nullopt};
    if (!skipped.empty()) {
        session.failure = rpt_failure(server, "", skipped);
    } else {
        if (!outcome->connected || !outcome->conn) return;
        const auto& tls = outcome->conn->tls_session();
        const auto& failure = outcome->failure;
        bool tls_failed = failure && (failure->handshake_failed || tls || failure->reason.starts_with("TLS is required"));
        if (tls && tls->policy_ok) {
            // negotiated and accepted: a success, whatever SMTP said afterwards
        } else if (tls_failed) {
            session.failure = rpt_failure(server, outcome->conn->local_address(), failure->reason);
        } else {
            return;
        }
    }
    ctx.observer->tls_report(session);
}

asio::awaitable<void> deliver_group(DeliveryContext& ctx, Attempt& at, const Group& g,
                                    const std::string& content) {
    std::vector<std::size_t> pending = g.rcpts;
    at.destination = g.hop.domain;
    std::string last_relay = "none", last_dsn = "4.3.0", last_reason = "server unavailable or unable to receive mail";
    unsigned sessions = 0;
    bool final_server = false;
    // Records what one session said about each pending recipient; soft answers on a
    // server that is not the last one stay pending for the next.
    auto settle = [&](const std::optional<smtp::Failure>& failure, std::vector<smtp::RecipientResult>& results,
                      const std::string& relay) {
        results.resize(pending.size());
        std::vector<std::size_t> still;
        for (std::size_t k = 0; k < pending.size(); ++k) {
            auto& r = results[k];
            const bool session_failed = r.state == State::pending && failure;
            if (session_failed) r = {failure->hard ? State::hard : State::soft, failure->dsn, failure->reason};
            if (r.state == State::sent || r.state == State::hard || (r.state == State::soft && final_server)) {
                at.finish(pending[k], relay, r.dsn, r.reason, r.state == State::sent, r.state == State::hard);
                if (session_failed && !at.hop_status) at.hop_status = site_failure(*failure);
            } else {
                if (r.state == State::soft) support::log_info("smtp", at.env.id + ": " + r.reason);
                still.push_back(pending[k]);
                last_relay = relay;
                last_dsn = r.dsn;
                last_reason = r.reason;
            }
        }
        pending = std::move(still);
    };
    if (ctx.cache) {
        if (auto conn = ctx.cache->take(g.hop.text)) {  // an open connection to this next hop
            unsigned uses = ctx.cache->uses_of(conn.get()) + 1;
            std::vector<smtp::RecipientResult> results;
            smtp::OutboundMessage msg = outbound(at, pending, content);
            std::optional<smtp::Failure> failure = co_await conn->send(msg, results);
            bool went_away = failure && !conn->usable() && failure->dsn == "4.4.2" &&
                             std::all_of(results.begin(), results.end(),
                                         [](const auto& r) { return r.state == State::pending; });
            if (!went_away) {  // a server that closed an idle connection: just connect anew
                at.connected = Clock::now();
                settle(failure, results, conn->server().name_addr_port() + ", conn_use=" + std::to_string(uses));
            }
            co_await release(ctx, g.hop.text, conn, failure, uses);
        }
    }
    if (pending.empty()) co_return;  // the cached connection took it all: no DNS needed
    Route route = co_await resolve_route(ctx.resolver, g.hop, ctx.self);
    if (route.error) {
        RouteError err = *route.error;
        // Postfix compares the first destination of a list with the whole relayhost
        const std::string& first = g.hop.list.empty() ? g.hop.text : g.hop.list.front().text;
        if (auto soft = relayhost_problem(err, first, ctx.config.delivery.relayhost)) {
            support::log_warning("smtp", "relayhost configuration problem");
            err = *soft;
        }
        for (auto i : pending) at.finish(i, "none", err.dsn, err.reason, false, err.hard());
        if (!err.hard()) at.hop_status = HopStatus{err.dsn, err.reason};
        co_return;
    }
    StsGuard sts;
    const std::string rcpt_domain = domain_of(at.env.recipients[pending[0]].address);
    if (ctx.mta_sts) sts = co_await ctx.mta_sts->guard_for(g.hop, rcpt_domain);
    const std::string rpt_domain = sts_applies(g.hop, rcpt_domain) ? rcpt_domain : std::string();
    if (!sts.fetch_failure.empty())  // RFC 8460 4.3.2.2: the policy could not be had
        report_tls(ctx, rpt_domain, sts::RptPolicy{"sts", {}, {}}, smtp::ServerId{}, nullptr, sts.fetch_failure);
    for (std::size_t n = 0; n < route.targets.size() && !pending.empty(); ++n) {
        const Target& t = route.targets[n];
        // A next-hop list: Postfix counts sessions per destination of the list, and only
        // the last destination has a final server.
        if (n > 0 && t.nexthop != route.targets[n - 1].nexthop) sessions = 0;
        if (sessions >= mx_session_limit) continue;  // the rest of this destination
        const bool last_destination = route.targets.back().nexthop == t.nexthop;
        const bool last_address = n + 1 == route.targets.size() || route.targets[n + 1].nexthop != t.nexthop;
        final_server = last_destination && (last_address || sessions + 1 >= mx_session_limit);
        smtp::ServerId server{t.hostname, t.address, t.port};
        const std::string& key = t.nexthop.empty() ? g.hop.text : t.nexthop;  // a list: its element
        smtp::TlsPlan plan = ctx.plan(key, server);
        std::optional<tls::DaneDecision> dane;
        if (!plan.invalid && ctx.dane_plan &&
            (plan.level == tls::Level::dane || plan.level == tls::Level::dane_only)) {
            // Postfix's dane_init: MX and host DNSSEC status, then the TLSA records.
            auto main_level = tls::parse_level(ctx.config.tls.security_level).value_or(tls::Level::may);
            dane = co_await resolve_dane(ctx.resolver, t, plan.level, tls::default_insecure_mx_policy(main_level));
            plan = ctx.dane_plan(key, server, *dane);
        }
        const sts::RptPolicy rpt_policy = applied_rpt_policy(dane ? &*dane : nullptr, sts.policy(), plan.source, t.hostname);
        if (plan.invalid) {  // Postfix skips the address without connecting
            const std::string why = plan.invalid_reason.empty() ? "client TLS configuration problem"
                                                                : plan.invalid_reason;
            for (const auto& w : plan.warnings) support::log_warning("smtp", w);
            support::log_warning("smtp", "TLS policy lookup for " + key + "/" + t.hostname + ": " + why);
            if (!plan.source.empty())  // beyond Postfix: where to fix it
                support::log_warning("smtp", plan.source + ": the policy entry for \"" + key +
                                                 "\" is not usable; its mail is deferred, never sent with "
                                                 "weaker protection (tlsrelay check-config says why)");
            report_tls(ctx, rpt_domain, rpt_policy, server, nullptr, why);
            last_relay = "none";
            last_dsn = "4.7.5";
            last_reason = why;
            continue;
        }
        for (const auto& w : plan.warnings) support::log_warning("smtp", w);
        if (auto skip = sts.apply(plan, g.hop.text, server)) {  // enforce: an MX host not in the policy
            support::log_info("smtp", *skip + ": skipped");
            report_tls(ctx, rpt_domain, rpt_policy, server, nullptr, *skip);
            last_relay = "none";
            last_dsn = "4.7.5";
            last_reason = *skip;
            continue;
        }
        smtp::OutboundMessage msg = outbound(at, pending, content);
        std::vector<smtp::RecipientResult> results;
        SessionOutcome outcome = co_await one_session(ctx, t, server, plan, msg, results);
        report_tls(ctx, rpt_domain, rpt_policy, server, &outcome, "");
        if (outcome.failure && outcome.failure->handshake_failed && plaintext_retry_ok(ctx, at, plan)) {
            // Postfix's PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE: same address, no TLS.
            support::log_info("smtp", at.env.id + ": " + outcome.failure->reason);
            plan.level = tls::Level::none;
            outcome = co_await one_session(ctx, t, server, plan, msg, results);
        }
        if (ctx.observer && outcome.conn && outcome.conn->tls_session())
            ctx.observer->tls_session(g.hop, server, *outcome.conn->tls_session());
        if (!outcome.connected) {
            last_relay = "none";
            last_dsn = "4.4.1";
            last_reason = outcome.connect_error;
            continue;
        }
        at.connected = Clock::now();
        if (outcome.past_tls) ++sessions;
        settle(outcome.failure, results, server.name_addr_port());
        co_await release(ctx, g.hop.text, outcome.conn, outcome.failure, 1);
    }
    // Postfix's smtp_sess_fail for what is left: no server took it, which throttles.
    for (auto i : pending) at.finish(i, last_relay, last_dsn, last_reason, false, false);
    if (!pending.empty() && !at.hop_status) at.hop_status = HopStatus{last_dsn, last_reason};
}

// One next hop of the attempt, unless it is dead (Postfix's qmgr defers its recipients
// without a delivery agent, relay=none); its outcome then goes to the throttle.
asio::awaitable<void> deliver_hop(DeliveryContext& ctx, Attempt& at, const Group& g, const std::string& content) {
    const std::string& dest = g.hop.domain;
    if (ctx.throttle) {
        if (auto why = ctx.throttle->suspended(dest, std::chrono::steady_clock::now())) {
            at.destination = dest;
            for (auto i : g.rcpts) at.finish(i, "none", why->dsn, why->reason, false, false);
            co_return;
        }
    }
    at.hop_status.reset();
    co_await deliver_group(ctx, at, g, content);
    if (!ctx.throttle) co_return;
    if (at.hop_status)
        ctx.throttle->failed(dest, *at.hop_status, std::chrono::steady_clock::now());
    else
        ctx.throttle->succeeded(dest);
}

// The recipients due now, grouped by next hop, each group in delivery order; those
// without a next hop (bad address syntax) go to `unroutable`, in recipient order.
std::map<std::string, Group> due_groups(const DeliveryContext& ctx, const queue::Envelope& env,
                                        std::vector<std::size_t>& unroutable) {
    std::map<std::string, Group> groups;
    auto now_s = std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count();
    for (std::size_t i = 0; i < env.recipients.size(); ++i) {
        const auto& r = env.recipients[i];
        if (r.done() || r.next_attempt > now_s) continue;
        auto hop = nexthop_for(ctx.config.delivery, domain_of(r.address));
        if (!hop) {
            unroutable.push_back(i);
            continue;
        }
        auto& g = groups[hop->text];
        g.hop = *hop;
        g.rcpts.push_back(i);
    }
    for (auto& [key, g] : groups)
        std::stable_sort(g.rcpts.begin(), g.rcpts.end(), [&](std::size_t a, std::size_t b) {
            return delivered_before(env.recipients[a].address, env.recipients[b].address);
        });
    return groups;
}

Attempt start_attempt(const DeliveryContext& ctx, queue::Envelope& env) {
    return Attempt{env, Clock::time_point(std::chrono::microseconds(env.arrival_us)), Clock::now(), {},
                   ctx.config, ctx.observer, {}, {}};
}

}  // namespace

asio::awaitable<void> attempt_delivery(DeliveryContext& ctx, queue::Envelope& env, const std::string& content) {
    Attempt at = start_attempt(ctx, env);
    std::vector<std::size_t> unroutable;
    auto groups = due_groups(ctx, env, unroutable);
    for (std::size_t i : unroutable) {
        at.destination = domain_of(env.recipients[i].address);
        at.finish(i, "none", "5.1.3", "bad address syntax", false, true);
    }
    for (auto& [key, g] : groups) co_await deliver_hop(ctx, at, g, content);
}

bool defer_if_suspended(DeliveryContext& ctx, queue::Envelope& env) {
    if (!ctx.throttle) return false;
    std::vector<std::size_t> unroutable;
    auto groups = due_groups(ctx, env, unroutable);
    if (groups.empty() || !unroutable.empty()) return false;
    auto now = std::chrono::steady_clock::now();
    std::vector<HopStatus> why;
    for (auto& [key, g] : groups) {
        auto dead = ctx.throttle->suspended(g.hop.domain, now);
        if (!dead) return false;
        why.push_back(std::move(*dead));
    }
    Attempt at = start_attempt(ctx, env);
    std::size_t n = 0;
    for (auto& [key, g] : groups) {  // as deliver_hop does for a dead destination
        at.destination = g.hop.domain;
        for (std::size_t i : g.rcpts) at.finish(i, "none", why[n].dsn, why[n].reason, false, false);
        ++n;
    }
    return true;
}

}  // namespace tlsrelay::relay

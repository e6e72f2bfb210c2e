// One delivery attempt of one queued message, as Postfix's smtp(8) makes it: the
// recipients are grouped by next hop, each group tries the route's addresses in
// order until every recipient has a final answer or the addresses run out, and every
// outcome is logged in Postfix's status-line format.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "dns/resolver.hpp"
#include "queue/queue.hpp"
#include "relay/connection_cache.hpp"
#include "relay/route.hpp"
#include "relay/throttle.hpp"
#include "smtp/client_session.hpp"
#include "sts/rpt_report.hpp"
#include "tls/dane.hpp"

namespace tlsrelay::relay {

class MtaSts;

// Told about every outcome and TLS session of deliveries (relay/monitor.hpp: metrics
// and certificate warnings); delivery works the same without one.
class DeliveryObserver {
public:
    virtual ~DeliveryObserver() = default;
    // One status line; status is "sent", "deferred" or "bounced"; destination the
    // next-hop domain (the recipient's domain when it has no next hop).
    virtual void outcome(const std::string& destination, std::string_view status, const std::string& dsn) = 0;
    // A finished handshake with a server of this next hop, whether the policy accepted it or not.
    virtual void tls_session(const NextHop& hop, const smtp::ServerId& server, const smtp::TlsSession& session) = 0;
    // For TLS-RPT (relay/tls_rpt.hpp): one session, or one MX host the policy skipped,
    // of a recipient domain delivered by MX.
    virtual void tls_report(const sts::RptSession&) {}
};

struct DeliveryContext {
    const config::Config& config;
    dns::Resolver& resolver;
    boost::asio::ssl::context* tls;  // client context; null: TLS engine unavailable
    std::vector<boost::asio::ip::tcp::endpoint> self;
    // Builds the TLS plan for (next hop, server); the default uses the main level.
    std::function<smtp::TlsPlan(const std::string& nexthop, const smtp::ServerId& server)> plan;
    ConnectionCache* cache = nullptr;  // null: every delivery opens its own connection
    // The plan again once the DANE decision for the server is known (when plan() gave
    // level dane / dane-only); null: DANE is not resolved and such a plan is used as is.
    std::function<smtp::TlsPlan(const std::string& nexthop, const smtp::ServerId& server,
                                const tls::DaneDecision& dane)> dane_plan;
    // MTA-STS (relay/mta_sts.hpp) after DANE; null: never looked up.
    MtaSts* mta_sts = nullptr;
    DeliveryObserver* observer = nullptr;  // null: nobody watches
    // Dead destinations (relay/throttle.hpp), told every next hop's outcome; null: every
    // delivery is tried.
    Throttle* throttle = nullptr;
};

struct AttemptTimes {
    std::chrono::system_clock::time_point arrival, start;
};

// Updates the recipients of env in place (state, attempts, next attempt, DSN,
// reason) and logs one status line per recipient tried.
boost::asio::awaitable<void> attempt_delivery(DeliveryContext& ctx, queue::Envelope& env,
                                              const std::string& content);

// When every due recipient of env goes to a destination the throttle holds dead, defers
// them as attempt_delivery would ("delivery temporarily suspended: ..."), logging each,
// and returns true; the content is not needed. Otherwise changes nothing and returns
// false (a live destination, or a recipient without a next hop). Runs without waiting.
bool defer_if_suspended(DeliveryContext& ctx, queue::Envelope& env);

// A TCP connection to t within timeout; nullopt with error set ("Connection timed out", ...).
boost::asio::awaitable<std::optional<boost::asio::ip::tcp::socket>> connect_target(
    const Target& t, std::chrono::milliseconds timeout, std::string& error);

// Postfix's smtp_trouble.c: a failure of the whole session (smtp_site_fail,
// smtp_sess_fail, a lost connection), not of the message or one recipient, that leaves
// recipients deferred marks the destination as failing; a hard one bounces instead.
std::optional<HopStatus> site_failure(const smtp::Failure& f);

// Postfix's delay formatting (src/util/format_tv.c with the default resolution).
std::string format_delay(double seconds);

}  // namespace tlsrelay::relay

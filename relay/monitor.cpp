#include "relay/monitor.hpp"

#include <chrono>

#include "relay/nexthop.hpp"
#include "relay/tls_rpt.hpp"
#include "support/log.hpp"
#include "tls/fingerprint.hpp"

namespace tlsrelay::relay {

namespace {

const char* const received_metric = "tlsrelay_messages_received_total";
const char* const outcome_metric = "tlsrelay_delivery_outcomes_total";
const char* const policy_failure_metric = "tlsrelay_tls_policy_failures_total";
const char* const session_metric = "tlsrelay_tls_sessions_total";
const char* const queue_metric = "tlsrelay_queue_messages";
const char* const oldest_metric = "tlsrelay_queue_oldest_message_age_seconds";

std::int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::optional<CertObservation> observe_certificate(const tls::Policy& policy, const NextHop& hop,
                                                   const smtp::ServerId& server, X509* leaf) {
    if (!leaf || !policy.source) return std::nullopt;
    CertObservation o;
    o.destination = hop.domain;
    o.host = server.hostname;
    o.server = server.tls_name_addr_port();
    o.not_after = not_after_of(leaf).value_or(0);
    o.key_sha256 = tls::hex_colons(tls::public_key_digest(leaf, "sha256"));
    if (policy.level == tls::Level::fingerprint) {
        o.pinned = true;
        o.pin_matched = tls::fingerprint_matches(leaf, policy.fingerprints, policy.digest);
        o.pin_line = policy.source->key + " fingerprint match=" +
                     tls::hex_colons(tls::public_key_digest(leaf, policy.digest));
        o.pin_source = policy.source->file + ":" + std::to_string(policy.source->line);
    }
    return o;
}

Monitor::Monitor(const config::Config& config, PolicyOf policy_of, std::function<QueueState()> queue)
    : config_(config), policy_of_(std::move(policy_of)), queue_(std::move(queue)), watch_(registry_) {
    using metrics::Type;
    registry_.define(received_metric, Type::counter, "Messages accepted with 250 after DATA.");
    registry_.add(received_metric, {}, 0);
    registry_.define(outcome_metric, Type::counter,
                     "Delivery status lines, one per recipient and attempt, by status (sent, deferred, "
                     "bounced), DSN class (2, 4, 5) and next-hop domain.");
    registry_.define(policy_failure_metric, Type::counter,
                     "Recipients deferred because TLS did not meet the policy (DSN 4.7.4 or 4.7.5), "
                     "by next-hop domain.");
    registry_.define(session_metric, Type::counter,
                     "TLS sessions established by deliveries, by Postfix's adjective and protocol.");
    registry_.define(queue_metric, Type::gauge, "Messages in the queue, held ones included.");
    registry_.define(oldest_metric, Type::gauge, "Age of the oldest message in the queue; 0 when empty.");
}

void Monitor::received() { registry_.add(received_metric, {}); }

void Monitor::outcome(const std::string& destination, std::string_view status, const std::string& dsn) {
    registry_.add(outcome_metric, {{"status", std::string(status)},
                                   {"dsn_class", dsn.substr(0, 1)},
                                   {"destination", destination}});
    if (status == "deferred" && (dsn == "4.7.4" || dsn == "4.7.5"))
        registry_.add(policy_failure_metric, {{"destination", destination}});
}

void Monitor::tls_session(const NextHop& hop, const smtp::ServerId& server, const smtp::TlsSession& session) {
    registry_.add(session_metric, {{"adjective", session.adjective}, {"protocol", session.protocol}});
    check_certificate(hop, server, session);
}

void Monitor::tls_report(const sts::RptSession& session) {
    if (tls_rpt_) tls_rpt_->record(session);
}

void Monitor::check_certificate(const NextHop& hop, const smtp::ServerId& server, const smtp::TlsSession& session) {
    auto o = observe_certificate(policy_of_(hop.text), hop, server, session.leaf.get());
    if (!o) return;
    auto window = std::chrono::duration_cast<std::chrono::seconds>(config_.watch.expiry_warning);
    for (const auto& w : watch_.observe(*o, now_us() / 1'000'000, window)) support::log_warning("smtp", w);
}

std::string Monitor::render() {
    QueueState q = queue_ ? queue_() : QueueState{};
    registry_.set(queue_metric, {}, static_cast<double>(q.messages));
    double age = q.oldest_arrival_us ? static_cast<double>(now_us() - *q.oldest_arrival_us) / 1e6 : 0;
    registry_.set(oldest_metric, {}, age < 0 ? 0 : age);
    return registry_.render();
}

}  // namespace tlsrelay::relay

// What `serve` tells the metrics endpoint and the certificate watch: messages
// received, one count per delivery status line, TLS sessions by Postfix's adjective
// and protocol, TLS policy deferrals, and, for destinations with a policy-table
// entry, the certificate checks of relay/cert_watch.hpp (their warnings are logged
// as Postfix logs warnings: "warning: ..."), and the TLS-RPT counts (relay/tls_rpt.hpp).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "relay/cert_watch.hpp"
#include "relay/delivery.hpp"
#include "relay/metrics.hpp"
#include "tls/effective_policy.hpp"

namespace tlsrelay::relay {

struct QueueState {
    std::size_t messages = 0;
    std::optional<std::int64_t> oldest_arrival_us;
};

class TlsRpt;

class Monitor : public DeliveryObserver {
public:
    using PolicyOf = std::function<tls::Policy(const std::string& nexthop)>;
    // config is read on every event (a reload changes watch.expiry_warning); policy_of
    // gives the policy in force for a next hop; queue the state at scrape time.
    Monitor(const config::Config& config, PolicyOf policy_of, std::function<QueueState()> queue);

    void received();  // a message accepted with 250
    void outcome(const std::string& destination, std::string_view status, const std::string& dsn) override;
    void tls_session(const NextHop& hop, const smtp::ServerId& server, const smtp::TlsSession& session) override;
    void tls_report(const sts::RptSession& session) override;  // counted by the TLS-RPT part
    void set_tls_rpt(TlsRpt* tls_rpt) { tls_rpt_ = tls_rpt; }
    // The certificate checks alone (tls_session does them too): for active checks.
    void check_certificate(const NextHop& hop, const smtp::ServerId& server, const smtp::TlsSession& session);
    std::string render();  // the exposition text, queue gauges as of now

private:
    const config::Config& config_;
    PolicyOf policy_of_;
    std::function<QueueState()> queue_;
    metrics::Registry registry_;
    CertWatch watch_;
    TlsRpt* tls_rpt_ = nullptr;
};

// What a session with a policy destination shows, for CertWatch; nullopt for an
// anonymous session or a destination without a policy-table entry.
std::optional<CertObservation> observe_certificate(const tls::Policy& policy, const NextHop& hop,
                                                   const smtp::ServerId& server, X509* leaf);

}  // namespace tlsrelay::relay

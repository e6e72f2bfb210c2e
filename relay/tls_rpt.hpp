// TLS-RPT (RFC 8460) in the daemon: delivery reports each TLS session of a recipient
// domain delivered by MX (with the policy applied: DANE "tlsa", MTA-STS "sts" or
// "no-policy-found"); the counts of the current UTC day are kept per policy domain in
// <queue.dir>/tls-rpt/ (written every few seconds, so a restart keeps them); after UTC
// midnight, or at once on the control socket's `tls-rpt-send`, each finished period of
// a domain that publishes a "_smtp._tls" record is mailed as a gzip report to its
// rua=mailto: addresses through our own queue (relay/tls_rpt_mail.hpp).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <map>
#include <ostream>
#include <set>
#include <string>

#include "config/config.hpp"
#include "dns/resolver.hpp"
#include "queue/queue.hpp"
#include "queue/record_store.hpp"
#include "smtp/client_session.hpp"
#include "sts/policy.hpp"
#include "sts/rpt_report.hpp"
#include "tls/dane.hpp"

namespace tlsrelay::relay {

// The policy applied to a session with server mx_host (section 4.4): DANE when its
// records were in use, else the MTA-STS policy when one applied and no policy-table
// entry (plan_source) overrode it, else no-policy-found.
sts::RptPolicy applied_rpt_policy(const tls::DaneDecision* dane, const sts::Policy* sts,
                                  const std::string& plan_source, const std::string& mx_host);
// A failure detail for server; result type from reason (sts::result_type_for).
sts::RptFailure rpt_failure(const smtp::ServerId& server, const std::string& sending_ip,
                            const std::string& reason);

// For tlsrelay probe: the domain's "_smtp._tls" record and where its reports would go.
boost::asio::awaitable<void> print_rpt_status(dns::Resolver& resolver, const config::Config& config,
                                              std::string domain, std::ostream& out);

class TlsRpt {
  public:
    using Queued = std::function<void(const queue::Envelope&)>;
    // config is read at each use (reload may switch tls_rpt.enabled); queued is told of
    // each report message committed to spool (the scheduler's add).
    TlsRpt(boost::asio::io_context& io, const config::Config& config, dns::Resolver& resolver,
           boost::asio::thread_pool& disk, queue::Spool& spool, Queued queued);

    // Counts one session (nothing when tls_rpt.enabled is false).
    void record(const sts::RptSession& session);
    void start();  // loads the stored periods, then saves and sends on its own
    void stop();   // saves what is unsaved (blocking) and ends the loop
    // Closes every open period now and sends all finished ones: the reply line of
    // `tls-rpt-send` ("ok" or "error: ...", LF included).
    boost::asio::awaitable<std::string> send_now();

  private:
    boost::asio::awaitable<void> loop();
    boost::asio::awaitable<void> save();
    boost::asio::awaitable<std::size_t> send_finished(bool close_all);
    enum class Sent { queued, not_wanted, retry };
    boost::asio::awaitable<Sent> send_period(sts::RptPeriod period);
    void close(const std::string& domain, std::int64_t end);
    boost::asio::awaitable<bool> submit(const sts::RptPeriod& period, const std::vector<std::string>& to);

    boost::asio::io_context& io_;
    const config::Config& config_;
    dns::Resolver& resolver_;
    boost::asio::thread_pool& disk_;
    queue::Spool& spool_;
    Queued queued_;
    queue::RecordStore store_;
    boost::asio::steady_timer timer_;
    std::map<std::string, sts::RptPeriod> open_;     // domain -> the period now counted
    std::map<std::string, std::int64_t> next_begin_; // domain -> end of its last closed period
    std::vector<sts::RptPeriod> finished_;           // closed, not yet in the store
    std::set<std::string> dirty_;                    // domains whose open period is unsaved
    bool sending_ = false, stopping_ = false;
    std::int64_t next_send_ = 0;  // unix seconds: look for finished periods then
};

}  // namespace tlsrelay::relay

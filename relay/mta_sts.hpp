// MTA-STS in delivery (RFC 8461 section 5): for a next hop that is the recipient
// domain itself, looked up by MX, the policy in force (the cache in the spool, the
// "_mta-sts" TXT record, the HTTPS fetch) and what it does to each MX host's TLS plan
// (sts/precedence.hpp). A failed lookup or fetch never defers mail: a valid cached
// policy, or else the default level, applies.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "dns/resolver.hpp"
#include "queue/record_store.hpp"
#include "relay/nexthop.hpp"
#include "smtp/client_session.hpp"
#include "sts/cache.hpp"
#include "sts/fetch.hpp"

namespace tlsrelay::relay {

// RFC 8461 section 5 applies to the recipient domain: only a next hop that is that
// domain, looked up by MX (no [host], relayhost or route), gets its policy.
bool sts_applies(const NextHop& hop, std::string_view rcpt_domain);

// The policy for one delivery group; apply() is asked once per MX host.
class StsGuard {
  public:
    StsGuard() = default;  // no policy: changes nothing
    StsGuard(std::string domain, sts::Policy policy, const config::Config* config);
    // Adjusts plan for server (enforce: the verify plan against the MX host name);
    // returns the 4.7.5 reason when the MX host must be skipped (enforce, not in the
    // policy's mx list). Call it with a valid plan, after DANE was resolved.
    std::optional<std::string> apply(smtp::TlsPlan& plan, const std::string& nexthop,
                                     const smtp::ServerId& server) const;
    // The policy in force (mode enforce or testing); null: none.
    const sts::Policy* policy() const { return policy_ ? &*policy_ : nullptr; }
    // Without a policy: why the last fetch for the domain failed, for TLS-RPT
    // ("MTA-STS policy fetch failed: ...", "MTA-STS policy invalid: ...", "MTA-STS
    // policy server certificate not verified: ..."); "" when none failed.
    std::string fetch_failure;

  private:
    std::string domain_;
    std::optional<sts::Policy> policy_;
    const config::Config* config_ = nullptr;
};

class MtaSts {
  public:
    // config is read at each use (a reload may switch mta_sts.enabled); disk runs the
    // cache writes; the cache lives in <queue.dir>/mta-sts/.
    MtaSts(const boost::asio::any_io_executor& ex, const config::Config& config,
           dns::Resolver& resolver, boost::asio::thread_pool& disk);
    // Nothing is looked up when mta_sts.enabled is false or the hop does not qualify.
    boost::asio::awaitable<StsGuard> guard_for(const NextHop& hop, std::string rcpt_domain);
    // Cancels background refreshes (shutdown).
    void stop();

  private:
    boost::asio::awaitable<std::optional<sts::Policy>> policy_for(std::string domain);
    boost::asio::awaitable<std::optional<sts::CachedPolicy>> refresh(std::string domain,
                                                                     std::string id);
    boost::asio::awaitable<void> refresh_in_background(std::string domain, std::string id);
    void start_refresh(const std::string& domain, const std::string& id);
    std::optional<sts::CachedPolicy> cached(const std::string& domain);
    boost::asio::ssl::context* https_context();

    boost::asio::any_io_executor ex_;
    const config::Config& config_;
    dns::Resolver& resolver_;
    boost::asio::thread_pool& disk_;
    queue::RecordStore store_;
    std::unique_ptr<boost::asio::ssl::context> https_;
    std::map<std::string, sts::CachedPolicy> memo_;
    std::map<std::string, bool> loaded_;                // read from the spool once
    std::map<std::string, std::int64_t> failed_until_;  // no new fetch before (unix seconds)
    std::map<std::string, std::string> fetch_failure_;  // why the last fetch failed (StsGuard::fetch_failure)
    std::map<std::string, std::shared_ptr<boost::asio::cancellation_signal>> refreshing_;
};

// The id of the domain's valid "_mta-sts" record; nullopt when there is none. why
// (optional) gets a description for probe and logs.
std::optional<std::string> sts_record_id(const dns::TxtResult& txt, std::string* why = nullptr);

// HTTPS client context for policy fetches: tls.ca_file / ca_path or the system store.
std::unique_ptr<boost::asio::ssl::context> make_https_context(const config::Config& config,
                                                              std::string& error);

// For tlsrelay probe: the TXT record, a fresh fetch of the policy (no cache) and
// whether each MX host is in its mx list.
boost::asio::awaitable<void> print_sts_status(dns::Resolver& resolver, const config::Config& config,
                                              std::string domain, std::vector<std::string> mx_hosts,
                                              std::ostream& out);

}  // namespace tlsrelay::relay

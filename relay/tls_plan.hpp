// Turns the TLS policy (tls/: the table entry for the next hop, else the main level)
// into the plan for one connection: SNI, protocols, ciphers, the names or
// fingerprints to check, and the judgement of the finished handshake with
// Postfix's outcome plus our explanation.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "smtp/client_session.hpp"
#include "tls/decision.hpp"
#include "tls/effective_policy.hpp"
#include "tls/policy_table.hpp"

namespace tlsrelay::relay {

// tls.ca_file / tls.ca_path, or the system store when both are empty; false with
// error set when they cannot be loaded.
bool load_trust_store(boost::asio::ssl::context& ctx, const config::Config& c, std::string& error);

// null with error set when the trust store or settings cannot be loaded.
std::unique_ptr<boost::asio::ssl::context> make_client_tls(const config::Config& c, std::string& error);

// The facts every finished handshake has: host, address, chain result.
tls::SessionFacts handshake_facts(SSL* ssl, const smtp::ServerId& server);

// What a finished handshake shows under a policy: the chain result, names and
// fingerprint matches, for tls::decide.
tls::SessionFacts session_facts(SSL* ssl, const tls::Policy& policy, const std::string& nexthop_domain,
                                const smtp::ServerId& server);

// The plan for an evaluated policy: what TlsPlanner::plan does after the lookup
// (MTA-STS uses it for its verify plan).
smtp::TlsPlan plan_for_policy(const tls::Policy& policy, boost::asio::ssl::context* ctx, const std::string& nexthop,
                              const smtp::ServerId& server);

class TlsPlanner {
public:
    TlsPlanner(const config::Config& c, boost::asio::ssl::context* ctx);
    // dane: the DANE decision for this server when its policy is dane / dane-only
    // (relay/dane.hpp dane_plan); without it such a plan keeps level dane / dane-only.
    smtp::TlsPlan plan(const std::string& nexthop, const smtp::ServerId& server,
                       const tls::DaneDecision* dane = nullptr) const;
    const std::vector<config::Problem>& problems() const { return problems_; }
    const tls::PolicyTable& table() const { return table_; }
    const tls::MainSettings& main() const { return main_; }

private:
    tls::PolicyTable table_;
    tls::MainSettings main_;
    boost::asio::ssl::context* ctx_;
    std::vector<config::Problem> problems_;
};

}  // namespace tlsrelay::relay

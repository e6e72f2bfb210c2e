// tlsrelay's configuration: the TOML file of spec/interface.md with every key's
// default. Loading never throws for a bad file: every problem is collected as
// FILE:LINE: message, so check-config can print them all.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "support/network.hpp"
#include "tls/policy.hpp"

namespace tlsrelay::config {

using Duration = std::chrono::milliseconds;

struct ServerConfig {
    std::vector<std::string> listen{"127.0.0.1:2525"};
    std::string hostname;  // default: the system host name
    std::vector<support::Network> allow_networks;
    std::uint64_t max_message_size = 50ull << 20;
    std::uint32_t max_recipients = 1000;
    std::uint32_t max_connections = 1000;
    // smtpd_client_connection_count_limit; clients in allow_networks are exempt, as
    // Postfix's smtpd_client_event_limit_exceptions = $mynetworks. 0: no limit.
    std::uint32_t max_connections_per_client = 50;
    std::string user;
    std::filesystem::path tls_cert, tls_key;
    // Beyond interface.md, for tests and hardening (Postfix smtpd_timeout and friends).
    Duration command_timeout = std::chrono::minutes(5);
    Duration data_timeout = std::chrono::minutes(10);
    std::uint32_t hard_error_limit = 20;
};

struct QueueConfig {
    std::filesystem::path dir = "spool";
    Duration max_lifetime = std::chrono::hours(24 * 5);
    Duration retry_min = std::chrono::minutes(5);
    Duration retry_max = std::chrono::hours(1);
};

struct DnsConfig {
    std::vector<std::string> servers;
    bool dnssec = false;
};

struct Route {
    std::string destination;
    std::string nexthop;
    int line = 0;
};

struct DeliveryConfig {
    std::uint16_t port = 25;
    std::string relayhost;
    std::string helo_name;
    Duration connect_timeout = std::chrono::seconds(30);
    std::uint32_t max_connections_per_domain = 20;
    std::vector<Route> routes;
};

struct TlsConfig {
    std::string security_level = "may";
    std::filesystem::path policy_file;
    std::filesystem::path ca_file, ca_path;
    std::vector<std::string> verify_cert_match{"hostname"};
    std::vector<std::string> secure_cert_match{"nexthop", "dot-nexthop"};
    std::string fingerprint_digest = "sha256";
    std::vector<std::string> fingerprint_cert_match;
    std::string protocols = ">=TLSv1";
    std::string mandatory_protocols = ">=TLSv1.2";
    std::string mandatory_ciphers = "medium";
    std::vector<std::string> exclude_ciphers;
    std::string servername;
    std::vector<tls::PolicyEntry> policy;  // inline [[tls.policy]] entries
};

struct LogConfig {
    std::string target = "stderr";  // or "syslog"
    std::string format = "postfix"; // or "json"
};

// Certificate early warnings for policy-table destinations (beyond Postfix).
struct WatchConfig {
    Duration expiry_warning = std::chrono::hours(24 * 14);  // 0: no expiry warnings
    Duration interval = Duration::zero();                    // active checks; 0: off
};

// [tls_rpt]: how RFC 8460 reports name their sender; empty: derived from server.hostname
// (organization and submitter the host name, contact postmaster@hostname).
struct TlsRptConfig {
    std::string organization_name;
    std::string contact_info;
    std::string submitter;
};

struct Config {
    ServerConfig server;
    QueueConfig queue;
    DnsConfig dns;
    DeliveryConfig delivery;
    TlsConfig tls;
    LogConfig log;
    std::string metrics_listen;
    WatchConfig watch;
    bool mta_sts_enabled = false;
    bool tls_rpt_enabled = false;
    TlsRptConfig tls_rpt;  // the report's names; tls_rpt_enabled switches reporting on
    std::filesystem::path file;  // where it was read from; empty for the embedded defaults
};

struct Problem {
    std::string file;
    int line = 0;
    std::string message;
    std::string to_string() const;  // "FILE:LINE: message"
};

struct LoadResult {
    Config config;
    std::vector<Problem> problems;
    bool ok() const { return problems.empty(); }
};

// The embedded defaults: a working relay on 127.0.0.1:2525 with its queue in ./spool.
Config defaults();

// Reads a TOML file; relative paths in it resolve against its folder.
LoadResult load_file(const std::filesystem::path& file);
// The same from text (source names the file in problems; base_dir resolves paths).
LoadResult load_string(std::string_view text, const std::string& source,
                       const std::filesystem::path& base_dir);

// "30s" "5m" "4h" "5d" "1w" "250ms", or a bare number of seconds.
std::optional<Duration> parse_duration(std::string_view text);
// A byte count, or "50MiB", "10MB", "512KiB", "1GiB", "100k" ...
std::optional<std::uint64_t> parse_size(std::string_view text);

}  // namespace tlsrelay::config

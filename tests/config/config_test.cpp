#include "config/config.hpp"

#include <gtest/gtest.h>

namespace tlsrelay::config {
namespace {

using namespace std::chrono_literals;

LoadResult load(std::string_view text) { return load_string(text, "t.toml", "/etc/tlsrelay"); }

TEST(Config, EmptyFileIsTheEmbeddedDefaults) {
    auto r = load("");
    ASSERT_TRUE(r.ok());
    const auto& c = r.config;
    EXPECT_EQ(c.server.listen, std::vector<std::string>{"127.0.0.1:2525"});
    EXPECT_FALSE(c.server.hostname.empty());
    ASSERT_EQ(c.server.allow_networks.size(), 2u);
    EXPECT_EQ(c.server.allow_networks[0].to_string(), "127.0.0.0/8");
    EXPECT_EQ(c.server.max_message_size, 50ull << 20);
    EXPECT_EQ(c.server.max_recipients, 1000u);
    EXPECT_EQ(c.server.max_connections_per_client, 50u);
    EXPECT_EQ(c.queue.dir, "/etc/tlsrelay/spool");
    EXPECT_EQ(c.queue.max_lifetime, 120h);
    EXPECT_EQ(c.queue.retry_min, 5min);
    EXPECT_EQ(c.queue.retry_max, 1h);
    EXPECT_EQ(c.delivery.port, 25);
    EXPECT_EQ(c.delivery.connect_timeout, 30s);
    EXPECT_EQ(c.delivery.max_connections_per_domain, 20u);
    EXPECT_EQ(c.watch.expiry_warning, 14 * 24h);
    EXPECT_EQ(c.watch.interval, 0s);
    EXPECT_EQ(c.tls.security_level, "may");
    EXPECT_EQ(c.tls.verify_cert_match, std::vector<std::string>{"hostname"});
    EXPECT_EQ(c.tls.secure_cert_match, (std::vector<std::string>{"nexthop", "dot-nexthop"}));
    EXPECT_EQ(c.tls.fingerprint_digest, "sha256");
    EXPECT_EQ(c.tls.mandatory_protocols, ">=TLSv1.2");
    EXPECT_EQ(c.log.format, "postfix");
}

TEST(Config, ReadsEveryInterfaceKey) {
    auto r = load(R"(
[server]
listen = ["127.0.0.1:2600", "[::1]:2600"]
hostname = "relay.example.com"
allow_networks = ["10.0.0.0/8"]
max_message_size = "10MiB"
max_recipients = 5
max_connections = 7
max_connections_per_client = 0
user = "tlsrelay"
tls_cert = "cert.pem"
tls_key = "/abs/key.pem"
[queue]
dir = "/var/spool/tlsrelay"
max_lifetime = "2d"
retry_min = "30s"
retry_max = "4h"
[dns]
servers = ["127.0.0.53:53"]
dnssec = true
[delivery]
port = 2525
relayhost = "[mx.example.net]:587"
helo_name = "out.example.com"
connect_timeout = "10s"
max_connections_per_domain = 3
[[delivery.route]]
destination = "partner.example"
nexthop = "[mx.partner.example]:587"
[tls]
security_level = "verify"
policy_file = "tls_policy"
fingerprint_digest = "sha1"
exclude_ciphers = ["aNULL", "RC4"]
[[tls.policy]]
destination = "example.com"
level = "secure"
match = ["nexthop", "dot-nexthop"]
[log]
format = "json"
[metrics]
listen = "127.0.0.1:9325"
[watch]
expiry_warning = "3d"
interval = "1h"
[mta_sts]
enabled = true
[tls_rpt]
enabled = true
organization_name = "Example Org"
contact_info = "tls-reports@example.org"
submitter = "example.org"
)");
    for (const auto& p : r.problems) ADD_FAILURE() << p.to_string();
    const auto& c = r.config;
    EXPECT_EQ(c.server.listen.size(), 2u);
    EXPECT_EQ(c.server.max_message_size, 10ull << 20);
    EXPECT_EQ(c.server.max_connections_per_client, 0u);
    EXPECT_EQ(c.server.allow_networks.size(), 1u);
    EXPECT_EQ(c.server.tls_cert, "/etc/tlsrelay/cert.pem");
    EXPECT_EQ(c.server.tls_key, "/abs/key.pem");
    EXPECT_EQ(c.queue.dir, "/var/spool/tlsrelay");
    EXPECT_EQ(c.queue.retry_min, 30s);
    EXPECT_TRUE(c.dns.dnssec);
    EXPECT_EQ(c.delivery.port, 2525);
    ASSERT_EQ(c.delivery.routes.size(), 1u);
    EXPECT_EQ(c.delivery.routes[0].nexthop, "[mx.partner.example]:587");
    EXPECT_EQ(c.tls.policy_file, "/etc/tlsrelay/tls_policy");
    ASSERT_EQ(c.tls.policy.size(), 1u);
    EXPECT_EQ(c.tls.policy[0].level, "secure");
    EXPECT_EQ(c.tls.policy[0].line, 35);  // the [[tls.policy]] header
    EXPECT_TRUE(c.mta_sts_enabled);
    EXPECT_TRUE(c.tls_rpt_enabled);
    EXPECT_EQ(c.tls_rpt.organization_name, "Example Org");
    EXPECT_EQ(c.tls_rpt.contact_info, "tls-reports@example.org");
    EXPECT_EQ(c.tls_rpt.submitter, "example.org");
    EXPECT_EQ(c.metrics_listen, "127.0.0.1:9325");
    EXPECT_EQ(c.watch.expiry_warning, std::chrono::hours(72));
    EXPECT_EQ(c.watch.interval, std::chrono::hours(1));
}

struct BadCase {
    const char* text;
    int line;
    const char* message_part;
};

TEST(Config, ProblemsNameLineAndKey) {
    const BadCase cases[] = {
        {"[server]\nlisten = \"x\"\n", 2, "\"server.listen\" must be an array of strings"},
        {"[server]\nbogus = 1\n", 2, "unknown key \"server.bogus\""},
        {"bogus = 1\n", 1, "unknown key \"bogus\""},
        {"[nope]\n", 1, "unknown key \"nope\""},
        {"[queue]\nretry_min = \"5 parsecs\"\n", 2, "\"queue.retry_min\" is not a duration"},
        {"[queue]\nretry_min = 5\n", 2, "\"queue.retry_min\" must be a duration"},
        {"[server]\nmax_message_size = \"lots\"\n", 2, "\"server.max_message_size\" is not a size"},
        {"[server]\nmax_recipients = 0\n", 2, "must be between 1 and"},
        {"[delivery]\nport = 70000\n", 2, "\"delivery.port\" must be between 1 and 65535"},
        {"[server]\nallow_networks = [\"10.0.0.1/8\"]\n", 2, "has a bad entry"},
        {"[dns]\ndnssec = \"yes\"\n", 2, "\"dns.dnssec\" must be true or false"},
        {"\n\n[tls]\nsecurity_level = \"strict\"\n", 4, "\"tls.security_level\" must be one of"},
        {"[log]\nformat = \"xml\"\n", 2, "\"log.format\" must be one of"},
        {"[[tls.policy]]\nlevel = \"secure\"\n", 1, "needs a destination"},
        {"[[tls.policy]]\ndestination = \"a\"\nlevel = \"may\"\nmatc = [\"x\"]\n", 4,
         "unknown key \"tls.policy.matc\""},
        {"[watch]\nexpiry_warning = \"soon\"\n", 2, "\"watch.expiry_warning\" is not a duration"},
        {"[watch]\n\ninterval = 60\n", 3, "\"watch.interval\" must be a duration"},
        {"[watch]\nexpiry = \"1d\"\n", 2, "unknown key \"watch.expiry\""},
        {"[queue]\ndir = \"\"\n", 2, "\"queue.dir\" must not be empty"},  // found by fuzz_config
        {"[server\n", 1, ""},  // TOML syntax error
    };
    for (const auto& c : cases) {
        auto r = load(c.text);
        ASSERT_FALSE(r.ok()) << c.text;
        EXPECT_EQ(r.problems[0].file, "t.toml");
        EXPECT_EQ(r.problems[0].line, c.line) << c.text;
        EXPECT_NE(r.problems[0].message.find(c.message_part), std::string::npos)
            << c.text << " -> " << r.problems[0].message;
    }
}

TEST(Config, ReportsEveryProblemNotJustTheFirst) {
    auto r = load("[server]\nbogus = 1\nmax_recipients = \"x\"\n[queue]\nretry_max = \"1y\"\n");
    EXPECT_EQ(r.problems.size(), 3u);
}

TEST(Config, SecurityLevelInAnyCase) {
    auto r = load("[tls]\nsecurity_level = \"Encrypt\"\n");  // as Postfix's name_code()
    EXPECT_TRUE(r.problems.empty());
    EXPECT_EQ(r.config.tls.security_level, "encrypt");
}

TEST(Config, Durations) {
    EXPECT_EQ(parse_duration("30s"), 30s);
    EXPECT_EQ(parse_duration("5m"), 5min);
    EXPECT_EQ(parse_duration("4h"), 4h);
    EXPECT_EQ(parse_duration("5d"), 120h);
    EXPECT_EQ(parse_duration("1w"), 168h);
    EXPECT_EQ(parse_duration("250ms"), 250ms);
    EXPECT_EQ(parse_duration("12"), 12s);
    for (const char* bad : {"", "s", "5x", "-5s", "5 s", "1.5h"})
        EXPECT_FALSE(parse_duration(bad)) << bad;
}

TEST(Config, Sizes) {
    EXPECT_EQ(parse_size("50MiB"), 50ull << 20);
    EXPECT_EQ(parse_size("10MB"), 10'000'000u);
    EXPECT_EQ(parse_size("512KiB"), 512u << 10);
    EXPECT_EQ(parse_size("1GiB"), 1ull << 30);
    EXPECT_EQ(parse_size("100k"), 100u << 10);
    EXPECT_EQ(parse_size("1234"), 1234u);
    for (const char* bad : {"", "MiB", "5 MiB", "5XB", "-1", "99999999999999999999"})
        EXPECT_FALSE(parse_size(bad)) << bad;
}

}  // namespace
}  // namespace tlsrelay::config

#include "relay/mta_sts.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <chrono>

#include "config/policy_file.hpp"
#include "relay/tls_plan.hpp"
#include "smtp/tls_summary.hpp"
#include "sts/precedence.hpp"
#include "sts/record.hpp"
#include "support/log.hpp"
#include "support/on_pool.hpp"
#include "tls/names.hpp"

namespace tlsrelay::relay {
namespace {

namespace asio = boost::asio;

constexpr std::int64_t fetch_retry_seconds = 300;  // after a failed fetch, per domain

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

sts::FetchOptions fetch_options() {
    sts::FetchOptions o;
    o.user_agent = std::string("tlsrelay/") + TLSRELAY_VERSION;
    return o;
}

std::string describe(const sts::Policy& p) {
    return "mode " + std::string(sts::to_string(p.mode)) + ", max_age " +
           std::to_string(p.max_age) + (p.mx.empty() ? std::string() : ", mx " + sts::mx_list(p));
}

// Verify against the MX host name alone (RFC 8461 4.2), with the main protocol and
// cipher settings of a mandatory level.
tls::Policy verify_policy(const config::Config& c, const std::string& nexthop) {
    tls::MainSettings main = config::main_settings(c.tls, c.dns.dnssec);
    main.level = tls::Level::verify;
    main.verify_cert_match = {"hostname"};
    main.tafiles.clear();
    return tls::policy_for(tls::PolicyTable{}, nexthop, main);
}

// Our suggestion "match=X would pass" is advice for the policy table, not for MTA-STS.
std::string without_match_hint(std::string detail) {
    if (auto at = detail.find("; match="); at != std::string::npos) detail.erase(at);
    return detail;
}

// testing: the plan stays; after the handshake, log what enforce would have decided.
void add_testing_check(smtp::TlsPlan& plan, tls::Policy enforce, const std::string& nexthop,
                       const smtp::ServerId& server, const std::string& who) {
    plan.verify = [base = plan.verify, enforce = std::move(enforce),
                   domain = tls::nexthop_domain(nexthop), server, who](SSL* ssl) {
        smtp::TlsVerdict v =
            base ? base(ssl) : smtp::TlsVerdict{true, smtp::default_adjective(ssl), "", {}};
        tls::Decision d = tls::decide(enforce, session_facts(ssl, enforce, domain, server));
        v.log_lines.push_back(
            who + " (mode testing): " +
            (d.failed() ? "enforce would defer: " + d.reason + ": " + without_match_hint(d.detail)
                        : std::string("enforce would deliver (Verified)")));
        return v;
    };
}

// For TLS-RPT: the failure in the words sts::result_type_for reads (RFC 8460 4.3.2.2).
std::string fetch_failure_text(const sts::FetchResult& r, const sts::PolicyParse& parsed) {
    if (r.body) return "MTA-STS policy invalid: " + parsed.error;
    if (r.error.starts_with("certificate not verified"))
        return "MTA-STS policy server certificate not verified: " + r.error;
    return "MTA-STS policy fetch failed: " + r.error;
}

}  // namespace

bool sts_applies(const NextHop& hop, std::string_view rcpt_domain) {
    return hop.mx_lookup && hop.text == hop.domain && hop.domain == rcpt_domain;
}

StsGuard::StsGuard(std::string domain, sts::Policy policy, const config::Config* config)
    : domain_(std::move(domain)), policy_(std::move(policy)), config_(config) {}

std::optional<std::string> StsGuard::apply(smtp::TlsPlan& plan, const std::string& nexthop,
                                           const smtp::ServerId& server) const {
    if (!policy_) return std::nullopt;
    const bool allowed = sts::policy_allows_mx(*policy_, server.hostname);
    const sts::Effect e = sts::effect_for(policy_->mode, !plan.source.empty(), plan.level, allowed);
    const std::string who = "MTA-STS policy for " + domain_;
    const std::string not_listed = "MX host " + server.hostname +
                                   " is not in the policy's mx list (" + sts::mx_list(*policy_) +
                                   ")";
    if (e.check_only) {
        if (!allowed)
            support::log_info("smtp",
                              who + " (mode testing): " + not_listed + "; enforce would skip it");
        else
            add_testing_check(plan, verify_policy(*config_, nexthop), nexthop, server, who);
        return std::nullopt;
    }
    if (!e.note.empty()) return std::nullopt;  // mode none, or the table / DANE decides
    if (e.skip) return who + ": " + not_listed;
    if (e.to_verify)
        plan = plan_for_policy(verify_policy(*config_, nexthop), plan.context, nexthop, server);
    plan.verify = [base = plan.verify, who](SSL* ssl) {
        smtp::TlsVerdict v = base(ssl);
        if (!v.ok) v.detail = who + (v.detail.empty() ? "" : ": " + without_match_hint(v.detail));
        return v;
    };
    return std::nullopt;
}

std::optional<std::string> sts_record_id(const dns::TxtResult& txt, std::string* why) {
    auto say = [&](std::string text) {
        if (why) *why = std::move(text);
    };
    if (txt.status == dns::Status::nxdomain || txt.status == dns::Status::nodata) {
        say("none");
        return std::nullopt;
    }
    if (txt.status != dns::Status::ok) {
        say("lookup failed: " + std::string(dns::postfix_text(txt.status)));
        return std::nullopt;
    }
    auto choice = sts::choose_txt_record(txt.records);
    if (!choice.record) {
        say(choice.problem.empty() ? "none" : choice.problem);
        return std::nullopt;
    }
    say("id " + choice.record->id);
    return choice.record->id;
}

std::unique_ptr<asio::ssl::context> make_https_context(const config::Config& config,
                                                       std::string& error) {
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    if (!load_trust_store(*ctx, config, error)) return nullptr;
    ctx->set_verify_mode(asio::ssl::verify_peer);
    return ctx;
}

MtaSts::MtaSts(const asio::any_io_executor& ex, const config::Config& config,
               dns::Resolver& resolver, asio::thread_pool& disk)
    : ex_(ex),
      config_(config),
      resolver_(resolver),
      disk_(disk),
      store_(config.queue.dir, "mta-sts") {}

asio::awaitable<StsGuard> MtaSts::guard_for(const NextHop& hop, std::string rcpt_domain) {
    if (!config_.mta_sts_enabled || !sts_applies(hop, rcpt_domain)) co_return StsGuard{};
    const std::string domain = hop.domain;
    std::optional<sts::Policy> policy = co_await policy_for(domain);
    if (!policy) {
        StsGuard none;
        if (auto f = fetch_failure_.find(domain); f != fetch_failure_.end()) none.fetch_failure = f->second;
        co_return none;
    }
    if (policy->mode == sts::Mode::none) co_return StsGuard{};
    support::log_info("smtp", "MTA-STS policy for " + domain + ": " + describe(*policy));
    co_return StsGuard(domain, std::move(*policy), &config_);
}

asio::awaitable<std::optional<sts::Policy>> MtaSts::policy_for(std::string domain) {
    std::optional<sts::CachedPolicy> have = cached(domain);
    const std::string owner = "_mta-sts." + domain;
    dns::TxtResult txt = co_await resolver_.txt(owner);
    std::string why;
    std::optional<std::string> id = sts_record_id(txt, &why);
    if (!id && txt.status == dns::Status::ok)
        support::log_warning("smtp", "MTA-STS record " + owner + " not usable: " + why);
    switch (sts::next_step(have, id, unix_now())) {
        case sts::Step::no_policy:
            co_return std::nullopt;
        case sts::Step::use_cached:
            co_return have->policy;
        case sts::Step::use_cached_and_refresh:
            start_refresh(domain, *id);
            co_return have->policy;
        case sts::Step::fetch_now:
            break;
    }
    const std::string new_id = *id;
    std::optional<sts::CachedPolicy> fresh = co_await refresh(domain, new_id);
    if (!fresh) co_return std::nullopt;
    co_return fresh->policy;
}

std::optional<sts::CachedPolicy> MtaSts::cached(const std::string& domain) {
    if (!loaded_[domain]) {
        loaded_[domain] = true;
        if (auto bytes = store_.read(domain))
            if (auto c = sts::parse_cached(*bytes)) memo_[domain] = std::move(*c);
    }
    auto it = memo_.find(domain);
    if (it == memo_.end()) return std::nullopt;
    return it->second;
}

asio::ssl::context* MtaSts::https_context() {
    if (!https_) {
        std::string error;
        https_ = make_https_context(config_, error);
        if (!https_) support::log_warning("smtp", "MTA-STS: " + error);
    }
    return https_.get();
}

asio::awaitable<std::optional<sts::CachedPolicy>> MtaSts::refresh(std::string domain,
                                                                  std::string id) {
    const std::int64_t now = unix_now();
    if (auto f = failed_until_.find(domain); f != failed_until_.end() && f->second > now)
        co_return std::nullopt;
    asio::ssl::context* ctx = https_context();
    if (!ctx) co_return std::nullopt;
    const std::string url = sts::policy_url(domain);
    const sts::FetchOptions options = fetch_options();
    sts::FetchResult r = co_await sts::fetch_policy_text(resolver_, *ctx, domain, options);
    sts::PolicyParse parsed;
    if (r.body) parsed = sts::parse_policy(*r.body);
    if (!parsed.policy) {
        failed_until_[domain] = now + fetch_retry_seconds;
        fetch_failure_[domain] = fetch_failure_text(r, parsed);
        support::log_warning("smtp", "MTA-STS policy fetch for " + domain + " failed: " + url +
                                         ": " +
                                         (r.body ? "not a policy: " + parsed.error : r.error));
        co_return std::nullopt;
    }
    sts::CachedPolicy c{id, now, *r.body, std::move(*parsed.policy)};
    failed_until_.erase(domain);
    fetch_failure_.erase(domain);
    memo_[domain] = c;
    support::log_info(
        "smtp", "MTA-STS policy for " + domain + " fetched: " + describe(c.policy) + ", id " + id);
    // Named first: GCC 12 mishandles temporaries passed by value inside co_await.
    auto write = [this, domain, file = sts::format_cached(c)] {
        return store_.write(domain, file);
    };
    std::error_code ec = co_await support::on_pool(disk_, write);
    if (ec)
        support::log_warning("smtp",
                             "MTA-STS: cannot save the policy for " + domain + ": " + ec.message());
    co_return c;
}

asio::awaitable<void> MtaSts::refresh_in_background(std::string domain, std::string id) {
    co_await refresh(domain, id);
}

void MtaSts::start_refresh(const std::string& domain, const std::string& id) {
    if (refreshing_.contains(domain)) return;
    auto signal = std::make_shared<asio::cancellation_signal>();
    refreshing_[domain] = signal;
    asio::co_spawn(
        ex_, refresh_in_background(domain, id),
        asio::bind_cancellation_slot(signal->slot(), [this, domain, signal](std::exception_ptr) {
            if (auto it = refreshing_.find(domain); it != refreshing_.end() && it->second == signal)
                refreshing_.erase(it);
        }));
}

void MtaSts::stop() {
    auto running = refreshing_;
    for (auto& [domain, signal] : running) signal->emit(asio::cancellation_type::terminal);
}

asio::awaitable<void> print_sts_status(dns::Resolver& resolver, const config::Config& config,
                                       std::string domain, std::vector<std::string> mx_hosts,
                                       std::ostream& out) {
    out << "MTA-STS (mta_sts.enabled = " << (config.mta_sts_enabled ? "true" : "false") << "):\n";
    const std::string owner = "_mta-sts." + domain;
    dns::TxtResult txt = co_await resolver.txt(owner);
    std::string why;
    std::optional<std::string> id = sts_record_id(txt, &why);
    out << "  TXT " << owner << ": " << why << "\n";
    for (const auto& r : txt.records) out << "    \"" << r << "\"\n";
    if (!id) co_return;
    std::string error;
    auto ctx = make_https_context(config, error);
    if (!ctx) {
        out << "  policy: " << error << "\n";
        co_return;
    }
    const sts::FetchOptions options = fetch_options();
    sts::FetchResult r = co_await sts::fetch_policy_text(resolver, *ctx, domain, options);
    sts::PolicyParse parsed;
    if (r.body) parsed = sts::parse_policy(*r.body);
    out << "  policy " << sts::policy_url(domain) << ": ";
    if (!parsed.policy) {
        out << "not usable: " << (r.body ? parsed.error : r.error) << "\n";
        co_return;
    }
    out << describe(*parsed.policy) << "\n";
    for (const auto& host : mx_hosts)
        out << "    MX " << host << ": "
            << (sts::policy_allows_mx(*parsed.policy, host)
                    ? "in the policy's mx list"
                    : "not in the policy's mx list (enforce skips it)")
            << "\n";
}

}  // namespace tlsrelay::relay

#include "relay/tls_rpt.hpp"

#include <openssl/rand.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdio>

#include "relay/tls_rpt_mail.hpp"
#include "sts/gzip.hpp"
#include "sts/rpt_record.hpp"
#include "support/log.hpp"
#include "support/on_pool.hpp"

namespace tlsrelay::relay {
namespace {

namespace asio = boost::asio;

constexpr auto save_interval = std::chrono::seconds(2);
constexpr std::int64_t send_delay = 300;            // after UTC midnight: let the day's last sessions end
constexpr std::int64_t give_up_after = 7 * 86400;   // a report DNS never let us address

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string key_of(const sts::RptPeriod& p) { return std::to_string(p.begin) + "." + p.domain; }

std::string random_hex(std::size_t bytes) {
    std::vector<unsigned char> buf(bytes);
    if (RAND_bytes(buf.data(), static_cast<int>(bytes)) != 1)  // still unique enough with the time in the id
        for (std::size_t i = 0; i < bytes; ++i) buf[i] = static_cast<unsigned char>(std::rand());
    std::string out;
    char two[3];
    for (auto b : buf) {
        std::snprintf(two, sizeof two, "%02x", b);
        out += two;
    }
    return out;
}

std::vector<std::string> sts_policy_strings(const sts::Policy& p) {
    std::vector<std::string> out{"version: STSv1", "mode: " + std::string(sts::to_string(p.mode))};
    for (const auto& mx : p.mx) out.push_back("mx: " + mx);
    out.push_back("max_age: " + std::to_string(p.max_age));
    return out;
}

std::string or_default(const std::string& value, const std::string& fallback) {
    return value.empty() ? fallback : value;
}

}  // namespace

sts::RptPolicy applied_rpt_policy(const tls::DaneDecision* dane, const sts::Policy* sts,
                                  const std::string& plan_source, const std::string& mx_host) {
    if (dane && dane->has_tlsa()) {
        sts::RptPolicy p{"tlsa", {}, {mx_host}};
        for (const auto& r : dane->usable) p.strings.push_back(tls::to_string(r));
        return p;
    }
    if (sts && sts->mode != sts::Mode::none && plan_source.empty())
        return {"sts", sts_policy_strings(*sts), sts->mx};
    return {"no-policy-found", {}, {}};
}

sts::RptFailure rpt_failure(const smtp::ServerId& server, const std::string& sending_ip, const std::string& reason) {
    return {std::string(sts::to_string(sts::result_type_for(reason))), sending_ip, server.hostname,
            server.address.is_unspecified() ? std::string() : server.address.to_string(), reason.substr(0, 500)};
}

asio::awaitable<void> print_rpt_status(dns::Resolver& resolver, const config::Config& config, std::string domain,
                                       std::ostream& out) {
    out << "TLS-RPT (tls_rpt.enabled = " << (config.tls_rpt_enabled ? "true" : "false") << "):\n";
    const std::string owner = "_smtp._tls." + domain;
    dns::TxtResult txt = co_await resolver.txt(owner);
    out << "  TXT " << owner << ": ";
    if (txt.status == dns::Status::nxdomain || txt.status == dns::Status::nodata) {
        out << "none (no reports)\n";
        co_return;
    }
    if (txt.status != dns::Status::ok) {
        out << "lookup failed: " << dns::postfix_text(txt.status) << "\n";
        co_return;
    }
    auto choice = sts::choose_rpt_record(txt.records);
    if (choice.record)
        out << "reports to " << sts::describe(*choice.record)
            << (choice.record->https.empty() ? "" : " (https: not supported, only mailto:)") << "\n";
    else
        out << (choice.problem.empty() ? std::string("none") : choice.problem) << " (no reports)\n";
    for (const auto& r : txt.records) out << "    \"" << r << "\"\n";
}

TlsRpt::TlsRpt(asio::io_context& io, const config::Config& config, dns::Resolver& resolver,
               asio::thread_pool& disk, queue::Spool& spool, Queued queued)
    : io_(io), config_(config), resolver_(resolver), disk_(disk), spool_(spool), queued_(std::move(queued)),
      store_(config.queue.dir, "tls-rpt"), timer_(io) {}

void TlsRpt::record(const sts::RptSession& session) {
    if (!config_.tls_rpt_enabled || stopping_) return;
    const std::int64_t now = unix_now();
    auto it = open_.find(session.policy_domain);
    if (it != open_.end() && it->second.end <= now) {  // the day ended before the loop noticed
        close(session.policy_domain, it->second.end);
        it = open_.end();
    }
    if (it == open_.end()) {
        const std::int64_t day = sts::utc_day_begin(now);
        sts::RptPeriod p{session.policy_domain, std::max(day, next_begin_[session.policy_domain]), day + 86400, {}};
        if (!queue::RecordStore::valid_key(key_of(p))) return;  // not a domain we can name a record after
        it = open_.emplace(session.policy_domain, std::move(p)).first;
    }
    it->second.add(session);
    dirty_.insert(session.policy_domain);
}

void TlsRpt::close(const std::string& domain, std::int64_t end) {
    auto it = open_.find(domain);
    if (it == open_.end()) return;
    it->second.end = end;
    next_begin_[domain] = end;
    finished_.push_back(std::move(it->second));
    open_.erase(it);
    dirty_.erase(domain);
}

void TlsRpt::start() {
    for (const auto& key : store_.keys()) {  // once, before the event loop runs deliveries
        auto bytes = store_.read(key);
        auto period = bytes ? sts::parse_period(*bytes) : std::nullopt;
        if (!period || key_of(*period) != key) {
            support::log_warning("tls-rpt", "ignoring corrupt record " + (store_.dir() / key).string());
            continue;
        }
        auto& open = open_[period->domain];
        if (period->end > unix_now() && period->begin >= open.begin) open = std::move(*period);
    }
    for (auto it = open_.begin(); it != open_.end();)  // only today's are counted on
        it = it->second.domain.empty() ? open_.erase(it) : std::next(it);
    next_send_ = unix_now();
    asio::co_spawn(io_, loop(), asio::detached);
}

void TlsRpt::stop() {
    stopping_ = true;
    timer_.cancel();
    for (const auto& domain : dirty_) store_.write(key_of(open_[domain]), sts::serialize(open_[domain]));
    for (const auto& p : finished_) store_.write(key_of(p), sts::serialize(p));
    dirty_.clear();
    finished_.clear();
}

asio::awaitable<void> TlsRpt::loop() {
    while (!stopping_) {
        timer_.expires_after(save_interval);
        boost::system::error_code ec;
        co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (stopping_) break;
        co_await save();
        const std::int64_t now = unix_now();
        if (now < next_send_ || sending_ || !config_.tls_rpt_enabled) continue;
        next_send_ = sts::utc_day_begin(now) + 86400 + send_delay;
        sending_ = true;
        co_await send_finished(false);
        sending_ = false;
    }
}

asio::awaitable<void> TlsRpt::save() {
    std::vector<std::pair<std::string, std::string>> records;
    for (const auto& domain : dirty_) records.emplace_back(key_of(open_[domain]), sts::serialize(open_[domain]));
    for (const auto& p : finished_) records.emplace_back(key_of(p), sts::serialize(p));
    dirty_.clear();
    finished_.clear();
    if (records.empty()) co_return;
    co_await support::on_pool(disk_, [&] {
        for (const auto& [key, bytes] : records)
            if (auto ec = store_.write(key, bytes))
                support::log_warning("tls-rpt", "cannot save " + (store_.dir() / key).string() + ": " + ec.message());
        return 0;
    });
}

asio::awaitable<std::string> TlsRpt::send_now() {
    if (!config_.tls_rpt_enabled) co_return "error: tls_rpt.enabled is false\n";
    for (asio::steady_timer wait(io_); sending_;) {  // the daily run is under way: after it
        wait.expires_after(std::chrono::milliseconds(50));
        co_await wait.async_wait(asio::use_awaitable);
    }
    sending_ = true;
    std::size_t sent = co_await send_finished(true);
    sending_ = false;
    support::log_info("tls-rpt", "report run requested: " + std::to_string(sent) + " report(s) queued");
    co_return "ok\n";
}

asio::awaitable<std::size_t> TlsRpt::send_finished(bool close_all) {
    const std::int64_t now = unix_now();
    std::vector<std::string> domains;
    for (const auto& [domain, p] : open_)
        if (p.end <= now || (close_all && p.begin <= now)) domains.push_back(domain);
    for (const auto& d : domains) close(d, std::min(open_[d].end, now + 1));
    co_await save();
    auto keys = co_await support::on_pool(disk_, [&] { return store_.keys(); });
    std::size_t sent = 0;
    for (const auto& key : keys) {
        auto bytes = co_await support::on_pool(disk_, [&] { return store_.read(key); });
        auto period = bytes ? sts::parse_period(*bytes) : std::nullopt;
        if (!period || key_of(*period) != key) continue;  // corrupt: left for a person, logged at start
        auto open = open_.find(period->domain);
        if (open != open_.end() && open->second.begin == period->begin) continue;  // still counting
        const bool fresh = period->end > now - give_up_after;
        Sent result = co_await send_period(*period);
        if (result == Sent::queued) ++sent;
        if (result != Sent::retry || !fresh) co_await support::on_pool(disk_, [&] { return store_.remove(key); });
    }
    co_return sent;
}

// retry: the report waits for the next run (DNS or the spool failed).
asio::awaitable<TlsRpt::Sent> TlsRpt::send_period(sts::RptPeriod period) {
    if (period.sessions() == 0) co_return Sent::not_wanted;
    const std::string owner = "_smtp._tls." + period.domain;
    dns::TxtResult txt = co_await resolver_.txt(owner);
    if (txt.status != dns::Status::ok && txt.status != dns::Status::nxdomain && txt.status != dns::Status::nodata) {
        support::log_info("tls-rpt", owner + ": lookup failed: " + std::string(dns::postfix_text(txt.status)) +
                                         "; the report waits for the next run");
        co_return Sent::retry;
    }
    auto choice = sts::choose_rpt_record(txt.records);
    if (!choice.record) {
        if (!choice.problem.empty()) support::log_info("tls-rpt", owner + ": " + choice.problem);
        co_return Sent::not_wanted;  // no TLS-RPT: nobody asked for a report
    }
    for (const auto& uri : choice.record->https)
        support::log_info("tls-rpt", period.domain + ": rua " + uri + " not supported (mailto: only)");
    if (choice.record->mailto.empty()) co_return Sent::not_wanted;
    bool queued = co_await submit(period, choice.record->mailto);
    co_return queued ? Sent::queued : Sent::retry;
}

asio::awaitable<bool> TlsRpt::submit(const sts::RptPeriod& period, const std::vector<std::string>& to) {
    const auto& host = config_.server.hostname;
    ReportMail m;
    m.submitter = or_default(config_.tls_rpt.submitter, host);
    m.policy_domain = period.domain;
    m.unique_id = random_hex(8);
    m.report_id = std::to_string(period.begin) + "." + m.unique_id + "@" + m.submitter;
    m.from = or_default(config_.tls_rpt.contact_info, "postmaster@" + host);
    m.to = to;
    m.begin = period.begin;
    m.end = period.end - 1;
    m.now = unix_now();
    sts::ReportMeta meta{or_default(config_.tls_rpt.organization_name, host), m.from, m.report_id};
    m.gzip_report = sts::gzip(sts::report_json(period, meta));
    const std::string text = make_report_mail(m);
    std::string error;
    auto env = co_await support::on_pool(disk_, [&]() -> std::optional<queue::Envelope> {
        std::error_code ec;
        auto draft = spool_.begin(ec);
        queue::Envelope e;
        for (const auto& address : to) {
            queue::Recipient r;
            r.address = address;
            e.recipients.push_back(r);
        }
        e.client = "local";
        if (!ec && !(ec = draft->append(text)) && !(ec = draft->commit(e))) return spool_.envelope(draft->id());
        error = ec.message();
        return std::nullopt;
    });
    if (!env) {
        support::log_warning("tls-rpt", "cannot queue the report for " + period.domain + ": " + error);
        co_return false;
    }
    std::string rcpts;
    for (const auto& r : to) rcpts += (rcpts.empty() ? "<" : ", <") + r + ">";
    support::log_info("tls-rpt", env->id + ": report " + m.report_id + " for " + period.domain + " (" +
                                     std::to_string(period.sessions()) + " sessions) to " + rcpts);
    queued_(*env);
    co_return true;
}

}  // namespace tlsrelay::relay

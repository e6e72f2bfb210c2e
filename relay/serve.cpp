// `tlsrelay serve`: wires config, queue and SMTP server together and runs the event
// loop until SIGTERM/SIGINT. Commits run on a small thread pool (group commit in queue/).
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <iostream>

#include "queue/queue.hpp"
#include "relay/cli.hpp"
#include "relay/control.hpp"
#include "relay/dane.hpp"
#include "relay/mta_sts.hpp"
#include "relay/metrics_http.hpp"
#include "relay/monitor.hpp"
#include "relay/scheduler.hpp"
#include "relay/spool_sink.hpp"
#include "relay/tls_plan.hpp"
#include "relay/tls_rpt.hpp"
#include "relay/watch_probe.hpp"
#include "smtp/server.hpp"
#include "support/fd_limit.hpp"
#include "support/log.hpp"

namespace tlsrelay::relay {
namespace {

namespace asio = boost::asio;

smtp::ServerOptions server_options(const config::Config& c) {
    smtp::ServerOptions o;
    o.hostname = c.server.hostname;
    o.max_message_size = c.server.max_message_size;
    o.max_recipients = c.server.max_recipients;
    o.max_connections = c.server.max_connections;
    o.max_connections_per_client = c.server.max_connections_per_client;
    o.hard_error_limit = c.server.hard_error_limit;
    o.command_timeout = c.server.command_timeout;
    o.data_timeout = c.server.data_timeout;
    o.allow_networks = c.server.allow_networks;
    return o;
}

std::shared_ptr<asio::ssl::context> server_tls(const config::Config& c, std::string& error) {
    if (c.server.tls_cert.empty() && c.server.tls_key.empty()) return nullptr;
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3);
    boost::system::error_code ec;
    ctx->use_certificate_chain_file(c.server.tls_cert.string(), ec);
    if (!ec)
        ctx->use_private_key_file(c.server.tls_key.string(), asio::ssl::context::pem, ec);
    if (ec) {
        error = "cannot load server.tls_cert/tls_key: " + ec.message();
        return nullptr;
    }
    return ctx;
}

// The spool was opened (and maybe created) as root; the user must own it to commit mail.
// lchown: a symlink planted in the spool must not hand anything else over.
bool give_spool_to(const std::filesystem::path& spool, const struct passwd& pw, std::string& error) {
    std::error_code ec;
    auto own = [&](const std::filesystem::path& p) {
        if (::lchown(p.c_str(), pw.pw_uid, pw.pw_gid) == 0) return true;
        error = "cannot give " + p.string() + " to user \"" + pw.pw_name + "\": " +
                std::strerror(errno);
        return false;
    };
    if (!own(spool)) return false;
    for (std::filesystem::recursive_directory_iterator it(spool, ec), end; !ec && it != end;
         it.increment(ec))
        if (!own(it->path())) return false;
    if (ec) error = "cannot walk " + spool.string() + ": " + ec.message();
    return !ec;
}

bool drop_privileges(const std::string& user, const std::filesystem::path& spool,
                     std::string& error) {
    if (user.empty() || ::geteuid() != 0) return true;
    struct passwd* pw = ::getpwnam(user.c_str());
    if (!pw) {
        error = "unknown user \"" + user + "\"";
        return false;
    }
    if (!give_spool_to(spool, *pw, error)) return false;
    if (::initgroups(pw->pw_name, pw->pw_gid) != 0 || ::setgid(pw->pw_gid) != 0 ||
        ::setuid(pw->pw_uid) != 0) {
        error = "cannot switch to user \"" + user + "\"";
        return false;
    }
    return true;
}

// What a reload cannot change in a running process: it keeps the running values and
// says so (Postfix likewise needs a restart for some settings).
void keep_restart_only_settings(const config::Config& running, config::Config& fresh) {
    auto keep = [](const char* key, auto& now, const auto& then) {
        if (now == then) return;
        support::log_warning("master", std::string("reload: ") + key + " changes need a restart; kept");
        now = then;
    };
    keep("server.listen", fresh.server.listen, running.server.listen);
    keep("metrics.listen", fresh.metrics_listen, running.metrics_listen);
    keep("server.user", fresh.server.user, running.server.user);
    keep("server.tls_cert", fresh.server.tls_cert, running.server.tls_cert);
    keep("server.tls_key", fresh.server.tls_key, running.server.tls_key);
    keep("queue.dir", fresh.queue.dir, running.queue.dir);
    keep("dns.servers", fresh.dns.servers, running.dns.servers);
    keep("log.target", fresh.log.target, running.log.target);
    keep("log.format", fresh.log.format, running.log.format);
}

int fail(const std::string& why) {
    support::log_error("master", why);
    return 1;
}

}  // namespace

int run_serve(const Args& args) {
    auto cfg = load_config_or_report(args);
    if (!cfg) return 1;
    support::log_setup(cfg->log.target == "syslog" ? support::LogTarget::syslog
                                                   : support::LogTarget::stderr_stream,
                       cfg->log.format == "json" ? support::LogFormat::json
                                                 : support::LogFormat::postfix,
                       cfg->server.hostname);
    auto opened = queue::open_spool(cfg->queue.dir);
    if (!opened.spool) return fail("queue directory " + cfg->queue.dir.string() + ": " + opened.error);
    for (const auto& note : opened.notes) support::log_warning("queue", note);
    std::string error;
    auto tls = server_tls(*cfg, error);
    if (!error.empty()) return fail(error);

    asio::io_context io(1);
    // The disk pool's threads inherit SCHED_BATCH from this thread while they are
    // created: a pool thread woken by a finished fsync then waits for the next tick
    // instead of preempting the network thread on its core (Linux skips wakeup
    // preemption for batch threads). Failing that, they simply run as normal threads.
    sched_param normal{};
    sched_setscheduler(0, SCHED_BATCH, &normal);
    asio::thread_pool disk(16);  // concurrent fsyncs share journal commits
    sched_setscheduler(0, SCHED_OTHER, &normal);
    // This thread runs io: its log lines are written together, a burst at a time.
    support::log_batch_on(io.get_executor());
    struct BatchEnd {
        ~BatchEnd() { support::log_batch_end(); }
    } batch_end;
    dns::ResolverOptions dns_options;
    dns_options.servers = cfg->dns.servers;
    dns_options.dnssec = cfg->dns.dnssec;
    auto resolver = dns::make_resolver(io.get_executor(), dns_options, error);
    if (!resolver) return fail("DNS resolver: " + error);
    std::shared_ptr<asio::ssl::context> client_tls = make_client_tls(*cfg, error);
    if (!client_tls) support::log_warning("smtp", error + ": disabling TLS support");
    auto planner = std::make_unique<TlsPlanner>(*cfg, client_tls.get());
    for (const auto& p : planner->problems()) support::log_warning("smtp", p.to_string());
    ConnectionCache connections(io.get_executor());
    DeliveryContext delivery{*cfg, *resolver, client_tls.get(), {}, {}, &connections, {}};
    delivery.dane_plan = [&](const std::string& nexthop, const smtp::ServerId& s, const tls::DaneDecision& d) {
        return dane_plan(*planner, nexthop, s, d);
    };
    delivery.plan = [&](const std::string& nexthop, const smtp::ServerId& s) {
        return planner->plan(nexthop, s);
    };
    MtaSts mta_sts(io.get_executor(), *cfg, *resolver, disk);
    delivery.mta_sts = &mta_sts;
    Scheduler scheduler(io, *opened.spool, disk, delivery);
    Monitor monitor(
        *cfg, [&](const std::string& hop) { return tls::policy_for(planner->table(), hop, planner->main()); },
        [&] { return QueueState{scheduler.queued(), scheduler.oldest_arrival_us()}; });
    delivery.observer = &monitor;
    TlsRpt tls_rpt(io, *cfg, *resolver, disk, *opened.spool, [&](const queue::Envelope& e) { scheduler.add(e); });
    monitor.set_tls_rpt(&tls_rpt);
    SpoolSink sink(*opened.spool, disk, [&](const queue::Envelope& e, std::optional<std::string> content) {
        monitor.received();
        scheduler.add(e, std::move(content));
    });
    if (auto short_of = support::raise_fd_limit(cfg->server.max_connections + 256))  // + spool, DNS, deliveries
        support::log_warning("master", *short_of);
    smtp::Server server(io, server_options(*cfg), sink, tls);
    if (!server.listen(cfg->server.listen, error)) return fail(error);
    MetricsServer metrics(io, [&] { return monitor.render(); });
    if (!cfg->metrics_listen.empty() && !metrics.listen(cfg->metrics_listen, error)) return fail(error);
    ActiveWatch watch(io, delivery, [&] { return watched_nexthops(planner->table()); },
                      [&](const NextHop& h, const smtp::ServerId& s, const smtp::TlsSession& t) {
                          monitor.check_certificate(h, s, t);
                      });
    delivery.self = server.local_endpoints();
    scheduler.start();
    ControlServer control(io, scheduler);  // before the drop, which hands its socket over
    control.on_tls_rpt_send([&] { return tls_rpt.send_now(); });
    if (std::string why; !control.listen(cfg->queue.dir, why))
        support::log_warning("queue", why + "; queue commands change the spool files instead");
    if (!drop_privileges(cfg->server.user, cfg->queue.dir, error)) return fail(error);
    server.start();
    control.start();
    metrics.start();
    watch.start();
    tls_rpt.start();

    asio::signal_set hup(io, SIGHUP);
    asio::signal_set stop(io, SIGTERM, SIGINT);
    stop.async_wait([&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        support::log_info("master", "terminating on signal " + std::to_string(sig));
        server.stop();
        metrics.stop();
        watch.stop();
        scheduler.stop();
        control.stop();
        connections.close_all();
        mta_sts.stop();
        tls_rpt.stop();
        hup.cancel();
    });
    // Contexts replaced by a reload stay alive: a connection may still be about to use one.
    std::vector<std::shared_ptr<asio::ssl::context>> retired_tls;
    auto reload = [&] {
        if (!args.config) return support::log_info("master", "reload: running on the embedded defaults");
        auto fresh = config::load_file(*args.config);
        for (const auto& p : fresh.problems) support::log_warning("master", "reload refused: " + p.to_string());
        if (!fresh.ok()) return;
        std::string why;
        std::shared_ptr<asio::ssl::context> fresh_tls = make_client_tls(fresh.config, why);
        if (!fresh_tls) return support::log_warning("master", "reload refused: " + why);
        keep_restart_only_settings(*cfg, fresh.config);
        retired_tls.push_back(client_tls);
        client_tls = fresh_tls;
        *cfg = fresh.config;  // delivery reads it through DeliveryContext::config
        planner = std::make_unique<TlsPlanner>(*cfg, client_tls.get());
        for (const auto& p : planner->problems()) support::log_warning("smtp", p.to_string());
        delivery.tls = client_tls.get();
        server.set_options(server_options(*cfg));
        support::log_info("master", "reload -- configuration " + *args.config);
    };
    std::function<void()> wait_hup = [&] {
        hup.async_wait([&](const boost::system::error_code& ec, int) {
            if (ec) return;
            reload();
            wait_hup();
        });
    };
    wait_hup();
    std::string where = args.config ? *args.config : "(embedded defaults)";
    support::log_info("master", std::string("daemon started -- version ") + TLSRELAY_VERSION +
                                    ", configuration " + where);
    // run() returns once stopped: acceptors, sessions and signal waits are gone. A
    // commit still on the disk pool finishes there, then resumes its session here.
    io.run();
    disk.join();
    io.restart();
    io.run();
    return 0;
}

}  // namespace tlsrelay::relay

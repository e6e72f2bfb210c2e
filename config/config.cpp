#include "config/config.hpp"

#include <unistd.h>

#include <cctype>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "tls/text.hpp"

namespace tlsrelay::config {
namespace {

struct Context {
    std::string source;
    std::filesystem::path base_dir;
    std::vector<Problem>& problems;

    void report(const toml::source_region& where, std::string message) {
        problems.push_back({source, static_cast<int>(where.begin.line), std::move(message)});
    }
};

// Reads the keys of one table, reporting wrong types, bad values and (at finish)
// keys nobody asked for.
class Section {
public:
    Section(Context& ctx, const toml::table& table, std::string name)
        : ctx_(ctx), table_(table), name_(std::move(name)) {}

    template <class F>
    void with(std::string_view key, F&& read) {
        seen_.insert(std::string(key));
        if (const toml::node* node = table_.get(key)) read(*node);
    }

    void text(std::string_view key, std::string& out) {
        with(key, [&](const toml::node& n) {
            if (auto v = n.value<std::string>(); v && n.is_string())
                out = *v;
            else
                bad_type(key, n, "a string");
        });
    }
    // A path that must name something: "" is a bad value, not "unset".
    void required_path(std::string_view key, std::filesystem::path& out) {
        path(key, out);
        if (out.empty())
            with(key, [&](const toml::node& n) { bad_value(key, n, "must not be empty"); });
    }
    void path(std::string_view key, std::filesystem::path& out) {
        std::string s;
        bool present = false;
        with(key, [&](const toml::node&) { present = true; });
        if (!present) return;
        s = out.string();
        text(key, s);
        out = s.empty() ? std::filesystem::path() : ctx_.base_dir / s;
    }
    void text_list(std::string_view key, std::vector<std::string>& out) {
        with(key, [&](const toml::node& n) {
            const toml::array* arr = n.as_array();
            if (!arr) return bad_type(key, n, "an array of strings");
            std::vector<std::string> items;
            for (const auto& item : *arr) {
                if (!item.is_string()) return bad_type(key, item, "an array of strings");
                items.push_back(*item.value<std::string>());
            }
            out = std::move(items);
        });
    }
    void boolean(std::string_view key, bool& out) {
        with(key, [&](const toml::node& n) {
            if (n.is_boolean())
                out = *n.value<bool>();
            else
                bad_type(key, n, "true or false");
        });
    }
    template <class Int>
    void integer(std::string_view key, Int& out, std::int64_t min, std::int64_t max) {
        with(key, [&](const toml::node& n) {
            if (!n.is_integer()) return bad_type(key, n, "an integer");
            auto v = *n.value<std::int64_t>();
            if (v < min || v > max)
                return bad_value(key, n, "must be between " + std::to_string(min) + " and " +
                                             std::to_string(max));
            out = static_cast<Int>(v);
        });
    }
    void duration(std::string_view key, Duration& out) {
        with(key, [&](const toml::node& n) {
            if (!n.is_string()) return bad_type(key, n, "a duration string such as \"30s\"");
            auto d = parse_duration(*n.value<std::string>());
            if (!d) return bad_value(key, n, "is not a duration such as \"30s\", \"5m\", \"4h\", \"5d\"");
            out = *d;
        });
    }
    void size(std::string_view key, std::uint64_t& out) {
        with(key, [&](const toml::node& n) {
            std::optional<std::uint64_t> v;
            if (n.is_integer() && *n.value<std::int64_t>() >= 0)
                v = static_cast<std::uint64_t>(*n.value<std::int64_t>());
            else if (n.is_string())
                v = parse_size(*n.value<std::string>());
            if (!v || *v == 0) return bad_value(key, n, "is not a size such as 10485760 or \"50MiB\"");
            out = *v;
        });
    }
    const toml::table* subtable(std::string_view key) {
        seen_.insert(std::string(key));
        const toml::node* n = table_.get(key);
        if (!n) return nullptr;
        if (!n->is_table()) {
            bad_type(key, *n, "a table");
            return nullptr;
        }
        return n->as_table();
    }
    const toml::array* array_of_tables(std::string_view key) {
        seen_.insert(std::string(key));
        const toml::node* n = table_.get(key);
        if (!n) return nullptr;
        if (!n->is_array_of_tables()) {
            bad_type(key, *n, "an array of tables ([[" + qualified(key) + "]])");
            return nullptr;
        }
        return n->as_array();
    }
    void finish() {
        for (const auto& [key, node] : table_)
            if (!seen_.count(std::string(key.str())))
                ctx_.report(key.source(), "unknown key \"" + qualified(key.str()) + "\"");
    }
    void bad_value(std::string_view key, const toml::node& n, const std::string& why) {
        ctx_.report(n.source(), "\"" + qualified(key) + "\" " + why);
    }

private:
    std::string qualified(std::string_view key) const {
        return name_.empty() ? std::string(key) : name_ + "." + std::string(key);
    }
    void bad_type(std::string_view key, const toml::node& n, const std::string& expected) {
        ctx_.report(n.source(), "\"" + qualified(key) + "\" must be " + expected);
    }

    Context& ctx_;
    const toml::table& table_;
    std::string name_;
    std::set<std::string> seen_;
};

void read_server(Context& ctx, Section& s, ServerConfig& out) {
    s.text_list("listen", out.listen);
    s.text("hostname", out.hostname);
    std::vector<std::string> nets;
    bool given = false;
    s.with("allow_networks", [&](const toml::node&) { given = true; });
    s.text_list("allow_networks", nets);
    if (given) {
        out.allow_networks.clear();
        for (const auto& text : nets) {
            std::string why;
            if (auto n = support::parse_network(text, &why))
                out.allow_networks.push_back(*n);
            else
                s.with("allow_networks", [&](const toml::node& node) {
                    s.bad_value("allow_networks", node, "has a bad entry: " + why);
                });
        }
    }
    s.size("max_message_size", out.max_message_size);
    s.integer("max_recipients", out.max_recipients, 1, 10'000'000);
    s.integer("max_connections", out.max_connections, 1, 1'000'000);
    s.integer("max_connections_per_client", out.max_connections_per_client, 0, 1'000'000);
    s.text("user", out.user);
    s.path("tls_cert", out.tls_cert);
    s.path("tls_key", out.tls_key);
    s.duration("command_timeout", out.command_timeout);
    s.duration("data_timeout", out.data_timeout);
    s.integer("hard_error_limit", out.hard_error_limit, 1, 1'000'000);
    (void)ctx;
}

void read_queue(Section& s, QueueConfig& out) {
    s.required_path("dir", out.dir);
    s.duration("max_lifetime", out.max_lifetime);
    s.duration("retry_min", out.retry_min);
    s.duration("retry_max", out.retry_max);
}

void read_delivery(Context& ctx, Section& s, DeliveryConfig& out) {
    s.integer("port", out.port, 1, 65535);
    s.text("relayhost", out.relayhost);
    s.text("helo_name", out.helo_name);
    s.duration("connect_timeout", out.connect_timeout);
    s.integer("max_connections_per_domain", out.max_connections_per_domain, 1, 100000);
    if (const toml::array* routes = s.array_of_tables("route")) {
        for (const auto& node : *routes) {
            Section r(ctx, *node.as_table(), "delivery.route");
            Route route;
            route.line = static_cast<int>(node.source().begin.line);
            r.text("destination", route.destination);
            r.text("nexthop", route.nexthop);
            if (route.destination.empty())
                ctx.report(node.source(), "\"delivery.route\" needs a destination");
            r.finish();
            out.routes.push_back(std::move(route));
        }
    }
}

void read_policy(Context& ctx, const toml::array& entries, std::vector<tls::PolicyEntry>& out) {
    for (const auto& node : entries) {
        Section p(ctx, *node.as_table(), "tls.policy");
        tls::PolicyEntry e;
        e.file = ctx.source;
        e.line = static_cast<int>(node.source().begin.line);
        p.text("destination", e.destination);
        p.text("level", e.level);
        p.text_list("match", e.match);
        p.text("ciphers", e.ciphers);
        p.text("protocols", e.protocols);
        p.text("exclude", e.exclude);
        p.text("servername", e.servername);
        p.text_list("tafile", e.tafile);
        if (e.destination.empty()) ctx.report(node.source(), "\"tls.policy\" needs a destination");
        if (e.level.empty()) ctx.report(node.source(), "\"tls.policy\" needs a level");
        p.finish();
        out.push_back(std::move(e));
    }
}

void read_tls(Context& ctx, Section& s, TlsConfig& out) {
    s.text("security_level", out.security_level);
    s.path("policy_file", out.policy_file);
    s.path("ca_file", out.ca_file);
    s.path("ca_path", out.ca_path);
    s.text_list("verify_cert_match", out.verify_cert_match);
    s.text_list("secure_cert_match", out.secure_cert_match);
    s.text("fingerprint_digest", out.fingerprint_digest);
    s.text_list("fingerprint_cert_match", out.fingerprint_cert_match);
    s.text("protocols", out.protocols);
    s.text("mandatory_protocols", out.mandatory_protocols);
    s.text("mandatory_ciphers", out.mandatory_ciphers);
    s.text_list("exclude_ciphers", out.exclude_ciphers);
    s.text("servername", out.servername);
    if (const toml::array* policy = s.array_of_tables("policy")) read_policy(ctx, *policy, out.policy);
}

void check_choice(Context& ctx, const toml::table& root, std::string_view section,
                  std::string_view key, const std::string& value,
                  std::initializer_list<std::string_view> allowed) {
    for (auto a : allowed)
        if (value == a) return;
    std::string list;
    for (auto a : allowed) list += (list.empty() ? "\"" : ", \"") + std::string(a) + "\"";
    const toml::node* n = root.at_path(std::string(section) + "." + std::string(key)).node();
    ctx.report(n ? n->source() : toml::source_region{},
               "\"" + std::string(section) + "." + std::string(key) + "\" must be one of " + list);
}

void read_root(Context& ctx, const toml::table& root, Config& cfg) {
    Section top(ctx, root, "");
    auto section = [&](std::string_view name, auto&& read) {
        if (const toml::table* t = top.subtable(name)) {
            Section s(ctx, *t, std::string(name));
            read(s);
            s.finish();
        }
    };
    section("server", [&](Section& s) { read_server(ctx, s, cfg.server); });
    section("queue", [&](Section& s) { read_queue(s, cfg.queue); });
    section("dns", [&](Section& s) {
        s.text_list("servers", cfg.dns.servers);
        s.boolean("dnssec", cfg.dns.dnssec);
    });
    section("delivery", [&](Section& s) { read_delivery(ctx, s, cfg.delivery); });
    section("tls", [&](Section& s) { read_tls(ctx, s, cfg.tls); });
    section("log", [&](Section& s) {
        s.text("target", cfg.log.target);
        s.text("format", cfg.log.format);
    });
    section("metrics", [&](Section& s) { s.text("listen", cfg.metrics_listen); });
    section("watch", [&](Section& s) {
        s.duration("expiry_warning", cfg.watch.expiry_warning);
        s.duration("interval", cfg.watch.interval);
    });
    section("mta_sts", [&](Section& s) { s.boolean("enabled", cfg.mta_sts_enabled); });
    section("tls_rpt", [&](Section& s) {
        s.boolean("enabled", cfg.tls_rpt_enabled);
        s.text("organization_name", cfg.tls_rpt.organization_name);
        s.text("contact_info", cfg.tls_rpt.contact_info);
        s.text("submitter", cfg.tls_rpt.submitter);
    });
    top.finish();
    check_choice(ctx, root, "log", "target", cfg.log.target, {"stderr", "syslog"});
    check_choice(ctx, root, "log", "format", cfg.log.format, {"postfix", "json"});
    check_choice(ctx, root, "tls", "fingerprint_digest", cfg.tls.fingerprint_digest,
                 {"md5", "sha1", "sha256", "sha512"});
    // Postfix matches level names in any case (name_code() without the strict-case flag)
    cfg.tls.security_level = tls::lower(cfg.tls.security_level);
    check_choice(ctx, root, "tls", "security_level", cfg.tls.security_level,
                 {"none", "may", "encrypt", "dane", "dane-only", "fingerprint", "verify", "secure"});
}

std::string system_hostname() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
    return buf;
}

}  // namespace

std::string Problem::to_string() const {
    return file + ":" + std::to_string(line) + ": " + message;
}

Config defaults() {
    Config c;
    c.server.hostname = system_hostname();
    for (const char* n : {"127.0.0.0/8", "::1/128"})
        c.server.allow_networks.push_back(*support::parse_network(n));
    return c;
}

LoadResult load_string(std::string_view text, const std::string& source,
                       const std::filesystem::path& base_dir) {
    LoadResult result{defaults(), {}};
    result.config.queue.dir = base_dir / result.config.queue.dir;
    Context ctx{source, base_dir, result.problems};
    try {
        toml::table root = toml::parse(text, source);
        read_root(ctx, root, result.config);
    } catch (const toml::parse_error& e) {
        ctx.report(e.source(), std::string(e.description()));
    }
    return result;
}

LoadResult load_file(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        LoadResult r{defaults(), {}};
        r.problems.push_back({file.string(), 0, "cannot open the configuration file"});
        return r;
    }
    std::stringstream text;
    text << in.rdbuf();
    auto base = std::filesystem::absolute(file).parent_path();
    auto r = load_string(text.str(), file.string(), base);
    r.config.file = file;
    return r;
}

std::optional<Duration> parse_duration(std::string_view text) {
    std::uint64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end == text.data()) return std::nullopt;
    std::string_view unit(end, static_cast<size_t>(text.data() + text.size() - end));
    std::uint64_t ms_per;
    if (unit.empty() || unit == "s") ms_per = 1000;
    else if (unit == "ms") ms_per = 1;
    else if (unit == "m") ms_per = 60'000;
    else if (unit == "h") ms_per = 3'600'000;
    else if (unit == "d") ms_per = 86'400'000;
    else if (unit == "w") ms_per = 604'800'000;
    else return std::nullopt;
    if (n > (std::uint64_t{1} << 40)) return std::nullopt;
    return Duration(static_cast<std::int64_t>(n * ms_per));
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
    std::uint64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end == text.data()) return std::nullopt;
    std::string unit(end, static_cast<size_t>(text.data() + text.size() - end));
    for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    static const std::pair<const char*, std::uint64_t> units[] = {
        {"", 1},          {"b", 1},          {"k", 1ull << 10},  {"kb", 1000},
        {"kib", 1ull << 10}, {"m", 1ull << 20}, {"mb", 1000000}, {"mib", 1ull << 20},
        {"g", 1ull << 30}, {"gb", 1000000000}, {"gib", 1ull << 30}, {"t", 1ull << 40},
        {"tb", 1000000000000}, {"tib", 1ull << 40}};
    for (const auto& [name, mult] : units)
        if (unit == name) {
            if (n > UINT64_MAX / mult) return std::nullopt;
            return n * mult;
        }
    return std::nullopt;
}

}  // namespace tlsrelay::config

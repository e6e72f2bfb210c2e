#include "relay/metrics.hpp"

#include <charconv>
#include <cmath>

namespace tlsrelay::relay::metrics {

namespace {

std::string escape(std::string_view text, bool quotes) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        if (c == '\\') out += "\\\\";
        else if (c == '"' && quotes) out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

}  // namespace

std::string escape_label_value(std::string_view value) { return escape(value, true); }

std::string escape_help(std::string_view text) { return escape(text, false); }

std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    return ec == std::errc() ? std::string(buf, end) : "NaN";
}

void Registry::define(const std::string& name, Type type, std::string help) {
    std::lock_guard lock(mutex_);
    if (families_.count(name)) return;
    order_.push_back(name);
    families_[name] = Family{type, std::move(help), {}};
}

double* Registry::series(const std::string& name, const Labels& labels) {
    auto f = families_.find(name);
    if (f == families_.end()) return nullptr;
    auto s = f->second.series.find(labels);
    if (s != f->second.series.end()) return &s->second;
    if (f->second.series.size() >= max_series_) {
        dropped_ += 1;
        return nullptr;
    }
    return &f->second.series[labels];
}

void Registry::add(const std::string& name, const Labels& labels, double by) {
    std::lock_guard lock(mutex_);
    if (double* v = series(name, labels)) *v += by;
}

void Registry::set(const std::string& name, const Labels& labels, double value) {
    std::lock_guard lock(mutex_);
    if (double* v = series(name, labels)) *v = value;
}

namespace {

void render_series(std::string& out, const std::string& name, const Labels& labels, double value) {
    out += name;
    if (!labels.empty()) {
        out += '{';
        for (std::size_t i = 0; i < labels.size(); ++i) {
            if (i) out += ',';
            out += labels[i].first + "=\"" + escape_label_value(labels[i].second) + '"';
        }
        out += '}';
    }
    out += ' ' + format_value(value) + '\n';
}

}  // namespace

std::string Registry::render() const {
    std::lock_guard lock(mutex_);
    std::string out;
    for (const auto& name : order_) {
        const Family& f = families_.at(name);
        out += "# HELP " + name + " " + escape_help(f.help) + "\n";
        out += "# TYPE " + name + (f.type == Type::counter ? " counter\n" : " gauge\n");
        for (const auto& [labels, value] : f.series) render_series(out, name, labels, value);
    }
    out += "# HELP tlsrelay_metrics_series_dropped_total Label sets not recorded because a "
           "metric reached its series limit.\n"
           "# TYPE tlsrelay_metrics_series_dropped_total counter\n"
           "tlsrelay_metrics_series_dropped_total " + format_value(dropped_) + "\n";
    return out;
}

}  // namespace tlsrelay::relay::metrics

// The metrics registry: counters and gauges with labels, rendered in the Prometheus
// text exposition format 0.0.4 (HELP and TYPE lines, label values escaped as the
// format says). Pure: no I/O, no clock; relay/metrics_http.cpp serves the text.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tlsrelay::relay::metrics {

enum class Type { counter, gauge };

// Label name/value pairs in the order they are printed.
using Labels = std::vector<std::pair<std::string, std::string>>;

// A label value as the exposition format writes it: backslash, double quote and
// line feed escaped (\\, \", \n).
std::string escape_label_value(std::string_view value);
// HELP text: backslash and line feed escaped.
std::string escape_help(std::string_view text);
// A sample value: integers without exponent or decimals, others shortest round-trip,
// and +Inf, -Inf, NaN spelled as the format wants.
std::string format_value(double value);

// One family per metric name. Series beyond max_series per family are not created
// (each refusal is counted in tlsrelay_metrics_series_dropped_total), so a stream of
// new destination labels cannot grow the process without bound.
class Registry {
public:
    explicit Registry(std::size_t max_series = 5000) : max_series_(max_series) {}

    // Declares a family; series of undeclared names are ignored.
    void define(const std::string& name, Type type, std::string help);
    void add(const std::string& name, const Labels& labels, double by = 1);  // counters
    void set(const std::string& name, const Labels& labels, double value);   // gauges
    // Families in definition order; series sorted by their labels.
    std::string render() const;

private:
    struct Family {
        Type type;
        std::string help;
        std::map<Labels, double> series;
    };
    double* series(const std::string& name, const Labels& labels);

    mutable std::mutex mutex_;
    std::vector<std::string> order_;
    std::map<std::string, Family> families_;
    std::size_t max_series_;
    double dropped_ = 0;
};

}  // namespace tlsrelay::relay::metrics

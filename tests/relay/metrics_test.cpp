// The registry and the Prometheus text format it renders (exposition format 0.0.4).
#include "relay/metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace tlsrelay::relay::metrics {
namespace {

TEST(Metrics, LabelValuesAreEscaped) {
    const std::pair<const char*, const char*> cases[] = {
        {"plain.example", "plain.example"},
        {"a\"b", "a\\\"b"},
        {"a\\b", "a\\\\b"},
        {"line\nbreak", "line\\nbreak"},
        {"\\\"\n", "\\\\\\\"\\n"},
        {"", ""},
        {"tab\tstays", "tab\tstays"},
    };
    for (const auto& [in, out] : cases) EXPECT_EQ(escape_label_value(in), out) << in;
}

TEST(Metrics, HelpEscapesBackslashAndNewlineButNotQuotes) {
    EXPECT_EQ(escape_help("say \"hi\"\\now\nthen"), "say \"hi\"\\\\now\\nthen");
}

TEST(Metrics, ValuesUseTheFormatsSpelling) {
    EXPECT_EQ(format_value(0), "0");
    EXPECT_EQ(format_value(42), "42");
    EXPECT_EQ(format_value(-3), "-3");
    EXPECT_EQ(format_value(1798761600), "1798761600");
    EXPECT_EQ(format_value(0.25), "0.25");
    EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
    EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
    EXPECT_EQ(format_value(std::nan("")), "NaN");
}

TEST(Metrics, RendersHelpTypeAndSortedSeries) {
    Registry r;
    r.define("tlsrelay_x_total", Type::counter, "Things counted.");
    r.define("tlsrelay_y", Type::gauge, "A level.");
    r.add("tlsrelay_x_total", {{"destination", "b.example"}, {"status", "sent"}});
    r.add("tlsrelay_x_total", {{"destination", "a.example"}, {"status", "sent"}}, 2);
    r.add("tlsrelay_x_total", {{"destination", "b.example"}, {"status", "sent"}});
    r.set("tlsrelay_y", {}, 7);
    r.set("tlsrelay_y", {}, 5);
    r.add("tlsrelay_undeclared_total", {});
    EXPECT_EQ(r.render(),
              "# HELP tlsrelay_x_total Things counted.\n"
              "# TYPE tlsrelay_x_total counter\n"
              "tlsrelay_x_total{destination=\"a.example\",status=\"sent\"} 2\n"
              "tlsrelay_x_total{destination=\"b.example\",status=\"sent\"} 2\n"
              "# HELP tlsrelay_y A level.\n"
              "# TYPE tlsrelay_y gauge\n"
              "tlsrelay_y 5\n"
              "# HELP tlsrelay_metrics_series_dropped_total Label sets not recorded because a metric "
              "reached its series limit.\n"
              "# TYPE tlsrelay_metrics_series_dropped_total counter\n"
              "tlsrelay_metrics_series_dropped_total 0\n");
}

TEST(Metrics, HostileLabelValuesStayOnOneLine) {
    Registry r;
    r.define("tlsrelay_z_total", Type::counter, "Z.");
    r.add("tlsrelay_z_total", {{"host", "evil\"} 1\nfake_metric 9"}});
    std::string text = r.render();
    EXPECT_NE(text.find("tlsrelay_z_total{host=\"evil\\\"} 1\\nfake_metric 9\"} 1\n"), std::string::npos) << text;
    EXPECT_EQ(text.find("\nfake_metric"), std::string::npos) << text;
}

TEST(Metrics, SeriesBeyondTheLimitAreDroppedAndCounted) {
    Registry r(2);
    r.define("tlsrelay_d_total", Type::counter, "D.");
    r.add("tlsrelay_d_total", {{"destination", "one"}});
    r.add("tlsrelay_d_total", {{"destination", "two"}});
    r.add("tlsrelay_d_total", {{"destination", "three"}});
    r.add("tlsrelay_d_total", {{"destination", "one"}});  // existing series still count
    std::string text = r.render();
    EXPECT_NE(text.find("tlsrelay_d_total{destination=\"one\"} 2\n"), std::string::npos) << text;
    EXPECT_EQ(text.find("three"), std::string::npos) << text;
    EXPECT_NE(text.find("tlsrelay_metrics_series_dropped_total 1\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace tlsrelay::relay::metrics

// check-config, probe, and the shared config loading of the CLI commands.
#include <iostream>

#include "config/policy_file.hpp"
#include "relay/cli.hpp"

namespace tlsrelay::relay {

std::optional<config::Config> load_config_or_report(const Args& args) {
    if (!args.config) return config::defaults();
    auto result = config::load_file(*args.config);
    for (const auto& p : result.problems) std::cerr << p.to_string() << "\n";
    if (!result.ok()) return std::nullopt;
    return result.config;
}

int run_check_config(const Args& args) {
    if (!args.config) {
        std::cout << "embedded defaults: ok\n";
        return 0;
    }
    auto result = config::load_file(*args.config);
    std::vector<config::Problem> problems = result.problems;
    const config::Config& cfg = result.config;
    auto table = config::build_policy_table(cfg.tls);
    problems.insert(problems.end(), table.problems.begin(), table.problems.end());
    auto checks = config::check_policies(table.table, config::main_settings(cfg.tls, cfg.dns.dnssec),
                                         *args.config);
    problems.insert(problems.end(), checks.begin(), checks.end());
    for (const auto& p : problems) std::cout << p.to_string() << "\n";
    if (!problems.empty()) return 1;
    std::cout << *args.config << ": ok\n";
    return 0;
}

}  // namespace tlsrelay::relay

// Command-line entry points of the tlsrelay binary (spec/interface.md "Binary and
// commands"): each returns the process exit status.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace tlsrelay::relay {

struct Args {
    std::vector<std::string> positional;
    std::optional<std::string> config;
    bool json = false;
    bool policy = false;  // probe --policy
    std::optional<std::string> level, match;
};

// Loads --config or the embedded defaults; prints problems and returns nullopt on any.
std::optional<config::Config> load_config_or_report(const Args& args);

int run_serve(const Args& args);
int run_queue(const Args& args);
int run_check_config(const Args& args);
int run_probe(const Args& args);


}  // namespace tlsrelay::relay

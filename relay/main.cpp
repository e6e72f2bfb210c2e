// tlsrelay: parses the command line and dispatches to the commands of relay/cli.hpp.
#include <cstring>
#include <iostream>

#include "relay/cli.hpp"

namespace {

constexpr const char* usage =
    "usage: tlsrelay serve [--config FILE]\n"
    "       tlsrelay queue list [--json] [--config FILE]\n"
    "       tlsrelay queue show|hold|release|delete ID [--config FILE]\n"
    "       tlsrelay queue flush [ID] [--config FILE]\n"
    "       tlsrelay check-config [--config FILE]\n"
    "       tlsrelay probe DESTINATION [--level L] [--match M] [--config FILE]\n"
    "       tlsrelay probe --policy [--config FILE]\n"
    "       tlsrelay --version | --help\n";

int bad_usage(const std::string& why) {
    std::cerr << "tlsrelay: " << why << "\n" << usage;
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    using tlsrelay::relay::Args;
    Args args;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](std::optional<std::string>& out) {
            if (i + 1 >= argc) return false;
            out = argv[++i];
            return true;
        };
        if (a == "--help" || a == "-h") {
            std::cout << usage;
            return 0;
        } else if (a == "--version") {
            std::cout << "tlsrelay " << TLSRELAY_VERSION << "\n";
            return 0;
        } else if (a == "--config" || a == "-c") {
            if (!value(args.config)) return bad_usage("--config needs a file");
        } else if (a.rfind("--config=", 0) == 0) {
            args.config = a.substr(9);
        } else if (a == "--json") {
            args.json = true;
        } else if (a == "--policy") {
            args.policy = true;
        } else if (a == "--level") {
            if (!value(args.level)) return bad_usage("--level needs a level");
        } else if (a == "--match") {
            if (!value(args.match)) return bad_usage("--match needs a pattern");
        } else if (a.size() > 1 && a[0] == '-') {
            return bad_usage("unknown option " + a);
        } else {
            args.positional.push_back(a);
        }
    }
    if (args.positional.empty()) return bad_usage("no command given");
    const std::string cmd = args.positional.front();
    if (cmd == "serve" && args.positional.size() == 1) return tlsrelay::relay::run_serve(args);
    if (cmd == "queue") return tlsrelay::relay::run_queue(args);
    if (cmd == "check-config" && args.positional.size() == 1)
        return tlsrelay::relay::run_check_config(args);
    if (cmd == "probe") return tlsrelay::relay::run_probe(args);
    return bad_usage("unknown command or arguments: " + cmd);
}

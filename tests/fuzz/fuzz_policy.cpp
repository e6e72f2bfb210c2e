// The Postfix tls_policy table parser (config/policy_file) and the policy engine
// behind it, on arbitrary table text. Trust-anchor files are taken as loadable (no
// file I/O from fuzz input). Invariants: problems point at a line of the input,
// keys are lower-case and found again, evaluating any entry for its own key yields
// a policy from that entry or an invalid one with a reason.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "harness.hpp"
#include "config/policy_file.hpp"

namespace {

using tlsrelay::fuzz::require;
using namespace tlsrelay;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    config::PolicyTableResult r = config::parse_policy_text(text, "fuzz");
    const auto lines = std::count(text.begin(), text.end(), '\n') + 1;
    for (const auto& p : r.problems)
        require(p.file == "fuzz" && p.line >= 1 && p.line <= lines && !p.message.empty(),
                "a problem names a line of the input");
    std::string lower(text);
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    config::TlsConfig tls_config;
    for (bool dnssec : {false, true}) {
        tls::MainSettings main = config::main_settings(tls_config, dnssec);
        for (const auto& e : r.table.entries()) {
            require(std::none_of(e.key.begin(), e.key.end(), [](char c) { return c >= 'A' && c <= 'Z'; }),
                    "keys are lower-case");
            require(r.table.find(e.key) == &e, "the first entry of a key is found");
            require(e.line >= 1 && e.line <= lines, "an entry names a line of the input");
            tls::Policy p = tls::policy_for(r.table, e.key, main);
            require(!p.invalid || !p.warning.empty() || !p.invalid_reason.empty(),
                    "an invalid policy says why");
        }
        // check_policies opens tafile= paths: not with fuzz-chosen names (/dev/zero).
        if (lower.find("tafile") == lower.npos) (void)config::check_policies(r.table, main, "fuzz.toml");
    }
    return 0;
}

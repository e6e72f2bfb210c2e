// Postfix smtp_tls_policy_maps tables read as text, exactly as postmap reads a
// source file: "#" comment lines and blank lines are skipped anywhere, a line
// that starts with whitespace continues the logical line, keys are folded to
// lower case, the first of duplicate keys wins. Also: the [tls] settings as the
// policy engine's MainSettings, and the checks behind `tlsrelay check-config`.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "tls/effective_policy.hpp"
#include "tls/policy_table.hpp"

namespace tlsrelay::config {

struct PolicyTableResult {
    tls::PolicyTable table;
    std::vector<Problem> problems;  // postmap's warnings, at the logical line's first line
};

// Parses table text; `file` names the source in entries and problems.
void parse_policy_text(std::string_view text, const std::string& file, PolicyTableResult& out);
PolicyTableResult parse_policy_text(std::string_view text, const std::string& file);
PolicyTableResult load_policy_file(const std::filesystem::path& file);

// tls.policy_file (if set), then the inline [[tls.policy]] entries; a key in
// both keeps the file's entry, as the first of two Postfix maps would.
PolicyTableResult build_policy_table(const TlsConfig& tls);

// The main-config settings the policy engine falls back on.
tls::MainSettings main_settings(const TlsConfig& tls, bool dnssec);

// A tls::TafileCheck that reads PEM certificates and public keys from a file.
std::optional<std::string> check_trust_anchor_file(const std::string& file);

// Every problem of every entry as FILE:LINE: Postfix's policy warnings, then
// our explanations (wrong-length fingerprints, protocol lists and cipher
// settings Postfix would reject only at handshake time). Global settings are
// reported against `config_file` with line 0.
std::vector<Problem> check_policies(const tls::PolicyTable& table, const tls::MainSettings& main,
                                    const std::string& config_file);

}  // namespace tlsrelay::config

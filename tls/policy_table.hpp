// The smtp_tls_policy_maps table in memory and its lookup (Postfix
// src/smtp/smtp_tls_policy.c tls_policy_lookup): keys are folded to lower case,
// a next-hop that is a valid hostname is looked up by full name, then by each
// ".parent" suffix. A table made unavailable (texthash: a duplicate key) fails
// every lookup, as Postfix's dict_surrogate does.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tls/policy.hpp"

namespace tlsrelay::tls {

// One table entry: the value already split into Postfix's tokens
// ("level", "name=value", ...), with its origin for FILE:LINE messages.
struct TableEntry {
    std::string key;                  // lower-cased
    std::vector<std::string> tokens;  // value split on commas and whitespace
    std::string value;                // the value as written, for display
    std::string file;
    int line = 0;
};

// Splits a policy value as Postfix does (mystrtok on ", \t\r\n").
std::vector<std::string> tokenize_policy_value(std::string_view value);

// A [[tls.policy]] TOML entry as the equivalent table entry: the level, then one
// "match=" per list element, then the other attributes that are non-empty.
TableEntry to_table_entry(const PolicyEntry& entry);

struct LookupResult {
    const TableEntry* entry = nullptr;  // null: no entry, the main level applies
    std::string site_name;              // the name that hit, as queried ("[x]:25", ".example.com")
    std::vector<std::string> tried;     // every name queried, in order
    std::string error;                  // non-empty: the table is unavailable, and why
};

class PolicyTable {
public:
    // Adds an entry; returns the entry already holding the key (and adds
    // nothing) when the key is a duplicate, else null.
    const TableEntry* add(TableEntry entry);
    const TableEntry* find(std::string_view key) const;  // case-insensitive
    LookupResult lookup(std::string_view nexthop) const;
    const std::vector<TableEntry>& entries() const { return entries_; }
    bool empty() const { return entries_.empty(); }
    // Postfix's texthash refuses a file with a duplicate key as a whole: from then on
    // every lookup is a lookup error (why: "FILE, line N: duplicate entry: \"key\"").
    void set_unavailable(std::string why) { unavailable_ = std::move(why); }
    const std::string& unavailable() const { return unavailable_; }

private:
    std::string unavailable_;
    std::vector<TableEntry> entries_;
    std::unordered_map<std::string, size_t> index_;
};

}  // namespace tlsrelay::tls

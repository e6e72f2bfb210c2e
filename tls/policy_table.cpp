#include "tls/policy_table.hpp"

#include "tls/level.hpp"
#include "tls/text.hpp"

namespace tlsrelay::tls {

std::vector<std::string> tokenize_policy_value(std::string_view value) {
    return split(value, comma_space);
}

TableEntry to_table_entry(const PolicyEntry& entry) {
    TableEntry out;
    out.key = lower(entry.destination);
    out.file = entry.file;
    out.line = entry.line;
    if (!entry.level.empty()) out.tokens.push_back(entry.level);
    for (const auto& m : entry.match) out.tokens.push_back("match=" + m);
    auto attribute = [&](std::string_view name, const std::string& value) {
        if (!value.empty()) out.tokens.push_back(std::string(name) + "=" + value);
    };
    attribute("ciphers", entry.ciphers);
    attribute("protocols", entry.protocols);
    attribute("exclude", entry.exclude);
    attribute("servername", entry.servername);
    for (const auto& t : entry.tafile) out.tokens.push_back("tafile=" + t);
    out.value = join(out.tokens, " ");
    return out;
}

const TableEntry* PolicyTable::add(TableEntry entry) {
    entry.key = lower(entry.key);
    if (auto it = index_.find(entry.key); it != index_.end()) return &entries_[it->second];
    index_.emplace(entry.key, entries_.size());
    entries_.push_back(std::move(entry));
    return nullptr;
}

const TableEntry* PolicyTable::find(std::string_view key) const {
    auto it = index_.find(lower(key));
    return it == index_.end() ? nullptr : &entries_[it->second];
}

LookupResult PolicyTable::lookup(std::string_view nexthop) const {
    LookupResult result;
    auto try_one = [&](std::string_view name) {
        result.tried.emplace_back(name);
        if ((result.entry = find(name))) result.site_name = std::string(name);
        return result.entry != nullptr;
    };
    if (!unavailable_.empty()) {  // the first lookup fails, whatever the name
        result.tried.emplace_back(nexthop);
        result.site_name = std::string(nexthop);
        result.error = unavailable_;
        return result;
    }
    // Brackets, ports and address literals are explicit next-hops: one lookup.
    if (!valid_hostname(nexthop)) {
        try_one(nexthop);
        return result;
    }
    std::string_view name = nexthop;
    while (!try_one(name)) {
        size_t dot = name.find('.', 1);
        if (dot == std::string_view::npos) break;
        name = name.substr(dot);
    }
    return result;
}

}  // namespace tlsrelay::tls

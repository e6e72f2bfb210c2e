// A cached MTA-STS policy (RFC 8461 section 5.1) as the spool keeps it, and when to
// use it, refresh it or fetch anew. Pure: times are unix seconds given by the caller.
// The file is text: a "tlsrelay-mta-sts 1" line, "id ID", "fetched SECONDS", an
// empty line, then the policy body exactly as fetched (parsed again when read).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sts/policy.hpp"

namespace tlsrelay::sts {

struct CachedPolicy {
    std::string id;            // the TXT record id the policy was fetched for
    std::int64_t fetched = 0;  // unix seconds
    std::string body;          // as served
    Policy policy;             // parse_policy(body)
    std::int64_t expires() const { return fetched + policy.max_age; }
    bool valid_at(std::int64_t now) const { return now >= fetched && now < expires(); }
};

std::string format_cached(const CachedPolicy& cached);
std::optional<CachedPolicy> parse_cached(std::string_view file);

enum class Step {
    no_policy,               // nothing usable: the default level applies
    use_cached,              // the cached policy is current
    use_cached_and_refresh,  // use it now, fetch the new one in the background
    fetch_now,               // no valid cached policy but a record: fetch before delivering
};

// txt_id: the id of the domain's valid "_mta-sts" record; nullopt when there is none
// or the lookup failed (then a valid cached policy is still used, section 5.1). A
// cached policy is refreshed when the id changed or less than a quarter of its
// max_age is left (never without a record: there would be nothing to fetch).
Step next_step(const std::optional<CachedPolicy>& cached, const std::optional<std::string>& txt_id,
               std::int64_t now);

}  // namespace tlsrelay::sts

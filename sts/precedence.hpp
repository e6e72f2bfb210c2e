// Where an MTA-STS policy stands among tlsrelay's other TLS rules, for one MX host
// (README "MTA-STS"): a policy-table entry for the next hop always wins; DANE in
// force (level dane or dane-only with usable TLSA records) wins over MTA-STS (RFC 8461
// section 2); otherwise `enforce` may only tighten: the MX host must be one of the
// policy's mx patterns (section 4.1, else it is skipped) and a level below
// fingerprint becomes verify against the MX host name (section 4.2); `testing` changes
// nothing but logs what enforce would do; `none` does nothing. Pure.
#pragma once

#include <string>

#include "sts/policy.hpp"
#include "tls/level.hpp"

namespace tlsrelay::sts {

struct Effect {
    bool skip = false;        // enforce: do not connect to this MX host
    bool to_verify = false;   // enforce: replace the plan by verify with the MX host name
    bool check_only = false;  // testing: judge as enforce would, log it, change nothing
    std::string note;         // why the policy has no say here ("" when it has one)
};

// table_entry: the next hop has a policy-table entry; level: the plan's level after
// DANE was resolved (dane / dane-only only remain with usable TLSA records);
// mx_allowed: policy_allows_mx for the host.
Effect effect_for(Mode mode, bool table_entry, tls::Level level, bool mx_allowed);

}  // namespace tlsrelay::sts

// One TLS policy-table entry (Postfix smtp_tls_policy_maps): the key, the level and
// its attributes as written, plus where it came from so warnings can name file and line.
#pragma once

#include <string>
#include <vector>

namespace tlsrelay::tls {

struct PolicyEntry {
    std::string destination;  // "domain", ".domain", "[host]", "[host]:port"
    std::string level;        // as written; validated when the policy is evaluated
    std::vector<std::string> match;
    std::string ciphers, protocols, exclude, servername;
    std::vector<std::string> tafile;
    std::string file;  // source of the entry, for warnings
    int line = 0;
};

}  // namespace tlsrelay::tls

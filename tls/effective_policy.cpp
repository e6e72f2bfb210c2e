#include "tls/effective_policy.hpp"

#include "tls/text.hpp"

namespace tlsrelay::tls {
namespace {

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string trim(std::string_view s) {
    size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
    return b == std::string_view::npos ? std::string() : std::string(s.substr(b, e - b + 1));
}

void warn(Policy& p, std::string text) { p.warnings.push_back(std::move(text)); }

// smtp_tls_policy.c checks servername with valid_hostname(), which is ASCII only: a
// U-label servername is an invalid policy in 3.7 (observed), not converted.
bool valid_servername(std::string_view name) {
    for (unsigned char c : name)
        if (c >= 0x80) return false;
    return valid_hostname(name);
}

void fail(Policy& p, std::string text) {
    p.invalid = true;
    p.warning = text;
    warn(p, std::move(text));
}

void add_fingerprints(Policy& p, std::string_view values, std::string_view delims) {
    for (const auto& v : split(values, delims)) {
        if (auto bytes = parse_fingerprint(v))
            p.fingerprints.push_back({v, std::move(*bytes)});
        else
            warn(p, malformed_fingerprint_warning(v));
    }
}

// Parses one table value into `p`, as tls_policy_lookup_one(); the first
// error ends the parse and marks the policy invalid.
class EntryParser {
public:
    EntryParser(Policy& p, std::string where, const TafileCheck& check)
        : p_(p), where_(std::move(where)), check_(check) {}

    void parse(const std::vector<std::string>& tokens) {
        if (tokens.empty()) return fail(p_, where_ + ": invalid empty policy");
        auto level = parse_level(tokens[0]);
        if (!level) return fail(p_, where_ + ": invalid security level " + quoted(tokens[0]));
        p_.level = *level;
        for (size_t i = 1; i < tokens.size() && !p_.invalid; ++i) {
            if (p_.level == Level::none)
                warn(p_, where_ + ": ignoring attribute " + quoted(tokens[i]) + " with TLS disabled");
            else
                attribute(tokens[i]);
        }
    }

    bool have_protocols = false, have_servername = false, have_exclude = false;

private:
    void attribute(const std::string& token) {
        size_t eq = token.find('=');
        if (eq == std::string::npos)
            return fail(p_, where_ + ": malformed attribute/value pair " + quoted(token) +
                                ": missing '=' after attribute name");
        // split_nameval(): blanks around the name and the value are trimmed.
        std::string name = trim(token.substr(0, eq)), value = trim(token.substr(eq + 1));
        if (iequals(name, "ciphers")) {
            if (value.empty()) return empty(name);
            if (!once(name, have_ciphers_)) return;
            p_.ciphers = value;
        } else if (iequals(name, "protocols")) {
            if (!once(name, have_protocols)) return;
            p_.protocols = value;
        } else if (iequals(name, "servername")) {
            if (!once(name, have_servername)) return;
            if (!valid_servername(value))
                return fail(p_, where_ + ": \"" + name + "=" + value + "\" specifies an invalid hostname");
            p_.servername = value;
        } else if (iequals(name, "match")) {
            match(name, value);
        } else if (iequals(name, "exclude")) {
            if (!once(name, have_exclude)) return;
            p_.exclude = value;
        } else if (iequals(name, "tafile")) {
            tafile(name, value);
        } else if (iequals(name, "connection_reuse")) {
            if (!iequals(value, "yes") && !iequals(value, "no"))
                fail(p_, where_ + ": attribute " + quoted(name) + " has bad value: " + quoted(value));
        } else {
            fail(p_, where_ + ": invalid attribute name: " + quoted(name));
        }
    }

    void match(const std::string& name, const std::string& value) {
        if (value.empty()) return empty(name);
        if (p_.level == Level::fingerprint) return add_fingerprints(p_, value, "|");
        if (p_.level != Level::verify && p_.level != Level::secure) return wrong_level(name);
        for (auto& m : split(value, ":")) p_.match.push_back(std::move(m));
    }

    void tafile(const std::string& name, const std::string& value) {
        if (!tafile_allowed(p_.level)) return wrong_level(name);
        if (value.empty()) return empty(name);
        if (check_) {
            if (auto problem = check_(value)) return fail(p_, *problem);
        }
        p_.tafiles.push_back(value);
    }

    bool once(const std::string& name, bool& seen) {
        if (seen) fail(p_, where_ + ": attribute " + quoted(name) + " is specified multiple times");
        seen = true;
        return !p_.invalid;
    }
    void empty(const std::string& name) {
        fail(p_, where_ + ": attribute " + quoted(name) + " has empty value");
    }
    void wrong_level(const std::string& name) {
        fail(p_, where_ + ": attribute " + quoted(name) + " invalid at security level " +
                     quoted(to_string(p_.level)));
    }

    Policy& p_;
    std::string where_;
    const TafileCheck& check_;
    bool have_ciphers_ = false;
};

// set_cipher_grade(): the grade for the level, and the exclusions with the
// automatic eNULL (encrypt) or aNULL (levels that check the certificate).
void set_cipher_grade(Policy& p, const MainSettings& main, bool have_exclude) {
    bool opportunistic = p.level == Level::may;
    if (p.ciphers.empty()) p.ciphers = opportunistic ? main.ciphers : main.mandatory_ciphers;
    std::vector<std::string> parts;
    if (have_exclude) {
        if (!p.exclude.empty()) parts.push_back(p.exclude);
    } else {
        parts = main.exclude_ciphers;
        if (!opportunistic)
            parts.insert(parts.end(), main.mandatory_exclude_ciphers.begin(),
                         main.mandatory_exclude_ciphers.end());
    }
    if (p.level == Level::encrypt) parts.push_back("eNULL");
    if (match_required(p.level)) parts.push_back("aNULL");
    p.exclude = join(parts, " ");
}

void dane_init(Policy& p, std::string_view nexthop, const MainSettings& main, const DaneDecision* dane) {
    if (main.dnssec) {
        if (!dane) return;  // the caller still has to look at DNSSEC and TLSA
        for (const auto& w : dane->warnings) warn(p, w);
        if (dane->invalid) {
            p.invalid = true;
            p.invalid_reason = dane->reason;
            p.warning = dane->reason;
            return;
        }
        p.level = dane->level;
        if (dane->has_tlsa() && p.level != Level::may && p.level != Level::encrypt) {
            p.tlsa = dane->usable;
            p.dane_base_domain = dane->base_domain;
            p.match = dane->match_names;  // not configurable at the DANE levels
        }
        return;
    }
    std::string text = std::string(nexthop) + ": " + std::string(to_string(p.level)) +
                       " configured with dnssec lookups disabled";
    if (p.level == Level::dane_only) return fail(p, text);
    warn(p, text);
    p.level = Level::may;
}

void set_matching(Policy& p, std::string_view nexthop, const MainSettings& main,
                  const TafileCheck& check) {
    if (p.level == Level::fingerprint) {
        if (p.fingerprints.empty())
            for (const auto& item : main.fingerprint_cert_match) add_fingerprints(p, item, comma_space);
        if (p.fingerprints.empty())
            fail(p, "nexthop domain " + std::string(nexthop) +
                        ": configured at fingerprint security level, but with no fingerprints to match.");
        return;
    }
    if (p.level != Level::verify && p.level != Level::secure) return;
    if (p.match.empty()) {
        const auto& list = p.level == Level::verify ? main.verify_cert_match : main.secure_cert_match;
        for (const auto& item : list)
            for (auto& m : split(item, ", \t\r\n:")) p.match.push_back(std::move(m));
    }
    if (!p.tafiles.empty()) return;
    for (const auto& file : main.tafiles) {
        if (check) {
            if (auto problem = check(file)) return fail(p, *problem);
        }
        p.tafiles.push_back(file);
    }
}

}  // namespace

Policy evaluate_policy(const LookupResult& hit, std::string_view nexthop,
                       const MainSettings& main, const TafileCheck& check_tafile, const DaneDecision* dane) {
    Policy p;
    p.level = main.level;
    p.digest = main.fingerprint_digest;
    bool have_protocols = false, have_servername = false, have_exclude = false;
    if (!hit.error.empty()) {  // tls_policy_lookup: the table lookup failed
        warn(p, "smtp_tls_policy_maps is unavailable. " + hit.error);
        fail(p, "smtp_tls_policy_maps, next-hop destination " + quoted(hit.site_name) + ": policy table lookup error");
        return p;
    }
    if (hit.entry) {
        const TableEntry& e = *hit.entry;
        p.source = PolicySource{e.key, hit.site_name, e.value, e.file, e.line};
        EntryParser parser(p, "smtp_tls_policy_maps, next-hop destination " + quoted(hit.site_name),
                           check_tafile);
        parser.parse(e.tokens);
        if (p.invalid) return p;
        have_protocols = parser.have_protocols;
        have_servername = parser.have_servername;
        have_exclude = parser.have_exclude;
    }
    if (p.level == Level::none) return p;
    if (p.level == Level::dane || p.level == Level::dane_only) dane_init(p, nexthop, main, dane);
    if (p.invalid) return p;
    if (!have_protocols) p.protocols = p.level == Level::may ? main.protocols : main.mandatory_protocols;
    if (!have_servername) {
        if (!main.servername.empty() && !valid_servername(main.servername)) {
            fail(p, "\"smtp_tls_servername = " + main.servername + "\" specifies an invalid hostname");
            return p;
        }
        p.servername = main.servername;
    }
    set_cipher_grade(p, main, have_exclude);
    set_matching(p, nexthop, main, check_tafile);
    return p;
}

Policy policy_for(const PolicyTable& table, std::string_view nexthop, const MainSettings& main,
                  const TafileCheck& check_tafile, const DaneDecision* dane) {
    return evaluate_policy(table.lookup(nexthop), nexthop, main, check_tafile, dane);
}

}  // namespace tlsrelay::tls

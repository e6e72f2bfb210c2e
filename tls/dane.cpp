#include "tls/dane.hpp"

namespace tlsrelay::tls {

std::string to_string(const TlsaRecord& r) {
    static const char* hex = "0123456789ABCDEF";
    std::string s = std::to_string(r.usage) + " " + std::to_string(r.selector) + " " + std::to_string(r.mtype) + " ";
    for (auto b : r.data) {
        s += hex[b >> 4];
        s += hex[b & 15];
    }
    return s;
}

InsecureMxPolicy default_insecure_mx_policy(Level main_level) {
    return main_level == Level::dane ? InsecureMxPolicy::dane : InsecureMxPolicy::may;
}

std::string tlsa_owner(const std::string& host, unsigned port) {
    return "_" + std::to_string(port) + "._tcp." + host;
}

std::string tlsa_unusable_reason(const TlsaRecord& r) {
    if (r.usage != 2 && r.usage != 3) return "unsupported TLSA certificate usage";
    if (r.mtype == 255) return "reserved private-use matching type";
    return "";
}

namespace {

// The MX RRset is insecure and DANE cannot apply at all (dane_init's first check).
bool insecure_mx_stops_dane(const DaneInput& in) {
    return !in.mx_secure && (in.level == Level::dane_only || in.insecure_mx_policy == InsecureMxPolicy::may);
}

// Postfix's dane_incompat(): "dane" falls back (to encrypt when the server published
// records we cannot use, else to may); "dane-only" fails with the text.
DaneDecision incompatible(const DaneInput& in, bool cantauth, std::string text) {
    DaneDecision d;
    if (in.level == Level::dane) {
        d.level = cantauth ? Level::encrypt : Level::may;
        d.why = std::move(text);
    } else {
        d.level = in.level;
        d.invalid = true;
        d.reason = std::move(text);
    }
    return d;
}

}  // namespace

bool tlsa_lookup_needed(const DaneInput& in) { return !insecure_mx_stops_dane(in) && in.host_secure; }

DaneDecision decide_dane(const DaneInput& in) {
    if (insecure_mx_stops_dane(in)) return incompatible(in, false, "non DNSSEC destination");
    TlsaStatus status = in.host_secure ? in.tlsa : TlsaStatus::not_found;
    if (status == TlsaStatus::not_looked_up) status = TlsaStatus::not_found;
    if (status == TlsaStatus::error) {
        DaneDecision d;
        d.level = in.level;
        d.invalid = true;
        d.reason = "TLSA lookup error for " + in.host + ":" + std::to_string(in.port);
        return d;
    }
    if (status == TlsaStatus::not_found || in.records.empty())
        return incompatible(in, false, "no TLSA records found");
    std::vector<TlsaRecord> usable;
    std::vector<std::string> warnings;
    const std::string base = in.tlsa_base.empty() ? in.host : in.tlsa_base;
    const std::string owner = tlsa_owner(base, in.port);
    for (const auto& r : in.records) {
        if (auto why = tlsa_unusable_reason(r); !why.empty())
            warnings.push_back(owner + " " + why + ": " + to_string(r));
        else
            usable.push_back(r);
    }
    if (usable.empty()) {
        DaneDecision d = incompatible(in, true, "TLSA records unusable");
        d.warnings = std::move(warnings);
        return d;
    }
    DaneDecision d;
    d.level = in.level;
    d.warnings = std::move(warnings);
    if (!in.mx_secure) {
        if (in.insecure_mx_policy == InsecureMxPolicy::encrypt) {
            d = incompatible(in, true, "Verification not possible, MX RRset is insecure");
            return d;
        }
        d.level = Level::halfdane;  // enforce the records, log "Trusted"
    }
    d.usable = std::move(usable);
    d.base_domain = base;
    d.match_names.push_back(base);
    if (!in.mx_qname.empty()) d.match_names.push_back(in.mx_qname);
    return d;
}

}  // namespace tlsrelay::tls

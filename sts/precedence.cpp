#include "sts/precedence.hpp"

namespace tlsrelay::sts {

Effect effect_for(Mode mode, bool table_entry, tls::Level level, bool mx_allowed) {
    Effect e;
    if (mode == Mode::none) {
        e.note = "mode none";
        return e;
    }
    if (table_entry) {
        e.note = "the policy-table entry for the next hop takes precedence";
        return e;
    }
    if (level == tls::Level::dane || level == tls::Level::dane_only) {
        e.note = "DANE takes precedence";
        return e;
    }
    if (mode == Mode::testing) {
        e.check_only = true;
        return e;
    }
    e.skip = !mx_allowed;
    // fingerprint, verify and secure already authenticate the server: kept. halfdane
    // (TLSA under an unsigned MX RRset) is no DANE in force: verify replaces it.
    bool weaker = level < tls::Level::fingerprint || level == tls::Level::halfdane;
    e.to_verify = mx_allowed && weaker;
    return e;
}

}  // namespace tlsrelay::sts

// Where MTA-STS stands among the other rules, per MX host: the table and DANE win,
// enforce only tightens, testing only watches, none does nothing.
#include "sts/precedence.hpp"

#include <gtest/gtest.h>

namespace tlsrelay::sts {
namespace {

using tls::Level;

TEST(Precedence, Table) {
    struct Case {
        Mode mode;
        bool table;
        Level level;
        bool mx_allowed;
        bool skip, to_verify, check_only, noted;
    } cases[] = {
        // mode none: nothing
        {Mode::none, false, Level::may, false, false, false, false, true},
        // a policy-table entry always wins, even a weaker one, even for an MX not listed
        {Mode::enforce, true, Level::none, false, false, false, false, true},
        {Mode::enforce, true, Level::may, true, false, false, false, true},
        {Mode::testing, true, Level::encrypt, false, false, false, false, true},
        // DANE in force wins
        {Mode::enforce, false, Level::dane, false, false, false, false, true},
        {Mode::enforce, false, Level::dane_only, true, false, false, false, true},
        // enforce: an MX host not listed is skipped at any level
        {Mode::enforce, false, Level::may, false, true, false, false, false},
        {Mode::enforce, false, Level::secure, false, true, false, false, false},
        // enforce: weaker levels become verify; authenticated ones stay
        {Mode::enforce, false, Level::none, true, false, true, false, false},
        {Mode::enforce, false, Level::may, true, false, true, false, false},
        {Mode::enforce, false, Level::encrypt, true, false, true, false, false},
        {Mode::enforce, false, Level::halfdane, true, false, true, false, false},
        {Mode::enforce, false, Level::fingerprint, true, false, false, false, false},
        {Mode::enforce, false, Level::verify, true, false, false, false, false},
        {Mode::enforce, false, Level::secure, true, false, false, false, false},
        // testing: only watches
        {Mode::testing, false, Level::may, false, false, false, true, false},
        {Mode::testing, false, Level::may, true, false, false, true, false},
    };
    for (const auto& c : cases) {
        Effect e = effect_for(c.mode, c.table, c.level, c.mx_allowed);
        std::string what = std::string(to_string(c.mode)) + " table=" + std::to_string(c.table) +
                           " level=" + std::string(tls::to_string(c.level)) +
                           " mx=" + std::to_string(c.mx_allowed);
        EXPECT_EQ(e.skip, c.skip) << what;
        EXPECT_EQ(e.to_verify, c.to_verify) << what;
        EXPECT_EQ(e.check_only, c.check_only) << what;
        EXPECT_EQ(!e.note.empty(), c.noted) << what;
    }
}

}  // namespace
}  // namespace tlsrelay::sts

// Mailbox and MAIL/RCPT argument parsing (smtp/address, smtp/command) on arbitrary
// bytes. Invariants: an accepted mailbox has no control bytes, fits the RFC 5321
// caps, its domain is the lower-cased valid domain after the last '@', and parsing
// its canonical text again gives the same address (what the queue stores and the
// client later sends must mean the same mailbox).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <variant>

#include "harness.hpp"
#include "smtp/address.hpp"
#include "smtp/command.hpp"

namespace {

using tlsrelay::fuzz::require;
using namespace tlsrelay::smtp;

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

void check_address(const Address& a, bool allow_postmaster) {
    require(!has_control(a.text), "no control bytes");
    require(a.text.size() + 2 <= max_path, "path cap");
    require(!a.utf8 || valid_utf8(a.text), "utf8 is well-formed");
    if (a.text.empty()) return;  // <> (MAIL only)
    if (a.domain.empty()) {
        require(allow_postmaster && lower(a.text) == "postmaster", "only postmaster has no domain");
    } else {
        require(valid_domain(a.domain), "domain is valid");
        require(a.text.size() > a.domain.size() && lower(a.text.substr(a.text.size() - a.domain.size())) == a.domain &&
                    a.text[a.text.size() - a.domain.size() - 1] == '@',
                "domain is the text after the last @, lower-cased");
        require(a.text.size() - a.domain.size() - 1 <= max_local_part, "local part cap");
    }
    auto again = parse_mailbox(a.text, allow_postmaster);
    require(std::holds_alternative<Address>(again), "canonical text parses again");
    const Address& b = std::get<Address>(again);
    // utf8 describes the path as sent: a stripped source route may have held the
    // only non-ASCII bytes (still a 553 without SMTPUTF8, RFC 6531 §3.4).
    require(b.text == a.text && b.domain == a.domain && (!b.utf8 || a.utf8), "round trip is stable");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    for (bool postmaster : {false, true}) {
        auto parsed = parse_mailbox(in, postmaster);
        if (auto* a = std::get_if<Address>(&parsed)) check_address(*a, postmaster);
    }
    (void)valid_domain(in);
    (void)valid_address_literal(in);
    (void)valid_utf8(in);
    // The same bytes as the arguments of MAIL and RCPT, and as a whole command line.
    auto mail = parse_mail(in, ParseLimits{1000});
    if (auto* m = std::get_if<MailFrom>(&mail)) {
        check_address(m->sender, false);
        require(!m->size || *m->size <= 1000, "SIZE within the limit");
        require(m->smtputf8 || !m->sender.utf8, "non-ASCII sender needs SMTPUTF8");
    } else {
        const Reply& r = std::get<Reply>(mail);
        require(r.code >= 400 && r.code < 600, "MAIL error code");
    }
    for (bool utf8 : {false, true}) {
        auto rcpt = parse_rcpt(in, utf8);
        if (auto* r = std::get_if<RcptTo>(&rcpt)) {
            check_address(r->recipient, true);
            require(!r->recipient.text.empty(), "a recipient is never <>");
            require(utf8 || !r->recipient.utf8, "non-ASCII recipient needs SMTPUTF8");
        }
    }
    Command cmd = parse_command(in);
    require(cmd.argument.size() <= in.size(), "argument within the line");
    (void)check_helo(in);
    return 0;
}

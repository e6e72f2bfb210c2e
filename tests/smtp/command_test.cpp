#include "smtp/command.hpp"

#include <gtest/gtest.h>

#include <string>

namespace tlsrelay::smtp {
namespace {

using namespace std::string_view_literals;

TEST(ParseCommand, VerbsAndArguments) {
    struct Case {
        std::string_view line;
        Verb verb;
        std::string_view name;
        std::string_view argument;
    };
    const Case cases[] = {
        {"MAIL FROM:<a@b>", Verb::mail, "MAIL", "FROM:<a@b>"},
        {"mail from:<a@b>", Verb::mail, "mail", "from:<a@b>"},
        {"RcPt TO:<u@d>   ", Verb::rcpt, "RcPt", "TO:<u@d>"},
        {"EHLO client.example", Verb::ehlo, "EHLO", "client.example"},
        {"helo x", Verb::helo, "helo", "x"},
        {"DATA", Verb::data, "DATA", ""},
        {"DATA ", Verb::data, "DATA", ""},
        {"RSET", Verb::rset, "RSET", ""},
        {"NOOP anything", Verb::noop, "NOOP", "anything"},
        {"QUIT", Verb::quit, "QUIT", ""},
        {"VRFY root", Verb::vrfy, "VRFY", "root"},
        {"EXPN list", Verb::expn, "EXPN", "list"},
        {"HELP", Verb::help, "HELP", ""},
        {"STARTTLS", Verb::starttls, "STARTTLS", ""},
        {"starttls foo", Verb::starttls, "starttls", "foo"},
        {"BDAT 10 LAST", Verb::bdat, "BDAT", "10 LAST"},
        {"AUTH PLAIN", Verb::auth, "AUTH", "PLAIN"},
        {"MAIL  FROM:<a@b>", Verb::mail, "MAIL", " FROM:<a@b>"},  // one space is the separator
        {"FOO", Verb::unknown, "FOO", ""},
        {"MAILX FROM:<a@b>", Verb::unknown, "MAILX", "FROM:<a@b>"},
        {"", Verb::unknown, "", ""},
        {" MAIL", Verb::unknown, "", "MAIL"},
        {"MAIL:", Verb::unknown, "MAIL:", ""},  // a confused client, not message text
        {"ehlo: x", Verb::unknown, "ehlo:", "x"},
        {"MAIL\tFROM:<a@b>", Verb::unknown, "MAIL\tFROM:<a@b>", ""},
        {"GETX /", Verb::unknown, "GETX", "/"},
        {"1abc: x", Verb::unknown, "1abc:", "x"},
        {"Subject : x", Verb::unknown, "Subject", ": x"},
        // Forbidden (Postfix smtpd_forbidden_commands): hang up.
        {"GET / HTTP/1.1", Verb::forbidden, "GET", "/ HTTP/1.1"},
        {"get", Verb::forbidden, "get", ""},
        {"POST /x HTTP/1.0", Verb::forbidden, "POST", "/x HTTP/1.0"},
        {"CONNECT host:25 HTTP/1.1", Verb::forbidden, "CONNECT", "host:25 HTTP/1.1"},
        {"Subject: x", Verb::forbidden, "Subject:", "x"},
        {"X-Foo:bar", Verb::forbidden, "X-Foo:bar", ""},
        {"From: a@b", Verb::forbidden, "From:", "a@b"},
        {"Received: from x", Verb::forbidden, "Received:", "from x"},
        {"subject:", Verb::forbidden, "subject:", ""},
    };
    for (const auto& c : cases) {
        const Command command = parse_command(c.line);
        EXPECT_EQ(command.verb, c.verb) << c.line;
        EXPECT_EQ(command.name, c.name) << c.line;
        EXPECT_EQ(command.argument, c.argument) << c.line;
    }
}

// code 0: accepted with the given address text and domain; otherwise the reply.
struct Expect {
    int code = 0;
    std::string enhanced;
    std::string text;    // address text when accepted
    std::string domain;  // address domain when accepted; "" = not checked
};

Expect ok(std::string text, std::string domain) {
    return {0, "", text, domain};
}
Expect fail(int code, std::string enhanced) {
    return {code, enhanced, "", ""};
}

const std::string long_local(64, 'l');
const std::string domain_189 =
    std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(61, 'c');  // 189 octets
// <64 local @ 189 domain> = 256 octets: the RFC 5321 path floor.
const std::string path_256 = long_local + "@" + domain_189;

struct AddressCase {
    std::string argument;  // after "FROM:" / "TO:"
    Expect mail;           // parse_mail without SMTPUTF8
    Expect rcpt;           // parse_rcpt with utf8_allowed = false
};

std::vector<AddressCase> address_cases() {
    const Expect bad_mail = fail(501, "5.1.7"), bad_rcpt = fail(501, "5.1.3");
    std::vector<AddressCase> cases = {
        {"<a@b.example>", ok("a@b.example", "b.example"), ok("a@b.example", "b.example")},
        {"<User@Example.COM>", ok("User@Example.COM", "example.com"),
         ok("User@Example.COM", "example.com")},
        {" <a@b.example>", ok("a@b.example", "b.example"), ok("a@b.example", "b.example")},
        {"a@b.example", ok("a@b.example", "b.example"), ok("a@b.example", "b.example")},
        {"  <a@b.example>", fail(501, "5.5.4"), fail(501, "5.5.4")},
        {"", fail(501, "5.5.4"), fail(501, "5.5.4")},
        {"<a@b.example>x", bad_mail, bad_rcpt},
        {"<>", ok("", ""), bad_rcpt},  // null sender: MAIL only (§5 D.35)
        {"<a@b.example", bad_mail, bad_rcpt},
        // Source route stripped (§5 D.32): never a.example.
        {"<@a.example,@b.example:u@c.example>", ok("u@c.example", "c.example"),
         ok("u@c.example", "c.example")},
        {"<@a.example:u@c.example>", ok("u@c.example", "c.example"),
         ok("u@c.example", "c.example")},
        {"<@a.example,:u@c.example>", bad_mail, bad_rcpt},
        {"<@:u@c.example>", bad_mail, bad_rcpt},
        {"<@a.example:>", bad_mail, bad_rcpt},
        // Quoted local parts (§5 D.33), byte-exact.
        {"<\"a@b\"@c.example>", ok("\"a@b\"@c.example", "c.example"),
         ok("\"a@b\"@c.example", "c.example")},
        {"<\"john doe\"@d.example>", ok("\"john doe\"@d.example", "d.example"),
         ok("\"john doe\"@d.example", "d.example")},
        {"<\"a\\\"b\"@c.example>", ok("\"a\\\"b\"@c.example", "c.example"),
         ok("\"a\\\"b\"@c.example", "c.example")},
        {"\"john doe\"@d.example SIZE=1", ok("\"john doe\"@d.example", "d.example"),
         fail(555, "5.5.4")},
        {"<\"abc@d.example>", bad_mail, bad_rcpt},
        {"<\"wietse venema>", bad_mail, bad_rcpt},
        {"<\"a\"b\"@c.example>", bad_mail, bad_rcpt},
        {"<a\"b\"@c.example>", bad_mail, bad_rcpt},
        {"<\"a\\\"@c.example>", bad_mail, bad_rcpt},
        {"<wietse\\ venema@porcupine.org>", bad_mail, bad_rcpt},  // refused, not re-quoted
        // Literals (§5 D.34).
        {"<u@[192.0.2.1]>", ok("u@[192.0.2.1]", "[192.0.2.1]"), ok("u@[192.0.2.1]", "[192.0.2.1]")},
        {"<u@[IPv6:2001:db8::1]>", ok("u@[IPv6:2001:db8::1]", "[ipv6:2001:db8::1]"),
         ok("u@[IPv6:2001:db8::1]", "[ipv6:2001:db8::1]")},
        {"<u@[IPv6:::ffff:192.0.2.1]>", ok("u@[IPv6:::ffff:192.0.2.1]", "[ipv6:::ffff:192.0.2.1]"),
         ok("u@[IPv6:::ffff:192.0.2.1]", "[ipv6:::ffff:192.0.2.1]")},
        {"<u@[999.1.1.1]>", bad_mail, bad_rcpt},
        {"<u@[1.2.3]>", bad_mail, bad_rcpt},
        {"<u@[1.2.3.4.5]>", bad_mail, bad_rcpt},
        {"<u@[1.2.3.]>", bad_mail, bad_rcpt},
        {"<u@[IPv6:zz]>", bad_mail, bad_rcpt},
        {"<u@[IPv6:fe80::1%eth0]>", bad_mail, bad_rcpt},
        {"<u@[2001:db8::1]>", bad_mail, bad_rcpt},
        {"<wietse@[stuff>", bad_mail, bad_rcpt},
        {"<wietse@[\"stuff]>", bad_mail, bad_rcpt},
        {"<u@[]>", bad_mail, bad_rcpt},
        // Domains.
        {"<u@-a.example>", bad_mail, bad_rcpt},
        {"<u@a-.example>", bad_mail, bad_rcpt},
        {"<u@a..example>", bad_mail, bad_rcpt},
        {"<u@example.>", bad_mail, bad_rcpt},
        {"<u@a_b.example>", bad_mail, bad_rcpt},
        {"<u@>", bad_mail, bad_rcpt},
        {"<@>", bad_mail, bad_rcpt},
        {"<u@" + std::string(64, 'a') + ".example>", bad_mail, bad_rcpt},
        {"<u@" + std::string(63, 'a') + ".example>",
         ok("u@" + std::string(63, 'a') + ".example", ""),
         ok("u@" + std::string(63, 'a') + ".example", "")},
        // No domain: only RCPT <postmaster> (RFC 5321 §4.1.1.3).
        {"<postmaster>", bad_mail, ok("postmaster", "")},
        {"<PostMaster>", bad_mail, ok("PostMaster", "")},
        {"<user>", bad_mail, bad_rcpt},
        {"<\"a@b\">", bad_mail, bad_rcpt},
        // Shell and expander bait is data (§5 D.27, D.28).
        {"<;sleep 66;>", bad_mail, bad_rcpt},
        {"<${run{/bin/true}}@localhost>", ok("${run{/bin/true}}@localhost", "localhost"),
         ok("${run{/bin/true}}@localhost", "localhost")},
        {"<`id`@x.example>", ok("`id`@x.example", "x.example"), ok("`id`@x.example", "x.example")},
        {"<a|b@x.example>", ok("a|b@x.example", "x.example"), ok("a|b@x.example", "x.example")},
        // Sender-specified routing is not re-interpreted (§5 D.36).
        {"<user%evil.example@ok.example>", ok("user%evil.example@ok.example", "ok.example"),
         ok("user%evil.example@ok.example", "ok.example")},
        {"<evil!user@ok.example>", ok("evil!user@ok.example", "ok.example"),
         ok("evil!user@ok.example", "ok.example")},
        // Display names and comments are not paths.
        {"<Name <a@b.example>>", bad_mail, bad_rcpt},
        {"<a@b.example (comment)>", bad_mail, bad_rcpt},
        {"<a b@c.example>", bad_mail, bad_rcpt},
        {"<<a@b.example>>", bad_mail, bad_rcpt},
        // Control characters and NUL (§1.6, §1.12, §5 D.29, D.38): never truncated.
        {"<a@b\rX-Evil: 1>", bad_mail, bad_rcpt},
        {"<a@b.example\nX-Evil: 1>", bad_mail, bad_rcpt},
        {std::string("<a\0@b.example>"sv), bad_mail, bad_rcpt},
        {std::string("<a@b.example\0>"sv), bad_mail, bad_rcpt},
        {"<a\x7f@b.example>", bad_mail, bad_rcpt},
        {"<a\t@b.example>", bad_mail, bad_rcpt},
        // Length floors accepted, one more refused (§5 B.16).
        {"<" + long_local + "@b.example>", ok(long_local + "@b.example", "b.example"),
         ok(long_local + "@b.example", "b.example")},
        {"<" + long_local + "l@b.example>", bad_mail, bad_rcpt},
        {"<" + path_256 + ">", ok(path_256, domain_189), ok(path_256, domain_189)},
        {"<" + path_256 + "c>", bad_mail, bad_rcpt},
        {"<\"" + std::string(62, 'q') + "\"@b.example>",
         ok("\"" + std::string(62, 'q') + "\"@b.example", "b.example"),
         ok("\"" + std::string(62, 'q') + "\"@b.example", "b.example")},
        {"<\"" + std::string(63, 'q') + "\"@b.example>", bad_mail, bad_rcpt},
        // UTF-8 (§5 D.37): valid but undeclared, and invalid.
        {"<j\xc3\xb6rg@example.org>", fail(553, "5.6.7"), fail(553, "5.6.7")},
        {"<jorg@b\xc3\xbc"
         "cher.example>",
         fail(553, "5.6.7"), fail(553, "5.6.7")},
        {"<j\xc3@example.org>", fail(501, "5.5.2"), fail(501, "5.5.2")},
        {"<j\xc0\xafrg@example.org>", fail(501, "5.5.2"), fail(501, "5.5.2")},    // overlong '/'
        {"<j\xed\xa0\x80@example.org>", fail(501, "5.5.2"), fail(501, "5.5.2")},  // surrogate
        {"<j\xff@example.org>", fail(501, "5.5.2"), fail(501, "5.5.2")},
    };
    return cases;
}

void check(const Address& got, const Expect& want, const std::string& label) {
    EXPECT_EQ(got.text, want.text) << label;
    if (!want.domain.empty()) {
        EXPECT_EQ(got.domain, want.domain) << label;
    }
}

void check_reply(const Reply& got, const Expect& want, const std::string& label) {
    EXPECT_EQ(got.code, want.code) << label << " -> " << got.wire();
    EXPECT_EQ(got.enhanced, want.enhanced) << label << " -> " << got.wire();
}

TEST(ParseMail, Addresses) {
    for (const auto& c : address_cases()) {
        const std::string argument = "FROM:" + c.argument;
        const auto result = parse_mail(argument, ParseLimits{});
        if (c.mail.code == 0) {
            ASSERT_TRUE(std::holds_alternative<MailFrom>(result))
                << argument << " -> " << std::get<Reply>(result).wire();
            check(std::get<MailFrom>(result).sender, c.mail, argument);
        } else {
            ASSERT_TRUE(std::holds_alternative<Reply>(result)) << argument;
            check_reply(std::get<Reply>(result), c.mail, argument);
        }
    }
}

TEST(ParseRcpt, Addresses) {
    for (const auto& c : address_cases()) {
        const std::string argument = "TO:" + c.argument;
        const auto result = parse_rcpt(argument, false);
        if (c.rcpt.code == 0) {
            ASSERT_TRUE(std::holds_alternative<RcptTo>(result))
                << argument << " -> " << std::get<Reply>(result).wire();
            check(std::get<RcptTo>(result).recipient, c.rcpt, argument);
        } else {
            ASSERT_TRUE(std::holds_alternative<Reply>(result)) << argument;
            check_reply(std::get<Reply>(result), c.rcpt, argument);
        }
    }
}

TEST(ParseMail, Keyword) {
    for (std::string_view argument : {"FROM<a@b.example>", "TO:<a@b.example>", "FROM", "",
                                      "FROM :<a@b.example>", "SENDER:<a@b.example>"}) {
        const auto result = parse_mail(argument, ParseLimits{});
        ASSERT_TRUE(std::holds_alternative<Reply>(result)) << argument;
        EXPECT_EQ(std::get<Reply>(result).wire(), "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
    }
    const auto lower = parse_mail("from:<a@b.example>", ParseLimits{});
    ASSERT_TRUE(std::holds_alternative<MailFrom>(lower));
}

TEST(ParseRcpt, KeywordAndTexts) {
    auto reply = [](std::string_view argument, bool utf8) {
        const auto result = parse_rcpt(argument, utf8);
        return std::holds_alternative<Reply>(result) ? std::get<Reply>(result).wire() : "ok";
    };
    EXPECT_EQ(reply("FROM:<a@b.example>", false), "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
    EXPECT_EQ(reply("TO:<>", false), "501 5.1.3 Bad recipient address syntax\r\n");
    EXPECT_EQ(reply("TO:<u@d.example> NOTIFY=NEVER", false),
              "555 5.5.4 Unsupported option: NOTIFY\r\n");
    EXPECT_EQ(reply("TO:<u@d.example> ORCPT=rfc822;a+0D+0Ab", false),
              "555 5.5.4 Unsupported option: ORCPT\r\n");
    EXPECT_EQ(reply("TO:<u@d.example> X=\ra", false), "501 5.5.4 Bad parameter syntax\r\n");
    EXPECT_EQ(reply("TO:<j\xc3\xb6rg@example.org>", false),
              "553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n");
    EXPECT_EQ(reply("TO:<j\xc3\xb6rg@example.org>", true), "ok");
    EXPECT_EQ(reply("TO:<u@d.example>   ", false), "ok");
    const auto utf8 = parse_rcpt(
        "TO:<j\xc3\xb6rg@B\xc3\xbc"
        "cher.example>",
        true);
    ASSERT_TRUE(std::holds_alternative<RcptTo>(utf8));
    EXPECT_TRUE(std::get<RcptTo>(utf8).recipient.utf8);
    EXPECT_EQ(std::get<RcptTo>(utf8).recipient.domain,
              "b\xc3\xbc"
              "cher.example");
}

TEST(ParseMail, Parameters) {
    struct Case {
        std::string_view argument;
        std::string_view reply;  // "" = accepted
    };
    const Case cases[] = {
        {"FROM:<a@b.example> SIZE=1000", ""},
        {"FROM:<a@b.example> size=0 body=8bitmime smtputf8", ""},
        {"FROM:<a@b.example>  SIZE=10   BODY=7BIT", ""},
        {"FROM:<a@b.example> SIZE=52428800", ""},
        {"FROM:<a@b.example> SIZE=52428801", "552 5.3.4 Message size exceeds fixed limit\r\n"},
        {"FROM:<a@b.example> SIZE=18446744073709551615",
         "552 5.3.4 Message size exceeds fixed limit\r\n"},
        {"FROM:<a@b.example> SIZE=18446744073709551616", "501 5.5.4 Bad SIZE parameter syntax\r\n"},
        {"FROM:<a@b.example> SIZE=000000000000000000001",
         "501 5.5.4 Bad SIZE parameter syntax\r\n"},
        {"FROM:<a@b.example> SIZE=123456789012345678901234567890",
         "501 5.5.4 Bad SIZE parameter syntax\r\n"},
        {"FROM:<a@b.example> SIZE=abc", "501 5.5.4 Bad SIZE parameter syntax\r\n"},
        {"FROM:<a@b.example> SIZE=-1", "501 5.5.4 Bad SIZE parameter syntax\r\n"},
        {"FROM:<a@b.example> SIZE=+1", "501 5.5.4 Bad SIZE parameter syntax\r\n"},
        {"FROM:<a@b.example> SIZE=", "501 5.5.4 Bad SIZE parameter syntax\r\n"},
        {"FROM:<a@b.example> SIZE", "501 5.5.4 Bad SIZE parameter syntax\r\n"},
        {"FROM:<a@b.example> SIZE=1 SIZE=2", "501 5.5.4 Duplicate SIZE parameter\r\n"},
        {"FROM:<a@b.example> BODY=BINARYMIME", "501 5.5.4 Bad BODY keyword syntax\r\n"},
        {"FROM:<a@b.example> BODY", "501 5.5.4 Bad BODY keyword syntax\r\n"},
        {"FROM:<a@b.example> SMTPUTF8=yes", "501 5.5.4 Bad SMTPUTF8 parameter syntax\r\n"},
        {"FROM:<a@b.example> FOO=1", "555 5.5.4 Unsupported option: FOO\r\n"},
        {"FROM:<a@b.example> foo", "555 5.5.4 Unsupported option: FOO\r\n"},
        {"FROM:<> AUTH=x+0AEvil", "555 5.5.4 Unsupported option: AUTH\r\n"},
        {"FROM:<a@b.example> ENVID=+0A", "555 5.5.4 Unsupported option: ENVID\r\n"},
        {"FROM:<a@b.example> RET=HDRS", "555 5.5.4 Unsupported option: RET\r\n"},
        {"FROM:<a@b.example> X\xc3\xa9=1", "555 5.5.4 Unsupported option: X??\r\n"},
        {"FROM:<a@b.example> =1", "501 5.5.4 Bad parameter syntax\r\n"},
        {"FROM:<a@b.example> SIZE=1\r", "501 5.5.4 Bad parameter syntax\r\n"},
        {"FROM:<a@b.example> ENVID=a\nb", "501 5.5.4 Bad parameter syntax\r\n"},
        {"FROM:<a@b.example> SIZE=1\0"sv, "501 5.5.4 Bad parameter syntax\r\n"},
        {"FROM:<a@b.example>\tSIZE=1", "501 5.1.7 Bad sender address syntax\r\n"},
        // The address is judged before the parameters; SMTPUTF8 anywhere counts.
        {"FROM:<bad> FOO=1", "501 5.1.7 Bad sender address syntax\r\n"},
        {"FROM:<j\xc3\xb6rg@example.org> SMTPUTF8", ""},
        {"FROM:<j\xc3\xb6rg@example.org> SIZE=1 SMTPUTF8", ""},
        {"FROM:<j\xc3\xb6rg@example.org> SIZE=1",
         "553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n"},
        {"FROM:<j\xc3@example.org> SMTPUTF8", "501 5.5.2 Error: bad UTF-8 syntax\r\n"},
    };
    ParseLimits limits;
    limits.max_message_size = 50ull << 20;
    for (const auto& c : cases) {
        const auto result = parse_mail(c.argument, limits);
        const std::string got =
            std::holds_alternative<Reply>(result) ? std::get<Reply>(result).wire() : "";
        EXPECT_EQ(got, c.reply) << c.argument;
    }
}

TEST(ParseMail, ParameterValues) {
    const auto result = parse_mail("FROM:<a@b.example> SIZE=1234 BODY=8BITMIME SMTPUTF8", {});
    ASSERT_TRUE(std::holds_alternative<MailFrom>(result));
    const auto& mail = std::get<MailFrom>(result);
    EXPECT_EQ(mail.size, 1234u);
    EXPECT_EQ(mail.body, Body::eight_bit_mime);
    EXPECT_TRUE(mail.smtputf8);
    EXPECT_FALSE(mail.sender.utf8);

    const auto plain = parse_mail("FROM:<>", {});
    ASSERT_TRUE(std::holds_alternative<MailFrom>(plain));
    EXPECT_EQ(std::get<MailFrom>(plain).size, std::nullopt);
    EXPECT_EQ(std::get<MailFrom>(plain).body, Body::seven_bit);
    EXPECT_FALSE(std::get<MailFrom>(plain).smtputf8);
    EXPECT_EQ(std::get<MailFrom>(plain).sender.text, "");
}

TEST(CheckHelo, Table) {
    struct Case {
        std::string_view argument;
        std::string_view reply;  // "" = accepted
    };
    const Case cases[] = {
        {"client.example", ""},
        {"[192.0.2.1]", ""},
        {"not a hostname but tolerated", ""},
        {"", "501 5.5.4 Syntax: EHLO hostname\r\n"},
        {"a\rX-Evil: 1", "501 5.5.2 Error: bad characters in HELO argument\r\n"},
        {"a\nb", "501 5.5.2 Error: bad characters in HELO argument\r\n"},
        {"a\0b"sv, "501 5.5.2 Error: bad characters in HELO argument\r\n"},
        {"a\tb", "501 5.5.2 Error: bad characters in HELO argument\r\n"},
        {"a\x7f", "501 5.5.2 Error: bad characters in HELO argument\r\n"},
        {"a\xff", "501 5.5.2 Error: bad characters in HELO argument\r\n"},
    };
    for (const auto& c : cases) {
        const auto reply = check_helo(c.argument);
        EXPECT_EQ(reply ? reply->wire() : "", c.reply) << c.argument;
    }
}

}  // namespace
}  // namespace tlsrelay::smtp

// Client-side parsing: server replies (bounded, CVE-2020-8794 shapes), EHLO
// capabilities, and the wire form of stored content (dot-stuffing, folding).
#include <gtest/gtest.h>

#include "smtp/client_session.hpp"
#include "smtp/reply_parser.hpp"
#include "split.hpp"

namespace tlsrelay::smtp {
namespace {

struct ReplyCase {
    std::string input;
    bool ok;
    int code;
    std::size_t lines;
    std::string dsn;
};

TEST(ReplyParser, RepliesAtEverySplit) {
    const ReplyCase cases[] = {
        {"220 mx.example ESMTP\r\n", true, 220, 1, "2.0.0"},
        {"250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n", true, 250, 3, "2.0.0"},
        {"550 5.1.1 <u@d>: Recipient address rejected\r\n", true, 550, 1, "5.1.1"},
        {"451 4.3.0 Error\n", true, 451, 1, "4.3.0"},  // bare LF tolerated
        {"452 too many\r\n", true, 452, 1, "4.0.0"},
        {"550 4.1.1 class mismatch\r\n", true, 550, 1, "5.0.0"},  // enhanced class must agree
        {"250\r\n", true, 250, 1, "2.0.0"},
        {"2\r\n", false, 0, 0, ""},
        {"250-a\r\n251 b\r\n", false, 0, 0, ""},  // codes differ between lines
        {"abc hello\r\n", false, 0, 0, ""},
        {"250xhello\r\n", false, 0, 0, ""},
        {"999 nope\r\n", false, 0, 0, ""},
    };
    for (const auto& c : cases) {
        testing::for_each_split(c.input, [&](const testing::Chunks& chunks, const std::string& how) {
            ReplyParser p;
            ReplyParser::Status st = ReplyParser::Status::need_more;
            for (auto chunk : chunks) {
                while (!chunk.empty() && st == ReplyParser::Status::need_more)
                    chunk.remove_prefix(p.consume(chunk, st));
            }
            if (!c.ok) {
                EXPECT_EQ(st, ReplyParser::Status::error) << c.input << " " << how;
                return;
            }
            ASSERT_EQ(st, ReplyParser::Status::reply) << c.input << " " << how;
            EXPECT_EQ(p.reply().code, c.code);
            EXPECT_EQ(p.reply().lines.size(), c.lines);
            EXPECT_EQ(p.reply().dsn(), c.dsn) << c.input;
        });
    }
}

TEST(ReplyParser, HostileRepliesStayBounded) {
    ReplyParser p;
    ReplyParser::Status st;
    std::string many;
    for (int i = 0; i < 2000; ++i) many += "250-x\r\n";
    p.consume(many, st);
    EXPECT_EQ(st, ReplyParser::Status::error);  // more than max_lines continuation lines
    EXPECT_EQ(p.error(), "more than 1000 reply lines");

    // Megabytes of long continuation lines: given up on after max_bytes of text, not
    // kept until max_lines of max_line each (4 MiB) have arrived.
    ReplyParser wide;
    const std::string line = "250-" + std::string(1000, 'x') + "\r\n";
    std::size_t fed = 0;
    for (st = ReplyParser::Status::need_more; st == ReplyParser::Status::need_more && fed < (8u << 20);
         fed += line.size())
        wide.consume(line, st);
    EXPECT_EQ(st, ReplyParser::Status::error);
    EXPECT_EQ(wide.error(), "reply longer than 65536 bytes");
    EXPECT_LE(fed, ReplyParser::max_bytes + line.size());

    ReplyParser fits;  // just under the limit is a reply, and the next one starts afresh
    const std::string l60 = "250-" + std::string(1000, 'y') + "\r\n";
    std::string big;
    for (int i = 0; i < 60; ++i) big += l60;
    big += "250 last\r\n";
    fits.consume(big, st);
    ASSERT_EQ(st, ReplyParser::Status::reply);
    EXPECT_EQ(fits.reply().lines.size(), 61u);
    fits.consume(big, st);
    EXPECT_EQ(st, ReplyParser::Status::reply);

    ReplyParser q;
    std::string huge = "250 " + std::string(1 << 20, 'a') + "\r\n";
    q.consume(huge, st);
    ASSERT_EQ(st, ReplyParser::Status::reply);
    EXPECT_LE(q.reply().lines[0].size(), ReplyParser::max_line);

    ReplyParser r;
    r.consume(std::string("250 a\x1b[31m\0b\r\n", 14), st);
    ASSERT_EQ(st, ReplyParser::Status::reply);
    EXPECT_EQ(r.reply().lines[0], "a?[31m?b");  // control bytes never reach a log line
}

TEST(ReplyParser, GarbageLineIsAnErrorAndNamedPrintably) {
    // Postfix glues such a line to the next reply; we stop at it (checklist item 72).
    ReplyParser p;
    ReplyParser::Status st;
    std::string input = "this is \x01garbage " + std::string(200, 'x') + "\r\n250 2.1.0 Ok\r\n";
    std::size_t used = p.consume(input, st);
    EXPECT_EQ(st, ReplyParser::Status::error);
    EXPECT_EQ(used, input.find('\n') + 1);  // the valid reply behind it is not consumed
    EXPECT_EQ(p.bad_line(), ("this is ?garbage " + std::string(200, 'x')).substr(0, 100));
}

TEST(ReplyParser, TextAsPostfixLogsIt) {
    ReplyParser p;
    ReplyParser::Status st;
    p.consume("550-5.1.1 first\r\n550 5.1.1 second\r\n", st);
    EXPECT_EQ(p.reply().text(), "550-5.1.1 first 550 5.1.1 second");
    ServerId s{"mx.example", boost::asio::ip::make_address("192.0.2.1"), 25};
    EXPECT_EQ(said(s, p.reply(), "RCPT TO"),
              "host mx.example[192.0.2.1] said: 550-5.1.1 first 550 5.1.1 second (in reply to RCPT TO command)");
}

// Postfix's smtp_chat_resp: the DSN of the last line after any spaces, X.0.0 when it is
// missing or of another class, 5.5.0 for 3xx; printable() keeps (loosely) UTF-8.
TEST(ReplyParser, DsnAndTextAsPostfixReadsThem) {
    struct Case {
        std::string input, dsn, text;
    };
    const Case cases[] = {
        {"550-5.1.1 first\r\n550 5.7.1 second\r\n", "5.7.1", "550-5.1.1 first 550 5.7.1 second"},
        {"550   5.7.1 spaced\r\n", "5.7.1", "550   5.7.1 spaced"},
        {"550 4.1.1 other class\r\n", "5.0.0", "550 4.1.1 other class"},
        {"354 go ahead\r\n", "5.5.0", "354 go ahead"},
        {"354 3.0.0 go ahead\r\n", "5.5.0", "354 3.0.0 go ahead"},
        {"250 Ok\r\n", "2.0.0", "250 Ok"},
        {"550\r\n", "5.0.0", "550"},                                                 // the code alone
        {"550 \r\n", "5.0.0", "550 "},                                               // and its space
        {"550-\r\n550 \r\n", "5.0.0", "550- 550 "},
        {"550  \r\n", "5.0.0", "550  "},
        {"550 5.1.1 Empf\xc3\xa4nger\r\n", "5.1.1", "550 5.1.1 Empf\xc3\xa4nger"},
        {"550 5.1.1 a\xe4\xb8" "b\r\n", "5.1.1", "550 5.1.1 a\xe4\xb8" "b"},          // truncated: kept
        {"550 5.1.1 caf\xe9 x\r\n", "5.1.1", "550 5.1.1 caf? x"},                    // Latin-1: not UTF-8
        {"550 5.1.1 a\xc0\xaf" "b\x01\x7f\tc\r\n", "5.1.1", "550 5.1.1 a??b???c"},  // C0 lead, controls
    };
    for (const auto& c : cases) {
        ReplyParser p;
        ReplyParser::Status st;
        p.consume(c.input, st);
        ASSERT_EQ(st, ReplyParser::Status::reply) << c.input;
        EXPECT_EQ(p.reply().dsn(), c.dsn) << c.input;
        EXPECT_EQ(p.reply().text(), c.text) << c.input;
    }
}

TEST(Refused, ProtocolErrorWhenTheDsnIsNoFailure) {
    ReplyParser p;
    ReplyParser::Status st;
    p.consume("250 2.0.0 Ok\r\n", st);
    Failure f = refused(p.reply(), "host h said: 250 2.0.0 Ok (in reply to DATA command)");
    EXPECT_EQ(f.dsn, "5.5.0");
    EXPECT_TRUE(f.hard);
    EXPECT_EQ(f.reason, "Protocol error: host h said: 250 2.0.0 Ok (in reply to DATA command)");
    p.consume("450 4.2.0 busy\r\n", st);
    f = refused(p.reply(), "r");
    EXPECT_EQ(f.dsn, "4.2.0");
    EXPECT_FALSE(f.hard);
    p.consume("354 more\r\n", st);
    f = refused(p.reply(), "r");
    EXPECT_EQ(f.dsn, "5.5.0");
    EXPECT_TRUE(f.hard);
    EXPECT_EQ(f.reason, "r");
}

TEST(Smtputf8, NeededOnlyWhenAskedForAndTheEnvelopeOrHeadersAreNotAscii) {
    const std::string ascii = "Subject: hi\r\n\r\nGr\xc3\xbc\xc3\x9f" "e\r\n";  // UTF-8 in the body only
    const std::string header = "Subject: Gr\xc3\xbc\xc3\x9f" "e\r\n\r\nhi\r\n";
    const std::vector<std::string> plain{"a@example.test"}, utf8{"j\xc3\xbcrgen@example.test"};
    EXPECT_FALSE(needs_smtputf8(true, "s@example.test", plain, ascii));
    EXPECT_TRUE(needs_smtputf8(true, "s@example.test", plain, header));
    EXPECT_TRUE(needs_smtputf8(true, "s@example.test", utf8, ascii));
    EXPECT_TRUE(needs_smtputf8(true, "j\xc3\xbcrgen@example.test", plain, ascii));
    EXPECT_FALSE(needs_smtputf8(false, "s@example.test", utf8, header));  // not asked for
    EXPECT_FALSE(needs_smtputf8(true, "s@example.test", plain, "\r\nGr\xc3\xbc\r\n"));  // no header section
}

TEST(Ehlo, Capabilities) {
    ReplyParser p;
    ReplyParser::Status st;
    p.consume("250-mx\r\n250-pipelining\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n250-8BITMIME\r\n"
              "250 SMTPUTF8\r\n", st);
    auto caps = parse_ehlo(p.reply());
    EXPECT_TRUE(caps.pipelining);
    EXPECT_TRUE(caps.starttls);
    EXPECT_TRUE(caps.eight_bit_mime);
    EXPECT_TRUE(caps.smtputf8);
    EXPECT_EQ(caps.size, 10240000u);

    ReplyParser q;
    q.consume("250-mx\r\n250-XXXXXXXA\r\n250 SIZE\r\n", st);  // STARTTLS stripped by a middlebox
    caps = parse_ehlo(q.reply());
    EXPECT_FALSE(caps.starttls);
    EXPECT_EQ(caps.size, 0u);
}

// Postfix's smtp_helo splits a keyword at a space, a tab or "=", and takes the next word
// as the SIZE limit when it is all digits; anything else is SIZE without a limit.
// Control bytes, tabs included, were replaced by '?' when the reply was read.
TEST(Ehlo, KeywordsAndSizeAsPostfixSplitsThem) {
    struct Case {
        std::string line;
        std::optional<unsigned long long> size;
        bool eight_bit_mime = false;
    };
    const Case cases[] = {
        {"SIZE 100", 100},
        {"SIZE  100", 100},
        {"SIZE\t100", std::nullopt},          // printable() made the tab a '?' first
        {"SIZE=100", 100},
        {"size 100 200", 100},
        {"SIZE 12abc", 0},
        {"SIZE -5", 0},
        {"SIZE", 0},
        {"SIZE 0", 0},
        {"SIZE 9223372036854775807", 9223372036854775807ull},
        {"SIZE 9223372036854775808", 0},       // overflows off_t: no limit
        {"SIZE 99999999999999999999", 0},
        {"SIZEX 100", std::nullopt},
        {"8BITMIME\tx", std::nullopt, false},
        {"8BITMIME=x", std::nullopt, true},
        {" 8BITMIME", std::nullopt, true},
    };
    for (const auto& c : cases) {
        ReplyParser p;
        ReplyParser::Status st;
        p.consume("250-mx\r\n250 " + c.line + "\r\n", st);
        ASSERT_EQ(st, ReplyParser::Status::reply) << c.line;
        auto caps = parse_ehlo(p.reply());
        EXPECT_EQ(caps.size, c.size) << c.line;
        EXPECT_EQ(caps.eight_bit_mime, c.eight_bit_mime) << c.line;
    }
}

TEST(WireBody, DotStuffingAndFolding) {
    struct Case {
        std::string stored, wire;
    };
    const Case cases[] = {
        {"", ".\r\n"},
        {"a\r\n", "a\r\n.\r\n"},
        {".\r\n", "..\r\n.\r\n"},
        {"..x\r\n.y\r\nz\r\n", "...x\r\n..y\r\nz\r\n.\r\n"},
        {"no final newline", "no final newline\r\n.\r\n"},
        {std::string(998, 'a') + "\r\n", std::string(998, 'a') + "\r\n.\r\n"},
        {std::string(999, 'a') + "\r\n", std::string(998, 'a') + "\r\n a\r\n.\r\n"},
        {"." + std::string(1000, 'b') + "\r\n",
         ".." + std::string(997, 'b') + "\r\n " + std::string(3, 'b') + "\r\n.\r\n"},
    };
    for (const auto& c : cases) EXPECT_EQ(wire_body(c.stored), c.wire) << c.stored.substr(0, 20);
}

// Content with stray CR or LF (intake never stores it; a foreign or damaged queue file
// might): canonical CRLF and correct dot-stuffing on the wire, so a smuggled
// "\n.\r\n" can never end the message early (checklist item 7).
TEST(WireBody, StrayCrAndLfBecomeCanonical) {
    struct Case {
        std::string stored, wire;
    };
    const Case cases[] = {
        {"a\n.\nMAIL FROM:<x>\r\n", "a\r\n..\r\nMAIL FROM:<x>\r\n.\r\n"},
        {"x\n.\r\nRCPT TO:<y>\r\n", "x\r\n..\r\nRCPT TO:<y>\r\n.\r\n"},
        {"a\r.\rb\r\n", "a . b\r\n.\r\n"},
        {"a\r\n.\r\r\n", "a\r\n.. \r\n.\r\n"},
        {"\n", "\r\n.\r\n"},
        {"end\r", "end \r\n.\r\n"},
        {"\r\n\n.\n", "\r\n\r\n..\r\n.\r\n"},
    };
    for (const auto& c : cases) EXPECT_EQ(wire_body(c.stored), c.wire) << c.stored;
    // every mix of the bytes that matter: CRLF only, and the end of data only at the end
    const std::string_view alphabet = "\r\n.a";
    for (unsigned n = 0; n < 4 * 4 * 4 * 4 * 4 * 4; ++n) {
        std::string stored;
        for (unsigned k = n, i = 0; i < 6; ++i, k /= 4) stored += alphabet[k % 4];
        const std::string wire = wire_body(stored);
        for (std::size_t i = 0; i < wire.size(); ++i) {
            if (wire[i] == '\r') EXPECT_TRUE(i + 1 < wire.size() && wire[i + 1] == '\n') << stored;
            if (wire[i] == '\n') EXPECT_TRUE(i > 0 && wire[i - 1] == '\r') << stored;
        }
        const std::size_t end = ("\r\n" + wire).find("\r\n.\r\n");
        EXPECT_EQ(end, wire.size() - 3) << stored;
    }
}

}  // namespace
}  // namespace tlsrelay::smtp

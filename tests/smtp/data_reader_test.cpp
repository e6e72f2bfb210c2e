#include "smtp/data_reader.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "split.hpp"

namespace tlsrelay::smtp {
namespace {

using namespace std::string_literals;
using Status = DataReader::Status;

struct Result {
    std::string out;
    std::size_t consumed = 0;  // input bytes up to and including the terminator
    bool done = false;
    std::uint64_t size = 0;
    unsigned received = 0;
    bool operator==(const Result&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Result& r) {
    return os << "out=" << ::testing::PrintToString(r.out) << " consumed=" << r.consumed
              << " done=" << r.done << " size=" << r.size << " received=" << r.received;
}

// Stored content must hold CRLF line endings only (§1.1 consequence b).
bool only_crlf(std::string_view text) {
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\r' && (i + 1 == text.size() || text[i + 1] != '\n')) return false;
        if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) return false;
    }
    return true;
}

Result run(const testing::Chunks& chunks, DataReader::Limits limits = {}) {
    DataReader reader(limits);
    Result result;
    for (std::string_view chunk : chunks) {
        while (!chunk.empty() && !result.done) {
            Status status;
            const std::size_t used = reader.consume(chunk, result.out, status);
            EXPECT_LE(used, chunk.size());
            chunk.remove_prefix(std::min(used, chunk.size()));
            result.consumed += used;
            result.done = status == Status::done;
            if (used == 0 && !result.done) break;
        }
    }
    result.size = reader.size();
    result.received = reader.received_count();
    EXPECT_TRUE(only_crlf(result.out)) << ::testing::PrintToString(result.out);
    return result;
}

// Every split gives the same result as the expectation.
void expect_all_splits(std::string_view input, const Result& want, DataReader::Limits limits = {}) {
    testing::for_each_split(input, [&](const testing::Chunks& chunks, const std::string& how) {
        EXPECT_EQ(run(chunks, limits), want)
            << ::testing::PrintToString(std::string(input)) << " " << how;
    });
}

Result done(std::string out, std::size_t consumed, unsigned received = 0) {
    const std::uint64_t size = out.size();
    return {std::move(out), consumed, true, size, received};
}

TEST(DataReader, Table) {
    struct Case {
        std::string input;
        std::string out;
        bool done = true;
    };
    const Case cases[] = {
        {".\r\n", ""},  // empty message: DATA's own line ended in CRLF
        {"Subject: x\r\n\r\nbody\r\n.\r\n", "Subject: x\r\n\r\nbody\r\n"},
        {"a\r\n\r\n\r\n.\r\n", "a\r\n\r\n\r\n"},
        // Dot-unstuffing (RFC 5321 §4.5.2).
        {"..\r\n.x\r\n...\r\n. \r\nx.\r\n.\r\n", ".\r\nx\r\n..\r\n \r\nx.\r\n"},
        // Bare LF becomes CRLF; bare CR becomes a space (§5 A.5).
        {"a\nb\r\n.\r\n", "a\r\nb\r\n"},
        {"a\rb\r\n.\r\n", "a b\r\n"},
        {"a\r\r\n.\r\n", "a \r\n"},
        {"a\r\r\rb\r\n.\r\n", "a   b\r\n"},
        {"\r.\r\n.\r\n", " .\r\n"},
        // "." lines that are not <CRLF>.<CRLF> are content ".", never a terminator.
        {"a\n.\nb\r\n.\r\n", "a\r\n.\r\nb\r\n"},
        {"a\n.\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n"},
        {"a\r\n.\nb\r\n.\r\n", "a\r\n.\r\nb\r\n"},
        {"\n.\r\n.\r\n", "\r\n.\r\n"},
        {".\n.\r\n", ".\r\n.\r\n", false},  // the second "." follows a bare LF
        {".\n.\r\n.\r\n", ".\r\n.\r\n"},
        // A dot followed by a bare CR is a stuffed line with a stray CR.
        {"a\r\n.\rb\r\n.\r\n", "a\r\n b\r\n"},
        {".\r\r\n.\r\n", " \r\n"},
        {".\r.\r\n.\r\n", " .\r\n"},
        // NUL is data, and never makes a line look empty (§1.12, §5 A.4).
        {"a\0b\r\n.\r\n"s, "a\0b\r\n"s},
        {"a\r\n\0.\r\n.\r\n"s, "a\r\n\0.\r\n"s},
        // Not finished yet.
        {"a\r\n.", "a\r\n", false},
        {"a\r\n.\r", "a\r\n", false},
        {"a\r", "a", false},
        {"a\n.\r", "a\r\n", false},
        {"abc", "abc", false},
    };
    for (const auto& c : cases) {
        expect_all_splits(c.input, Result{c.out, c.input.size(), c.done, c.out.size(), 0});
    }
}

TEST(DataReader, StopsAtTerminator) {
    const std::string input = "a\r\n.\r\nMAIL FROM:<x@y>\r\n";
    expect_all_splits(input, done("a\r\n", 6));
}

// §1.1 / §5 A.1-A.4: each smuggling variant, then a pipelined second transaction,
// then the real terminator. Exactly one end of data, at the very end; the smuggled
// commands are content.
TEST(DataReader, Smuggling) {
    struct Variant {
        std::string eod;
        std::string stored;  // what the variant becomes in the content
    };
    const Variant variants[] = {
        {"\n.\n", "\r\n.\r\n"},
        {"\n.\r", "\r\n "},
        {"\r.\n", " .\r\n"},
        {"\r.\r", " . "},
        {"\n.\r\n", "\r\n.\r\n"},
        {"\r.\r\n", " .\r\n"},
        {"\r\n\0.\r\n"s, "\r\n\0.\r\n"s},
        {"\r\n.\r\r\n", "\r\n \r\n"},
        {"\r\r\n.\r\r\n", " \r\n \r\n"},
    };
    const std::string head = "From: a@b.example\r\nSubject: real\r\n\r\nbody";
    const std::string smuggled =
        "MAIL FROM:<smuggled@x>\r\nRCPT TO:<y@z>\r\nDATA\r\n"
        "From: smuggled@x\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n";
    for (const auto& v : variants) {
        const std::string input = head + v.eod + smuggled + ".\r\n" + "QUIT\r\n";
        expect_all_splits(input, done(head + v.stored + smuggled, input.size() - 6));
    }
}

std::string stuff(const std::vector<std::string>& lines) {
    std::string wire;
    for (const auto& line : lines) wire += (line.starts_with('.') ? "." : "") + line + "\r\n";
    return wire + ".\r\n";
}

// §5 A.8: what a conforming client dot-stuffs comes back byte-exact.
TEST(DataReader, DotStuffingRoundTrips) {
    const std::vector<std::string> lines = {"Subject: dots", "",   ".",   "..", ".x", "x.",
                                            "...",           " .", ".\t", "",   "end"};
    std::string content;
    for (const auto& line : lines) content += line + "\r\n";
    const std::string wire = stuff(lines);
    expect_all_splits(wire, done(content, wire.size()));
}

TEST(DataReader, SizeLimit) {
    DataReader::Limits limits;
    limits.max_size = 10;
    const std::string fits = "01234567\r\n.\r\n";  // 10 content bytes
    expect_all_splits(fits, done("01234567\r\n", fits.size()), limits);

    const std::string over = "0123456789\r\nmore\r\n.\r\n";  // 18 content bytes
    Result want{"0123456789", over.size(), true, 18, 0};
    expect_all_splits(over, want, limits);
    DataReader reader(limits);
    std::string out;
    Status status;
    reader.consume(over, out, status);
    EXPECT_TRUE(reader.too_big());
}

// §5 B.11: a 5 MB single line with a 1 MB limit: read to the end, memory bounded.
TEST(DataReader, HugeLineStoredUpToTheLimit) {
    DataReader::Limits limits;
    limits.max_size = 1 << 20;
    DataReader reader(limits);
    const std::string block(64 * 1024, 'x');
    std::string out;
    Status status;
    for (int i = 0; i < 80; ++i) {
        ASSERT_EQ(reader.consume(block, out, status), block.size());
        ASSERT_EQ(status, Status::need_more);
        ASSERT_LE(out.size(), limits.max_size);
    }
    EXPECT_EQ(reader.consume("\r\n.\r\nNOOP\r\n", out, status), 5u);
    EXPECT_EQ(status, Status::done);
    EXPECT_EQ(out.size(), limits.max_size);
    EXPECT_EQ(reader.size(), 80u * block.size() + 2);
    EXPECT_TRUE(reader.too_big());
}

TEST(DataReader, HopCount) {
    const std::string headers =
        "Received: from a\r\n"
        "received : from b\r\n"
        "RECEIVED:from c\r\n"
        "\tReceived: continuation, not a header\r\n"
        " Received: neither\r\n"
        "Received-SPF: pass\r\n"
        "ReceivedX: no\r\n"
        "X-Received: no\r\n"
        ".Received: stuffed, counts\r\n"
        "Subject: hops\r\n"
        "\r\n"
        "Received: in the body, not counted\r\n"
        ".\r\n";
    std::string content = headers.substr(0, headers.size() - 3);
    content.replace(content.find(".Received"), 1, "");
    expect_all_splits(headers, done(content, headers.size(), 4));

    for (unsigned limit : {3u, 4u}) {
        DataReader reader(DataReader::Limits{50ull << 20, limit});
        std::string out;
        Status status;
        reader.consume(headers, out, status);
        EXPECT_EQ(reader.too_many_hops(), limit < 4) << limit;
    }
}

// §5 B.15: 51 Received headers with the default limit of 50.
TEST(DataReader, FiftyOneHops) {
    std::string message;
    for (int i = 0; i < 51; ++i) message += "Received: from hop" + std::to_string(i) + "\r\n";
    message += "\r\nbody\r\n.\r\n";
    DataReader reader({});
    std::string out;
    Status status;
    EXPECT_EQ(reader.consume(message, out, status), message.size());
    EXPECT_EQ(status, Status::done);
    EXPECT_EQ(reader.received_count(), 51u);
    EXPECT_TRUE(reader.too_many_hops());
}

// One header field, continuation lines included, longer than max_header is flagged
// (CVE-2020-28020 shape); many fields each within it, or a long body line, are not.
TEST(DataReader, HeaderFieldLongerThanTheLimit) {
    auto too_long = [](const std::string& message) {
        DataReader reader({.max_size = 1ull << 30, .max_received = 50, .max_header = 1000});
        std::string out;
        Status status;
        EXPECT_EQ(reader.consume(message, out, status), message.size());
        EXPECT_EQ(status, Status::done);
        return reader.header_too_long();
    };
    const std::string at_limit = "X-Big: " + std::string(1000 - 9, 'y') + "\r\n";  // 1000 with CRLF
    EXPECT_FALSE(too_long(at_limit + "\r\nbody\r\n.\r\n"));
    EXPECT_TRUE(too_long("X-Big: y" + at_limit.substr(7) + "\r\nbody\r\n.\r\n"));
    std::string folded = "X-Long: start\r\n";
    for (int i = 0; i < 400; ++i) folded += " c\r\n";
    EXPECT_TRUE(too_long(folded + "\r\nbody\r\n.\r\n"));
    std::string many;
    for (int i = 0; i < 400; ++i) many += "X-N: c\r\n";
    EXPECT_FALSE(too_long(many + "\r\nbody\r\n.\r\n"));
    EXPECT_FALSE(too_long("Subject: x\r\n\r\n" + std::string(5000, 'z') + "\r\n.\r\n"));
    EXPECT_TRUE(too_long("X-Big: " + std::string(1 << 20, 'y') + "\r\n\r\n.\r\n"));
}

// Headers end at the first empty line, even one that ended in a bare LF.
TEST(DataReader, HeaderSectionEndsAtEmptyLine) {
    const std::string input = "Subject: x\n\nReceived: body\r\n.\r\n";
    expect_all_splits(input, done("Subject: x\r\n\r\nReceived: body\r\n", input.size(), 0));
}

// Random inputs over the bytes that matter: every split agrees, and the message only
// ever ends right after <CRLF>.<CRLF> (or ".<CRLF>" at the very start).
TEST(DataReader, RandomInputsAgreeAndEndOnlyAtCrLfDotCrLf) {
    std::mt19937 random(5321);
    constexpr std::string_view alphabet("\r\n.a\0", 5);
    for (int round = 0; round < 3000; ++round) {
        std::string input(random() % 24, ' ');
        for (char& c : input) c = alphabet[random() % alphabet.size()];
        const Result whole = run({input});
        if (whole.done) {
            const std::string_view used = std::string_view(input).substr(0, whole.consumed);
            EXPECT_TRUE(used == ".\r\n" || used.ends_with("\r\n.\r\n"))
                << ::testing::PrintToString(input);
        }
        testing::for_each_split(input, [&](const testing::Chunks& chunks, const std::string& how) {
            EXPECT_EQ(run(chunks), whole) << ::testing::PrintToString(input) << " " << how;
        });
    }
}

}  // namespace
}  // namespace tlsrelay::smtp

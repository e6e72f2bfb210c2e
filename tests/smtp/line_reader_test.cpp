#include "smtp/line_reader.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "split.hpp"

namespace tlsrelay::smtp {
namespace {

using namespace std::string_view_literals;
using Status = LineReader::Status;

struct Event {
    Status status;
    std::string line;
    bool bare_lf = false;
    bool operator==(const Event&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Event& e) {
    return os << (e.status == Status::line ? "line" : "too_long") << " [" << e.line << "]"
              << (e.bare_lf ? " bare-LF" : "");
}

// Runs the reader over the chunks; checks the memory bound after every call.
std::vector<Event> run(const testing::Chunks& chunks, std::size_t max_line) {
    LineReader reader(max_line);
    std::vector<Event> events;
    for (std::string_view chunk : chunks) {
        while (!chunk.empty()) {
            Status status;
            const std::size_t used = reader.consume(chunk, status);
            EXPECT_GT(used, 0u);
            EXPECT_LE(used, chunk.size());
            chunk.remove_prefix(std::min(used, chunk.size()));
            EXPECT_LT(reader.line().size(), max_line);
            if (status != Status::need_more)
                events.push_back({status, reader.line(), reader.line_had_bare_lf()});
            if (used == 0) break;
        }
    }
    return events;
}

Event line(std::string_view text) {
    return {Status::line, std::string(text), false};
}
Event bare(std::string_view text) {
    return {Status::line, std::string(text), true};
}
Event too_long(bool bare_lf = false) {
    return {Status::too_long, "", bare_lf};
}

struct Case {
    std::string input;
    std::size_t max_line;
    std::vector<Event> events;
};

std::vector<Case> cases() {
    const std::string at_cap(2046, 'x');  // + CRLF = 2048, Postfix line_length_limit
    return {
        {"EHLO x\r\n", 2048, {line("EHLO x")}},
        {"EHLO x\n", 2048, {bare("EHLO x")}},  // §5 A.6: one line, never merged
        {"EHLO x\nMAIL FROM:<a@b>\r\n", 2048, {bare("EHLO x"), line("MAIL FROM:<a@b>")}},
        {"A\r\nB\nC\r\n", 2048, {line("A"), bare("B"), line("C")}},
        {"\r\n\n", 2048, {line(""), bare("")}},
        {"A\rB\r\n", 2048, {line("A\rB")}},  // a lone CR stays in: the session refuses it
        {"A\r\r\n", 2048, {line("A\r")}},
        {"\r\r\n", 2048, {line("\r")}},
        {std::string("A\0B\r\n"sv), 2048, {line("A\0B"sv)}},
        {"partial", 2048, {}},
        {"partial\r", 2048, {}},
        {"QUIT\r\npartial", 2048, {line("QUIT")}},
        // The cap counts the terminator: 8 bytes including CRLF (or LF) are fine.
        {"123456\r\n", 8, {line("123456")}},
        {"1234567\n", 8, {bare("1234567")}},
        {"1234567\r\n", 8, {too_long()}},
        {"12345678\n", 8, {too_long(true)}},
        {"123456789012345\r\nQUIT\r\n", 8, {too_long(), line("QUIT")}},
        {"123456789012345\nQUIT\n", 8, {too_long(true), bare("QUIT")}},
        {"1234567\r\r\n", 8, {too_long()}},
        {at_cap + "\r\n", 2048, {line(at_cap)}},                       // §5 B.9
        {at_cap + "y\r\n", 2048, {too_long()}},                        // one octet more
        {at_cap + "y\r\nNOOP\r\n", 2048, {too_long(), line("NOOP")}},  // session continues
    };
}

TEST(LineReader, EverySplit) {
    for (const auto& c : cases()) {
        testing::for_each_split(c.input,
                                [&](const testing::Chunks& chunks, const std::string& how) {
                                    EXPECT_EQ(run(chunks, c.max_line), c.events)
                                        << ::testing::PrintToString(c.input) << " " << how;
                                });
    }
}

// §5 B.10: 1 MB without a newline is discarded as it arrives, then reported once.
TEST(LineReader, MegabyteWithoutNewline) {
    const std::string junk(1 << 20, 'A');
    for (std::size_t chunk_size :
         {std::size_t{1}, std::size_t{7}, std::size_t{4096}, junk.size()}) {
        LineReader reader;
        Status status;
        for (std::size_t at = 0; at < junk.size(); at += chunk_size) {
            const std::string_view chunk = std::string_view(junk).substr(at, chunk_size);
            ASSERT_EQ(reader.consume(chunk, status), chunk.size());
            ASSERT_EQ(status, Status::need_more);
            ASSERT_LT(reader.line().size(), 2048u);
            ASSERT_LE(reader.line().capacity(), 2 * 2048u);
        }
        const std::string tail = "\r\nQUIT\r\n";
        EXPECT_EQ(reader.consume(tail, status), 2u);
        EXPECT_EQ(status, Status::too_long);
        EXPECT_EQ(reader.consume(std::string_view(tail).substr(2), status), 6u);
        EXPECT_EQ(status, Status::line);
        EXPECT_EQ(reader.line(), "QUIT");
    }
}

TEST(LineReader, ResetForgetsPartialLine) {
    LineReader reader;
    Status status;
    EXPECT_EQ(reader.consume("RSET", status), 4u);  // plaintext injected before TLS
    reader.reset();
    EXPECT_EQ(reader.consume("EHLO x\r\n", status), 8u);
    EXPECT_EQ(status, Status::line);
    EXPECT_EQ(reader.line(), "EHLO x");

    LineReader cr;
    cr.consume("A\r", status);
    cr.reset();
    cr.consume("\n", status);
    EXPECT_EQ(status, Status::line);
    EXPECT_EQ(cr.line(), "");
    EXPECT_TRUE(cr.line_had_bare_lf());
}

TEST(LineReader, StopsAfterEachLine) {
    LineReader reader;
    Status status;
    const std::string_view input = "A\r\nB\r\n";
    EXPECT_EQ(reader.consume(input, status), 3u);  // pipelined commands: one at a time
    EXPECT_EQ(reader.line(), "A");
    EXPECT_EQ(reader.consume(input.substr(3), status), 3u);
    EXPECT_EQ(reader.line(), "B");
    EXPECT_EQ(reader.consume("", status), 0u);
    EXPECT_EQ(status, Status::need_more);
}

TEST(LineReader, RandomInputsAgree) {
    std::mt19937 random(2048);
    constexpr std::string_view alphabet("\r\nab\0", 5);
    for (int round = 0; round < 3000; ++round) {
        std::string input(random() % 24, ' ');
        for (char& c : input) c = alphabet[random() % alphabet.size()];
        const auto whole = run({input}, 6);
        testing::for_each_split(input, [&](const testing::Chunks& chunks, const std::string& how) {
            EXPECT_EQ(run(chunks, 6), whole) << ::testing::PrintToString(input) << " " << how;
        });
    }
}

}  // namespace
}  // namespace tlsrelay::smtp

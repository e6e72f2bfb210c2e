// The queue control protocol (relay/control_protocol.hpp): request lines come from
// another process over a socket, so every byte of them is treated as hostile.
#include <gtest/gtest.h>

#include "relay/control_protocol.hpp"

namespace tlsrelay::relay {
namespace {

using namespace std::string_literals;

const std::string id = "6927A3C80F1A21";

std::optional<ControlRequest> parsed(std::string_view line) {
    auto r = parse_control_request(line);
    if (auto* req = std::get_if<ControlRequest>(&r)) return *req;
    return std::nullopt;
}

TEST(ControlProtocol, RequestsOfTheGrammar) {
    struct Case {
        std::string line;
        ControlVerb verb;
        std::string id;
    };
    const Case cases[] = {
        {"flush", ControlVerb::flush, ""},
        {"flush " + id, ControlVerb::flush, id},
        {"hold " + id, ControlVerb::hold, id},
        {"release " + id, ControlVerb::release, id},
        {"delete " + id, ControlVerb::remove, id},
        {"list", ControlVerb::list, ""},
        {"list\r", ControlVerb::list, ""},  // a CR before the LF is tolerated
        {"tls-rpt-send", ControlVerb::tls_rpt_send, ""},
        {"hold " + id + "\r", ControlVerb::hold, id},
    };
    for (const auto& c : cases) {
        auto req = parsed(c.line);
        ASSERT_TRUE(req) << c.line;
        EXPECT_EQ(*req, (ControlRequest{c.verb, c.id})) << c.line;
    }
}

TEST(ControlProtocol, RefusedRequestsSayWhy) {
    struct Case {
        std::string line;
        const char* why;
    };
    const Case cases[] = {
        {"", "unknown request"},
        {" ", "unknown request"},
        {"FLUSH", "unknown request"},  // the verbs are lower case, as the CLI writes them
        {"Hold " + id, "unknown request"},
        {"remove " + id, "unknown request"},  // the CLI's word is delete
        {"show " + id, "unknown request"},
        {"hold", "hold needs a queue id"},
        {"release", "release needs a queue id"},
        {"delete", "delete needs a queue id"},
        {"list " + id, "list takes no argument"},
        {"list ", "list takes no argument"},
        {"flush ", "not a queue id"},
        {"flush  " + id, "not a queue id"},
        {"hold " + id + " ", "not a queue id"},
        {"hold " + id + " " + id, "not a queue id"},
        {"hold 6927a3c80f1a21", "not a queue id"},  // ids are upper-case hex
        {"hold 6927A3C80F1A2", "not a queue id"},
        {"hold ../../etc/passwd", "not a queue id"},
        {"hold\t" + id, "request holds a control or non-ASCII byte"},
        {"hold " + id + "\r\r", "request holds a control or non-ASCII byte"},
        {"hold "s + '\0' + id, "request holds a control or non-ASCII byte"},
        {"list"s + '\0', "request holds a control or non-ASCII byte"},
        {"\0"s, "request holds a control or non-ASCII byte"},
        {"hold " + id + "\n", "request holds a control or non-ASCII byte"},
        {"flush \xc3\xa9", "request holds a control or non-ASCII byte"},
        {"\x7f", "request holds a control or non-ASCII byte"},
        {"GET / HTTP/1.1", "unknown request"},
        {std::string(max_control_line, 'a'), "request too long"},
        {"flush " + std::string(max_control_line, '0'), "request too long"},
        {std::string(1 << 20, '\0'), "request too long"},
    };
    for (const auto& c : cases) {
        auto r = parse_control_request(c.line);
        ASSERT_TRUE(std::holds_alternative<std::string>(r)) << c.line;
        EXPECT_EQ(std::get<std::string>(r), c.why) << c.line;
    }
}

TEST(ControlProtocol, LongestAcceptedLine) {
    std::string line = "release " + id;
    ASSERT_LT(line.size() + 2, max_control_line);  // CR LF included
    EXPECT_TRUE(parsed(line + "\r"));
}

TEST(ControlProtocol, EveryByteValueAloneOrInAnIdIsHandled) {
    for (int b = 0; b < 256; ++b) {
        std::string id_with = id;
        id_with[5] = static_cast<char>(b);
        auto req = parsed("hold " + id_with);
        bool hex_upper = (b >= '0' && b <= '9') || (b >= 'A' && b <= 'F');
        EXPECT_EQ(req.has_value(), hex_upper) << b;
        EXPECT_FALSE(parsed(std::string(1, static_cast<char>(b)))) << b;
    }
}

TEST(ControlProtocol, FormattedRequestsReadBack) {
    const ControlRequest requests[] = {
        {ControlVerb::flush, ""}, {ControlVerb::flush, id},  {ControlVerb::hold, id},
        {ControlVerb::release, id}, {ControlVerb::remove, id}, {ControlVerb::list, ""},
    };
    for (const auto& r : requests) {
        std::string line = format_control_request(r);
        ASSERT_EQ(line.back(), '\n');
        line.pop_back();
        auto back = parsed(line);
        ASSERT_TRUE(back) << line;
        EXPECT_EQ(*back, r) << line;
    }
}

TEST(ControlProtocol, WaitingLinesReadBack) {
    using S = ControlWaiting::State;
    const ControlWaiting cases[] = {
        {S::active, id, 0, ""},
        {S::held, id, 0, ""},
        {S::due, id, 0, ""},
        {S::due, id, 1795657871, ""},
        {S::blocked, id, 0, "example.com"},
        {S::blocked, id, 0, "[192.0.2.1] with spaces"},
    };
    for (const auto& w : cases) {
        std::string line = format_waiting(w);
        auto back = parse_waiting(line);
        ASSERT_TRUE(back) << line;
        EXPECT_EQ(*back, w) << line;
    }
    auto odd = parse_waiting(format_waiting({S::blocked, id, 0, "a\nb\rc"}));
    ASSERT_TRUE(odd);
    EXPECT_EQ(odd->destination, "a?b?c");  // a destination never splits the reply
}

TEST(ControlProtocol, BadWaitingLinesAreSkipped) {
    const std::string lines[] = {
        "", "ok", "error: x", id, id + " ", id + " busy", id + " due", id + " due ",
        id + " due 12x", id + " due -", id + " blocked ", "nothex active", " " + id + " active",
    };
    for (const auto& l : lines) EXPECT_FALSE(parse_waiting(l)) << l;
}

TEST(ControlProtocol, LongSpoolPathsGoThroughTheFolderDescriptor) {
    EXPECT_EQ(control_socket_address("/var/spool/tlsrelay", 7), "/var/spool/tlsrelay/control");
    std::string deep = "/var/tmp/" + std::string(120, 'd');
    EXPECT_EQ(control_socket_address(deep, 7), "/proc/self/fd/7/control");
}

}  // namespace
}  // namespace tlsrelay::relay

// The HTTP response parser of the policy fetch: every framing (Content-Length,
// chunked, end of connection) fed in every split, the status and media type, and
// hostile responses (oversized, truncated, malformed) that must end as "bad".
#include "sts/http.hpp"

#include <gtest/gtest.h>

namespace tlsrelay::sts {
namespace {

const std::string policy =
    "version: STSv1\r\nmode: enforce\r\nmx: mx.example.com\r\nmax_age: 86400\r\n";

// Every proper prefix needs more; the whole response is done with the policy.
void expect_complete_only_at_end(const std::string& response, bool needs_eof) {
    for (std::size_t n = 0; n < response.size(); ++n)
        ASSERT_EQ(parse_response(std::string_view(response).substr(0, n), false).state,
                  ParseState::need_more)
            << "prefix " << n;
    auto r = parse_response(response, needs_eof);
    ASSERT_EQ(r.state, ParseState::done) << r.error;
    EXPECT_EQ(r.response.status, 200);
    EXPECT_EQ(r.response.body, policy);
    EXPECT_EQ(media_type(r.response.content_type), "text/plain");
}

TEST(HttpResponse, ContentLengthInEverySplit) {
    expect_complete_only_at_end("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                                    std::to_string(policy.size()) + "\r\n\r\n" + policy,
                                false);
}

TEST(HttpResponse, ChunkedInEverySplit) {
    std::string a = policy.substr(0, 20), b = policy.substr(20);
    char size_b[16];
    std::snprintf(size_b, sizeof size_b, "%zX", b.size());
    expect_complete_only_at_end(
        "HTTP/1.1 200 OK\r\ncontent-type: Text/Plain; charset=utf-8\r\n"
        "Transfer-Encoding: chunked\r\n\r\n14;ext=1\r\n" +
            a + "\r\n" + size_b + "\r\n" + b + "\r\n0\r\nX-Trailer: 1\r\n\r\n",
        false);
}

TEST(HttpResponse, BodyUntilTheConnectionCloses) {
    std::string response = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + policy;
    for (std::size_t n = 0; n <= response.size(); ++n)
        ASSERT_EQ(parse_response(std::string_view(response).substr(0, n), false).state,
                  ParseState::need_more);
    expect_complete_only_at_end(response, true);
}

TEST(HttpResponse, StatusOtherThan200IsDoneWithoutItsBody) {
    auto r = parse_response(
        "HTTP/1.1 301 Moved Permanently\r\nLocation: https://evil.example/\r\n\r\n", false);
    ASSERT_EQ(r.state, ParseState::done);
    EXPECT_EQ(r.response.status, 301);
    r = parse_response("HTTP/1.1 404 Not Found\r\nContent-Length: 100000000\r\n\r\n", false);
    ASSERT_EQ(r.state, ParseState::done);
    EXPECT_EQ(r.response.status, 404);
}

TEST(HttpResponse, HostileResponsesAreBad) {
    const std::string big(max_policy_bytes + 1, 'x');
    struct Case {
        std::string data;
        bool eof;
        const char* error;
    } cases[] = {
        {"", true, "connection closed without a response"},
        {"HTTP/1.1 200 OK\r\n", true, "connection closed inside the response header"},
        {"SSH-2.0-OpenSSH_9.2\r\n\r\n", false,
         "not an HTTP/1.x status line: \"SSH-2.0-OpenSSH_9.2\""},
        {"HTTP/1.1 2000 OK\r\n\r\n", false, "not an HTTP/1.x status line: \"HTTP/1.1 2000 OK\""},
        {"HTTP/2 200\r\n\r\n", false, "not an HTTP/1.x status line: \"HTTP/2 200\""},
        {"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", false, "malformed header line \" folded: x\""},
        {"HTTP/1.1 200 OK\r\nName : x\r\n\r\n", false, "malformed header line \"Name : x\""},
        {"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", false, "malformed header line \"no colon\""},
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", false,
         "bad Content-Length \"6\""},
        {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, "bad Content-Length \"-1\""},
        {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", false,
         "bad Content-Length \"99999999999999999999999\""},
        {"HTTP/1.1 200 OK\r\nContent-Length: 65537\r\n\r\n", false,
         "policy larger than 65536 bytes"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true,
         "connection closed before the whole body arrived"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false,
         "unsupported Transfer-Encoding \"gzip, chunked\""},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", false,
         "both Content-Length and Transfer-Encoding"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false,
         "bad chunk size \"zz\""},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n", false,
         "chunk not followed by CRLF"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n", false,
         "policy larger than 65536 bytes"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab", true,
         "connection closed inside a chunked body"},
        {"HTTP/1.1 200 OK\r\n\r\n" + big, false, "policy larger than 65536 bytes"},
        {"HTTP/1.1 200 OK\r\nX: " + std::string(20000, 'a'), false,
         "response header longer than 16 KiB"},
    };
    for (const auto& c : cases) {
        auto r = parse_response(c.data, c.eof);
        EXPECT_EQ(r.state, ParseState::bad) << c.data.substr(0, 80);
        EXPECT_EQ(r.error, c.error) << c.data.substr(0, 80);
    }
}

TEST(HttpResponse, ChunkedBodyIsBoundedAcrossChunks) {
    std::string response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 3; ++i) response += "8000\r\n" + std::string(0x8000, 'a') + "\r\n";
    auto r = parse_response(response, false);
    EXPECT_EQ(r.state, ParseState::bad);
    EXPECT_EQ(r.error, "policy larger than 65536 bytes");
}

TEST(HttpResponse, MediaType) {
    EXPECT_EQ(media_type("text/plain"), "text/plain");
    EXPECT_EQ(media_type(" TEXT/Plain ; charset=utf-8"), "text/plain");
    EXPECT_EQ(media_type("text/html"), "text/html");
    EXPECT_EQ(media_type(""), "");
}

}  // namespace
}  // namespace tlsrelay::sts

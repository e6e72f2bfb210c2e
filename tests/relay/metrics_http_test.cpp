// The metrics endpoint's request parser and responses: every request split at every
// byte offset, hostile heads, and the status codes of spec (200, 400, 404, 405).
#include "relay/metrics_http.hpp"

#include <gtest/gtest.h>

namespace tlsrelay::relay {
namespace {

using Status = RequestHead::Status;

struct Case {
    const char* request;
    Status status;
    const char* method;
    const char* target;
};

const Case cases[] = {
    {"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9325\r\nAccept: text/plain\r\n\r\n", Status::done, "GET",
     "/metrics"},
    {"GET /metrics HTTP/1.0\r\n\r\n", Status::done, "GET", "/metrics"},
    {"GET /metrics?x=1 HTTP/1.1\r\nUser-Agent: Prometheus/2.45\r\n\r\n", Status::done, "GET", "/metrics?x=1"},
    {"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", Status::done, "POST", "/metrics"},
    {"GET / HTTP/1.1\r\nX-Empty:\r\n\r\n", Status::done, "GET", "/"},
    {"GET /metrics HTTP/1.1\n\n", Status::bad, "", ""},                 // bare LF
    {"GET /metrics HTTP/2.0\r\n\r\n", Status::bad, "", ""},            // version
    {"GET  /metrics HTTP/1.1\r\n\r\n", Status::bad, "", ""},           // two spaces
    {"GET metrics HTTP/1.1\r\n\r\n", Status::bad, "", ""},             // not origin-form
    {"G(T /metrics HTTP/1.1\r\n\r\n", Status::bad, "", ""},            // method not a token
    {"GET /metrics HTTP/1.1\r\n folded\r\n\r\n", Status::bad, "", ""}, // obs-fold
    {"GET /metrics HTTP/1.1\r\nNo colon\r\n\r\n", Status::bad, "", ""},
    {"GET /metrics HTTP/1.1\r\nX: a\x01z\r\n\r\n", Status::bad, "", ""},
    {"\x16\x03\x01\x02\x05\x01\x02\x01\xfc\x03\x03\r\n\r\n", Status::bad, "", ""},  // a TLS hello
    {"\r\n\r\n", Status::bad, "", ""},
};

TEST(MetricsHttp, ParsesEveryRequestSplitAtEveryOffset) {
    for (const auto& c : cases) {
        std::string whole = c.request;
        RequestHead full = parse_request_head(whole);
        EXPECT_EQ(full.status, c.status) << whole;
        if (c.status == Status::done) {
            EXPECT_EQ(full.method, c.method);
            EXPECT_EQ(full.target, c.target);
        }
        for (std::size_t cut = 0; cut < whole.size(); ++cut) {
            RequestHead part = parse_request_head(std::string_view(whole).substr(0, cut));
            // A prefix is never done; a good request's prefix is never bad.
            EXPECT_NE(part.status, Status::done) << whole << " cut at " << cut;
            if (c.status == Status::done) {
                EXPECT_EQ(part.status, Status::need_more) << whole << " cut at " << cut;
            }
        }
    }
}

TEST(MetricsHttp, AnOverlongHeadIsBadEvenUnfinished) {
    std::string head = "GET /metrics HTTP/1.1\r\nX-Long: " + std::string(max_request_head, 'a');
    EXPECT_EQ(parse_request_head(head).status, Status::bad);
    EXPECT_EQ(parse_request_head(head + "\r\n\r\n").status, Status::bad);
    std::string fits = "GET /metrics HTTP/1.1\r\nX-Long: " + std::string(100, 'a') + "\r\n\r\n";
    EXPECT_EQ(parse_request_head(fits).status, Status::done);
}

std::string respond(const char* request) {
    return metrics_response(parse_request_head(request), [] { return std::string("tlsrelay_x 1\n"); });
}

TEST(MetricsHttp, StatusCodes) {
    std::string ok = respond("GET /metrics HTTP/1.1\r\n\r\n");
    EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok;
    EXPECT_NE(ok.find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), std::string::npos);
    EXPECT_NE(ok.find("\r\nContent-Length: 13\r\n"), std::string::npos) << ok;
    EXPECT_NE(ok.find("\r\nConnection: close\r\n\r\ntlsrelay_x 1\n"), std::string::npos) << ok;
    EXPECT_EQ(respond("GET /other HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u);
    std::string post = respond("POST /metrics HTTP/1.1\r\n\r\n");
    EXPECT_EQ(post.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0u) << post;
    EXPECT_NE(post.find("\r\nAllow: GET\r\n"), std::string::npos) << post;
    EXPECT_EQ(respond("BREW /pot HTTP/1.1\r\n\n").rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u);
}

}  // namespace
}  // namespace tlsrelay::relay

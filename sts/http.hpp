// The HTTP/1.1 response to our one GET of an MTA-STS policy (RFC 9112 message
// syntax, the small part we need): status line, header fields, and a body framed by
// Content-Length, chunked transfer coding or the end of the connection. Pure and
// bounded: it looks at the bytes received so far and answers need-more, done or bad,
// in the manner of asio's example request_parser.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tlsrelay::sts {

inline constexpr std::size_t max_header_bytes = 16 * 1024;
inline constexpr std::size_t max_policy_bytes = 64 * 1024;  // RFC 8461 10.3: bound the fetch

struct HttpResponse {
    int status = 0;
    std::string content_type;  // as sent; "" when absent
    std::string body;
};

enum class ParseState { need_more, done, bad };

struct HttpParse {
    ParseState state = ParseState::need_more;
    HttpResponse response;
    std::string error;  // when bad
};

// data: every byte received so far; eof: the peer closed the connection. A response
// that is not 200 is done as soon as its header is complete (its body is not read).
HttpParse parse_response(std::string_view data, bool eof, std::size_t max_body = max_policy_bytes);

// The media type of a Content-Type value, lower-case, without parameters and blanks.
std::string media_type(std::string_view content_type);

}  // namespace tlsrelay::sts

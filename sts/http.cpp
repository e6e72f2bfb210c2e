#include "sts/http.hpp"

#include <algorithm>
#include <charconv>
#include <optional>

#include "sts/text.hpp"
#include "tls/text.hpp"

namespace tlsrelay::sts {
namespace {

struct Header {
    HttpResponse response;
    std::optional<std::size_t> content_length;
    bool chunked = false;
    std::string error;
};

HttpParse bad(std::string error) {
    return {ParseState::bad, {}, std::move(error)};
}
HttpParse more() {
    return {};
}

bool parse_status_line(std::string_view line, int& status) {
    if (!line.starts_with("HTTP/1.") || line.size() < 12 || !is_digit(line[7]) || line[8] != ' ')
        return false;
    auto code = line.substr(9, 3);
    if (!std::all_of(code.begin(), code.end(), is_digit) || (line.size() > 12 && line[12] != ' '))
        return false;
    status = std::stoi(std::string(code));
    return true;
}

void header_field(Header& h, std::string_view name, std::string_view value) {
    std::string n = tls::lower(name);
    if (n == "content-type") {
        h.response.content_type = std::string(value);
    } else if (n == "content-length") {
        std::size_t len = 0;
        auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), len);
        if (ec != std::errc() || end != value.data() + value.size() || value.empty() ||
            (h.content_length && *h.content_length != len))
            h.error = "bad Content-Length \"" + printable(value) + "\"";
        h.content_length = len;
    } else if (n == "transfer-encoding") {
        if (tls::lower(value) != "chunked")
            h.error = "unsupported Transfer-Encoding \"" + printable(value) + "\"";
        h.chunked = true;
    }
}

Header parse_header(std::string_view block) {
    Header h;
    auto lines = split_on(block, '\n');
    for (auto& l : lines)
        if (l.ends_with('\r')) l.remove_suffix(1);
    if (!parse_status_line(lines[0], h.response.status)) {
        h.error = "not an HTTP/1.x status line: \"" + printable(lines[0]) + "\"";
        return h;
    }
    for (std::size_t i = 1; i < lines.size() && h.error.empty(); ++i) {
        std::string_view line = lines[i];
        auto colon = line.find(':');
        if (line.empty() || is_wsp(line[0]) || colon == std::string_view::npos || colon == 0 ||
            is_wsp(line[colon - 1]))
            h.error = "malformed header line \"" + printable(line) + "\"";
        else
            header_field(h, line.substr(0, colon), trim_wsp(line.substr(colon + 1)));
    }
    if (h.chunked && h.content_length) h.error = "both Content-Length and Transfer-Encoding";
    return h;
}

// RFC 9112 7.1: hex size [;ext] CRLF, data CRLF, ..., "0" CRLF, trailers, CRLF.
HttpParse parse_chunked(std::string_view data, bool eof, std::size_t max_body, HttpResponse r) {
    std::string body;
    std::size_t at = 0;
    auto truncated = [&] { return eof ? bad("connection closed inside a chunked body") : more(); };
    for (;;) {
        auto eol = data.find("\r\n", at);
        if (eol == std::string_view::npos)
            return data.size() - at > 1024 ? bad("chunk size line too long") : truncated();
        std::string_view size_text = data.substr(at, eol - at);
        size_text = size_text.substr(0, size_text.find(';'));
        std::size_t size = 0;
        auto [end, ec] =
            std::from_chars(size_text.data(), size_text.data() + size_text.size(), size, 16);
        if (ec != std::errc() || end != size_text.data() + size_text.size() || size_text.empty())
            return bad("bad chunk size \"" + printable(size_text) + "\"");
        at = eol + 2;
        if (size == 0) break;
        if (size > max_body - body.size())
            return bad("policy larger than " + std::to_string(max_body) + " bytes");
        if (data.size() - at < size + 2) return truncated();
        if (data.substr(at + size, 2) != "\r\n") return bad("chunk not followed by CRLF");
        body.append(data.substr(at, size));
        at += size + 2;
    }
    // Trailer fields, then the empty line.
    for (;;) {
        auto eol = data.find("\r\n", at);
        if (eol == std::string_view::npos)
            return data.size() - at > max_header_bytes ? bad("trailer too long") : truncated();
        if (eol == at) break;
        at = eol + 2;
    }
    r.body = std::move(body);
    return {ParseState::done, std::move(r), ""};
}

}  // namespace

HttpParse parse_response(std::string_view data, bool eof, std::size_t max_body) {
    auto end = data.find("\r\n\r\n");
    std::size_t body_at = end == std::string_view::npos ? end : end + 4;
    if (auto lf = data.find("\n\n"); lf != std::string_view::npos && lf + 2 < body_at)
        body_at = lf + 2;
    if (body_at == std::string_view::npos) {
        if (data.size() > max_header_bytes) return bad("response header longer than 16 KiB");
        return eof ? bad(data.empty() ? "connection closed without a response"
                                      : "connection closed inside the response header")
                   : more();
    }
    if (body_at > max_header_bytes) return bad("response header longer than 16 KiB");
    std::string_view block = data.substr(0, body_at);
    Header h = parse_header(block.substr(0, block.find_last_not_of("\r\n") + 1));
    if (!h.error.empty()) return bad(h.error);
    if (h.response.status != 200) return {ParseState::done, std::move(h.response), ""};
    std::string_view rest = data.substr(body_at);
    if (h.chunked) return parse_chunked(rest, eof, max_body, std::move(h.response));
    const std::string too_big = "policy larger than " + std::to_string(max_body) + " bytes";
    if (h.content_length) {
        if (*h.content_length > max_body) return bad(too_big);
        if (rest.size() < *h.content_length)
            return eof ? bad("connection closed before the whole body arrived") : more();
        h.response.body = std::string(rest.substr(0, *h.content_length));
        return {ParseState::done, std::move(h.response), ""};
    }
    if (rest.size() > max_body) return bad(too_big);
    if (!eof) return more();
    h.response.body = std::string(rest);
    return {ParseState::done, std::move(h.response), ""};
}

std::string media_type(std::string_view content_type) {
    return tls::lower(trim_wsp(content_type.substr(0, content_type.find(';'))));
}

}  // namespace tlsrelay::sts

// Splits the command stream into lines: CRLF ends a line, and so does a bare LF
// (Postfix's "normalize", the default since 3.9). A line over max_line bytes is
// discarded up to its end and reported as too long, so memory stays bounded.
// Pure: bytes in, lines out; the session owns the socket.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tlsrelay::smtp {

class LineReader {
public:
    explicit LineReader(std::size_t max_line = 2048) : max_line_(max_line) {}

    enum class Status { need_more, line, too_long };

    // Consumes a prefix of input, returns how many bytes were used. When status is
    // line, line() holds the line without its terminator (valid until the next call).
    std::size_t consume(std::string_view input, Status& status);

    const std::string& line() const { return line_; }
    bool line_had_bare_lf() const { return bare_lf_; }
    void reset();  // forget a partial line (after STARTTLS: nothing sent before is kept)

private:
    std::size_t max_line_;
    std::string line_;
    bool overflow_ = false;
    bool bare_lf_ = false;
    bool complete_ = false;
};

}  // namespace tlsrelay::smtp

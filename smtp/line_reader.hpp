// Splits the command stream into lines: CRLF ends a line, and so does a bare LF
// (Postfix's "normalize", the default since 3.9). A CR not followed by LF stays in the
// line (the session refuses it). A line whose bytes, terminator included, exceed
// max_line (RFC 5321 §4.5.3.1.4 counts the CRLF) is discarded up to its end and
// reported as too long, so at most max_line - 1 bytes are ever buffered.
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
    bool complete_ = false;     // line_ was handed out; clear it on the next call
    bool last_was_cr_ = false;  // last byte seen was CR (also while discarding)
};

}  // namespace tlsrelay::smtp

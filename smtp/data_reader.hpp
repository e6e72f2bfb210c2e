// The DATA phase (RFC 5321 §4.1.1.4, §4.5.2) as a state machine over bytes. Only
// <CRLF>.<CRLF> ends the message (SMTP smuggling defence, CVE-2023-51764): a "." line
// ending in a bare LF, or after a line that ended in a bare LF, is content. Stored
// content holds CRLF line endings only: a bare LF becomes CRLF, a bare CR becomes a
// space (Postfix cleanup_replace_stray_cr_lf). Leading dots are unstuffed. A "." line
// that is not the terminator (it ends in a bare LF, or follows one) is kept as content
// ".", so it can never become a terminator downstream. NUL bytes are kept as data.
// Past the size limit the input is still read to the end but no longer stored. A
// header field (with its continuation lines) longer than max_header is flagged, as
// Postfix's header_size_limit: one 10 MB header is refused, not stored (CVE-2020-28020).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tlsrelay::smtp {

class DataReader {
public:
    struct Limits {
        std::uint64_t max_size = 50ull << 20;  // content bytes; more: too_big
        unsigned max_received = 50;            // Received: headers; more: too_many_hops
        std::uint64_t max_header = 102400;     // one header field with its CRLFs; more: header_too_long
    };
    explicit DataReader(Limits limits) : limits_(limits) {}

    enum class Status { need_more, done };

    // Consumes a prefix of input and appends the resulting content to out (which the
    // caller drains into the queue). Returns bytes consumed; status done means the
    // terminating <CRLF>.<CRLF> was consumed (bytes after it are the next command).
    std::size_t consume(std::string_view input, std::string& out, Status& status);

    std::uint64_t size() const { return size_; }  // content bytes produced (or counted past the limit)
    bool too_big() const { return size_ > limits_.max_size; }
    bool too_many_hops() const { return received_ > limits_.max_received; }
    bool header_too_long() const { return header_too_long_; }
    unsigned received_count() const { return received_; }  // "Received:" headers seen

private:
    Limits limits_;
    std::uint64_t size_ = 0;
    unsigned received_ = 0;

    // Where the current input line stands. A dot at line start is held back until we
    // know whether the line is ".<CRLF>" (end of data, or content "." after a bare LF)
    // or a dot-stuffed line (the dot is dropped).
    enum class LineState : unsigned char { start, dot, dot_cr, text };
    LineState state_ = LineState::start;
    bool pending_cr_ = false;   // text: a CR waiting to see whether LF follows
    bool prev_crlf_ = true;     // the previous line ended in CRLF (DATA's own line did)
    bool done_ = false;
    bool in_headers_ = true;    // before the first empty line
    std::uint64_t header_length_ = 0;  // bytes of the current header field, continuations included
    bool header_too_long_ = false;
    std::uint64_t line_length_ = 0;  // content bytes produced on the current line
    int received_match_ = 0;    // bytes of "received" matched at line start; -1: no match

    std::size_t step(std::string_view input, std::string& out);
    std::size_t step_text(std::string_view input, std::string& out);
    void emit(char c, std::string& out);
    void emit_run(std::string_view run, std::string& out);
    void end_line(bool crlf, std::string& out);
    void append(std::string_view bytes, std::string& out);
    void note_header_byte(char c);
    void note_header_length(std::size_t n);
};

}  // namespace tlsrelay::smtp

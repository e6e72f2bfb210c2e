// The DATA phase (RFC 5321 §4.1.1.4, §4.5.2) as a state machine over bytes. Only
// <CRLF>.<CRLF> ends the message (SMTP smuggling defence, CVE-2023-51764): a "." line
// ending in a bare LF, or after a line that ended in a bare LF, is content. Stored
// content holds CRLF line endings only: a bare LF becomes CRLF, a bare CR becomes a
// space (Postfix cleanup_replace_stray_cr_lf). Leading dots are unstuffed. Past the
// size limit the input is still read to the end but no longer stored.
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

private:
    Limits limits_;
    std::uint64_t size_ = 0;
    unsigned received_ = 0;
    // ... implementation state (line start, pending CR, header section, current header name)
};

}  // namespace tlsrelay::smtp

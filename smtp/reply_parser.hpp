// Client side: assembles a server's (possibly multi-line) reply from bytes, with
// bounds on line length and line count so a hostile server cannot grow our memory
// (OpenSMTPD CVE-2020-8794 shape), and EHLO capability parsing. Pure.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tlsrelay::smtp {

struct ServerReply {
    int code = 0;
    std::vector<std::string> lines;  // text after "NNN-"/"NNN ", sanitised (printable ASCII, UTF-8)
    // The last line was "NNN " with nothing after the space; Postfix logs it whole, space
    // included, where a bare "NNN" has none.
    bool trailing_space = false;

    std::string enhanced() const;  // "5.1.1" from the last line, or "" if none
    // Postfix's DSN for this reply: the enhanced code, or X.0.0 from the first digit,
    // 5.5.0 for a reply that is not 2xx, 4xx or 5xx.
    std::string dsn() const;
    // "550-5.1.1 text 550 5.1.1 text2" as Postfix logs it (whole lines joined by spaces).
    std::string text() const;
    bool positive() const { return code / 100 == 2; }   // what MAIL, RCPT, "." and (E)HLO want
    bool go_ahead() const { return code / 100 == 3; }   // what DATA wants
    bool transient() const { return code >= 400 && code < 500; }
};

class ReplyParser {
public:
    static constexpr std::size_t max_line = 4096;  // longer lines are truncated
    static constexpr std::size_t max_lines = 1000; // more is a protocol error
    // Text kept of one reply, all lines together; more is a protocol error. A real
    // EHLO reply is under 1 KiB; without this a peer could make us hold max_lines full
    // lines (4 MiB) per connection. Postfix keeps 2048 bytes and skips the rest;
    // Exim, like us, gives up on a reply that overflows its buffer.
    static constexpr std::size_t max_bytes = 64 * 1024;

    enum class Status { need_more, reply, error };

    // Consumes a prefix of input; with status reply, reply() holds the reply (valid
    // until the next call). error: malformed (no 3-digit code, codes differ between
    // lines, too many lines, too long); error() says which; the connection is not
    // usable after that.
    std::size_t consume(std::string_view input, Status& status);
    const ServerReply& reply() const { return reply_; }
    const std::string& error() const { return error_; }
    // The line that caused the error, sanitised and cut to 100 octets (Postfix logs
    // "non-ESMTP response from HOST: %.100s").
    const std::string& bad_line() const { return bad_line_; }
    // The error is a line that is no reply at all (not a limit on a well-formed one).
    bool non_esmtp() const { return error_ == malformed_line || error_ == code_out_of_range; }
    static constexpr const char* malformed_line = "malformed reply line";
    static constexpr const char* code_out_of_range = "reply code out of range";

private:
    Status finish_line(bool& done);

    std::string line_;
    bool truncated_ = false;
    ServerReply reply_;
    ServerReply building_;
    std::size_t building_bytes_ = 0;
    std::string error_;
    std::string bad_line_;
};

struct Capabilities {
    bool pipelining = false, starttls = false, eight_bit_mime = false, smtputf8 = false;
    bool enhanced_status_codes = false;
    std::optional<unsigned long long> size;  // SIZE n (0: no fixed limit)
};

Capabilities parse_ehlo(const ServerReply& reply);

}  // namespace tlsrelay::smtp

// The client's SMTP reply parser and EHLO capability parsing fed a hostile server's
// bytes. Invariants: the replies do not depend on how the bytes were split into
// reads; each reply has a code in 200..599, between 1 and max_lines lines of at most
// max_line bytes without control characters; enhanced()/dsn()/text() are well-formed.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "harness.hpp"
#include "smtp/reply_parser.hpp"

namespace {

using tlsrelay::fuzz::require;
using namespace tlsrelay;
using smtp::ReplyParser;

bool valid_dsn(const std::string& d) {
    // class "." 1-3 digits "." 1-3 digits
    if (d.size() < 5 || d[1] != '.' || (d[0] != '2' && d[0] != '4' && d[0] != '5')) return false;
    std::size_t dot = d.find('.', 2);
    return dot != d.npos && dot > 2 && dot - 2 <= 3 && d.size() - dot - 1 >= 1 && d.size() - dot - 1 <= 3;
}

void check_reply(const smtp::ServerReply& r) {
    require(r.code >= 200 && r.code <= 599, "code in range");
    require(!r.lines.empty() && r.lines.size() <= ReplyParser::max_lines, "line count in bounds");
    for (const auto& l : r.lines) {
        require(l.size() <= ReplyParser::max_line, "line length bounded");
        for (unsigned char c : l) require(c >= 0x20 && c != 0x7f, "no control bytes in lines");
    }
    std::string e = r.enhanced();
    require(e.empty() || (valid_dsn(e) && e[0] == '0' + r.code / 100), "enhanced code matches");
    require(valid_dsn(r.dsn()), "dsn well-formed");
    require(r.text().rfind(std::to_string(r.code), 0) == 0, "text starts with the code");
    auto caps = smtp::parse_ehlo(r);
    (void)caps;
}

struct Outcome {
    std::vector<std::pair<int, std::vector<std::string>>> replies;
    std::string error;
};

// Feeds one read's bytes; false once the parser reported an error.
bool feed(ReplyParser& parser, std::string_view piece, Outcome& o) {
    while (!piece.empty()) {
        ReplyParser::Status st;
        std::size_t used = parser.consume(piece, st);
        require(used > 0 && used <= piece.size(), "progress within the input");
        piece.remove_prefix(used);
        if (st == ReplyParser::Status::reply) {
            check_reply(parser.reply());
            o.replies.emplace_back(parser.reply().code, parser.reply().lines);
        } else if (st == ReplyParser::Status::error) {
            require(!parser.error().empty(), "an error says why");
            o.error = parser.error();
            return false;
        } else {
            require(piece.empty(), "need_more only at the end of the input");
        }
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Chunks input(data, size);
    Outcome whole, split;
    ReplyParser at_once, in_pieces;
    feed(at_once, input.rest(), whole);
    while (!input.empty() && feed(in_pieces, input.next(4096), split)) {
    }
    require(split.replies == whole.replies && split.error == whole.error,
            "the same replies whatever the read boundaries");
    return 0;
}

#include "smtp/line_reader.hpp"

#include <algorithm>

namespace tlsrelay::smtp {

// Invariant: line_ holds the raw bytes of the current line (a trailing CR included)
// and never more than max_line_ - 1 of them, since the LF still has to fit; once a
// line is known to be longer, overflow_ drops its bytes until the LF.
std::size_t LineReader::consume(std::string_view input, Status& status) {
    if (complete_) {
        line_.clear();
        bare_lf_ = false;
        complete_ = false;
    }
    const std::size_t lf = input.find('\n');
    const std::size_t body = std::min(lf, input.size());
    const std::size_t room = max_line_ > 0 ? max_line_ - 1 : 0;
    if (!overflow_) {
        if (line_.size() + body > room) {
            overflow_ = true;
            line_.clear();
        } else {
            line_.append(input.substr(0, body));
        }
    }
    if (body > 0) last_was_cr_ = input[body - 1] == '\r';
    if (lf == input.npos) {
        status = Status::need_more;
        return input.size();
    }
    bare_lf_ = !last_was_cr_;
    if (!bare_lf_ && !overflow_) line_.pop_back();
    status = overflow_ ? Status::too_long : Status::line;
    if (overflow_) line_.clear();
    overflow_ = false;
    last_was_cr_ = false;
    complete_ = true;
    return lf + 1;
}

void LineReader::reset() {
    line_.clear();
    overflow_ = false;
    bare_lf_ = false;
    complete_ = false;
    last_was_cr_ = false;
}

}  // namespace tlsrelay::smtp

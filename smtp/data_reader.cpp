#include "smtp/data_reader.hpp"

#include <algorithm>

namespace tlsrelay::smtp {

std::size_t DataReader::consume(std::string_view input, std::string& out, Status& status) {
    std::size_t used = 0;
    while (used < input.size() && !done_) used += step(input.substr(used), out);
    status = done_ ? Status::done : Status::need_more;
    return used;
}

// Handles the front of input; returns the bytes consumed. 0 means the state changed
// and the same byte is looked at again (always by a state that consumes it).
std::size_t DataReader::step(std::string_view input, std::string& out) {
    const char c = input.front();
    switch (state_) {
        case LineState::start:
            state_ = c == '.' ? LineState::dot : LineState::text;
            return c == '.' ? 1 : 0;
        case LineState::dot:
            if (c == '\r') {
                state_ = LineState::dot_cr;
                return 1;
            }
            if (c == '\n') {  // ".<LF>": never the terminator (CVE-2023-51764)
                emit('.', out);
                end_line(false, out);
                return 1;
            }
            state_ = LineState::text;  // ".x": the dot was stuffing
            return 0;
        case LineState::dot_cr:
            if (c == '\n') {
                if (prev_crlf_) {
                    done_ = true;
                } else {  // "<LF>.<CRLF>": content
                    emit('.', out);
                    end_line(true, out);
                }
                return 1;
            }
            state_ = LineState::text;  // ".<CR>x": stuffing dot, then a bare CR
            pending_cr_ = true;
            return 0;
        case LineState::text:
            return step_text(input, out);
    }
    return 1;
}

std::size_t DataReader::step_text(std::string_view input, std::string& out) {
    const char c = input.front();
    if (pending_cr_) {
        pending_cr_ = false;
        if (c == '\n') {
            end_line(true, out);
            return 1;
        }
        emit(' ', out);  // bare CR
        return 0;
    }
    if (c == '\r') {
        pending_cr_ = true;
        return 1;
    }
    if (c == '\n') {  // bare LF: stored as CRLF, but the next "." line is content
        end_line(false, out);
        return 1;
    }
    const std::size_t run = std::min(input.find_first_of("\r\n"), input.size());
    emit_run(input.substr(0, run), out);
    return run;
}

void DataReader::emit(char c, std::string& out) {
    if (in_headers_ && line_length_ == 0 && c != ' ' && c != '\t') header_length_ = 0;  // a new field
    note_header_length(1);
    note_header_byte(c);
    ++line_length_;
    append(std::string_view(&c, 1), out);
}

void DataReader::emit_run(std::string_view run, std::string& out) {
    while (!run.empty() && in_headers_ && received_match_ >= 0) {
        emit(run.front(), out);
        run.remove_prefix(1);
    }
    line_length_ += run.size();
    note_header_length(run.size());
    append(run, out);
}

void DataReader::note_header_length(std::size_t n) {
    if (!in_headers_) return;
    header_length_ += n;
    if (header_length_ > limits_.max_header) header_too_long_ = true;
}

void DataReader::end_line(bool crlf, std::string& out) {
    if (line_length_ != 0) note_header_length(2);  // a field's size counts its line ends
    append("\r\n", out);
    if (line_length_ == 0) in_headers_ = false;
    line_length_ = 0;
    received_match_ = 0;
    prev_crlf_ = crlf;
    state_ = LineState::start;
}

// Counts every byte; stores only while the total stays within the limit.
void DataReader::append(std::string_view bytes, std::string& out) {
    const std::uint64_t room = size_ < limits_.max_size ? limits_.max_size - size_ : 0;
    out.append(
        bytes.substr(0, static_cast<std::size_t>(std::min<std::uint64_t>(room, bytes.size()))));
    size_ += bytes.size();
}

// Matches "Received" [WSP] ":" at the start of a header line, case-insensitively
// (Postfix hopcount_limit counts these headers).
void DataReader::note_header_byte(char c) {
    static constexpr std::string_view name = "received";
    if (!in_headers_ || received_match_ < 0) return;
    const auto matched = static_cast<std::size_t>(received_match_);
    const char lower = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    if (matched < name.size()) {
        received_match_ = lower == name[matched] ? received_match_ + 1 : -1;
    } else if (c == ':') {
        ++received_;
        received_match_ = -1;
    } else if (c != ' ' && c != '\t') {
        received_match_ = -1;
    }
}

}  // namespace tlsrelay::smtp

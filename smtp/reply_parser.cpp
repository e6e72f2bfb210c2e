#include "smtp/reply_parser.hpp"

#include <algorithm>
#include <cctype>
#include <limits>

#include "support/log.hpp"

namespace tlsrelay::smtp {
namespace {

bool is_enhanced(std::string_view t) {
    // class.subject.detail: [245].\d{1,3}.\d{1,3}
    if (t.size() < 5 || (t[0] != '2' && t[0] != '4' && t[0] != '5') || t[1] != '.') return false;
    std::size_t i = 2, digits = 0, dots = 0;
    for (; i < t.size(); ++i) {
        if (std::isdigit(static_cast<unsigned char>(t[i]))) {
            if (++digits > 3) return false;
        } else if (t[i] == '.' && digits > 0 && dots == 0) {
            ++dots;
            digits = 0;
        } else {
            return false;
        }
    }
    return dots == 1 && digits > 0;
}

// Postfix's mystrtok: the next word of rest between any of delims; rest moves past it
// and the one delimiter that ended it.
std::string_view next_word(std::string_view& rest, std::string_view delims) {
    auto begin = rest.find_first_not_of(delims);
    if (begin == std::string_view::npos) return rest = {};
    rest.remove_prefix(begin);
    auto end = rest.find_first_of(delims);
    std::string_view word = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
    return word;
}

std::string upper(std::string_view w) {
    std::string out(w);
    for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

// The SIZE parameter as Postfix's smtp_helo reads it: the next word; digits only (else
// a warning and no limit); one that overflows off_t is no limit either.
unsigned long long size_limit(std::string_view rest) {
    std::string_view word = next_word(rest, " \t");
    if (word.empty() || word.size() > 19) return 0;
    if (!std::all_of(word.begin(), word.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
        return 0;
    unsigned long long n = std::stoull(std::string(word));
    return n > static_cast<unsigned long long>(std::numeric_limits<long long>::max()) ? 0 : n;
}

}  // namespace

std::string ServerReply::enhanced() const {
    // Postfix reads the code of the last line (smtp_chat_resp), after any spaces.
    if (lines.empty()) return "";
    std::string_view last = lines.back();
    last.remove_prefix(std::min(last.size(), last.find_first_not_of(' ')));
    std::string_view word = last.substr(0, last.find(' '));
    if (!is_enhanced(word) || word[0] != std::to_string(code)[0]) return "";
    return std::string(word);
}

std::string ServerReply::dsn() const {
    std::string e = enhanced();
    if (!e.empty()) return e;
    int cls = code / 100;
    if (cls != 2 && cls != 4 && cls != 5) return "5.5.0";  // 3xx out of context: Postfix's safety value
    return std::to_string(cls) + ".0.0";
}

// Postfix (src/smtp/smtp_chat.c smtp_chat_resp) keeps every line whole, "NNN-" or
// "NNN " included, joins them with newlines that its log and DSN texts turn into
// spaces, and stops adding lines once the text has reached line_length_limit (2048).
std::string ServerReply::text() const {
    std::string out;
    const std::string code_text = std::to_string(code);
    for (std::size_t i = 0; i < lines.size() && out.size() < 2048; ++i) {
        if (!out.empty()) out += ' ';
        out += code_text;
        if (i + 1 < lines.size())
            out += '-';
        else if (!lines[i].empty() || trailing_space)
            out += ' ';
        out += lines[i];
    }
    return out.empty() ? code_text : out;
}

std::size_t ReplyParser::consume(std::string_view input, Status& status) {
    status = Status::need_more;
    std::size_t used = 0;
    while (used < input.size()) {
        char c = input[used++];
        if (c != '\n') {
            if (line_.size() < max_line)
                line_ += c;
            else
                truncated_ = true;
            continue;
        }
        if (!line_.empty() && line_.back() == '\r') line_.pop_back();
        bool done = false;
        status = finish_line(done);
        if (status == Status::error) bad_line_ = support::printable_utf8(line_.substr(0, 100));
        line_.clear();
        truncated_ = false;
        if (status == Status::error || done) return used;
        status = Status::need_more;
    }
    return used;
}

ReplyParser::Status ReplyParser::finish_line(bool& done) {
    const std::string& l = line_;
    bool digits = l.size() >= 3 && std::isdigit(static_cast<unsigned char>(l[0])) &&
                  std::isdigit(static_cast<unsigned char>(l[1])) &&
                  std::isdigit(static_cast<unsigned char>(l[2]));
    if (!digits || (l.size() > 3 && l[3] != ' ' && l[3] != '-')) {
        error_ = malformed_line;
        return Status::error;
    }
    int code = std::stoi(l.substr(0, 3));
    if (code < 200 || code > 599) {
        error_ = code_out_of_range;
        return Status::error;
    }
    if (!building_.lines.empty() && building_.code != code) {
        error_ = "reply codes differ between lines";
        return Status::error;
    }
    if (building_.lines.size() >= max_lines) {
        error_ = "more than " + std::to_string(max_lines) + " reply lines";
        return Status::error;
    }
    std::string text = l.size() > 4 ? l.substr(4) : "";
    building_bytes_ += text.size() + 1;
    if (building_bytes_ > max_bytes) {
        error_ = "reply longer than " + std::to_string(max_bytes) + " bytes";
        return Status::error;
    }
    building_.code = code;
    building_.trailing_space = l.size() == 4 && l[3] == ' ';
    text = support::printable_utf8(std::move(text));
    building_.lines.push_back(std::move(text));
    if (l.size() > 3 && l[3] == '-') return Status::need_more;
    reply_ = std::move(building_);
    building_ = ServerReply{};
    building_bytes_ = 0;
    done = true;
    return Status::reply;
}

// Postfix's smtp_helo: the keyword ends at a space, a tab or "=" (servers that still
// announce AUTH=LOGIN from an old draft), its parameters follow.
Capabilities parse_ehlo(const ServerReply& reply) {
    Capabilities caps;
    for (std::size_t i = 1; i < reply.lines.size(); ++i) {  // line 0 is the greeting name
        std::string_view rest = reply.lines[i];
        std::string word = upper(next_word(rest, " \t="));
        if (word == "PIPELINING") caps.pipelining = true;
        else if (word == "STARTTLS") caps.starttls = true;
        else if (word == "8BITMIME") caps.eight_bit_mime = true;
        else if (word == "SMTPUTF8") caps.smtputf8 = true;
        else if (word == "ENHANCEDSTATUSCODES") caps.enhanced_status_codes = true;
        else if (word == "SIZE") caps.size = size_limit(rest);
    }
    return caps;
}

}  // namespace tlsrelay::smtp

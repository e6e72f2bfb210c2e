#include "smtp/mime_downgrade.hpp"

#include <cctype>
#include <vector>

#include "tls/text.hpp"

namespace tlsrelay::smtp {
namespace {

enum class Type { text, message, multipart, other };
enum class Sub { plain, rfc822, global, other };
enum class State { headers, body };

using tls::iequals;

// Postfix's is_header_buf: printable ASCII other than ':' and blanks, optional blanks,
// then ':'. Returns the length of the name, 0 if the line is no header.
std::size_t header_name(std::string_view l) {
    std::size_t len = 0;
    bool blank_seen = false;
    for (unsigned char c : l) {
        if (c == ':') return len;
        if (c == ' ' || c == '\t') {
            if (len == 0) return 0;
            blank_seen = true;
        } else if (c >= 0x80 || std::iscntrl(c) || blank_seen) {
            return 0;
        } else {
            ++len;
        }
    }
    return 0;
}

struct Token {
    char type;  // 't' a token or quoted string, else the special character itself
    std::string value;
};

// One ';'-terminated field of a structured header (RFC 2045 tspecials, comments and
// blanks skipped), as Postfix's header_token reads it; rest moves past the ';'.
std::vector<Token> field(std::string_view& rest) {
    static constexpr std::string_view specials = "()<>@,;:\\\"/[]?=";
    std::vector<Token> out;
    std::size_t i = 0;
    while (i < rest.size() && rest[i] != ';') {
        unsigned char c = rest[i];
        if (std::isspace(c) || std::iscntrl(c)) {
            ++i;
        } else if (c == '(') {  // a comment, nested ones included
            for (int depth = 0; i < rest.size(); ++i) {
                if (rest[i] == '(') ++depth;
                if (rest[i] == ')' && --depth == 0) break;
            }
            ++i;
        } else if (c == '"') {
            std::string v;
            for (++i; i < rest.size() && rest[i] != '"'; ++i) {
                if (rest[i] == '\\' && i + 1 < rest.size()) ++i;
                v += rest[i];
            }
            ++i;
            out.push_back({'t', std::move(v)});
        } else if (specials.find(static_cast<char>(c)) != std::string_view::npos) {
            out.push_back({static_cast<char>(c), {}});
            ++i;
        } else {
            std::size_t j = i;
            while (j < rest.size() && specials.find(rest[j]) == std::string_view::npos &&
                   !std::isspace(static_cast<unsigned char>(rest[j])) && !std::iscntrl(static_cast<unsigned char>(rest[j])))
                ++j;
            out.push_back({'t', std::string(rest.substr(i, j - i))});
            i = j;
        }
    }
    rest.remove_prefix(std::min(rest.size(), i + 1));
    return out;
}

bool is(const std::vector<Token>& t, std::size_t i, std::string_view word) {
    return i < t.size() && t[i].type == 't' && iequals(t[i].value, word);
}

// The walk over header blocks and bodies of src/global/mime_state.c: the message's
// headers, a multipart's part headers after each boundary, message/rfc822 headers.
class Walker {
public:
    explicit Walker(bool downgrade) : downgrade_(downgrade) {}

    void line(std::string_view l) {
        if (state_ == State::headers) {
            if (!pending_.empty()) {
                if (!l.empty() && (l[0] == ' ' || l[0] == '\t')) {
                    pending_.append("\r\n").append(l);
                    return;
                }
                header_done();
            }
            if (header_name(l) > 0) {
                pending_ = l;
                return;
            }
            headers_end(l.empty());
        }
        body(l);
    }

    void finish() {
        if (state_ == State::body) return;
        if (!pending_.empty()) header_done();
        encoding_header();
    }

    bool saw_8bit = false;  // a Content-Transfer-Encoding of 8bit or binary
    std::string out;

private:
    struct Level {
        std::string boundary;
        Type def_type;
        Sub def_sub;
    };

    void emit(std::string_view l) {
        if (!downgrade_) return;
        out.append(l).append("\r\n");
    }

    void reset(State s, Type t, Sub sub) {
        state_ = s, type_ = t, sub_ = sub;
        eight_bit_ = false;
    }

    void header_done() {
        std::string_view h = pending_;
        std::string_view name = h.substr(0, header_name(h));
        std::string_view value = h.substr(h.find(':') + 1);
        const bool encoding = iequals(name, "Content-Transfer-Encoding");
        if (iequals(name, "Content-Type")) content_type(value);
        if (encoding) content_encoding(value);
        if (!(encoding && downgrade_ && eight_bit_)) emit(pending_);
        pending_.clear();
    }

    void content_type(std::string_view value) {
        std::vector<Token> t = field(value);
        if (t.empty()) return;
        const bool slash = t.size() >= 3 && t[1].type == '/';
        if (is(t, 0, "text")) {
            type_ = Type::text, sub_ = slash && is(t, 2, "plain") ? Sub::plain : Sub::other;
        } else if (is(t, 0, "message")) {
            type_ = Type::message;
            sub_ = slash && is(t, 2, "rfc822") ? Sub::rfc822 : slash && is(t, 2, "global") ? Sub::global : Sub::other;
        } else if (is(t, 0, "multipart")) {
            type_ = Type::multipart;
            const bool digest = slash && is(t, 2, "digest");
            while (!value.empty()) {
                std::vector<Token> p = field(value);
                if (p.size() >= 3 && is(p, 0, "boundary") && p[1].type == '=' && stack_.size() < max_depth)
                    stack_.push_back({p[2].value, digest ? Type::message : Type::text,
                                      digest ? Sub::rfc822 : Sub::plain});
            }
        } else {
            type_ = Type::other;
        }
    }

    void content_encoding(std::string_view value) {
        // cleanup: the whole value, after leading blanks, decides the message's encoding
        std::string_view whole = value.substr(std::min(value.size(), value.find_first_not_of(" \t\r\n")));
        if (iequals(whole, "8bit") || iequals(whole, "binary")) saw_8bit = true;
        // mime_state: the first token decides this part's domain; unknown ones change nothing
        std::vector<Token> t = field(value);
        if (t.empty() || t[0].type != 't') return;
        const std::string& w = t[0].value;
        if (iequals(w, "8bit") || iequals(w, "binary"))
            eight_bit_ = true;
        else if (iequals(w, "7bit") || iequals(w, "base64") || iequals(w, "quoted-printable"))
            eight_bit_ = false;
    }

    void encoding_header() {
        if (!downgrade_ || !eight_bit_) return;
        const bool identity = (type_ == Type::message && sub_ != Sub::global) || type_ == Type::multipart;
        emit(identity ? "Content-Transfer-Encoding: 7bit" : "Content-Transfer-Encoding: quoted-printable");
    }

    void headers_end(bool blank) {
        encoding_header();
        if (blank && type_ == Type::message &&
            (sub_ == Sub::rfc822 || (sub_ == Sub::global && (!downgrade_ || !eight_bit_))))
            reset(State::headers, Type::text, Sub::plain);
        else if (blank && type_ == Type::multipart)
            reset(State::body, Type::other, Sub::other);
        else
            state_ = State::body;
    }

    void body(std::string_view l) {
        if (!stack_.empty() && l.size() > 2 && l.starts_with("--")) boundary(l.substr(2));
        if (downgrade_ && eight_bit_)
            quoted_printable(l);
        else
            emit(l);
    }

    void boundary(std::string_view rest) {
        for (std::size_t i = stack_.size(); i-- > 0;) {
            if (!rest.starts_with(stack_[i].boundary)) continue;
            stack_.resize(i + 1);
            Level level = stack_.back();
            if (rest.substr(level.boundary.size()).starts_with("--")) {
                stack_.pop_back();
                reset(State::body, Type::other, Sub::other);
            } else {
                reset(State::headers, level.def_type, level.def_sub);
            }
            return;
        }
    }

    // mime_state_downgrade: a soft break once a line holds more than 72 octets, '=',
    // controls but tab and 8-bit octets as =XX, a blank at the end of a line as well.
    void quoted_printable(std::string_view l) {
        static constexpr char hex[] = "0123456789ABCDEF";
        std::string buf;
        auto encode = [&](unsigned char ch) { buf.append({'=', hex[ch >> 4], hex[ch & 0xf]}); };
        for (unsigned char ch : l) {
            if (buf.size() > 72) {
                out.append(buf).append("=\r\n");
                buf.clear();
            }
            if ((ch < 32 && ch != '\t') || ch == '=' || ch > 126)
                encode(ch);
            else
                buf += static_cast<char>(ch);
        }
        if (!buf.empty() && (buf.back() == ' ' || buf.back() == '\t')) {
            unsigned char last = buf.back();
            buf.pop_back();
            encode(last);
        }
        out.append(buf).append("\r\n");
    }

    static constexpr std::size_t max_depth = 100;  // Postfix mime_nesting_limit
    bool downgrade_;
    State state_ = State::headers;
    Type type_ = Type::text;
    Sub sub_ = Sub::plain;
    bool eight_bit_ = false;  // this part declares 8bit or binary
    std::string pending_;     // a header and its continuation lines
    std::vector<Level> stack_;
};

template <class Fn>
void each_line(std::string_view content, Fn&& fn) {
    while (!content.empty()) {
        std::size_t end = content.find("\r\n");
        fn(content.substr(0, end));
        content.remove_prefix(end == std::string_view::npos ? content.size() : end + 2);
    }
}

}  // namespace

bool declares_8bit(std::string_view content) {
    Walker w(false);
    each_line(content, [&](std::string_view l) { w.line(l); });
    w.finish();
    return w.saw_8bit;
}

std::string downgrade_8bit(std::string_view content) {
    Walker w(true);
    w.out.reserve(content.size() + content.size() / 8);
    each_line(content, [&](std::string_view l) { w.line(l); });
    w.finish();
    return std::move(w.out);
}

}  // namespace tlsrelay::smtp

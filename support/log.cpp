#include "support/log.hpp"

#include <syslog.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <chrono>
#include <ctime>
#include <mutex>
#include <optional>
#include <thread>

namespace tlsrelay::support {
namespace {

struct LogState {
    std::mutex mutex;
    LogTarget target = LogTarget::stderr_stream;
    LogFormat format = LogFormat::postfix;
    std::string hostname = "localhost";
    std::string pid = std::to_string(::getpid());
    // Batching (log_batch_on): lines of batch_thread gathered until a posted write.
    std::optional<boost::asio::any_io_executor> batch_ex;
    std::thread::id batch_thread;
    std::string gathered;
    bool write_posted = false;
};

LogState& state() {
    static LogState s;
    return s;
}

void write_out(std::string& text) {  // state().mutex held
    const char* p = text.data();
    size_t left = text.size();
    while (left > 0) {
        ssize_t n = ::write(STDERR_FILENO, p, left);
        if (n <= 0) break;  // nowhere to report a failing stderr
        p += n;
        left -= static_cast<size_t>(n);
    }
    text.clear();
}

void write_gathered() {
    auto& s = state();
    std::lock_guard lock(s.mutex);
    s.write_posted = false;
    write_out(s.gathered);
}

// Gathers the line, or writes it with whatever was gathered before it.
void put_line(std::string_view line, bool urgent) {
    auto& s = state();
    std::lock_guard lock(s.mutex);
    s.gathered += line;
    if (!urgent && s.batch_ex && std::this_thread::get_id() == s.batch_thread) {
        if (!s.write_posted) boost::asio::post(*s.batch_ex, write_gathered);
        s.write_posted = true;
        return;
    }
    write_out(s.gathered);
}

void emit(std::string_view service, std::string_view severity, std::string_view text) {
    auto& s = state();
    std::string body;
    if (!severity.empty()) {
        body += severity;
        body += ": ";
    }
    body += printable_utf8(text);
    if (s.target == LogTarget::syslog) {
        std::string ident = "tlsrelay/" + std::string(service);
        std::lock_guard lock(s.mutex);
        openlog(ident.c_str(), LOG_PID | LOG_NDELAY, LOG_MAIL);
        syslog(severity.empty() ? LOG_INFO : LOG_WARNING, "%s", body.c_str());
        return;
    }
    auto now = std::chrono::system_clock::now();
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm tm{};
    localtime_r(&t, &tm);
    std::string line;
    if (s.format == LogFormat::json) {
        char stamp[40];
        std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S%z", &tm);
        line = "{\"time\":";
        line += json_string(stamp);
        line += ",\"host\":";
        line += json_string(s.hostname);
        line += ",\"service\":";
        line += json_string("tlsrelay/" + std::string(service));
        line += ",\"pid\":" + s.pid;
        if (!severity.empty()) {
            line += ",\"severity\":";
            line += json_string(severity);
        }
        line += ",\"message\":";
        line += json_string(printable(text));
        line += "}\n";
    } else {
        char stamp[32];
        std::strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &tm);
        line = std::string(stamp) + " " + s.hostname + " tlsrelay/" + std::string(service) + "[" +
               s.pid + "]: " + body + "\n";
    }
    put_line(line, !severity.empty());
}

}  // namespace

void log_setup(LogTarget target, LogFormat format, std::string hostname) {
    auto& s = state();
    std::lock_guard lock(s.mutex);
    s.target = target;
    s.format = format;
    s.hostname = std::move(hostname);
    s.pid = std::to_string(::getpid());  // after a fork, log the new process
}

void log_batch_on(boost::asio::any_io_executor ex) {
    auto& s = state();
    std::lock_guard lock(s.mutex);
    s.batch_ex = std::move(ex);
    s.batch_thread = std::this_thread::get_id();
}

void log_batch_end() {
    auto& s = state();
    std::lock_guard lock(s.mutex);
    s.batch_ex.reset();
    s.write_posted = false;  // a write still posted is dropped with its io_context
    write_out(s.gathered);
}

void log_info(std::string_view service, std::string_view text) { emit(service, "", text); }
void log_warning(std::string_view service, std::string_view text) {
    emit(service, "warning", text);
}
void log_error(std::string_view service, std::string_view text) { emit(service, "error", text); }

std::string json_string(std::string_view text) {
    std::string out = "\"";
    for (unsigned char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
            static const char hex[] = "0123456789abcdef";
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += static_cast<char>(c);  // UTF-8 passes through
        }
    }
    return out + "\"";
}

std::string printable(std::string_view text) {
    std::string out(text);
    for (auto& c : out) {
        unsigned char u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f) c = '?';
    }
    return out;
}

std::string printable_utf8(std::string_view text) {
    auto continuation = [&](std::size_t i) {
        return i < text.size() && (static_cast<unsigned char>(text[i]) & 0xc0) == 0x80;
    };
    std::string out(text);
    for (std::size_t i = 0; i < out.size(); ++i) {
        auto c = static_cast<unsigned char>(out[i]);
        if (c >= 0x20 && c < 0x7f) continue;
        if (c >= 0xc2 && c <= 0xfe && continuation(i + 1)) {
            while (continuation(i + 1)) ++i;
            continue;
        }
        out[i] = '?';
    }
    return out;
}

std::string utc_time(std::int64_t unix_seconds, const char* format) {
    std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    return std::string(buf, std::strftime(buf, sizeof buf, format, &tm));
}

}  // namespace tlsrelay::support

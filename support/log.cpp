#include "support/log.hpp"

#include <syslog.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <mutex>

namespace tlsrelay::support {
namespace {

struct LogState {
    std::mutex mutex;
    LogTarget target = LogTarget::stderr_stream;
    LogFormat format = LogFormat::postfix;
    std::string hostname = "localhost";
    std::string pid = std::to_string(::getpid());
};

LogState& state() {
    static LogState s;
    return s;
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
    std::lock_guard lock(s.mutex);
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
        ssize_t n = ::write(STDERR_FILENO, p, left);
        if (n <= 0) break;  // nowhere to report a failing stderr
        p += n;
        left -= static_cast<size_t>(n);
    }
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

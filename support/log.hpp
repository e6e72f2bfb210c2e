// Log lines in Postfix's syslog shape ("Mon dd hh:mm:ss host tlsrelay/smtpd[pid]: text")
// so that pflogsumm, fail2ban and grep alerts work unchanged. Safe from any thread;
// lines keep the order in which they were logged.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <string>
#include <string_view>

namespace tlsrelay::support {

enum class LogTarget { stderr_stream, syslog };
enum class LogFormat { postfix, json };

void log_setup(LogTarget target, LogFormat format, std::string hostname);

// From now on, info lines logged by the calling thread (the one that runs ex) are
// gathered and written with one write() once the handlers ready on ex have run, rather
// than one write() each: a busy relay logs several lines per message. Warnings, errors
// and lines from other threads are written at once, after what was gathered. Syslog is
// not batched. log_batch_end() writes what is gathered and stops batching.
void log_batch_on(boost::asio::any_io_executor ex);
void log_batch_end();

// service is the Postfix-like process name: "smtpd", "smtp", "qmgr", "queue", "master".
void log_info(std::string_view service, std::string_view text);
void log_warning(std::string_view service, std::string_view text);  // "warning: text"
void log_error(std::string_view service, std::string_view text);    // "error: text"

// Replaces bytes that are not printable ASCII with '?', as Postfix's printable()
// does before client-supplied text reaches a log line or a header.
std::string printable(std::string_view text);

// Postfix 3.7's printable() with smtputf8_enable = yes (its default), for log lines and
// server replies: printable ASCII stays, and so does a byte 0xC2..0xFE followed by
// continuation bytes, together with all of them (a loose check: truncated or surrogate
// sequences pass, as in Postfix); every other byte becomes '?'.
std::string printable_utf8(std::string_view text);

// unix_seconds as UTC through strftime's format, e.g. "%Y-%m-%dT%H:%M:%SZ".
std::string utc_time(std::int64_t unix_seconds, const char* format);

// A JSON string literal for text (quotes included); control characters escaped.
std::string json_string(std::string_view text);

}  // namespace tlsrelay::support

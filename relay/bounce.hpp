// Non-delivery notifications (RFC 3464 multipart/report) for recipients that failed
// permanently or expired, with the original message's headers; never for <>.
#pragma once

#include <ctime>
#include <string>
#include <vector>

#include "queue/queue.hpp"

namespace tlsrelay::relay {

// The report text for the recipients of env at the given indexes.
std::string make_bounce(const queue::Envelope& env, const std::vector<std::size_t>& failed,
                        const std::string& original_content, const std::string& hostname);

// "Thu, 26 Nov 2026 05:10:00 +0000" in local time, for Date: fields.
std::string rfc5322_date(std::time_t t);

}  // namespace tlsrelay::relay

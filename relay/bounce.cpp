#include "relay/bounce.hpp"

#include <ctime>

namespace tlsrelay::relay {

std::string rfc5322_date(std::time_t t) {
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S %z", &tm);
    return buf;
}

namespace {

// The headers of the original message: everything before the first empty line.
std::string header_section(const std::string& content) {
    auto end = content.find("\r\n\r\n");
    return end == std::string::npos ? content : content.substr(0, end + 2);
}

// "host H[A] said: 550 5.1.1 text (in reply to ...)" -> "smtp; 550 5.1.1 text"
std::string diagnostic(const std::string& reason) {
    auto said = reason.find(" said: ");
    if (said == std::string::npos) return "";
    std::string reply = reason.substr(said + 7);
    auto in_reply = reply.rfind(" (in reply to ");
    if (in_reply != std::string::npos) reply.resize(in_reply);
    return "smtp; " + reply;
}

}  // namespace

std::string make_bounce(const queue::Envelope& env, const std::vector<std::size_t>& failed,
                        const std::string& original, const std::string& hostname) {
    std::time_t now = std::time(nullptr);
    std::string boundary = env.id + "." + std::to_string(now) + "/" + hostname;
    std::string m;
    m += "From: MAILER-DAEMON@" + hostname + " (Mail Delivery System)\r\n";
    m += "To: <" + env.sender + ">\r\n";
    m += "Subject: Undelivered Mail Returned to Sender\r\n";
    m += "Date: " + rfc5322_date(now) + "\r\n";
    m += "Message-Id: <" + env.id + "." + std::to_string(now) + "@" + hostname + ">\r\n";
    m += "Auto-Submitted: auto-replied\r\n";
    m += "MIME-Version: 1.0\r\n";
    m += "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"" + boundary + "\"\r\n";
    m += "\r\nThis is a MIME-encapsulated message.\r\n\r\n--" + boundary + "\r\n";
    m += "Content-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n";
    m += "This is the mail relay at " + hostname + ".\r\n\r\n";
    m += "Your message could not be delivered to one or more recipients.\r\n";
    m += "The reasons are below; the message's headers are attached.\r\n\r\n";
    for (auto i : failed)
        m += "<" + env.recipients[i].address + ">: " + env.recipients[i].last_reason + "\r\n";
    m += "\r\n--" + boundary + "\r\n";
    m += "Content-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n";
    m += "Reporting-MTA: dns; " + hostname + "\r\n";
    m += "X-Postfix-Queue-ID: " + env.id + "\r\n";
    if (!env.sender.empty()) m += "X-Postfix-Sender: rfc822; " + env.sender + "\r\n";
    m += "Arrival-Date: " + rfc5322_date(static_cast<std::time_t>(env.arrival_us / 1000000)) + "\r\n";
    for (auto i : failed) {
        const auto& r = env.recipients[i];
        m += "\r\nFinal-Recipient: rfc822; " + r.address + "\r\n";
        m += "Original-Recipient: rfc822; " + r.address + "\r\n";
        m += "Action: failed\r\n";
        m += "Status: " + (r.last_dsn.empty() ? std::string("5.0.0") : r.last_dsn) + "\r\n";
        std::string diag = diagnostic(r.last_reason);
        if (!diag.empty()) m += "Diagnostic-Code: " + diag + "\r\n";
    }
    m += "\r\n--" + boundary + "\r\n";
    m += "Content-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n";
    m += header_section(original);
    m += "\r\n--" + boundary + "--\r\n";
    return m;
}

}  // namespace tlsrelay::relay

#include "relay/tls_rpt_mail.hpp"

#include <openssl/evp.h>

#include "relay/bounce.hpp"

namespace tlsrelay::relay {

std::string report_file_name(const ReportMail& m) {
    return m.submitter + "!" + m.policy_domain + "!" + std::to_string(m.begin) + "!" + std::to_string(m.end) +
           "!" + m.unique_id + ".json.gz";
}

std::string base64_lines(const std::string& data) {
    std::string out;
    constexpr std::size_t chunk = 57;  // 57 bytes -> 76 characters
    for (std::size_t at = 0; at < data.size(); at += chunk) {
        std::size_t n = std::min(chunk, data.size() - at);
        unsigned char buf[80];
        int len = EVP_EncodeBlock(buf, reinterpret_cast<const unsigned char*>(data.data() + at),
                                  static_cast<int>(n));
        out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(len));
        out += "\r\n";
    }
    return out;
}

std::string make_report_mail(const ReportMail& m) {
    const std::string boundary = "tlsrpt." + m.unique_id + "/" + m.submitter;
    std::string to;
    for (const auto& r : m.to) to += (to.empty() ? "" : ",\r\n\t") + ("<" + r + ">");
    std::string t;
    t += "From: TLS reporting <" + m.from + ">\r\n";
    t += "To: " + to + "\r\n";
    t += "Subject: Report Domain: " + m.policy_domain + " Submitter: " + m.submitter + " Report-ID: <" +
         m.report_id + ">\r\n";
    t += "Date: " + rfc5322_date(static_cast<std::time_t>(m.now)) + "\r\n";
    t += "Message-Id: <" + m.report_id + ">\r\n";
    t += "TLS-Report-Domain: " + m.policy_domain + "\r\n";
    t += "TLS-Report-Submitter: " + m.submitter + "\r\n";
    t += "Auto-Submitted: auto-generated\r\n";
    t += "MIME-Version: 1.0\r\n";
    t += "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n\tboundary=\"" + boundary + "\"\r\n";
    t += "\r\nThis is a MIME-encapsulated message.\r\n\r\n--" + boundary + "\r\n";
    t += "Content-Type: text/plain; charset=us-ascii\r\n\r\n";
    t += "This is an aggregate TLS report (RFC 8460) from " + m.submitter + " about the SMTP\r\n";
    t += "sessions to " + m.policy_domain + " from " + rfc5322_date(static_cast<std::time_t>(m.begin)) +
         " to\r\n" + rfc5322_date(static_cast<std::time_t>(m.end)) + ". The report is attached.\r\n";
    t += "\r\n--" + boundary + "\r\n";
    t += "Content-Type: application/tlsrpt+gzip\r\n";
    t += "Content-Transfer-Encoding: base64\r\n";
    t += "Content-Disposition: attachment;\r\n\tfilename=\"" + report_file_name(m) + "\"\r\n\r\n";
    t += base64_lines(m.gzip_report);
    t += "\r\n--" + boundary + "--\r\n";
    return t;
}

}  // namespace tlsrelay::relay

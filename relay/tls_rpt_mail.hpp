// The mail that carries a TLS-RPT aggregate report (RFC 8460 section 5.3): a
// multipart/report; report-type="tlsrpt" message with the TLS-Report-Domain and
// TLS-Report-Submitter fields, the section 5.3 subject, a short text part and the gzip
// report as an application/tlsrpt+gzip attachment named as section 5.1 recommends.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tlsrelay::relay {

struct ReportMail {
    std::string submitter;      // our domain: TLS-Report-Submitter, the file name's sender
    std::string policy_domain;  // TLS-Report-Domain
    std::string report_id;      // "left@right", as in the JSON report-id
    std::string unique_id;      // letters and digits, the file name's unique-id
    std::string from;           // contact-info address
    std::vector<std::string> to;
    std::int64_t begin = 0, end = 0;  // the report's first and last second (unix)
    std::int64_t now = 0;             // Date:
    std::string gzip_report;
};

// "submitter!policy-domain!begin!end!unique-id.json.gz"
std::string report_file_name(const ReportMail& m);
// The message text, CRLF lines, ready for the queue.
std::string make_report_mail(const ReportMail& m);
// RFC 2045 base64 in lines of 76 characters, each ending in CRLF.
std::string base64_lines(const std::string& data);

}  // namespace tlsrelay::relay

// TLS-RPT in relay/: which policy a session is reported under (tlsa, sts,
// no-policy-found), the failure detail, and the RFC 8460 section 5.3 report mail.
#include <gtest/gtest.h>

#include "relay/tls_rpt.hpp"
#include "relay/tls_rpt_mail.hpp"

namespace tlsrelay::relay {
namespace {

sts::Policy enforce() {
    sts::Policy p;
    p.mode = sts::Mode::enforce;
    p.mx = {"mx1.example.com", "*.example.net"};
    p.max_age = 604800;
    return p;
}

TEST(TlsRptPolicy, DaneThenStsThenNone) {
    tls::DaneDecision dane;
    dane.usable.push_back({3, 1, 1, {0xAB, 0xCD}});
    const sts::Policy sts = enforce();
    auto tlsa = applied_rpt_policy(&dane, &sts, "", "mx1.example.com");
    EXPECT_EQ(tlsa.type, "tlsa");
    EXPECT_EQ(tlsa.strings, std::vector<std::string>{"3 1 1 ABCD"});
    EXPECT_EQ(tlsa.mx_hosts, std::vector<std::string>{"mx1.example.com"});

    tls::DaneDecision no_records;
    auto by_sts = applied_rpt_policy(&no_records, &sts, "", "mx1.example.com");
    EXPECT_EQ(by_sts.type, "sts");
    EXPECT_EQ(by_sts.strings, (std::vector<std::string>{"version: STSv1", "mode: enforce", "mx: mx1.example.com",
                                                         "mx: *.example.net", "max_age: 604800"}));
    EXPECT_EQ(by_sts.mx_hosts, sts.mx);

    EXPECT_EQ(applied_rpt_policy(nullptr, &sts, "policy:3", "mx1.example.com").type, "no-policy-found");
    sts::Policy none = sts;
    none.mode = sts::Mode::none;
    EXPECT_EQ(applied_rpt_policy(nullptr, &none, "", "mx1.example.com").type, "no-policy-found");
    EXPECT_EQ(applied_rpt_policy(nullptr, nullptr, "", "mx1.example.com"), (sts::RptPolicy{"no-policy-found", {}, {}}));
}

TEST(TlsRptPolicy, FailureDetail) {
    smtp::ServerId server{"mx1.example.com", boost::asio::ip::make_address("192.0.2.7"), 25};
    auto f = rpt_failure(server, "198.51.100.1", "TLS is required, but was not offered by host mx1.example.com[192.0.2.7]");
    EXPECT_EQ(f, (sts::RptFailure{"starttls-not-supported", "198.51.100.1", "mx1.example.com", "192.0.2.7",
                                  "TLS is required, but was not offered by host mx1.example.com[192.0.2.7]"}));
    EXPECT_EQ(rpt_failure(server, "", std::string(2000, 'x')).reason_code.size(), 500u);
}

ReportMail sample_mail() {
    ReportMail m;
    m.submitter = "relay.example.org";
    m.policy_domain = "example.com";
    m.report_id = "1795651200.00ff@relay.example.org";
    m.unique_id = "00ff";
    m.from = "postmaster@relay.example.org";
    m.to = {"a@example.com", "b@example.net"};
    m.begin = 1795651200;
    m.end = 1795737599;
    m.now = 1795737900;
    m.gzip_report = std::string("\x1f\x8b\x08\x00", 4) + std::string(100, 'z');
    return m;
}

TEST(TlsRptMail, FollowsSection5) {
    ReportMail m = sample_mail();
    EXPECT_EQ(report_file_name(m), "relay.example.org!example.com!1795651200!1795737599!00ff.json.gz");
    std::string t = make_report_mail(m);
    for (const char* line : {
             "From: TLS reporting <postmaster@relay.example.org>\r\n",
             "To: <a@example.com>,\r\n\t<b@example.net>\r\n",
             "Subject: Report Domain: example.com Submitter: relay.example.org Report-ID: "
             "<1795651200.00ff@relay.example.org>\r\n",
             "TLS-Report-Domain: example.com\r\n",
             "TLS-Report-Submitter: relay.example.org\r\n",
             "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n\tboundary=\"tlsrpt.00ff/relay.example.org\"\r\n",
             "\r\n--tlsrpt.00ff/relay.example.org\r\nContent-Type: application/tlsrpt+gzip\r\n"
             "Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment;\r\n\tfilename=\""
             "relay.example.org!example.com!1795651200!1795737599!00ff.json.gz\"\r\n\r\nH4sIAHp6",
             "\r\n--tlsrpt.00ff/relay.example.org--\r\n",
         })
        EXPECT_NE(t.find(line), std::string::npos) << line << "\n" << t;
    EXPECT_EQ(t.find("\n\n"), std::string::npos);  // CRLF lines only
    auto body = t.find("\r\n\r\n");
    EXPECT_EQ(t.substr(0, body).find("\r\n\r\n"), std::string::npos);
}

TEST(TlsRptMail, Base64InLinesOf76) {
    EXPECT_EQ(base64_lines(""), "");
    EXPECT_EQ(base64_lines("abc"), "YWJj\r\n");
    std::string lines = base64_lines(std::string(100, '\xff'));
    EXPECT_EQ(lines.substr(0, 78), std::string(76, '/') + "\r\n");
    EXPECT_EQ(lines.size(), 78u + 62u);  // 57 bytes, then 43 bytes as 60 characters with "=" padding
}

}  // namespace
}  // namespace tlsrelay::relay

// TLS-RPT aggregate reports (RFC 8460 section 4): the failure-text to result-type table,
// counting, the durable form (round trip, corrupt records) and the JSON report.
#include "sts/rpt_report.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include "sts/gzip.hpp"

namespace tlsrelay::sts {
namespace {

TEST(RptResultType, MapsOurFailureTexts) {
    struct Case {
        const char* reason;
        const char* type;
    } cases[] = {
        {"TLS is required, but was not offered by host mx.example.com[192.0.2.1]", "starttls-not-supported"},
        {"TLS is required, but host mx.example.com[192.0.2.1] refused to start TLS: 454 4.7.0 no", "starttls-not-supported"},
        {"Server certificate not verified: certificate verification failed: certificate has expired", "certificate-expired"},
        {"Server certificate not verified: certificate verification failed: certificate has expired; names a.example do not match b.example", "certificate-expired"},
        {"Server certificate not verified: certificate verification failed: unable to get local issuer certificate", "certificate-not-trusted"},
        {"Server certificate not verified: certificate verification failed: self-signed certificate", "certificate-not-trusted"},
        {"Server certificate not verified: MTA-STS policy for example.com: names *.example.net do not match mx.example.com", "certificate-host-mismatch"},
        {"Server certificate not verified: the certificate has no DNS names", "certificate-host-mismatch"},
        {"Server certificate not verified: no TLSA record matches the server certificate", "validation-failure"},
        {"TLSA records unusable", "tlsa-invalid"},
        {"TLSA lookup error for mx.example.com:25", "dnssec-invalid"},
        {"no TLSA records found", "dane-required"},
        {"non DNSSEC destination", "dane-required"},
        {"MTA-STS policy for example.com: MX host mx9.example.com is not in the policy's mx list (mx.example.com)", "validation-failure"},
        {"Cannot start TLS: handshake failure", "validation-failure"},
        {"client TLS configuration problem", "validation-failure"},
        {"MTA-STS policy fetch failed: connection refused", "sts-policy-fetch-error"},
        {"MTA-STS policy invalid: mode is missing", "sts-policy-invalid"},
        {"MTA-STS policy server certificate not verified: expired", "sts-webpki-invalid"},
    };
    for (const auto& c : cases) EXPECT_EQ(to_string(result_type_for(c.reason)), c.type) << c.reason;
}

RptSession success(const char* type) { return {"example.com", {type, {}, {}}, std::nullopt}; }

RptPeriod sample() {
    RptPeriod p{"example.com", 1795651200, 1795651200 + 86400, {}};
    RptPolicy sts{"sts", {"version: STSv1", "mode: enforce", "mx: mx.example.com", "max_age: 86400"}, {"mx.example.com"}};
    RptFailure f{"certificate-host-mismatch", "127.0.0.1", "mx.example.com", "127.0.1.5",
                 "Server certificate not verified: names \"x\"\tdo not match"};
    p.add({"example.com", sts, std::nullopt});
    p.add({"example.com", sts, f});
    p.add({"example.com", sts, f});
    p.add(success("no-policy-found"));
    return p;
}

TEST(RptPeriod, CountsPerPolicyAndFailure) {
    RptPeriod p = sample();
    ASSERT_EQ(p.policies.size(), 2u);
    EXPECT_EQ(p.policies[0].successes, 1u);
    EXPECT_EQ(p.policies[0].failures, 2u);
    ASSERT_EQ(p.policies[0].details.size(), 1u);
    EXPECT_EQ(p.policies[0].details.begin()->second, 2u);
    EXPECT_EQ(p.policies[1].policy.type, "no-policy-found");
    EXPECT_EQ(p.sessions(), 4u);
}

TEST(RptPeriod, SurvivesItsDurableForm) {
    RptPeriod p = sample();
    std::string text = serialize(p);
    auto back = parse_period(text);
    ASSERT_TRUE(back);
    EXPECT_EQ(serialize(*back), text);
    EXPECT_EQ(back->policies[0].details.begin()->first.reason_code, p.policies[0].details.begin()->first.reason_code);
    for (std::size_t n = 0; n < text.size(); ++n) EXPECT_FALSE(parse_period(text.substr(0, n))) << n;
    const char* corrupt[] = {
        "tlsrpt-period 2\nexample.com\t1\t2\nend\n",
        "tlsrpt-period 1\nexample.com\t2\t1\nend\n",
        "tlsrpt-period 1\n\t1\t2\nend\n",
        "tlsrpt-period 1\nexample.com\t1\t2\nS\tx\nend\n",
        "tlsrpt-period 1\nexample.com\t1\t2\nP\tsts\t1\t-1\t-\nend\n",
        "tlsrpt-period 1\nexample.com\t1\t2\nP\tsts\t1\t1\t-\nF\ta\tb\tc\td\te\tx\nend\n",
        "tlsrpt-period 1\nexample.com\t1\t2\nP\tsts\t1\t1\t-\nX\ty\nend\n",
        "tlsrpt-period 1\nexample.com%G1\t1\t2\nend\n",
    };
    for (const char* c : corrupt) EXPECT_FALSE(parse_period(c)) << c;
}

TEST(RptReport, JsonHasEveryFieldOfSection4) {
    std::string json = report_json(sample(), {"relay.example", "postmaster@relay.example", "42-abc"});
    EXPECT_EQ(json,
              "{\"organization-name\": \"relay.example\", \"date-range\": {\"start-datetime\": "
              "\"2026-11-26T00:00:00Z\", \"end-datetime\": \"2026-11-26T23:59:59Z\"}, \"contact-info\": "
              "\"postmaster@relay.example\", \"report-id\": \"42-abc\", \"policies\": [{\"policy\": "
              "{\"policy-type\": \"sts\", \"policy-string\": [\"version: STSv1\", \"mode: enforce\", "
              "\"mx: mx.example.com\", \"max_age: 86400\"], \"policy-domain\": \"example.com\", "
              "\"mx-host\": [\"mx.example.com\"]}, \"summary\": {\"total-successful-session-count\": 1, "
              "\"total-failure-session-count\": 2}, \"failure-details\": [{\"result-type\": "
              "\"certificate-host-mismatch\", \"sending-mta-ip\": \"127.0.0.1\", \"receiving-mx-hostname\": "
              "\"mx.example.com\", \"receiving-ip\": \"127.0.1.5\", \"failed-session-count\": 2, "
              "\"failure-reason-code\": \"Server certificate not verified: names \\\"x\\\"\\u0009do not "
              "match\"}]}, {\"policy\": {\"policy-type\": \"no-policy-found\", \"policy-domain\": "
              "\"example.com\"}, \"summary\": {\"total-successful-session-count\": 1, "
              "\"total-failure-session-count\": 0}}]}");
}

TEST(RptReport, UtcDaysAndTimestamps) {
    EXPECT_EQ(utc_day_begin(1795651200 + 3600), 1795651200);
    EXPECT_EQ(utc_day_begin(1795651200), 1795651200);
    EXPECT_EQ(utc_day_begin(-1), -86400);
    EXPECT_EQ(rfc3339(0), "1970-01-01T00:00:00Z");
}

TEST(RptReport, GzipRoundTrips) {
    std::string json = report_json(sample(), {"o", "c", "i"});
    std::string gz = gzip(json);
    ASSERT_GE(gz.size(), 18u);
    EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);
    EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
    z_stream z{};
    ASSERT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
    std::string out(json.size() + 16, '\0');
    z.next_in = reinterpret_cast<Bytef*>(gz.data());
    z.avail_in = static_cast<uInt>(gz.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
    out.resize(z.total_out);
    inflateEnd(&z);
    EXPECT_EQ(out, json);
}

}  // namespace
}  // namespace tlsrelay::sts

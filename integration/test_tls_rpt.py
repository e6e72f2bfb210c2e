"""TLS-RPT (RFC 8460) end to end: deliveries to a domain with an MTA-STS policy and a
`_smtp._tls` record are counted, `tls-rpt-send` on the control socket ends the
reporting period at once, and the report arrives at the rua=mailto: address's MX (a
real SMTP peer) through the relay's own queue. The mail and the gzip JSON report are
checked field by field against RFC 8460 sections 4 and 5.

Run: TLSRELAY_BIN=build/relay/tlsrelay /usr/bin/python3 -m unittest -v test_tls_rpt
"""

from __future__ import annotations

import calendar
import email
import email.policy
import gzip
import json
import re
import time

from test_control import control_request
from test_delivery import content, submit
from test_mta_sts import DOMAIN, RCPT, MtaStsCase, policy_text

REPORTS = "reports.test"
RUA = f"tlsrpt@{REPORTS}"
POLICY_MX = ("mx1.example.test", "mx2.example.test")
ORGANIZATION = "Example Relay Operations"


class TlsRptCase(MtaStsCase):
    """example.test: MX 10 mx2 (certificate for another name), MX 20 mx1 (valid), an
    enforce MTA-STS policy listing both, a TLS-RPT record; the report sink is the MX of
    reports.test."""

    def setUp(self):
        super().setUp()
        self.dns.records.pop((f"{DOMAIN}.", "MX"), None)
        self.mx(DOMAIN, "10 mx2.example.test.", "20 mx1.example.test.")
        self.mx(REPORTS, "10 mx.reports.test.")
        self.sink = self.peer("mx.reports.test")

    def set_rpt_txt(self, *rdata: str) -> None:
        with self.dns._lock:
            self.dns.records[(f"_smtp._tls.{DOMAIN}.", "TXT")] = list(rdata)

    def world_with_one_failure_and_one_success(self, **relay_sections):
        self.publish(policy_text("enforce", mx=POLICY_MX))
        self.set_rpt_txt(f'"v=TLSRPTv1; rua=mailto:{RUA}"')
        bad = self.peer("mx2.example.test", cert=self.pki.leaf(dns=["other.example.test"]))
        good = self.peer("mx1.example.test", cert=self.pki.leaf(dns=["mx1.example.test"]))
        relay = self.sts_relay(tls_rpt={"enabled": True, "organization_name": ORGANIZATION}, **relay_sections)
        qid = submit(relay, content("tlsrpt"))
        good.wait_for_messages(1)
        self.status(relay, qid, RCPT, "sent")
        return relay, bad, good

    def send_reports(self, relay) -> tuple[int, int]:
        before = int(time.time())
        self.assertEqual(control_request(relay, b"tls-rpt-send\n"), b"ok\n")
        return before, int(time.time())

    def report_of(self, msg) -> tuple[email.message.EmailMessage, str, dict]:
        """The parsed mail, the attachment's file name and the decoded JSON report."""
        mail = email.message_from_bytes(msg.data, policy=email.policy.default)
        parts = [p for p in mail.iter_parts() if p.get_content_type() == "application/tlsrpt+gzip"]
        self.assertEqual(len(parts), 1, msg.data[:2000])
        raw = parts[0].get_payload(decode=True)
        self.assertEqual(raw[:2], b"\x1f\x8b")  # a gzip member, not zlib or plain JSON
        return mail, parts[0].get_filename(), json.loads(gzip.decompress(raw))

    def assertDateRange(self, report: dict, before: int, after: int) -> tuple[int, int]:
        """start: the UTC midnight of the day counted; end: the moment tls-rpt-send ran."""
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        start = calendar.timegm(time.strptime(report["date-range"]["start-datetime"], fmt))
        end = calendar.timegm(time.strptime(report["date-range"]["end-datetime"], fmt))
        self.assertEqual(start % 86400, 0, report["date-range"])
        self.assertEqual(start, end - end % 86400, report["date-range"])
        self.assertTrue(before <= end <= after, (report["date-range"], before, after))
        return start, end


class TlsRptReport(TlsRptCase):

    def test_report_mail_and_json_follow_rfc_8460(self):
        """One failed (certificate-host-mismatch) and one successful STS session give a report mailed to the rua address whose MIME and JSON fields are those of RFC 8460."""
        relay, bad, good = self.world_with_one_failure_and_one_success()
        before, after = self.send_reports(relay)
        msg = self.sink.wait_for_messages(1)[0]
        self.assertEqual(msg.mail_from, "")  # nobody to bounce a report to
        self.assertEqual(msg.rcpt_tos, [RUA])
        mail, filename, report = self.report_of(msg)
        start, end = self.assertDateRange(report, before, after)

        submitter = relay.hostname
        # RFC 8460 5.3: the header fields and the subject
        self.assertEqual(mail.get_content_type(), "multipart/report")
        self.assertEqual(mail.get_param("report-type"), "tlsrpt")
        self.assertEqual(mail["TLS-Report-Domain"], DOMAIN)
        self.assertEqual(mail["TLS-Report-Submitter"], submitter)
        self.assertEqual([a.addr_spec for a in mail["To"].addresses], [RUA])
        self.assertEqual(mail["From"].addresses[0].addr_spec, f"postmaster@{submitter}")
        self.assertEqual(mail["Subject"], f"Report Domain: {DOMAIN} Submitter: {submitter} "
                                          f"Report-ID: <{report['report-id']}>")
        self.assertRegex(report["report-id"], rf"^\d+\.[0-9a-f]{{16}}@{re.escape(submitter)}$")
        # 5.1: submitter!policy-domain!begin!end!unique-id.json.gz
        m = re.fullmatch(rf"{re.escape(submitter)}!{re.escape(DOMAIN)}!(\d+)!(\d+)!([0-9a-f]+)\.json\.gz", filename)
        self.assertIsNotNone(m, filename)
        self.assertEqual((int(m[1]), int(m[2])), (start, end))
        self.assertIn(m[3], report["report-id"])

        # 4.4: the report body, field by field
        self.assertEqual(sorted(report), ["contact-info", "date-range", "organization-name", "policies",
                                          "report-id"])
        self.assertEqual(report["organization-name"], ORGANIZATION)
        self.assertEqual(report["contact-info"], f"postmaster@{submitter}")
        self.assertEqual(len(report["policies"]), 1, report)
        entry = report["policies"][0]
        self.assertEqual(entry["policy"], {
            "policy-type": "sts",
            "policy-string": ["version: STSv1", "mode: enforce", "mx: mx1.example.test", "mx: mx2.example.test",
                              "max_age: 86400"],
            "policy-domain": DOMAIN,
            "mx-host": ["mx1.example.test", "mx2.example.test"],
        })
        self.assertEqual(entry["summary"], {"total-successful-session-count": 1, "total-failure-session-count": 1})
        self.assertEqual(entry["failure-details"], [{
            "result-type": "certificate-host-mismatch",
            "sending-mta-ip": bad.sessions[0].client[0],
            "receiving-mx-hostname": "mx2.example.test",
            "receiving-ip": bad.host,
            "failed-session-count": 1,
            "failure-reason-code": "Server certificate not verified: MTA-STS policy for example.test: names "
                                   "other.example.test do not match mx2.example.test",
        }])
        relay.wait_for_log(rf"tls-rpt\[\d+\]: [0-9A-F]+: report {re.escape(report['report-id'])} for "
                           rf"{re.escape(DOMAIN)} \(2 sessions\) to <{re.escape(RUA)}>")
        self.assertEqual(list((relay.spool / "tls-rpt").iterdir()), [])  # sent: nothing left to send

    def test_counts_survive_a_restart(self):
        """The counts are kept in <queue.dir>/tls-rpt/: after a restart the report still has both sessions."""
        relay, _, _ = self.world_with_one_failure_and_one_success()
        relay.stop()
        records = list((relay.spool / "tls-rpt").iterdir())
        self.assertEqual(len(records), 1, records)
        self.assertTrue(records[0].name.endswith(f".{DOMAIN}"), records)
        relay.start()
        before, after = self.send_reports(relay)
        _, _, report = self.report_of(self.sink.wait_for_messages(1)[0])
        self.assertDateRange(report, before, after)
        self.assertEqual(report["policies"][0]["summary"],
                         {"total-successful-session-count": 1, "total-failure-session-count": 1})

    def test_policy_server_certificate_failure_is_sts_webpki_invalid(self):
        """The MTA-STS policy server's certificate names another host: an sts-webpki-invalid failure under policy type sts, and the session the default level then made under no-policy-found."""
        self.publish(policy_text("enforce", mx=POLICY_MX), cert_names=("www.example.test",))
        self.set_rpt_txt(f'"v=TLSRPTv1; rua=mailto:{RUA}"')
        mx2 = self.peer("mx2.example.test", cert=self.pki.leaf(dns=["other.example.test"]))
        relay = self.sts_relay(tls_rpt={"enabled": True})
        qid = submit(relay, content("webpki"))
        self.status(relay, qid, RCPT, "sent")  # "may": the wrong name does not matter
        self.send_reports(relay)
        _, _, report = self.report_of(self.sink.wait_for_messages(1)[0])
        self.assertEqual(report["policies"], [
            {"policy": {"policy-type": "sts", "policy-domain": DOMAIN},
             "summary": {"total-successful-session-count": 0, "total-failure-session-count": 1},
             "failure-details": [{
                 "result-type": "sts-webpki-invalid", "failed-session-count": 1,
                 "failure-reason-code": "MTA-STS policy server certificate not verified: certificate not verified: "
                                        "hostname mismatch"}]},
            {"policy": {"policy-type": "no-policy-found", "policy-domain": DOMAIN},
             "summary": {"total-successful-session-count": 1, "total-failure-session-count": 0}},
        ])
        self.assertEqual(len(mx2.messages), 1)


class TlsRptNoRecord(TlsRptCase):

    def test_domain_without_record_gets_no_report(self):
        """Without a _smtp._tls record nothing is mailed, the counts are dropped, and the lookup was made."""
        self.publish(policy_text("enforce", mx=POLICY_MX))
        good = self.peer("mx1.example.test", cert=self.pki.leaf(dns=["mx1.example.test"]))
        self.peer("mx2.example.test", cert=self.pki.leaf(dns=["mx2.example.test"]))
        relay = self.sts_relay(tls_rpt={"enabled": True})
        qid = submit(relay, content("no-record"))
        self.status(relay, qid, RCPT, "sent")
        self.send_reports(relay)
        self.assertTrue(self.dns.queried(f"_smtp._tls.{DOMAIN}", "TXT"))
        relay.wait_for_log(r"tls-rpt\[\d+\]: report run requested: 0 report\(s\) queued")
        self.assertEqual(self.sink.messages, [])
        self.assertEqual(list((relay.spool / "tls-rpt").iterdir()), [])
        del good

    def test_disabled_refuses_the_request(self):
        """tls_rpt.enabled = false: tls-rpt-send is refused and nothing is counted."""
        relay = self.sts_relay()
        self.assertEqual(control_request(relay, b"tls-rpt-send\n"), b"error: tls_rpt.enabled is false\n")
        self.assertFalse((relay.spool / "tls-rpt").exists())


class TlsRptProbe(TlsRptCase):

    def test_probe_shows_the_record(self):
        """tlsrelay probe DOMAIN shows the _smtp._tls record and where reports go, or that there is none."""
        self.publish(policy_text("enforce", mx=POLICY_MX))
        self.peer("mx1.example.test", cert=self.pki.leaf(dns=["mx1.example.test"]))
        self.peer("mx2.example.test", cert=self.pki.leaf(dns=["mx2.example.test"]))
        relay = self.sts_relay(start=False, tls_rpt={"enabled": True})
        out = relay.cli("probe", DOMAIN).stdout.decode()
        self.assertIn("TLS-RPT (tls_rpt.enabled = true):\n"
                      "  TXT _smtp._tls.example.test: none (no reports)\n", out)
        self.set_rpt_txt(f'"v=TLSRPTv1; rua=mailto:{RUA},https://r.example/x"')
        out = relay.cli("probe", DOMAIN).stdout.decode()
        self.assertIn("TLS-RPT (tls_rpt.enabled = true):\n"
                      f"  TXT _smtp._tls.example.test: reports to mailto:{RUA}, https://r.example/x "
                      "(https: not supported, only mailto:)\n"
                      f"    \"v=TLSRPTv1; rua=mailto:{RUA},https://r.example/x\"\n", out)


if __name__ == "__main__":
    import unittest
    unittest.main()

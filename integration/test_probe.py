"""tlsrelay probe against real peers: what it shows, and that its advice works."""

import re
import smtplib
import ssl
import unittest

import pki
import world


class Probe(world.WorldTestCase):
    def setUp(self):
        super().setUp()
        self.pki = pki.get_pki()
        self.dns = world.DnsServer(self.world).start()
        self.world.on_cleanup(self.dns.stop)
        self.cert = self.pki.leaf(dns=["*.example.net"])
        self.peer = world.SmtpPeer(self.world, cert=self.cert, hostname="mx.example.net").start()
        self.world.on_cleanup(self.peer.stop)
        self.dns.add("example.test", "MX", "10 mx.example.net.")
        self.dns.add("mx.example.net", "A", self.peer.host)
        self.policy = self.world.root / "tls_policy"
        self.policy.write_text("example.test secure\n")
        self.relay = self.start_relay(
            dns={"servers": [self.dns.server_spec]},
            tls={"ca_file": str(self.pki.ca_file), "policy_file": str(self.policy)},
            delivery={"relayhost": ""},
            queue={"retry_min": "1h", "retry_max": "1h"})

    def probe(self, *args: str) -> str:
        return self.relay.cli("probe", *args, check=False).stdout.decode()

    def test_shows_names_fingerprints_and_levels(self):
        """probe lists the MX, every certificate name, four digests of cert and key, and each level's verdict."""
        out = self.probe("example.test")
        self.assertIn(f"mx.example.net[{self.peer.host}]:25 preference 10", out)
        self.assertIn("names: *.example.net", out)
        for digest in ("md5", "sha1", "sha256", "sha512"):
            self.assertIn(f"    {digest} {self.cert.fp[digest]}\n", out)
            self.assertIn(f"    {digest} {self.cert.pkey_fp[digest]}\n", out)
        self.assertRegex(out, r"encrypt: pass \(Trusted\)")
        self.assertRegex(out, r"secure: fail: Server certificate not verified: names \*\.example\.net "
                              r"do not match example\.test")
        self.assertIn("configured policy (secure, from the policy table): would defer: "
                      "Server certificate not verified", out)

    def test_shows_the_key_exchange_of_a_tls12_session(self):
        """probe's TLS line names a TLS 1.2 session's key exchange and signature too (the log line, as Postfix's, stops at the cipher)."""
        peer = world.SmtpPeer(self.world, cert=self.pki.leaf(dns=["mx.example.org"]), hostname="mx.example.org",
                              tls_max_version=ssl.TLSVersion.TLSv1_2).start()
        self.world.on_cleanup(peer.stop)
        self.dns.add("example.org", "MX", "10 mx.example.org.")
        self.dns.add("mx.example.org", "A", peer.host)
        out = self.probe("example.org")
        self.assertRegex(out, r"TLS: TLSv1\.2 with cipher \S+ \(\d+/\d+ bits\) key-exchange \S+ "
                              r"server-signature ECDSA \(prime256v1\)")

    def test_suggested_line_turns_deferral_into_delivery(self):
        """Following probe's suggested policy line turns a 4.7.5 deferral into a delivery."""
        with smtplib.SMTP(*self.relay.address, timeout=10) as s:
            s.sendmail("a@sender.test", ["u@example.test"], b"Subject: t\r\n\r\nhello\r\n")
        self.relay.wait_for_log(r"to=<u@example\.test>, relay=mx\.example\.net\[[0-9.]+\]:25, .*"
                                r"dsn=4\.7\.5, status=deferred \(Server certificate not verified", timeout=15)
        out = self.probe("example.test")
        m = re.search(r"a policy-table line that would pass:\n  (.+)\n", out)
        self.assertIsNotNone(m, out)
        self.assertEqual(m.group(1), "example.test secure match=.example.net")
        self.policy.write_text(m.group(1) + "\n")
        self.relay.restart()
        mark = self.relay.log_mark()
        self.relay.cli("queue", "flush")
        self.relay.wait_for_log(r"to=<u@example\.test>, .*status=sent", timeout=15, since=mark)
        self.assertEqual(len(self.peer.wait_for_messages(1)), 1)

    def test_policy_mode_reports_entries_that_would_defer(self):
        """probe --policy checks each policy-table entry and says which would defer mail now."""
        out = self.probe("--policy")
        self.assertIn("destination example.test", out)
        self.assertIn("would defer: Server certificate not verified", out)


class ProbeDane(world.WorldTestCase):
    """probe with dns.dnssec = true and a validating (AD) upstream: the DANE status."""

    def test_shows_dnssec_status_tlsa_records_and_match(self):
        """probe shows MX/address DNSSEC status, the validated TLSA records, dane and dane-only outcomes and the match."""
        p = pki.get_pki()
        cert = p.leaf(dns=["mx.example.net"])
        dns = world.DnsServer(self.world)
        dns.ad = True
        dns.insecure = {"example.test."}
        peer = world.SmtpPeer(self.world, cert=cert, hostname="mx.example.net").start()
        self.world.on_cleanup(peer.stop)
        dns.add("example.test", "MX", "10 mx.example.net.")
        dns.add("mx.example.net", "A", peer.host)
        dns.add("_25._tcp.mx.example.net", "TLSA", cert.tlsa(3, 1, 1), cert.tlsa(1, 1, 1))
        dns.start()
        self.world.on_cleanup(dns.stop)
        relay = self.start_relay(dns={"servers": [dns.server_spec], "dnssec": True},
                                 tls={"ca_file": str(p.ca_file), "security_level": "dane"},
                                 delivery={"relayhost": ""})
        out = relay.cli("probe", "example.test", check=False).stdout.decode()
        self.assertIn("DNSSEC: MX RRset insecure, address records secure", out)
        self.assertIn("TLSA _25._tcp.mx.example.net (validated):\n    " + cert.tlsa(3, 1, 1), out)
        self.assertIn("dropped: _25._tcp.mx.example.net unsupported TLSA certificate usage: " + cert.tlsa(1, 1, 1), out)
        self.assertIn("    dane: level halfdane\n", out)
        self.assertIn("    dane-only: would defer: non DNSSEC destination\n", out)
        out = relay.cli("probe", "[mx.example.net]", check=False).stdout.decode()
        self.assertIn("DNSSEC: MX RRset not used (counts as secure), address records secure", out)
        self.assertIn("    dane-only: level dane-only\n", out)
        self.assertIn("  DANE: matches " + cert.tlsa(3, 1, 1) + " (DANE-EE, leaf)", out)
        self.assertIn("configured policy (dane, the default level): would deliver (Verified)", out)


if __name__ == "__main__":
    unittest.main()


class PolicyProblems(world.WorldTestCase):
    def test_invalid_entry_defers_and_names_file_and_line(self):
        """A malformed policy entry defers 4.7.5 with relay=none and a warning names its file and line."""
        p = pki.get_pki()
        dns = world.DnsServer(self.world).start()
        self.world.on_cleanup(dns.stop)
        peer = world.SmtpPeer(self.world, cert=p.leaf(dns=["mx.example.test"]), hostname="mx.example.test").start()
        self.world.on_cleanup(peer.stop)
        dns.add("example.test", "MX", "10 mx.example.test.")
        dns.add("mx.example.test", "A", peer.host)
        policy = self.world.root / "tls_policy"
        policy.write_text("# partners\nexample.test bogus\n")
        relay = self.start_relay(dns={"servers": [dns.server_spec]},
                                 tls={"ca_file": str(p.ca_file), "policy_file": str(policy)},
                                 delivery={"relayhost": ""}, queue={"retry_min": "1h"})
        with smtplib.SMTP(*relay.address, timeout=10) as s:
            s.sendmail("a@sender.test", ["u@example.test"], b"Subject: t\r\n\r\nhello\r\n")
        relay.wait_for_log(r"to=<u@example\.test>, relay=none, .*dsn=4\.7\.5, status=deferred "
                           r"\(client TLS configuration problem\)", timeout=15)
        relay.wait_for_log(r"warning: smtp_tls_policy_maps, next-hop destination \"example\.test\": "
                           r"invalid security level \"bogus\"")
        relay.wait_for_log(r"warning: .*tls_policy:2: the policy entry for \"example\.test\" is not usable")
        self.assertEqual(peer.sessions, [], "no connection is made with an unusable policy")
        out = relay.cli("check-config", check=False)
        self.assertEqual(out.returncode, 1)
        self.assertRegex(out.stdout.decode(), r"tls_policy:2: .*invalid security level \"bogus\"")

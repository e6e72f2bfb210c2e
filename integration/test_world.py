"""Proof that the delivery half of the test world works: the PKI makes the certificates
it promises, the DNS server answers each record type and each failure, SMTP peers accept
and record mail with and without STARTTLS and misbehave on command, and Postfix (the
oracle) reaches the peers through them with the results Postfix 3.7 is known to give.
None of these tests needs the tlsrelay binary."""

from __future__ import annotations

import datetime
import hashlib
import smtplib
import socket
import ssl
import subprocess
import unittest

from dnslib import QTYPE, RCODE, DNSRecord

import pki
import scenario
from scenario import run_postfix
from world import DnsServer, SmtpPeer, WorldTestCase, relay_binary


def openssl(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], capture_output=True, input=input, timeout=30)


class Pki(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = pki.get_pki()

    def verify(self, leaf: pki.Cert, untrusted_chain: bool = True) -> subprocess.CompletedProcess:
        args = ["verify", "-CAfile", str(self.pki.ca_file)]
        if untrusted_chain:
            args += ["-untrusted", str(leaf.chain_path)]
        return openssl(*args, str(leaf.cert_path))

    def sans(self, leaf: pki.Cert):
        from cryptography import x509
        try:
            return leaf.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return None

    def test_good_leaf_chains_to_the_root_through_the_intermediate(self):
        """A default leaf verifies against the CA file with the chain it serves."""
        leaf = self.pki.leaf(dns=["mx1.example.test"])
        self.assertEqual(self.verify(leaf).returncode, 0, self.verify(leaf))
        self.assertEqual(leaf.chain_path.read_bytes().count(b"BEGIN CERTIFICATE"), 2)

    def test_names_ip_cn_only_and_wildcard(self):
        """SAN DNS names and IPs, CN-only (no SAN) and wildcard leaves carry those names."""
        from cryptography import x509
        from cryptography.x509.oid import NameOID
        both = self.pki.leaf(dns=["a.example.test", "b.example.test"], ips=["127.0.1.9"])
        san = self.sans(both)
        self.assertEqual(san.get_values_for_type(x509.DNSName), ["a.example.test", "b.example.test"])
        self.assertEqual([str(i) for i in san.get_values_for_type(x509.IPAddress)], ["127.0.1.9"])
        cn_only = self.pki.leaf(cn="mx.cn-only.test")
        self.assertIsNone(self.sans(cn_only))
        self.assertEqual(cn_only.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
                         "mx.cn-only.test")
        wild = self.pki.leaf(dns=["*.example.test"])
        self.assertEqual(self.sans(wild).get_values_for_type(x509.DNSName), ["*.example.test"])
        self.assertIn(b"does match certificate", openssl(
            "x509", "-in", str(wild.cert_path), "-noout", "-checkhost", "mx.example.test").stdout)

    def test_expired_and_not_yet_valid(self):
        """Expired and not-yet-valid leaves fail verification for exactly that reason."""
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        expired = self.pki.leaf(dns=["old.example.test"], expired=True)
        self.assertLess(expired.cert.not_valid_after, now)
        self.assertIn(b"certificate has expired", self.verify(expired).stdout + self.verify(expired).stderr)
        future = self.pki.leaf(dns=["new.example.test"], not_yet_valid=True)
        self.assertGreater(future.cert.not_valid_before, now)
        self.assertIn(b"not yet valid", self.verify(future).stdout + self.verify(future).stderr)

    def test_self_signed_unknown_ca_and_missing_intermediate_do_not_verify(self):
        """Self-signed, unknown-CA and intermediate-less leaves do not chain to the CA file."""
        ss = self.pki.leaf(dns=["self.example.test"], self_signed=True)
        self.assertEqual(ss.cert.issuer, ss.cert.subject)
        self.assertNotEqual(self.verify(ss).returncode, 0)
        unknown = self.pki.leaf(dns=["unknown.example.test"], unknown_ca=True)
        self.assertEqual(unknown.cert.issuer, self.pki.unknown_root.cert.subject)
        self.assertNotEqual(self.verify(unknown).returncode, 0)
        bare = self.pki.leaf(dns=["bare.example.test"], without_intermediate=True)
        self.assertEqual(bare.chain_path.read_bytes().count(b"BEGIN CERTIFICATE"), 1)
        self.assertNotEqual(self.verify(bare).returncode, 0)
        # ... although the leaf itself is properly issued: with the intermediate it verifies
        r = openssl("verify", "-CAfile", str(self.pki.ca_file), "-untrusted",
                    str(self.pki.intermediate.cert_path), str(bare.cert_path))
        self.assertEqual(r.returncode, 0, r)

    def test_embedded_nul_in_san(self):
        """A SAN dNSName may carry an embedded NUL byte (the classic prefix attack)."""
        leaf = self.pki.leaf(dns=["mx.example.test\x00.evil.test"])
        self.assertIn(b"mx.example.test\x00.evil.test", leaf.der)

    def test_fingerprints_as_openssl_prints_them(self):
        """fp/pkey_fp are upper-case colon hex of the DER cert and DER SPKI, all digests."""
        leaf = self.pki.leaf(dns=["fp.example.test"], key="rsa")
        for digest in pki.DIGESTS:
            out = openssl("x509", "-in", str(leaf.cert_path), "-noout", "-fingerprint",
                          f"-{digest}").stdout.decode().strip()
            self.assertEqual(out.split("=", 1)[1], leaf.fp[digest])
            spki = openssl("x509", "-in", str(leaf.cert_path), "-noout", "-pubkey").stdout
            der = openssl("pkey", "-pubin", "-outform", "DER", input=spki).stdout
            want = hashlib.new(digest, der).hexdigest().upper()
            self.assertEqual(leaf.pkey_fp[digest].replace(":", ""), want)
        self.assertRegex(leaf.fp["sha256"], r"^([0-9A-F]{2}:){31}[0-9A-F]{2}$")
        self.assertRegex(leaf.tlsa(3, 1, 1), r"^3 1 1 [0-9A-F]{64}$")


class Dns(WorldTestCase):
    def setUp(self):
        super().setUp()
        self.dns = DnsServer(self.world)
        d = self.dns
        d.add("example.test", "MX", "10 mx1.example.test.", "20 mx2.example.test.")
        d.add("mx1.example.test", "A", "127.0.1.10")
        d.add("mx1.example.test", "AAAA", "::1")
        d.add("alias.example.test", "CNAME", "mx1.example.test.")
        d.add("_25._tcp.mx1.example.test", "TLSA", "3 1 1 " + "AB" * 32)
        d.add("example.test", "TXT", '"v=spf1 -all"')
        d.add("null.test", "MX", "0 .")
        d.add("nodata.test", "A", "127.0.1.11")
        d.fail("nodata.test", "MX", "NODATA")
        d.fail("servfail.test", "MX", "SERVFAIL")
        d.fail("silent.test", "*", "TIMEOUT")
        d.start()

    def ask(self, name: str, rtype: str, tcp: bool = False, timeout: float = 3) -> DNSRecord:
        q = DNSRecord.question(name, rtype)
        return DNSRecord.parse(q.send(self.dns.host, 53, tcp=tcp, timeout=timeout))

    def answers(self, r: DNSRecord) -> list[tuple[str, str, str]]:
        return [(str(rr.rname), QTYPE[rr.rtype], str(rr.rdata)) for rr in r.rr]

    def test_listens_on_port_53_of_its_own_127_0_2_address(self):
        """The server is on 127.0.2.N:53, which is what resolv.conf can express."""
        self.assertRegex(self.dns.host, r"^127\.0\.2\.\d+$")
        self.assertEqual(self.dns.server_spec, f"{self.dns.host}:53")
        self.assertEqual(self.dns.resolv_conf().splitlines()[0], f"nameserver {self.dns.host}")

    def test_record_types(self):
        """MX (also null MX), A, AAAA, CNAME (followed), TLSA and TXT are answered as added."""
        self.assertEqual(self.answers(self.ask("example.test", "MX")),
                         [("example.test.", "MX", "10 mx1.example.test."),
                          ("example.test.", "MX", "20 mx2.example.test.")])
        self.assertEqual(self.answers(self.ask("null.test", "MX")), [("null.test.", "MX", "0 .")])
        self.assertEqual(self.answers(self.ask("MX1.example.test", "A")),
                         [("mx1.example.test.", "A", "127.0.1.10")])
        self.assertEqual(self.answers(self.ask("mx1.example.test", "AAAA")),
                         [("mx1.example.test.", "AAAA", "::1")])
        self.assertEqual(self.answers(self.ask("alias.example.test", "A")),
                         [("alias.example.test.", "CNAME", "mx1.example.test."),
                          ("mx1.example.test.", "A", "127.0.1.10")])
        tlsa = self.answers(self.ask("_25._tcp.mx1.example.test", "TLSA"))
        self.assertEqual(tlsa, [("_25._tcp.mx1.example.test.", "TLSA", "3 1 1 " + "ab" * 32)]
                         if tlsa[0][2].endswith("ab") else
                         [("_25._tcp.mx1.example.test.", "TLSA", "3 1 1 " + "AB" * 32)])
        self.assertEqual(self.answers(self.ask("example.test", "TXT")),
                         [("example.test.", "TXT", '"v=spf1 -all"')])
        r = self.ask("example.test", "MX", tcp=True)
        self.assertEqual(len(r.rr), 2)
        self.assertTrue(r.header.aa)

    def test_failures(self):
        """NXDOMAIN, NODATA (also for an existing name's other type), SERVFAIL, silence."""
        r = self.ask("nx.example.test", "MX")
        self.assertEqual((r.header.rcode, r.rr), (RCODE.NXDOMAIN, []))
        r = self.ask("nodata.test", "MX")
        self.assertEqual((r.header.rcode, r.rr), (RCODE.NOERROR, []))
        r = self.ask("mx1.example.test", "MX")      # name exists, type does not
        self.assertEqual((r.header.rcode, r.rr), (RCODE.NOERROR, []))
        r = self.ask("_tcp.mx1.example.test", "A")  # empty non-terminal: NODATA, not NXDOMAIN
        self.assertEqual((r.header.rcode, r.rr), (RCODE.NOERROR, []))
        r = self.ask("servfail.test", "MX")
        self.assertEqual(r.header.rcode, RCODE.SERVFAIL)
        r = self.ask("servfail.test", "A")          # only the MX query fails
        self.assertEqual(r.header.rcode, RCODE.NXDOMAIN)
        for tcp in (False, True):
            with self.assertRaises((socket.timeout, TimeoutError)):
                self.ask("silent.test", "A", tcp=tcp, timeout=0.5)
        self.assertTrue(self.dns.queried("silent.test", "A"))

    def test_ad_bit(self):
        """ad=True sets the AD bit except for names listed as insecure."""
        self.assertFalse(self.ask("example.test", "MX").header.ad)
        self.dns.ad = True
        self.dns.insecure.add("null.test.")
        self.assertTrue(self.ask("example.test", "MX").header.ad)
        self.assertFalse(self.ask("null.test", "MX").header.ad)


class Peer(WorldTestCase):
    def setUp(self):
        super().setUp()
        self.leaf = pki.get_pki().leaf(dns=["mx1.example.test"])

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.leaf.ca_file))

    def send(self, peer: SmtpPeer, tls: bool, rcpts=("user@example.test",), sni="mx1.example.test"):
        with smtplib.SMTP(peer.host, peer.port, local_hostname="client.example", timeout=10) as s:
            s._host = sni  # the name smtplib checks and sends as SNI
            if tls:
                s.starttls(context=self.client_context())
            return s.sendmail("sender@example.org", list(rcpts), b"Subject: t\r\n\r\n..dot\r\nbody\r\n")

    def test_plain_delivery_is_recorded(self):
        """Without STARTTLS the peer records envelope, exact content and tls=False."""
        peer = SmtpPeer(self.world, hostname="mx1.example.test").start()
        self.assertEqual(peer.port, 25)
        self.assertRegex(peer.host, r"^127\.0\.1\.\d+$")
        self.send(peer, tls=False, rcpts=["a@example.test", "b@example.test"])
        [m] = peer.wait_for_messages(1, timeout=10)
        self.assertEqual((m.mail_from, m.rcpt_tos), ("sender@example.org", ["a@example.test", "b@example.test"]))
        self.assertEqual(m.data, b"Subject: t\r\n\r\n..dot\r\nbody\r\n")
        self.assertFalse(m.tls)
        self.assertEqual(m.helo, "client.example")

    def test_starttls_delivery_records_version_and_sni(self):
        """With STARTTLS the message is recorded with its TLS version and the SNI sent."""
        peer = SmtpPeer(self.world, hostname="mx1.example.test", cert=self.leaf,
                        tls_max_version=ssl.TLSVersion.TLSv1_2).start()
        self.send(peer, tls=True)
        [m] = peer.wait_for_messages(1)
        self.assertEqual((m.tls, m.tls_version, m.sni), (True, "TLSv1.2", "mx1.example.test"))
        s = peer.wait_for_sessions(1)[0]
        self.assertEqual(s.commands[:3], ["ehlo client.example", "STARTTLS", "ehlo client.example"])

    def test_starttls_variants(self):
        """Stripped (XXXXXXXA), refused (454) and broken (close after 220) STARTTLS."""
        stripped = SmtpPeer(self.world, cert=self.leaf, strip_starttls=True).start()
        with smtplib.SMTP(stripped.host, 25, timeout=10) as s:
            s.ehlo()
            self.assertFalse(s.has_extn("starttls"))
            self.assertTrue(s.has_extn("xxxxxxxa"))
        refused = SmtpPeer(self.world, cert=self.leaf, starttls_reply="454 4.7.0 TLS not available").start()
        with smtplib.SMTP(refused.host, 25, timeout=10) as s:
            s.ehlo()
            self.assertEqual(s.docmd("STARTTLS"), (454, b"4.7.0 TLS not available"))
        broken = SmtpPeer(self.world, cert=self.leaf, tls_break=True).start()
        with smtplib.SMTP(broken.host, 25, timeout=10) as s:
            s.ehlo()
            with self.assertRaises((smtplib.SMTPServerDisconnected, ssl.SSLError, OSError)):
                s.starttls(context=self.client_context())
        self.assertEqual(broken.wait_for_sessions(1)[0].ended, "closed after 220 to STARTTLS")

    def test_injection_arrives_in_the_same_segment_as_the_220(self):
        """inject_after_starttls puts '250 injected' in the write that carries the 220."""
        peer = SmtpPeer(self.world, cert=self.leaf, inject_after_starttls="250 injected\r\n").start()
        with socket.create_connection((peer.host, 25), timeout=10) as c:
            f = c.makefile("rb")
            f.readline()
            c.sendall(b"EHLO client.example\r\n")
            while not f.readline().startswith(b"250 "):
                pass
            c.sendall(b"STARTTLS\r\n")
            data = b""
            while b"250 injected\r\n" not in data:
                chunk = c.recv(4096)
                self.assertTrue(chunk, data)
                data += chunk
            self.assertEqual(data, b"220 2.0.0 Ready to start TLS\r\n250 injected\r\n")

    def test_scripted_replies_limits_greeting_stall_and_drop(self):
        """Replies per stage/recipient, 452 after N RCPTs, 421/554 greetings, drop, stall."""
        peer = SmtpPeer(self.world, rcpt_limit=1,
                        rcpt_replies={"bad@example.test": "550 5.1.1 No such user"},
                        replies={"DOT": "451 4.3.0 Try again later"}).start()
        with smtplib.SMTP(peer.host, 25, timeout=10) as s:
            s.ehlo()
            s.mail("s@example.org")
            self.assertEqual(s.rcpt("bad@example.test")[0], 550)
            self.assertEqual(s.rcpt("a@example.test")[0], 250)
            self.assertEqual(s.rcpt("b@example.test"), (452, b"4.5.3 Error: too many recipients"))
            self.assertEqual(s.data(b"x\r\n")[0], 451)
        self.assertEqual(peer.messages, [])
        for greeting in ("421 4.3.2 Service not available", "554 5.7.1 Go away"):
            g = SmtpPeer(self.world, greeting=greeting).start()
            with self.assertRaises(smtplib.SMTPConnectError) as cm:
                smtplib.SMTP(g.host, 25, timeout=10)
            self.assertEqual(cm.exception.smtp_code, int(greeting[:3]))
        dropper = SmtpPeer(self.world, drop=["MAIL"]).start()
        with smtplib.SMTP(dropper.host, 25, timeout=10) as s:
            s.ehlo()
            with self.assertRaises(smtplib.SMTPServerDisconnected):
                s.mail("s@example.org")
        staller = SmtpPeer(self.world, stall=["RCPT"]).start()
        with smtplib.SMTP(staller.host, 25, timeout=10) as s:
            s.ehlo()
            s.mail("s@example.org")
            s.sock.settimeout(0.5)  # a bounded negative check: no reply within 0.5 s
            with self.assertRaises((socket.timeout, TimeoutError, smtplib.SMTPServerDisconnected)):
                s.rcpt("a@example.test")
        self.assertEqual(staller.wait_for_sessions(1)[0].ended, "stalled at RCPT")


class PostfixOracle(WorldTestCase):
    """Postfix 3.7 through the scenario runner, against the peers and DNS above."""

    def scenario(self, **kw) -> dict:
        sc = {"name": self.id().rsplit(".", 1)[-1], "recipients": ["user@example.test"],
              "peers": {"mx1": {"names": ["mx1.example.test"]}},
              "dns": [("example.test", "MX", "10 mx1.example.test.")]}
        sc.update(kw)
        return sc

    def deliver(self, **kw):
        out = run_postfix(self.scenario(**kw), self.world)
        self.assertEqual(len(out.statuses), 1, out.log)
        return out, out.statuses[0], out.normalised()[0]

    def test_may_without_starttls_is_sent_in_plaintext(self):
        """may + a peer without STARTTLS: sent in clear."""
        out, st, n = self.deliver()
        self.assertEqual((n["relay"], n["dsn"], n["status"], n["reason"]),
                         ("mx1.example.test[{mx1.addr}]:25", "2.0.0", "sent", "250 2.0.0 Ok: queued"), out.log)
        [m] = out.peers["mx1"].wait_for_messages(1)
        self.assertFalse(m.tls)
        self.assertEqual(m.rcpt_tos, ["user@example.test"])

    def test_encrypt_without_starttls_is_deferred_474(self):
        """encrypt + no STARTTLS offered: deferred 4.7.4, nothing delivered."""
        out, st, n = self.deliver(main={"smtp_tls_security_level": "encrypt"})
        self.assertEqual((n["relay"], n["dsn"], n["status"], n["reason"]),
                         ("mx1.example.test[{mx1.addr}]:25", "4.7.4", "deferred",
                          "TLS is required, but was not offered by host mx1.example.test[{mx1.addr}]"),
                         out.log)
        self.assertEqual(out.peers["mx1"].messages, [])

    def test_verify_good_chain_matching_mx_name_is_sent_verified(self):
        """verify + chain to the CA + MX name in the SAN: sent over a Verified session."""
        out, st, n = self.deliver(
            main={"smtp_tls_security_level": "verify"},
            peers={"mx1": {"names": ["mx1.example.test"], "cert": {"dns": ["mx1.example.test"]}}})
        self.assertEqual((n["dsn"], n["status"], n["reason"]), ("2.0.0", "sent", "250 2.0.0 Ok: queued"), out.log)
        addr = out.addresses["mx1"]
        self.assertIn(f"Verified TLS connection established to mx1.example.test[{addr}]:25: TLSv1.3 with cipher",
                      out.log)
        [m] = out.peers["mx1"].wait_for_messages(1)
        self.assertEqual((m.tls, m.tls_version, m.sni), (True, "TLSv1.3", None))

    def test_secure_wrong_name_is_deferred_475(self):
        """secure (policy table) + a certificate for another name: deferred 4.7.5."""
        out, st, n = self.deliver(
            policy=["example.test secure"],
            peers={"mx1": {"names": ["mx1.example.test"], "cert": {"dns": ["mx1.other.test"]}}})
        self.assertEqual((n["relay"], n["dsn"], n["status"], n["reason"]),
                         ("mx1.example.test[{mx1.addr}]:25", "4.7.5", "deferred",
                          "Server certificate not verified"), out.log)
        self.assertIn("num=62:hostname mismatch", out.log)
        self.assertIn("Untrusted TLS connection established", out.log)
        self.assertEqual(out.peers["mx1"].messages, [])

    def test_nxdomain_recipient_domain_bounces_544(self):
        """A recipient domain that does not exist: bounced 5.4.4, relay=none."""
        out, st, n = self.deliver(recipients=["user@nx.example.test"])
        self.assertEqual((n["relay"], n["dsn"], n["status"]), ("none", "5.4.4", "bounced"), out.log)
        self.assertEqual(n["reason"], "Host or domain name not found. Name service error for "
                                      "name=nx.example.test type=AAAA: Host not found")

    def test_null_mx_bounces_510(self):
        """A null MX (0 .): bounced 5.1.0 without any connection."""
        out, st, n = self.deliver(recipients=["user@null.test"],
                                  dns=[("null.test", "MX", "0 .")])
        self.assertEqual((n["relay"], n["dsn"], n["status"], n["reason"]),
                         ("none", "5.1.0", "bounced", "Domain null.test does not accept mail (nullMX)"),
                         out.log)
        self.assertEqual(out.peers["mx1"].sessions, [])


class RelayConfig(WorldTestCase):
    """run_tlsrelay's half: the config a scenario becomes (delivery itself is tested by
    the differential tests once the relay delivers)."""

    def test_scenario_config_is_accepted_by_check_config(self):
        """Postfix settings translate to tlsrelay keys and check-config accepts the result."""
        try:
            relay_binary()
        except FileNotFoundError as e:
            self.skipTest(str(e))
        sc = {"name": "cfg", "recipients": ["user@example.test"],
              "peers": {"mx1": {"names": ["mx1.example.test"], "cert": {"dns": ["mx1.example.test"]}}},
              "dns": [("example.test", "MX", "10 mx1.example.test.")],
              "policy": ["example.test fingerprint match={mx1.fp[sha256]}", "[{mx1.addr}]:25 encrypt"],
              "main": {"smtp_tls_security_level": "verify",
                       "smtp_tls_verify_cert_match": "hostname, nexthop",
                       "smtp_connect_timeout": "7", "smtp_tls_loglevel": "1",
                       "smtp_helo_timeout": "20s"},
              "postfix_only": ["smtp_helo_timeout"],
              "transport": {"partner.test": "smtp:[mx1.example.test]:25"}}
        built = scenario.build(sc, self.world)
        policy = self.world.root / "tls_policy"
        policy.write_text("".join(built.fill(l) + "\n" for l in sc["policy"]))
        cfg = scenario.relay_config(built, policy)
        self.assertEqual(cfg["dns"], {"servers": [f"{built.dns.host}:53"]})
        self.assertEqual(cfg["tls"]["verify_cert_match"], ["hostname", "nexthop"])
        self.assertEqual(cfg["tls"]["mandatory_protocols"], ">=TLSv1")
        self.assertEqual(cfg["delivery"]["connect_timeout"], "7s")
        self.assertEqual(cfg["delivery.route"], [{"destination": "partner.test",
                                                  "nexthop": "[mx1.example.test]:25"}])
        self.assertIn(built.peers["mx1"].cert.fp["sha256"], policy.read_text())
        relay = self.world.relay("cfg", **cfg)
        cp = relay.cli("check-config", check=False)
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)

    def test_untranslatable_setting_is_an_error(self):
        """A main.cf setting tlsrelay has no key for must not be dropped silently."""
        sc = {"name": "bad", "recipients": ["u@example.test"], "main": {"smtp_sasl_auth_enable": "yes"}}
        built = scenario.build(sc, self.world)
        with self.assertRaisesRegex(ValueError, "smtp_sasl_auth_enable"):
            scenario.relay_config(built, self.world.root / "p")


if __name__ == "__main__":
    unittest.main()

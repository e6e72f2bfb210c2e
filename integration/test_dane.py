"""DANE (RFC 7672) differential tests: each row is delivered by Postfix 3.7 with
`smtp_dns_support_level = dnssec` and by tlsrelay with `[dns] dnssec = true`, both
trusting the AD bit of the world's DnsServer (`dns_ad`: it plays the validating
resolver; Postfix's resolv.conf has `options trust-ad`). Names in `dns_insecure` are
answered without AD, as a validating resolver answers an unsigned zone.

The rows and the comparison are test_differential.py's (make_scenario, DifferentialCase):
the same status, DSN, relay, reason prefix, TLS adjective lines, verification lines and
what the peers saw (STARTTLS, TLS, SNI). TLSA rdata comes from the test PKI
(pki.Cert.tlsa(usage, selector, mtype)).

postfix-tls-semantics.md §7; Debian's Postfix 3.7.11 has
smtp_tls_dane_insecure_mx_policy = ${{$smtp_tls_security_level} == {dane} ? {dane} : {may}}:
an insecure MX RRset gives "halfdane" (adjective Trusted) when the main level is dane,
and plain may when dane comes from the policy table.
"""

from __future__ import annotations

import re
import unittest

import pki
from test_differential import CONFIG, NOT_OFFERED, NOT_VERIFIED, SENT, define_groups
from world import SmtpPeer, WorldTestCase

P = pki.get_pki()
MX1 = {"dns": ["mx1.example.test"]}
LEAF = P.leaf(**MX1)
OTHER = P.leaf(dns=["other.test"])             # a certificate the TLSA records do not name
EXPIRED = {"dns": ["mx1.example.test"], "expired": True}
TLSA_NAME = "_25._tcp.mx1.example.test"
DNSSEC = {"smtp_dns_support_level": "dnssec"}


def tlsa(cert: pki.Cert, usage: int, selector: int, mtype: int, name: str = TLSA_NAME):
    return (name, "TLSA", cert.tlsa(usage, selector, mtype))


MX = ("example.test", "MX", "10 mx1.example.test.")


def dane(name: str, expect, *, level: str | None = "dane", records=(), **row) -> dict:
    """A row with DNSSEC on, the AD bit set, example.test MX mx1 and the TLSA records."""
    r = {"name": name, "expect": expect, "dns_ad": True, "dns": [MX, *records]}
    r.update(row)
    r["main"] = {**DNSSEC, **row.get("main", {})}
    if level:
        r["level"] = level
    return r


def lookup_fail(reason: str):
    return ("deferred", "4.7.5", reason)


TLSA_ERROR = lookup_fail("TLSA lookup error for mx1.example.test:25")
NO_TLSA = lookup_fail("no TLSA records found")
UNUSABLE = lookup_fail("TLSA records unusable")
NON_DNSSEC = lookup_fail("non DNSSEC destination")

SCENARIOS: dict[str, list[dict]] = {
    # §7 Verification: DANE-EE(3) matches the leaf or its key, ignoring names and expiry;
    # DANE-TA(2) needs the chain to reach the anchor and a name match.
    "DaneVerification": [
        dane("dane-ee-spki-sha256", SENT, records=[tlsa(LEAF, 3, 1, 1)], sni="mx1.example.test"),
        dane("dane-ee-cert-sha512", SENT, records=[tlsa(LEAF, 3, 0, 2)]),
        dane("dane-ee-spki-full", SENT, records=[tlsa(LEAF, 3, 1, 0)]),
        dane("dane-ee-ignores-names", SENT, cert={"dns": ["other.test"]}, records=[tlsa(OTHER, 3, 1, 1)]),
        dane("dane-ee-ignores-expiry", SENT, cert=EXPIRED, records=[tlsa(P.leaf(**EXPIRED), 3, 1, 1)]),
        dane("dane-ta-intermediate-cert", SENT, records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("dane-ta-intermediate-spki", SENT, records=[tlsa(P.intermediate, 2, 1, 1)]),
        dane("dane-ta-wrong-name", NOT_VERIFIED, cert={"dns": ["other.test"]},
             records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("dane-ta-nexthop-name", SENT, cert={"dns": ["example.test"]},
             records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("dane-ta-root-not-sent", NOT_VERIFIED, records=[tlsa(P.root, 2, 0, 1)]),
        dane("dane-ta-unknown-root", NOT_VERIFIED, records=[tlsa(P.unknown_root, 2, 0, 1)]),
        dane("dane-tlsa-mismatch", NOT_VERIFIED, records=[tlsa(OTHER, 3, 1, 1)]),
        dane("dane-one-of-several-matches", SENT,
             records=[tlsa(OTHER, 3, 1, 1), tlsa(LEAF, 3, 1, 1), tlsa(LEAF, 1, 1, 1)]),
        dane("dane-only-ee-match", SENT, level="dane-only", records=[tlsa(LEAF, 3, 1, 1)]),
        dane("dane-only-mismatch", NOT_VERIFIED, level="dane-only", records=[tlsa(OTHER, 3, 1, 1)]),
        dane("dane-policy-entry-ee-match", SENT, level=None, policy=["example.test dane"],
             records=[tlsa(LEAF, 3, 1, 1)]),
    ],
    # §7 TLSA lookup and Outcomes: not found, unusable, errors, insecure answers.
    "DaneLookup": [
        dane("dane-no-tlsa-is-may", SENT),
        dane("dane-only-no-tlsa", NO_TLSA, level="dane-only"),
        dane("dane-unusable-usage-1-is-encrypt", SENT, records=[tlsa(LEAF, 1, 1, 1)]),
        dane("dane-unusable-mtype-255-is-encrypt", SENT, records=[(TLSA_NAME, "TLSA", "3 1 255 00")]),
        dane("dane-only-unusable", UNUSABLE, level="dane-only", records=[tlsa(LEAF, 0, 0, 1)]),
        # Records that pass the DNS-level checks but OpenSSL refuses at connect time.
        dane("dane-openssl-rejects-digest-length", SENT, records=[(TLSA_NAME, "TLSA", "3 1 1 0011")]),
        dane("dane-only-openssl-rejects-digest-length", NOT_VERIFIED, level="dane-only",
             records=[(TLSA_NAME, "TLSA", "3 1 1 0011")]),
        dane("dane-openssl-rejects-full-key", SENT, records=[(TLSA_NAME, "TLSA", "3 1 0 00112233")]),
        dane("dane-only-openssl-rejects-full-key", NOT_VERIFIED, level="dane-only",
             records=[(TLSA_NAME, "TLSA", "3 1 0 00112233")]),
        dane("dane-tlsa-servfail", TLSA_ERROR, dns_failures=[(TLSA_NAME, "TLSA", "SERVFAIL")]),
        dane("dane-only-tlsa-servfail", TLSA_ERROR, level="dane-only",
             dns_failures=[(TLSA_NAME, "TLSA", "SERVFAIL")]),
        dane("dane-only-tlsa-nxdomain", NO_TLSA, level="dane-only",
             dns_failures=[(TLSA_NAME, "TLSA", "NXDOMAIN")]),
        dane("dane-only-tlsa-answer-insecure", NO_TLSA, level="dane-only", records=[tlsa(LEAF, 3, 1, 1)],
             dns_insecure=[TLSA_NAME]),
        dane("dane-only-host-address-insecure", NO_TLSA, level="dane-only", records=[tlsa(LEAF, 3, 1, 1)],
             dns_insecure=["mx1.example.test"]),
        # Found with the real resolver below: A SERVFAIL (bogus), AAAA NODATA: Postfix names type=A.
        dane("dane-host-a-servfail-aaaa-nodata", ("deferred", "4.4.3", "Host or domain name not found. Name "
                                                  "service error for name=mx1.example.test type=A: Host not "
                                                  "found, try again"),
             dns_failures=[("mx1.example.test", "A", "SERVFAIL")]),
        dane("dane-no-starttls-with-tlsa", NOT_OFFERED, cert=None, records=[tlsa(LEAF, 3, 1, 1)]),
        dane("dane-no-starttls-without-tlsa", SENT, cert=None),
        dane("dane-only-next-mx-has-tlsa", SENT, level="dane-only",
             peers={"mx1": {"names": ["mx1.example.test"], "cert": MX1},
                    "mx2": {"names": ["mx2.example.test"], "cert": {"dns": ["mx2.example.test"]}}},
             dns=[MX, ("example.test", "MX", "20 mx2.example.test."),
                  tlsa(P.leaf(dns=["mx2.example.test"]), 3, 1, 1, "_25._tcp.mx2.example.test")]),
    ],
    # §7 Insecure MX RRset, bracketed and implicit-MX next hops, DNSSEC off.
    "DaneInsecureMx": [
        dane("dane-insecure-mx-halfdane-match", SENT, records=[tlsa(LEAF, 3, 1, 1)],
             dns_insecure=["example.test"]),
        dane("dane-insecure-mx-halfdane-mismatch", NOT_VERIFIED, records=[tlsa(OTHER, 3, 1, 1)],
             dns_insecure=["example.test"]),
        dane("dane-insecure-mx-no-tlsa-is-may", SENT, dns_insecure=["example.test"]),
        dane("dane-only-insecure-mx", NON_DNSSEC, level="dane-only", records=[tlsa(LEAF, 3, 1, 1)],
             dns_insecure=["example.test"]),
        dane("dane-policy-insecure-mx-is-may", SENT, level=None, policy=["example.test dane"],
             records=[tlsa(OTHER, 3, 1, 1)], dns_insecure=["example.test"]),
        dane("dane-only-policy-insecure-mx", NON_DNSSEC, level=None, policy=["example.test dane-only"],
             records=[tlsa(LEAF, 3, 1, 1)], dns_insecure=["example.test"]),
        dane("dane-no-ad-at-all-is-may", SENT, records=[tlsa(OTHER, 3, 1, 1)], dns_ad=False),
        dane("dane-only-no-ad-at-all", NON_DNSSEC, level="dane-only", records=[tlsa(LEAF, 3, 1, 1)],
             dns_ad=False),
        dane("dane-only-bracketed-nexthop", SENT, level="dane-only", dns=[tlsa(LEAF, 3, 1, 1)],
             transport={"example.test": "smtp:[mx1.example.test]"}, sni="mx1.example.test"),
        dane("dane-only-bracketed-nexthop-no-ad", NO_TLSA, level="dane-only", dns=[tlsa(LEAF, 3, 1, 1)],
             transport={"example.test": "smtp:[mx1.example.test]"}, dns_ad=False),
        dane("dane-only-implicit-mx", SENT, level="dane-only",
             peers={"mx1": {"names": ["example.test"], "cert": {"dns": ["example.test"]}}},
             dns=[tlsa(P.leaf(dns=["example.test"]), 3, 1, 1, "_25._tcp.example.test")],
             sni="example.test"),
        # The MX host is a CNAME: TLSA records at the target (tried first) or at the MX name.
        dane("dane-only-cname-mx-tlsa-at-mx-name", SENT, level="dane-only",
             peers={"mx1": {"names": ["mx-real.example.test"], "hostname": "mx1.example.test", "cert": MX1}},
             dns=[MX, ("mx1.example.test", "CNAME", "mx-real.example.test."), tlsa(LEAF, 3, 1, 1)]),
        dane("dane-only-cname-mx-tlsa-at-target", SENT, level="dane-only",
             peers={"mx1": {"names": ["mx-real.example.test"], "hostname": "mx1.example.test", "cert": MX1}},
             dns=[MX, ("mx1.example.test", "CNAME", "mx-real.example.test."),
                  tlsa(LEAF, 3, 1, 1, "_25._tcp.mx-real.example.test")],
             sni="mx-real.example.test"),
        # The target's address is insecure: no TLSA lookup at the target; Postfix checks
        # the CNAME record itself and, when that is secure, looks up TLSA at the MX name.
        dane("dane-only-secure-cname-insecure-target", SENT, level="dane-only",
             peers={"mx1": {"names": ["mx-real.example.test"], "hostname": "mx1.example.test", "cert": MX1}},
             dns=[MX, ("mx1.example.test", "CNAME", "mx-real.example.test."), tlsa(LEAF, 3, 1, 1)],
             dns_insecure=["mx-real.example.test"]),
        dane("dane-only-insecure-cname-insecure-target", NO_TLSA, level="dane-only",
             peers={"mx1": {"names": ["mx-real.example.test"], "hostname": "mx1.example.test", "cert": MX1}},
             dns=[MX, ("mx1.example.test", "CNAME", "mx-real.example.test."), tlsa(LEAF, 3, 1, 1)],
             dns_insecure=["mx-real.example.test", "mx1.example.test"]),
        dane("dane-only-without-dnssec-config-problem", CONFIG, level="dane-only",
             records=[tlsa(LEAF, 3, 1, 1)], main={"smtp_dns_support_level": "enabled"}),
    ],
}


# ----------------------------------------------------------------------------------------
# A real validating resolver: nsd serves a zone signed at test time (ldns-signzone),
# unbound validates it with the key as trust anchor. Everything stays on loopback:
# unbound only knows the zone's stub (nsd), refuses every other name and has nsd as
# its only root hint, so it never sends a query off the machine.
# ----------------------------------------------------------------------------------------

class ValidatingResolver:
    """nsd (authoritative, signed zone) + unbound (validating) on two 127.0.2.N:53."""

    def __init__(self, world, zone: str, records: list[str], tamper: bool = False, signed: bool = True):
        import shutil
        import subprocess
        for tool in ("nsd", "unbound", "ldns-keygen", "ldns-signzone"):
            if not shutil.which(tool):
                raise unittest.SkipTest(f"{tool} not installed")
        self.world, self.zone = world, zone
        self.dir = world.root / f"dnssec-{zone}"
        self.dir.mkdir()
        self.nsd_ip = world.ports.address("127.0.2")
        self.ip = world.ports.address("127.0.2")
        d = self.dir
        (d / "zone").write_text(
            f"$ORIGIN {zone}.\n$TTL 60\n@ IN SOA ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 60\n"
            f"@ IN NS ns.{zone}.\nns IN A {self.nsd_ip}\n" + "".join(r + "\n" for r in records))

        def run(*cmd):
            return subprocess.run(cmd, cwd=d, check=True, capture_output=True, text=True).stdout.strip()
        anchor = ""
        if signed:
            ksk = run("ldns-keygen", "-a", "ECDSAP256SHA256", "-k", zone)
            zsk = run("ldns-keygen", "-a", "ECDSAP256SHA256", zone)
            run("ldns-signzone", "-n", "zone", ksk, zsk)
            anchor = f"  trust-anchor-file: \"{d}/{ksk}.ds\"\n"
        else:  # no signatures and no trust anchor: unbound answers insecure, without AD
            (d / "zone.signed").write_text((d / "zone").read_text())
        if tamper:  # a signed A record whose data no longer matches its RRSIG: bogus
            signed = (d / "zone.signed").read_text()
            signed = re.sub(r"(\tIN\tA\t)127\.0\.1\.(\d+)", lambda m: m.group(1) + "127.0.1." +
                            str(int(m.group(2)) % 250 + 1), signed)
            (d / "zone.signed").write_text(signed)
        (d / "nsd.conf").write_text(
            f"server:\n  ip-address: {self.nsd_ip}\n  port: 53\n  username: \"\"\n  chroot: \"\"\n"
            f"  zonesdir: \"{d}\"\n  database: \"\"\n  zonelistfile: \"{d}/zone.list\"\n"
            f"  xfrdfile: \"{d}/xfrd.state\"\n  pidfile: \"{d}/nsd.pid\"\n"
            f"remote-control:\n  control-enable: no\nzone:\n  name: {zone}\n  zonefile: zone.signed\n")
        (d / "root.hints").write_text(f".\t3600\tIN\tNS\tlocalroot.\nlocalroot.\t3600\tIN\tA\t{self.nsd_ip}\n")
        (d / "unbound.conf").write_text(
            f"server:\n  interface: {self.ip}\n  port: 53\n  username: \"\"\n  chroot: \"\"\n"
            f"  directory: \"{d}\"\n  pidfile: \"{d}/unbound.pid\"\n  use-syslog: no\n  logfile: \"\"\n"
            f"  do-not-query-localhost: no\n  access-control: 127.0.0.0/8 allow\n  do-ip6: no\n"
            f"  module-config: \"validator iterator\"\n{anchor}"
            f"  local-zone: \"test.\" nodefault\n  local-zone: \".\" refuse\n"
            f"  local-zone: \"{zone}.\" transparent\n  root-hints: \"root.hints\"\n"
            f"stub-zone:\n  name: \"{zone}.\"\n  stub-addr: {self.nsd_ip}@53\n"
            f"remote-control:\n  control-enable: no\n")
        self.procs = []
        for cmd in (["nsd", "-d", "-c", str(d / "nsd.conf")], ["unbound", "-d", "-c", str(d / "unbound.conf")]):
            log = open(d / (cmd[0] + ".log"), "w")
            self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
            world.on_cleanup(log.close)
        world.on_cleanup(self.stop)
        self.wait_ready()

    def query(self, name: str, rtype: str, timeout: float = 3.0):
        """(rcode, AD bit, rdata strings) of unbound's answer to a DO query."""
        import socket
        from dnslib import EDNS0, QTYPE, DNSRecord
        q = DNSRecord.question(name, rtype)
        q.add_ar(EDNS0(flags="do", udp_len=1232))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.sendto(q.pack(), (self.ip, 53))
            r = DNSRecord.parse(sock.recv(65535))
        return r.header.rcode, bool(r.header.ad), [str(x.rdata) for x in r.rr if x.rtype != QTYPE.RRSIG]

    def wait_ready(self, timeout: float = 10.0) -> None:
        import time
        deadline = time.monotonic() + timeout
        while True:
            try:
                rcode, _, _ = self.query(f"ns.{self.zone}", "A", timeout=0.5)
                if rcode in (0, 2):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("nsd/unbound did not start: " + "".join(
                    (self.dir / f).read_text() for f in ("nsd.log", "unbound.log")))
            time.sleep(0.1)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except Exception:
                    p.kill()
                    p.wait(5)

    def resolv_conf(self) -> str:  # what PostfixOracle needs of a DNS server
        return f"nameserver {self.ip}\noptions timeout:2 attempts:1 trust-ad\n"

    @property
    def server_spec(self) -> str:
        return f"{self.ip}:53"


class RealValidatingResolver(WorldTestCase):
    """DANE through unbound validating a zone signed at test time, Postfix and tlsrelay alike."""

    def deliver_both(self, resolver, level: str = "dane-only"):
        import smtplib
        from postfix_oracle import PostfixOracle
        if getattr(self, "oracle", None) is None:  # one Postfix instance per world
            self.oracle = PostfixOracle(self.world, resolver)
        oracle = self.oracle
        pf = oracle.deliver({"recipients": ["user@example.test"],
                             "main": {"smtp_tls_security_level": level, "smtp_dns_support_level": "dnssec"}})[0]
        pf_log = oracle.log_since_injection()
        relay = self.world.relay(f"tlsrelay-{level}", delivery={"relayhost": ""},
                                 dns={"servers": [resolver.server_spec], "dnssec": True},
                                 tls={"security_level": level, "ca_file": str(P.ca_file),
                                      "mandatory_protocols": ">=TLSv1"})
        relay.start()
        mark = relay.log_mark()
        with smtplib.SMTP(*relay.address, timeout=10) as s:
            s.sendmail("a@sender.test", ["user@example.test"], b"Subject: t\r\n\r\nhello\r\n")
        relay.wait_for_log(r"to=<user@example\.test>, .*status=", timeout=30, since=mark)
        ours = relay.log_text(mark)
        relay.stop()
        return pf, pf_log, ours

    def peer(self):
        peer = SmtpPeer(self.world, cert=LEAF, hostname="mx1.example.test").start()
        self.world.on_cleanup(peer.stop)
        return peer

    def test_signed_zone_dane_ee_verified_by_both(self):
        """unbound gives AD for the signed zone; Postfix and tlsrelay both deliver with a Verified DANE-EE session."""
        r = self.signed(self.peer(), LEAF.tlsa(3, 1, 1))
        self.assertEqual(r.query("example.test", "MX")[:2], (0, True))
        self.assertEqual(r.query("_25._tcp.mx1.example.test", "TLSA"), (0, True, [LEAF.tlsa(3, 1, 1)]))
        pf, pf_log, ours = self.deliver_both(r)
        self.assertEqual((pf["status"], pf["dsn"]), ("sent", "2.0.0"), pf_log)
        self.assertIn("Verified TLS connection established to mx1.example.test", pf_log)
        self.assertRegex(ours, r"Verified TLS connection established to mx1\.example\.test\[")
        self.assertRegex(ours, r"to=<user@example\.test>, relay=mx1\.example\.test\[[\d.]+\]:25, .*"
                               r"dsn=2\.0\.0, status=sent", ours)

    def test_tlsa_mismatch_defers_in_both(self):
        """A validated TLSA record that does not match: 4.7.5 Server certificate not verified from both."""
        self.both_agree(self.signed(self.peer(), OTHER.tlsa(3, 1, 1)), NOT_VERIFIED)

    def test_bogus_signature_is_a_lookup_failure_in_both(self):
        """A record whose signature does not verify: unbound answers SERVFAIL, both defer with the same DSN and text."""
        peer = self.peer()
        r = ValidatingResolver(self.world, "example.test", [
            "@ IN MX 10 mx1.example.test.", f"mx1 IN A {peer.host}",
            f"_25._tcp.mx1 IN TLSA {LEAF.tlsa(3, 1, 1)}"], tamper=True)
        self.assertEqual(r.query("mx1.example.test", "A")[0], 2)  # SERVFAIL
        pf, pf_log, ours = self.deliver_both(r)
        self.assertEqual(pf["status"], "deferred", pf_log)
        line = f"relay=none, .*dsn={re.escape(pf['dsn'])}, status=deferred \\({re.escape(pf['reason'])}"
        self.assertRegex(ours, line, f"postfix: {pf['line']}")

    def both_agree(self, resolver, expect, level: str = "dane-only"):
        """Postfix's outcome is expect (status, DSN, reason prefix) and tlsrelay logs the same."""
        status, dsn, reason = expect
        pf, pf_log, ours = self.deliver_both(resolver, level)
        self.assertEqual((pf["status"], pf["dsn"]), (status, dsn), pf_log)
        self.assertTrue(pf["reason"].startswith(reason), pf["line"])
        self.assertRegex(ours, rf"dsn={re.escape(dsn)}, status={status} \({re.escape(reason)}", ours)
        return pf_log, ours

    def signed(self, peer, *tlsa_rdata: str, signed: bool = True):
        return ValidatingResolver(self.world, "example.test", [
            "@ IN MX 10 mx1.example.test.", f"mx1 IN A {peer.host}",
            *(f"_25._tcp.mx1 IN TLSA {t}" for t in tlsa_rdata)], signed=signed)

    def test_dane_ta_intermediate_verified_by_both(self):
        """A validated DANE-TA(2) record for the intermediate CA the server sends: Verified in both."""
        r = self.signed(self.peer(), P.intermediate.tlsa(2, 0, 1))
        pf_log, ours = self.both_agree(r, ("sent", "2.0.0", "250"))
        self.assertIn("Verified TLS connection established to mx1.example.test", pf_log)
        self.assertRegex(ours, r"Verified TLS connection established to mx1\.example\.test\[")

    def test_signed_zone_without_tlsa_in_both(self):
        """A secure MX without TLSA records: dane-only defers "no TLSA records found", dane sends."""
        r = self.signed(self.peer())
        self.assertTrue(r.query("_25._tcp.mx1.example.test", "TLSA")[1])  # validated NXDOMAIN
        self.both_agree(r, NO_TLSA)
        self.both_agree(r, ("sent", "2.0.0", "250"), level="dane")

    def test_unusable_tlsa_in_both(self):
        """Only a PKIX-TA(0) record, which Postfix does not use: "TLSA records unusable" from both."""
        self.both_agree(self.signed(self.peer(), LEAF.tlsa(0, 0, 1)), UNUSABLE)

    def test_insecure_zone_in_both(self):
        """An unsigned zone without trust anchor (no AD): dane-only defers as non DNSSEC, dane sends."""
        r = self.signed(self.peer(), LEAF.tlsa(3, 1, 1), signed=False)
        self.assertEqual(r.query("example.test", "MX")[:2], (0, False))
        self.both_agree(r, NON_DNSSEC)
        self.both_agree(r, ("sent", "2.0.0", "250"), level="dane")


define_groups(globals(), SCENARIOS, "DANE differential")

GROUPS = list(SCENARIOS)

if __name__ == "__main__":
    unittest.main()

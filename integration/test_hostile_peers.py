"""Outbound delivery against hostile or broken peers: the rows of docs/checklist.md §H/I
that test_delivery.py leaves open.

Each test runs the real tlsrelay against a DNS server and SMTP peers on private loopback
addresses (world.py) and asserts the relay's Postfix status line and what the peers got.
Checklist item numbers of security-and-durability.md §5 are in brackets.
Run: TLSRELAY_BIN=build/relay/tlsrelay /usr/bin/python3 -m unittest -v test_hostile_peers
"""

from __future__ import annotations

import re
import shutil
import unittest

import pki

from test_delivery import SENDER, DeliveryCase, content, submit
from world import DnsServer, RawSmtp, dot_stuff, queued_id

RCPT = "user@example.test"


def dsn_for(case, home, status: str, *rcpts: str) -> str:
    """The one DSN the sender's MX got: from <> to SENDER, a failed report with this
    status for each of rcpts. Returns its text."""
    [dsn] = home.wait_for_messages(1)
    case.assertEqual((dsn.mail_from, dsn.rcpt_tos), ("", [SENDER]))
    text = dsn.data.decode("utf-8", "replace")
    for r in rcpts:
        case.assertRegex(text, rf"(?m)^Final-Recipient: rfc822; {re.escape(r)}\r$")
    case.assertEqual(len(re.findall(r"(?m)^Action: failed\r$", text)), len(rcpts), text)
    case.assertEqual(len(re.findall(rf"(?m)^Status: {re.escape(status)}\r$", text)), len(rcpts), text)
    return text


class ServerReplies(DeliveryCase):
    """Replies a server should never send, or 421 at the worst moment [68, 71, 73]."""

    def setUp(self):
        super().setUp()
        self.mx("example.test", "10 mx1.example.test.")

    def deferred_then_delivered(self, token: str, dsn: str, reason, **behaviour):
        """One message to a peer that misbehaves as told: deferred with (dsn, reason),
        nothing marked sent; then the peer behaves and the retry delivers it exactly once."""
        peer = self.peer("mx1.example.test", **behaviour)
        relay = self.relay()
        body = content(token)
        qid = submit(relay, body)
        field = f"mx1.example.test[{peer.host}]:25"
        self.assertStatus(self.status(relay, qid, RCPT), field, dsn, "deferred", reason)
        self.assertEqual(self.recipient_state(relay, qid, RCPT, "deferred")["last_dsn"], dsn)
        self.assertEqual(peer.messages, [], "nothing was accepted by the server")
        for attr in ("replies", "drop", "close_after"):
            getattr(peer, attr).clear()
        sent = self.status(relay, qid, RCPT, "sent", timeout=8)
        self.assertStatus(sent, field, "2.0.0", "sent", "250 2.0.0 Ok: queued")
        [msg] = peer.wait_for_messages(1)
        self.assertDelivered(msg, body, SENDER, [RCPT], relay)
        self.wait_removed(relay, qid)
        self.assertEqual(len(peer.messages), 1, "delivered exactly once")
        self.assertEqual([s["status"] for s in self.statuses(relay, qid, RCPT)].count("sent"), 1)
        return relay, qid

    def test_421_after_the_final_dot_defers_and_redelivers_once(self):
        """421 in reply to the final dot: deferred with the server's 4.x, never marked sent, the retry delivers it once [71]."""
        self.deferred_then_delivered(
            "dot421", "4.3.2", re.compile(r"^host mx1\.example\.test\[[\d.]+\] said: 421 4\.3\.2 "
                                          r"Service shutting down \(in reply to end of DATA command\)$"),
            replies={"DOT": "421 4.3.2 Service shutting down"}, close_after=["DOT"])

    # [68] each shape: a protocol error, deferred 4.x, retried and delivered once
    def test_ten_thousand_continuation_lines_defer_450(self):
        """An EHLO reply of 10,000 continuation lines is cut off at 1000 lines: deferred 4.5.0, the retry delivers [68]."""
        huge = "\r\n".join(["250-x"] * 10000 + ["250 ok"])
        self.deferred_then_delivered(
            "cont10k", "4.5.0", re.compile(r"^bad reply from host mx1\.example\.test\[[\d.]+\] while performing "
                                           r"the EHLO handshake: more than 1000 reply lines$"),
            replies={"EHLO": huge})

    def test_continuation_line_then_eof_defers_442(self):
        """'250-' and then the connection closes: lost connection while sending MAIL FROM, deferred 4.4.2 [68]."""
        self.deferred_then_delivered(
            "cont-eof", "4.4.2", re.compile(r"^lost connection with mx1\.example\.test\[[\d.]+\] "
                                            r"while sending MAIL FROM$"),
            replies={"MAIL": "250-2.1.0 first line"}, close_after=["MAIL"])

    def test_codes_that_differ_between_lines_defer_450(self):
        """'250-Ok' followed by '451 other' is one malformed reply, never taken as either code: deferred 4.5.0 [68]."""
        self.deferred_then_delivered(
            "mismatch", "4.5.0", re.compile(r"^bad reply from host mx1\.example\.test\[[\d.]+\] while sending "
                                            r"MAIL FROM: reply codes differ between lines$"),
            replies={"MAIL": "250-2.1.0 Ok\r\n451 4.3.0 other"})

    def test_a_lone_digit_is_no_reply_defers_450(self):
        """A reply line '2' is a non-ESMTP response: deferred 4.5.0 naming it [68]."""
        self.deferred_then_delivered(
            "lone-digit", "4.5.0", re.compile(r"^non-ESMTP response from mx1\.example\.test\[[\d.]+\] while "
                                              r"sending MAIL FROM: 2$"),
            replies={"MAIL": "2"})

    def test_megabyte_reply_line_is_truncated_and_control_bytes_replaced(self):
        """A 1 MB reply line with control bytes: the logged reason stays short and printable, the retry delivers [68]."""
        reply = "451 4.3.0 \x1b[31mred\x01" + "x" * 1_000_000
        relay, qid = self.deferred_then_delivered(
            "megabyte", "4.3.0", re.compile(r"^host mx1\.example\.test\[[\d.]+\] said: 451 4\.3\.0 \?\[31mred\?xxx"),
            replies={"RCPT": reply})
        for line in relay.log_lines():
            self.assertLess(len(line), 8192, line[:200])
            self.assertNotRegex(line, r"[\x00-\x08\x0b-\x1f\x7f]", line[:200])


class Smtputf8(DeliveryCase):
    """A message whose envelope needs SMTPUTF8 and a server that does not offer it [73]."""

    RCPT = "j\u00fcrgen@example.test"
    LOGGED = "j\u00fcrgen@example.test"  # logged as it is, like Postfix (UTF-8 stays)

    def setUp(self):
        super().setUp()
        self.mx("example.test", "10 mx1.example.test.")
        self.mx("sender.test", "10 mx.sender.test.")

    def submit_utf8(self, relay, rcpt: str) -> str:
        with RawSmtp(relay.address) as c:
            c.ehlo()
            c.expect(f"MAIL FROM:<{SENDER}> SMTPUTF8", 250)
            c.expect(f"RCPT TO:<{rcpt}>".encode(), 250)
            c.expect("DATA", 354)
            c.send(dot_stuff(content("utf8")))
            qid = queued_id(c.reply())
            c.expect("QUIT", 221)
        return qid

    def test_utf8_recipient_without_smtputf8_bounces_567(self):
        """A UTF-8 recipient and an MX without SMTPUTF8: no MAIL FROM, bounced 5.6.7 with Postfix's text, DSN to the sender [73]."""
        rcpt = self.RCPT
        peer = self.peer("mx1.example.test")
        home = self.peer("mx.sender.test")
        relay = self.relay()
        qid = self.submit_utf8(relay, rcpt)
        self.assertStatus(self.status(relay, qid, self.LOGGED), f"mx1.example.test[{peer.host}]:25", "5.6.7", "bounced",
                          f"SMTPUTF8 is required, but was not offered by host mx1.example.test[{peer.host}]")
        dsn_for(self, home, "5.6.7", rcpt)
        self.wait_removed(relay, qid)
        [sess] = peer.wait_for_sessions(1)
        self.assertFalse(any(c.upper().startswith("MAIL") for c in sess.commands), sess.commands)
        self.assertEqual(peer.messages, [])

    def test_utf8_recipient_with_smtputf8_is_sent_with_the_parameter(self):
        """The same message to an MX that offers SMTPUTF8 is sent with MAIL FROM ... SMTPUTF8 [73]."""
        rcpt = self.RCPT
        peer = self.peer("mx1.example.test", extensions=["SMTPUTF8"])
        relay = self.relay()
        qid = self.submit_utf8(relay, rcpt)
        [msg] = peer.wait_for_messages(1)
        self.assertEqual(msg.rcpt_tos, [rcpt])
        self.assertStatus(self.status(relay, qid, self.LOGGED), f"mx1.example.test[{peer.host}]:25", "2.0.0", "sent",
                          "250 2.0.0 Ok: queued")
        mail = next(c for c in peer.wait_for_sessions(1)[0].commands if c.startswith("MAIL"))
        self.assertTrue(mail.endswith(" SMTPUTF8"), mail)


class HostileDnsServer(DnsServer):
    """The world's DNS server, plus answers whose names no zone file can hold: MX targets
    and CNAME targets with CR, LF, ':' and '<' inside a label (hostile[name] = label)."""

    def __init__(self, world, hostile: dict[tuple[str, str], bytes]):
        super().__init__(world)
        self.hostile = {(self._fqdn(n), t): label for (n, t), label in hostile.items()}

    def answer(self, data: bytes, max_udp: int | None = 512) -> bytes | None:
        from dnslib import CNAME, MX, QTYPE, RR, DNSLabel, DNSRecord
        req = DNSRecord.parse(data)
        name, rtype = str(req.q.qname).lower(), QTYPE.get(req.q.qtype)
        label = self.hostile.get((name, rtype)) or self.hostile.get((name, "CNAME"))
        if label is None:
            return super().answer(data, max_udp)
        with self._lock:
            self.queries.append((name, rtype))
        target = DNSLabel([label] + [p.encode() for p in name.rstrip(".").split(".")])
        rdata = MX(target, 10) if rtype == "MX" else CNAME(target)
        reply = req.reply()
        reply.add_answer(RR(req.q.qname, QTYPE.MX if rtype == "MX" else QTYPE.CNAME, rdata=rdata, ttl=60))
        return reply.pack()


EVIL = b"mx\r\nX-Evil: <inject>"


class DnsAndRouting(DeliveryCase):
    """What DNS answers and address forms may make the relay do [36, 62, 65, 66]."""

    def test_percent_and_bang_local_parts_go_to_the_domain_after_the_at_only(self):
        """user%evil.example@ok.example and evil!user@ok.example go to ok.example's MX only, byte-exact [36]."""
        self.mx("ok.example", "10 mx.ok.example.")
        self.mx("evil.example", "10 mx.evil.example.")
        ok, evil = self.peer("mx.ok.example"), self.peer("mx.evil.example", "evil.example")
        relay = self.relay()
        rcpts = ["evil!user@ok.example", "user%evil.example@ok.example"]  # Postfix's order: sorted
        body = content("percent")
        qid = submit(relay, body, rcpts=rcpts)
        [msg] = ok.wait_for_messages(1)
        self.assertDelivered(msg, body, SENDER, rcpts, relay)
        for r in rcpts:
            self.assertStatus(self.status(relay, qid, r), f"mx.ok.example[{ok.host}]:25", "2.0.0", "sent",
                              "250 2.0.0 Ok: queued")
        self.wait_removed(relay, qid)
        self.assertEqual(evil.sessions, [])
        self.assertEqual([q for q in self.dns.queries if "evil" in q[0]], [], "evil.example was never looked up")

    def test_nxdomain_sends_a_dsn_to_a_real_sender(self):
        """A recipient domain that does not exist bounces 5.4.4 and the sender gets a DSN saying so [62]."""
        self.mx("sender.test", "10 mx.sender.test.")
        home = self.peer("mx.sender.test")
        relay = self.relay()
        body = content("nx-dsn")
        qid = submit(relay, body, rcpts=["user@nx.example.test"])
        reason = ("Host or domain name not found. Name service error for name=nx.example.test type=AAAA: "
                  "Host not found")
        self.assertStatus(self.status(relay, qid, "user@nx.example.test"), "none", "5.4.4", "bounced", reason)
        text = dsn_for(self, home, "5.4.4", "user@nx.example.test")
        self.assertIn("Subject: delivery nx-dsn", text)
        self.wait_removed(relay, qid)

    def test_mx_at_127_0_0_1_is_ourselves_whatever_port_we_listen_on(self):
        """MX -> 127.0.0.1 while the relay listens on 127.0.0.1:PORT (not 25) bounces 5.4.6, as Postfix 3.7 does [65]."""
        self.mx("lo.test", "10 mx.lo.test.")
        self.dns.add("mx.lo.test", "A", "127.0.0.1")
        relay = self.relay()
        self.assertEqual(relay.host, "127.0.0.1")
        self.assertNotEqual(relay.port, 25)
        qid = submit(relay, content("lo"), sender="", rcpts=["user@lo.test"])
        self.assertStatus(self.status(relay, qid, "user@lo.test"), "none", "5.4.6", "bounced",
                          "mail for lo.test loops back to myself")
        self.wait_removed(relay, qid)
        self.assertEqual(len(re.findall(r"tlsrelay/smtpd\[\d+\]: connect from ", relay.log_text())), 1)

    def test_mx_at_127_0_0_1_elsewhere_is_just_a_server(self):
        """With the relay listening on another address, MX -> 127.0.0.1 is an ordinary host: connection refused, deferred 4.4.1 [65]."""
        self.mx("lo.test", "10 mx.lo.test.")
        self.dns.add("mx.lo.test", "A", "127.0.0.1")
        relay = self.relay(start=False, queue={"retry_min": "1h", "retry_max": "1h"})
        relay.host = self.world.ports.address()
        relay.config["server"]["listen"] = [f"{relay.host}:{relay.port}"]
        relay.start()
        qid = submit(relay, content("lo2"), rcpts=["user@lo.test"])
        self.assertStatus(self.status(relay, qid, "user@lo.test"), "none", "4.4.1", "deferred",
                          "connect to mx.lo.test[127.0.0.1]:25: Connection refused")

    def test_hostile_names_never_reach_the_log_or_the_dsn(self):
        """MX and CNAME targets with CR/LF, ':' and '<' in a label: deferred 4.4.3, then expired; neither the log nor the DSN holds them [66]."""
        self.dns = HostileDnsServer(self.world, {("mxevil.test", "MX"): EVIL,
                                                 ("mx.cnevil.test", "CNAME"): EVIL}).start()
        self.mx("cnevil.test", "10 mx.cnevil.test.")
        self.mx("sender.test", "10 mx.sender.test.")
        home = self.peer("mx.sender.test")
        relay = self.relay(queue={"max_lifetime": "2s"})
        rcpts = ["user@mxevil.test", "user@cnevil.test"]
        qid = submit(relay, content("evil"), rcpts=rcpts)
        self.assertStatus(self.status(relay, qid, rcpts[0]), "none", "4.4.3", "deferred",
                          "Host or domain name not found. Name service error for name=mxevil.test type=MX: "
                          "Host not found, try again")
        self.assertStatus(self.status(relay, qid, rcpts[1]), "none", "4.4.3", "deferred",
                          "Host or domain name not found. Name service error for name=mx.cnevil.test type=AAAA: "
                          "Host not found, try again")
        text = dsn_for(self, home, "4.4.3", *rcpts)
        self.wait_removed(relay, qid)
        for where, text in (("log", relay.log_text()), ("DSN", text)):
            self.assertNotIn("X-Evil", text, where)
            self.assertNotIn("inject", text, where)
        self.assertNotIn("\r", relay.log_text())


class PolicyAtDelivery(DeliveryCase):
    """The part of a TLS policy that is read at delivery time going away [80]."""

    def test_trust_anchor_file_gone_at_delivery_defers_475_without_connecting(self):
        """A policy tafile removed after start: deferred 4.7.5 'client TLS configuration problem' without connecting; restored, the retry is verified and sent [80]."""
        self.mx("example.test", "10 mx1.example.test.")
        peer = self.peer("mx1.example.test", cert=pki.get_pki().leaf(dns=["mx1.example.test"]))
        folder = self.world.mkdir("anchors")
        tafile = folder / "root.pem"
        shutil.copy(pki.get_pki().ca_file, tafile)
        policy = folder / "tls_policy"
        policy.write_text(f"example.test verify tafile={tafile}\n")
        relay = self.relay(tls={"policy_file": str(policy)})
        field = f"mx1.example.test[{peer.host}]:25"
        tafile.rename(folder / "gone.pem")  # after start: the relay started with a valid policy
        mark = relay.log_mark()
        qid = submit(relay, content("ta-gone"))
        self.assertStatus(self.status(relay, qid, RCPT, since=mark), "none", "4.7.5", "deferred",
                          "client TLS configuration problem")
        relay.wait_for_log(rf"warning: error opening trust anchor file: {re.escape(str(tafile))}: "
                           r"No such file or directory$", since=mark)
        relay.wait_for_log(r"warning: TLS policy lookup for example\.test/mx1\.example\.test: "
                           r"client TLS configuration problem$", since=mark)
        self.assertEqual(peer.sessions, [], "no connection while the policy cannot be evaluated")
        (folder / "gone.pem").rename(tafile)
        relay.cli("queue", "flush", qid)
        self.assertStatus(self.status(relay, qid, RCPT, "sent", since=mark), field, "2.0.0", "sent",
                          "250 2.0.0 Ok: queued")
        relay.wait_for_log(rf"Verified TLS connection established to {re.escape(field)}", since=mark)
        self.assertEqual(len(peer.wait_for_messages(1)), 1)


class TlsPeers(DeliveryCase):
    """Servers that choose their certificate by SNI, or speak only TLS 1.0 [80]."""

    def setUp(self):
        super().setUp()
        self.mx("example.test", "10 mx1.example.test.")

    def sni_peer(self):
        """Serves a certificate for default.invalid unless asked for mx1.example.test."""
        return self.peer("mx1.example.test", cert=pki.get_pki().leaf(dns=["default.invalid"]),
                         sni_certs={"mx1.example.test": pki.get_pki().leaf(dns=["mx1.example.test"])})

    def test_sni_gets_the_certificate_that_verifies(self):
        """servername=hostname sends the MX name as SNI; a server choosing its certificate by it is verified [80]."""
        peer = self.sni_peer()
        relay = self.relay(tls={"security_level": "verify", "servername": "hostname",
                                "ca_file": str(pki.get_pki().ca_file)})
        qid = submit(relay, content("sni"))
        field = f"mx1.example.test[{peer.host}]:25"
        self.assertStatus(self.status(relay, qid, RCPT), field, "2.0.0", "sent", "250 2.0.0 Ok: queued")
        relay.wait_for_log(rf"Verified TLS connection established to {re.escape(field)}: TLSv1\.3")
        [msg] = peer.wait_for_messages(1)
        self.assertTrue(msg.tls)
        self.assertEqual(peer.wait_for_sessions(1)[0].sni, "mx1.example.test")

    def test_without_sni_the_default_certificate_fails_verification(self):
        """The same server without SNI (tlsrelay's default, as Postfix's) shows its default certificate: 4.7.5 [80]."""
        peer = self.sni_peer()
        relay = self.relay(tls={"security_level": "verify", "ca_file": str(pki.get_pki().ca_file)},
                           queue={"retry_min": "1h", "retry_max": "1h"})
        qid = submit(relay, content("nosni"))
        st = self.status(relay, qid, RCPT)
        self.assertStatus(st, f"mx1.example.test[{peer.host}]:25", "4.7.5", "deferred",
                          re.compile(r"^Server certificate not verified"))
        self.assertIsNone(peer.wait_for_sessions(1)[0].sni)
        self.assertEqual(peer.messages, [])

    def tls10_peer(self):
        import ssl
        return self.peer("mx1.example.test", cert=pki.get_pki().leaf(dns=["mx1.example.test"]),
                         tls_min_version=ssl.TLSVersion.TLSv1, tls_max_version=ssl.TLSVersion.TLSv1,
                         tls_ciphers="DEFAULT:@SECLEVEL=0")

    def test_tls10_only_server_at_encrypt_defers_475(self):
        """A server that speaks only TLS 1.0, at level encrypt (mandatory_protocols >=TLSv1.2): handshake fails, 4.7.5, no MAIL [80]."""
        peer = self.tls10_peer()
        relay = self.relay(tls={"security_level": "encrypt"}, queue={"retry_min": "1h", "retry_max": "1h"})
        qid = submit(relay, content("tls10"))
        self.assertStatus(self.status(relay, qid, RCPT), f"mx1.example.test[{peer.host}]:25", "4.7.5", "deferred",
                          "Cannot start TLS: handshake failure")
        [sess] = peer.wait_for_sessions(1)
        self.assertFalse(any(c.startswith("MAIL") for c in sess.commands), sess.commands)

    def test_may_retries_a_failed_handshake_in_plaintext_later(self):
        """At level may the first attempt after a failed handshake defers 4.7.5; the retry, once retry_min has passed, sends in plaintext [80]."""
        peer = self.peer("mx1.example.test", cert=pki.get_pki().leaf(dns=["mx1.example.test"]), tls_break=True)
        relay = self.relay()
        body = content("may-retry")
        qid = submit(relay, body)
        field = f"mx1.example.test[{peer.host}]:25"
        self.assertStatus(self.status(relay, qid, RCPT), field, "4.7.5", "deferred",
                          "Cannot start TLS: handshake failure")
        sent = self.status(relay, qid, RCPT, "sent", timeout=8)
        self.assertStatus(sent, field, "2.0.0", "sent", "250 2.0.0 Ok: queued")
        [msg] = peer.wait_for_messages(1)
        self.assertFalse(msg.tls)
        self.assertDelivered(msg, body, SENDER, [RCPT], relay)
        sessions = peer.wait_for_sessions(3)
        self.assertEqual([("STARTTLS" in s.commands) for s in sessions], [True, True, False],
                         "first attempt, the retry's TLS try, then the same retry in plaintext")
        self.assertEqual(msg.session, sessions[2].n)


if __name__ == "__main__":
    unittest.main()

"""Outbound delivery end to end: the real tlsrelay delivering to real peers.

Every test starts its own DNS server (port 53 of a private 127.0.2.N), SMTP peers (port
25 of private 127.0.1.N addresses) and a relay pointed at them with `[dns] servers`,
submits mail over SMTP and then asserts two things: the relay's Postfix status line
(`QUEUEID: to=<r>, relay=..., delay=..., delays=a/b/c/d, dsn=..., status=... (reason)`,
with the exact relay, dsn, status and Postfix's reason text) and what the peer actually
received (envelope, byte-exact content, TLS). Checklist §5 G and H items of
security-and-durability.md are in brackets in the docstrings. Waits are on log lines
and peer conditions with deadlines, never fixed sleeps.

Run: TLSRELAY_BIN=build/relay/tlsrelay /usr/bin/python3 -m unittest -v test_delivery
"""

from __future__ import annotations

import re
import time
import unittest

import pki
from world import (DnsServer, RawSmtp, SmtpPeer, WorldTestCase, dot_stuff, queued_id,
                   split_received)

SENDER = "sender@sender.test"

# interface.md's status line, strictly: every field present, Postfix's number formats.
NUM = r"(?:\d+|\d+\.\d{1,2})"
STATUS_RX = re.compile(
    r"tlsrelay/smtp\[\d+\]: (?P<queue_id>[0-9A-Za-z]+): to=<(?P<to>[^>]*)>,"
    r" relay=(?P<relay>[^,]+),(?: conn_use=\d+,)? delay=(?P<delay>" + NUM + r"),"
    r" delays=(?P<delays>" + NUM + "/" + NUM + "/" + NUM + "/" + NUM + r"),"
    r" dsn=(?P<dsn>[245]\.\d{1,3}\.\d{1,3}), status=(?P<status>sent|deferred|bounced)"
    r" \((?P<reason>.*)\)$")


def content(token: str = "t0", sender: str = SENDER, rcpt: str = "user@example.test") -> bytes:
    """A message whose bytes must survive: folded header, leading dots (a line that is a
    lone dot, two dots, a dot before text), empty lines, trailing blanks, 8-bit text."""
    return (b"From: Sender <" + sender.encode() + b">\r\n"
            b"To: <" + rcpt.encode() + b">\r\n"
            b"Subject: delivery " + token.encode() + b"\r\n"
            b"Message-ID: <" + token.encode() + b"@sender.test>\r\n"
            b"X-Folded: first\r\n\tsecond\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n"
            b"\r\n"
            b"token " + token.encode() + b"\r\n"
            b".\r\n..\r\n.leading dot\r\n...\r\n"
            b"\r\n\r\n"
            b"trailing blanks   \r\n"
            b"gr\xc3\xbc\xc3\x9fe\r\n"
            b"end\r\n")


def submit(relay, body: bytes, sender: str = SENDER, rcpts=("user@example.test",)) -> str:
    """One SMTP transaction into the relay; returns the queue id from the 250."""
    with RawSmtp(relay.address) as c:
        c.ehlo()
        c.expect(f"MAIL FROM:<{sender}>", 250)
        for r in rcpts:
            c.expect(f"RCPT TO:<{r}>", 250)
        c.expect("DATA", 354)
        c.send(dot_stuff(body))
        qid = queued_id(c.reply())
        c.expect("QUIT", 221)
    return qid


class DeliveryCase(WorldTestCase):
    """A DNS server, peers made on demand, and a relay wired to both."""

    def setUp(self):
        super().setUp()
        self.dns = DnsServer(self.world).start()

    # -- the world -------------------------------------------------------------------------
    def peer(self, *names: str, port: int = 25, **behaviour) -> SmtpPeer:
        """A started peer; each name gets an A record for the peer's address."""
        p = SmtpPeer(self.world, port=port, **behaviour).start()
        for n in names:
            self.dns.add(n, "A", p.host)
        return p

    def dead_address(self, *names: str) -> str:
        """A private loopback address nobody listens on (connection refused)."""
        addr = self.world.ports.address()
        for n in names:
            self.dns.add(n, "A", addr)
        return addr

    def mx(self, domain: str, *records: str) -> None:
        self.dns.add(domain, "MX", *records)

    def relay(self, start: bool = True, queue: dict | None = None, delivery: dict | None = None,
              **sections):
        q = {"dir": "spool", "retry_min": "1s", "retry_max": "2s", "max_lifetime": "1h"}
        q.update(queue or {})
        d = {"relayhost": "", "connect_timeout": "5s"}
        d.update(delivery or {})
        dns = {"servers": [self.dns.server_spec]}
        dns.update(sections.pop("dns", {}))
        r = self.world.relay(queue=q, delivery=d, dns=dns, **sections)
        return r.start() if start else r

    # -- the relay's log -------------------------------------------------------------------
    def status(self, relay, qid: str, rcpt: str, status: str | None = None, since: int = 0,
               timeout: float = 10.0, nth: int = 1) -> dict:
        """The nth status line for (qid, rcpt) from index since on, optionally only lines
        with that status; waits for it with a deadline."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.statuses(relay, qid, rcpt, since)
                     if status is None or m["status"] == status]
            if len(found) >= nth:
                return found[nth - 1]
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no status line #{nth} ({status or 'any'}) for {qid} <{rcpt}> "
                                     f"within {timeout}s; log:\n{relay.log_text(since)}")
            # wakes on the next log line (or at the deadline); no fixed sleep
            relay.wait_for_log(r".", timeout=min(left, 1.0), since=relay.log_mark(), fail=False)

    def statuses(self, relay, qid: str, rcpt: str, since: int = 0) -> list[dict]:
        out = []
        for line in relay.log_lines(since):
            m = STATUS_RX.search(line)
            if m and m["queue_id"] == qid and m["to"] == rcpt:
                out.append(dict(m.groupdict(), line=line))
        return out

    def assertStatus(self, st: dict, relay: str, dsn: str, status: str, reason: str | re.Pattern):
        got = (st["relay"], st["dsn"], st["status"])
        self.assertEqual(got, (relay, dsn, status), st["line"])
        if isinstance(reason, re.Pattern):
            self.assertRegex(st["reason"], reason, st["line"])
        else:
            self.assertEqual(st["reason"], reason, st["line"])

    def wait_removed(self, relay, qid: str, timeout: float = 10.0, since: int = 0) -> None:
        relay.wait_for_log(rf"tlsrelay/qmgr\[\d+\]: {re.escape(qid)}: removed$", timeout=timeout,
                           since=since)

    def assertDelivered(self, msg, body: bytes, sender: str, rcpts: list[str], relay) -> None:
        """The peer got exactly this envelope and these bytes after our Received:."""
        self.assertEqual(msg.mail_from, sender)
        self.assertEqual(msg.rcpt_tos, rcpts)
        received, rest = split_received(msg.data)
        self.assertTrue(received.startswith(b"Received: from "), msg.data[:300])
        self.assertIn(relay.hostname.encode(), received)
        self.assertEqual(rest, body, "the peer received other bytes than were submitted")

    def recipient_state(self, relay, qid: str, rcpt: str, status: str | None = None,
                        timeout: float = 5.0) -> dict:
        """The recipient's row in `queue list --json`. With status, waits (bounded) until
        the row shows it: the spool is updated just after the status line is logged."""
        deadline = time.monotonic() + timeout
        while True:
            queue = relay.queue()
            row = next((r for m in queue if m["id"] == qid for r in m["recipients"]
                        if r["address"] == rcpt), None)
            if row is not None and (status is None or row["status"] == status):
                return row
            if time.monotonic() > deadline:
                raise AssertionError(f"{qid} <{rcpt}> not {status or 'queued'} within {timeout}s: {queue!r}")
            time.sleep(0.05)  # polling the spool through the CLI: there is no event to wait on


# ------------------------------------------------------------------------------------------
# Routing: MX, preferences, implicit MX, limits
# ------------------------------------------------------------------------------------------

class MxRouting(DeliveryCase):

    def test_plain_delivery_via_mx_byte_exact(self):
        """Mail for a domain goes to its MX in one transaction for all recipients, body byte-exact and dot-stuffing undone."""
        self.mx("example.test", "10 mx1.example.test.")
        peer = self.peer("mx1.example.test")
        relay = self.relay()
        body = content("plain")
        rcpts = ["a@example.test", "b@example.test"]
        qid = submit(relay, body, rcpts=rcpts)
        [msg] = peer.wait_for_messages(1)
        for r in rcpts:
            self.assertStatus(self.status(relay, qid, r), f"mx1.example.test[{peer.host}]:25", "2.0.0",
                              "sent", "250 2.0.0 Ok: queued")
        self.assertDelivered(msg, body, SENDER, rcpts, relay)
        self.wait_removed(relay, qid)
        self.assertEqual(relay.queue(), [])
        [sess] = peer.wait_for_sessions(1)
        self.assertEqual(sess.helo, relay.hostname)
        verbs = [c.split(" ")[0].split(":")[0] for c in sess.commands]
        self.assertEqual(verbs, ["EHLO", "MAIL", "RCPT", "RCPT", "DATA", ".", "QUIT"], sess.commands)
        # the content declares 8bit: BODY=8BITMIME, as Postfix's cleanup marks it
        self.assertEqual(sess.commands[1], f"MAIL FROM:<{SENDER}> SIZE={len(msg.data)} BODY=8BITMIME")
        self.assertEqual(sess.ended, "QUIT")
        for r in rcpts:  # one status line per recipient per attempt
            self.assertEqual(len(self.statuses(relay, qid, r)), 1, relay.log_text())

    def test_lines_over_998_octets_are_folded_as_postfix_does(self):
        """Lines longer than 998 octets are broken with CRLF SPACE (smtp_line_length_limit), dot-stuffed before counting, as Postfix 3.7 sends them."""
        self.mx("example.test", "10 mx1.example.test.")
        peer = self.peer("mx1.example.test")
        relay = self.relay()
        head = b"From: <sender@sender.test>\r\nTo: <user@example.test>\r\nSubject: long lines\r\n\r\n"
        body = head + b"x" * 1500 + b"\r\n.y" + b"z" * 1200 + b"\r\nend\r\n"
        qid = submit(relay, body)
        [msg] = peer.wait_for_messages(1)
        self.status(relay, qid, "user@example.test", "sent")
        # what the Postfix 3.7 oracle's smtp(8) delivered for the same lines
        expected = (head + b"x" * 998 + b"\r\n " + b"x" * 502 + b"\r\n.y" + b"z" * 996 + b"\r\n " + b"z" * 204
                    + b"\r\nend\r\n")
        self.assertEqual(split_received(msg.data)[1], expected)

    def test_helo_fallback_when_ehlo_is_refused(self):
        """A server that rejects EHLO gets HELO and the mail, its 8bit part as quoted-printable (no 8BITMIME)."""
        self.mx("example.test", "10 mx1.example.test.")
        peer = self.peer("mx1.example.test", esmtp=False)
        relay = self.relay()
        body = content("helo")
        qid = submit(relay, body)
        [msg] = peer.wait_for_messages(1)
        self.assertStatus(self.status(relay, qid, "user@example.test"),
                          f"mx1.example.test[{peer.host}]:25", "2.0.0", "sent", "250 2.0.0 Ok: queued")
        # what Postfix 3.7 sends a server without 8BITMIME (the EightBitMime differential rows)
        downgraded = (body.replace(b"Content-Transfer-Encoding: 8bit\r\n\r\n",
                                   b"Content-Transfer-Encoding: quoted-printable\r\n\r\n")
                      .replace(b"trailing blanks   \r\n", b"trailing blanks  =20\r\n")
                      .replace(b"gr\xc3\xbc\xc3\x9fe\r\n", b"gr=C3=BC=C3=9Fe\r\n"))
        self.assertNotEqual(downgraded, body)
        self.assertDelivered(msg, downgraded, SENDER, ["user@example.test"], relay)
        cmds = peer.wait_for_sessions(1)[0].commands
        self.assertEqual(cmds[:3], [f"EHLO {relay.hostname}", f"HELO {relay.hostname}", f"MAIL FROM:<{SENDER}>"])

    def test_lowest_preference_first_whatever_the_answer_order(self):
        """The MX with the lowest preference gets the mail even when listed last; the other sees nothing."""
        self.mx("example.test", "30 mx3.example.test.", "20 mx2.example.test.", "10 mx1.example.test.")
        mx1 = self.peer("mx1.example.test")
        mx2 = self.peer("mx2.example.test")
        mx3 = self.peer("mx3.example.test")
        relay = self.relay()
        qid = submit(relay, content("pref"))
        mx1.wait_for_messages(1)
        self.assertStatus(self.status(relay, qid, "user@example.test"),
                          f"mx1.example.test[{mx1.host}]:25", "2.0.0", "sent", "250 2.0.0 Ok: queued")
        self.wait_removed(relay, qid)
        self.assertEqual((mx2.sessions, mx3.sessions), ([], []))

    def test_refused_connection_moves_to_next_mx(self):
        """When the best MX refuses the connection the next MX gets the mail; the refusal is logged as Postfix does."""
        self.mx("example.test", "10 mx1.example.test.", "20 mx2.example.test.")
        dead = self.dead_address("mx1.example.test")
        mx2 = self.peer("mx2.example.test")
        relay = self.relay()
        body = content("refused")
        qid = submit(relay, body)
        [msg] = mx2.wait_for_messages(1)
        self.assertStatus(self.status(relay, qid, "user@example.test"),
                          f"mx2.example.test[{mx2.host}]:25", "2.0.0", "sent", "250 2.0.0 Ok: queued")
        self.assertDelivered(msg, body, SENDER, ["user@example.test"], relay)
        relay.wait_for_log(rf"connect to mx1\.example\.test\[{re.escape(dead)}\]:25: Connection refused$")

    def test_421_greeting_moves_to_next_mx(self):
        """A 421 greeting from the best MX is a soft error on a non-final server: the next MX gets the mail."""
        self.mx("example.test", "10 mx1.example.test.", "20 mx2.example.test.")
        mx1 = self.peer("mx1.example.test", greeting="421 4.3.2 Service not available")
        mx2 = self.peer("mx2.example.test")
        relay = self.relay()
        qid = submit(relay, content("421"))
        mx2.wait_for_messages(1)
        self.assertStatus(self.status(relay, qid, "user@example.test"),
                          f"mx2.example.test[{mx2.host}]:25", "2.0.0", "sent", "250 2.0.0 Ok: queued")
        relay.wait_for_log(rf"tlsrelay/smtp\[\d+\]: {qid}: host mx1\.example\.test\[{re.escape(mx1.host)}\] "
                           r"refused to talk to me: 421 4\.3\.2 Service not available$")
        self.assertEqual([s.ended for s in mx1.wait_for_sessions(1)], ["greeting 421"])

    def test_5xx_greeting_moves_to_next_mx(self):
        """A 554 greeting is skipped like a 4xx one (Postfix smtp_skip_5xx_greeting): the next MX gets the mail."""
        self.mx("example.test", "10 mx1.example.test.", "20 mx2.example.test.")
        mx1 = self.peer("mx1.example.test", greeting="554 5.7.1 go away")
        mx2 = self.peer("mx2.example.test")
        relay = self.relay()
        qid = submit(relay, content("554next"))
        mx2.wait_for_messages(1)
        self.assertStatus(self.status(relay, qid, "user@example.test"),
                          f"mx2.example.test[{mx2.host}]:25", "2.0.0", "sent", "250 2.0.0 Ok: queued")
        relay.wait_for_log(rf"tlsrelay/smtp\[\d+\]: {qid}: host mx1\.example\.test\[{re.escape(mx1.host)}\] "
                           r"refused to talk to me: 554 5\.7\.1 go away$")

    def test_greeting_refusal_from_the_last_mx_defers(self):
        """421 or 554 greeting from the only MX: deferred with the greeting's DSN made 4.x.x, as Postfix 3.7 logs it."""
        self.mx("example.test", "10 mx1.example.test.")
        self.mx("other.test", "10 mx1.other.test.")
        mx1 = self.peer("mx1.example.test", greeting="421 4.3.2 Service not available")
        other = self.peer("mx1.other.test", greeting="554 5.7.1 go away")
        relay = self.relay(queue={"retry_min": "1h", "retry_max": "1h"})
        qid = submit(relay, content("greet"), rcpts=["user@example.test", "user@other.test"])
        self.assertStatus(self.status(relay, qid, "user@example.test"), f"mx1.example.test[{mx1.host}]:25",
                          "4.3.2", "deferred",
                          f"host mx1.example.test[{mx1.host}] refused to talk to me: 421 4.3.2 Service not available")
        self.assertStatus(self.status(relay, qid, "user@other.test"), f"mx1.other.test[{other.host}]:25",
                          "4.7.1", "deferred", f"host mx1.other.test[{other.host}] refused to talk to me: "
                          "554 5.7.1 go away")
        for r in ("user@example.test", "user@other.test"):
            self.assertEqual(self.recipient_state(relay, qid, r, "deferred")["attempts"], 1)

    def test_implicit_mx_uses_the_domains_address(self):
        """A domain without MX but with an A record is delivered to that address [64]."""
        peer = self.peer("implicit.test")
        relay = self.relay()
        body = content("implicit", rcpt="user@implicit.test")
        qid = submit(relay, body, rcpts=["user@implicit.test"])
        [msg] = peer.wait_for_messages(1)
        self.assertStatus(self.status(relay, qid, "user@implicit.test"),
                          f"implicit.test[{peer.host}]:25", "2.0.0", "sent", "250 2.0.0 Ok: queued")
        self.assertDelivered(msg, body, SENDER, ["user@implicit.test"], relay)
        self.assertTrue(self.dns.queried("implicit.test", "MX"))

    def test_equal_preferences_are_shuffled(self):
        """Two MX hosts of equal preference share the mail: 16 domains with the same pair of MX hosts do not all pick the same one."""
        domains = [f"d{i}.test" for i in range(16)]
        for d in domains:  # one next hop each, so no cached connection is reused across them
            self.mx(d, "10 mxa.example.test.", "10 mxb.example.test.")
        a = self.peer("mxa.example.test")
        b = self.peer("mxb.example.test")
        relay = self.relay()
        rcpts = [f"user@{d}" for d in domains]
        qid = submit(relay, content("shuffle"), rcpts=rcpts)
        relays = [self.status(relay, qid, r, "sent")["relay"] for r in rcpts]
        self.assertLessEqual(set(relays), {f"mxa.example.test[{a.host}]:25", f"mxb.example.test[{b.host}]:25"})
        # all 16 to one host by chance: probability 2**-15
        self.assertEqual(len(set(relays)), 2, relays)

    def test_address_limit_is_five(self):
        """Of seven MX hosts that all refuse connections only five addresses are tried; then deferred 4.4.1, relay=none [67]."""
        names = [f"mx{i}.example.test" for i in range(1, 8)]
        self.mx("example.test", *[f"{i * 10} {n}." for i, n in enumerate(names, 1)])
        dead = [self.dead_address(n) for n in names]
        relay = self.relay()
        qid = submit(relay, content("limit"))
        st = self.status(relay, qid, "user@example.test")
        self.assertStatus(st, "none", "4.4.1", "deferred",
                          f"connect to mx5.example.test[{dead[4]}]:25: Connection refused")
        # the status line repeats the last reason; the info lines name each address once
        info = [l for l in relay.log_lines() if "connect to mx" in l and "status=" not in l]
        self.assertEqual([re.search(r"connect to (mx\d)\.", l).group(1) for l in info],
                         ["mx1", "mx2", "mx3", "mx4", "mx5"], relay.log_text())

    def test_session_limit_is_two(self):
        """Soft RCPT errors from two MX sessions end the attempt: the third MX is never contacted, deferred with the second's reply."""
        self.mx("example.test", "10 mx1.example.test.", "20 mx2.example.test.", "30 mx3.example.test.")
        mx1 = self.peer("mx1.example.test", replies={"RCPT": "451 4.3.0 mx1 busy"})
        mx2 = self.peer("mx2.example.test", replies={"RCPT": "451 4.3.0 mx2 busy"})
        mx3 = self.peer("mx3.example.test")
        relay = self.relay(queue={"retry_min": "1h", "retry_max": "1h"})
        qid = submit(relay, content("sessions"))
        st = self.status(relay, qid, "user@example.test")
        self.assertStatus(st, f"mx2.example.test[{mx2.host}]:25", "4.3.0", "deferred",
                          f"host mx2.example.test[{mx2.host}] said: 451 4.3.0 mx2 busy "
                          "(in reply to RCPT TO command)")
        relay.wait_for_log(rf"tlsrelay/smtp\[\d+\]: {qid}: host mx1\.example\.test\[{re.escape(mx1.host)}\] "
                           r"said: 451 4\.3\.0 mx1 busy \(in reply to RCPT TO command\)$")
        self.assertEqual(len(mx1.wait_for_sessions(1)), 1)
        self.assertEqual(len(mx2.wait_for_sessions(1)), 1)
        self.assertEqual(mx3.sessions, [])


# ------------------------------------------------------------------------------------------
# DNS outcomes
# ------------------------------------------------------------------------------------------

class DnsOutcomes(DeliveryCase):

    def test_null_mx_bounces_510_without_connecting(self):
        """A null MX (0 .) bounces 5.1.0 'does not accept mail (nullMX)' with relay=none [63]."""
        self.mx("null.test", "0 .")
        self.dns.add("null.test", "A", self.world.ports.address())  # must not be used
        relay = self.relay()
        qid = submit(relay, content("nullmx"), sender="", rcpts=["user@null.test"])
        self.assertStatus(self.status(relay, qid, "user@null.test"), "none", "5.1.0", "bounced",
                          "Domain null.test does not accept mail (nullMX)")
        self.wait_removed(relay, qid)
        self.assertFalse(self.dns.queried("null.test", "A"))

    def test_nxdomain_bounces_544_with_postfix_text(self):
        """A domain that does not exist bounces 5.4.4 with Postfix's 'Name service error ... type=AAAA: Host not found' [62]."""
        relay = self.relay()
        qid = submit(relay, content("nx"), sender="", rcpts=["user@nx.example.test"])
        self.assertStatus(self.status(relay, qid, "user@nx.example.test"), "none", "5.4.4", "bounced",
                          "Host or domain name not found. Name service error for name=nx.example.test "
                          "type=AAAA: Host not found")
        self.wait_removed(relay, qid)

    def test_servfail_defers_443_and_stays_queued(self):
        """An MX lookup SERVFAIL defers 4.4.3 ('Host not found, try again'), is retried with backoff and stays queued [61]."""
        self.dns.fail("sf.example.test", "MX", "SERVFAIL")
        relay = self.relay()
        qid = submit(relay, content("servfail"), rcpts=["user@sf.example.test"])
        reason = ("Host or domain name not found. Name service error for name=sf.example.test "
                  "type=MX: Host not found, try again")
        self.assertStatus(self.status(relay, qid, "user@sf.example.test"), "none", "4.4.3", "deferred", reason)
        second = self.status(relay, qid, "user@sf.example.test", nth=2, timeout=6)
        self.assertStatus(second, "none", "4.4.3", "deferred", reason)
        r = self.recipient_state(relay, qid, "user@sf.example.test", "deferred")
        self.assertEqual((r["status"], r["last_dsn"], r["last_reason"]), ("deferred", "4.4.3", reason))
        self.assertGreaterEqual(r["attempts"], 2)
        self.assertNotIn("sender non-delivery notification", relay.log_text())

    def test_mx_host_lookup_servfail_defers_443(self):
        """MX found but its host's address lookups SERVFAIL: deferred 4.4.3 naming the host, relay=none (as Postfix 3.7)."""
        self.mx("example.test", "10 mx1.example.test.")
        self.dns.fail("mx1.example.test", "*", "SERVFAIL")
        relay = self.relay(queue={"retry_min": "1h", "retry_max": "1h"})
        qid = submit(relay, content("asf"))
        self.assertStatus(self.status(relay, qid, "user@example.test"), "none", "4.4.3", "deferred",
                          "Host or domain name not found. Name service error for name=mx1.example.test "
                          "type=AAAA: Host not found, try again")
        relay.wait_for_log(r"warning: no MX host for example\.test has a valid address record$")

    def test_mx_host_without_address_bounces_544(self):
        """MX found but its host does not exist: bounced 5.4.4 naming the host (as Postfix 3.7)."""
        self.mx("example.test", "10 mx1.example.test.")
        relay = self.relay()
        qid = submit(relay, content("anx"), sender="")
        self.assertStatus(self.status(relay, qid, "user@example.test"), "none", "5.4.4", "bounced",
                          "Host or domain name not found. Name service error for name=mx1.example.test "
                          "type=AAAA: Host not found")
        relay.wait_for_log(r"warning: no MX host for example\.test has a valid address record$")

    def test_hard_lookup_error_after_a_soft_one_defers_444(self):
        """First MX host SERVFAIL, second NXDOMAIN: the hard error is downgraded, deferred 4.4.4 (as Postfix 3.7)."""
        self.mx("example.test", "10 mx1.example.test.", "20 mx2.example.test.")
        self.dns.fail("mx1.example.test", "*", "SERVFAIL")
        relay = self.relay(queue={"retry_min": "1h", "retry_max": "1h"})
        qid = submit(relay, content("softhard"))
        self.assertStatus(self.status(relay, qid, "user@example.test"), "none", "4.4.4", "deferred",
                          "Host or domain name not found. Name service error for name=mx2.example.test "
                          "type=AAAA: Host not found")

    def test_malformed_mx_answer_defers_443(self):
        """An MX answer with a compression pointer past its end is a temporary error: deferred 4.4.3, the relay keeps running [66]."""
        self.dns.fail("bad.example.test", "MX", "MALFORMED")
        relay = self.relay(queue={"retry_min": "1h", "retry_max": "1h"})
        qid = submit(relay, content("malformed"), rcpts=["user@bad.example.test"])
        self.assertStatus(self.status(relay, qid, "user@bad.example.test"), "none", "4.4.3", "deferred",
                          "Host or domain name not found. Name service error for name=bad.example.test "
                          "type=MX: Host not found, try again")
        self.assertTrue(relay.running())
        self.assertEqual(self.recipient_state(relay, qid, "user@bad.example.test", "deferred")["last_dsn"], "4.4.3")

    def self_relay(self):
        """A relay that also listens on port 25 of an address of its own; returns (relay,
        that address)."""
        own = self.world.ports.address("127.0.3")
        relay = self.relay(start=False, delivery={"port": 25}, queue={"retry_min": "1h", "retry_max": "1h"})
        relay.config["server"]["listen"] = [f"{relay.host}:{relay.port}", f"{own}:25"]
        return relay.start(), own

    def assertNeverConnectedToItself(self, relay):
        # the only SMTP client the relay ever saw is the test's submission
        self.assertEqual(len(re.findall(r"tlsrelay/smtpd\[\d+\]: connect from ", relay.log_text())), 1,
                         relay.log_text())

    def test_mx_pointing_at_the_relay_itself_bounces_546(self):
        """The best MX resolving to the relay's own listening address:25 bounces 5.4.6 'loops back to myself' [65]."""
        self.mx("loop.test", "10 self.loop.test.", "20 mx1.loop.test.")
        mx1 = self.peer("mx1.loop.test")
        relay, own = self.self_relay()
        self.dns.add("self.loop.test", "A", own)
        qid = submit(relay, content("loop"), sender="", rcpts=["user@loop.test"])
        self.assertStatus(self.status(relay, qid, "user@loop.test"), "none", "5.4.6", "bounced",
                          "mail for loop.test loops back to myself")
        self.wait_removed(relay, qid)
        self.assertNeverConnectedToItself(relay)
        self.assertEqual(mx1.sessions, [], "MX hosts not better than ourselves are dropped")

    def test_relay_as_secondary_mx_delivers_to_the_primary(self):
        """When the relay is a secondary MX it delivers to the better MX and never to itself (as Postfix 3.7)."""
        self.mx("loop.test", "10 mx1.loop.test.", "20 self.loop.test.")
        mx1 = self.peer("mx1.loop.test")
        relay, own = self.self_relay()
        self.dns.add("self.loop.test", "A", own)
        qid = submit(relay, content("secondary"), rcpts=["user@loop.test"])
        mx1.wait_for_messages(1)
        self.assertStatus(self.status(relay, qid, "user@loop.test"), f"mx1.loop.test[{mx1.host}]:25",
                          "2.0.0", "sent", "250 2.0.0 Ok: queued")
        self.assertNeverConnectedToItself(relay)

    def test_no_primary_address_with_the_relay_as_secondary_defers_444(self):
        """Best MX without an address and the relay the next: deferred 4.4.4 'unable to find primary relay' (as Postfix 3.7)."""
        self.mx("loop.test", "5 gone.loop.test.", "10 self.loop.test.", "20 mx1.loop.test.")
        mx1 = self.peer("mx1.loop.test")
        relay, own = self.self_relay()
        self.dns.add("self.loop.test", "A", own)
        qid = submit(relay, content("noprimary"), rcpts=["user@loop.test"])
        self.assertStatus(self.status(relay, qid, "user@loop.test"), "none", "4.4.4", "deferred",
                          "unable to find primary relay for loop.test")
        self.assertNeverConnectedToItself(relay)
        self.assertEqual(mx1.sessions, [])


class DnsTimeout(DeliveryCase):

    def test_mx_lookup_timeout_defers_443(self):
        """An MX query that is never answered defers 4.4.3 ('Host not found, try again') and stays queued [61]."""
        self.dns.fail("slow.example.test", "MX", "TIMEOUT")
        relay = self.relay(queue={"retry_min": "1h", "retry_max": "1h"})
        qid = submit(relay, content("timeout"), rcpts=["user@slow.example.test"])
        self.assertStatus(self.status(relay, qid, "user@slow.example.test", timeout=40), "none", "4.4.3",
                          "deferred", "Host or domain name not found. Name service error for "
                          "name=slow.example.test type=MX: Host not found, try again")
        r = self.recipient_state(relay, qid, "user@slow.example.test", "deferred")
        self.assertEqual((r["status"], r["last_dsn"]), ("deferred", "4.4.3"))


# ------------------------------------------------------------------------------------------
# Next hop: relayhost and routes
# ------------------------------------------------------------------------------------------

class NextHops(DeliveryCase):

    def test_bracketed_relayhost_with_port_skips_mx_lookup(self):
        """relayhost = "[127.0.1.N]:2525" sends every domain there without any DNS lookup."""
        peer = self.peer(port=2525)
        relay = self.relay(delivery={"relayhost": f"[{peer.host}]:2525"})
        body = content("relayhost", rcpt="user@elsewhere.test")
        qid = submit(relay, body, rcpts=["user@elsewhere.test"])
        [msg] = peer.wait_for_messages(1)
        self.assertStatus(self.status(relay, qid, "user@elsewhere.test"),
                          f"{peer.host}[{peer.host}]:2525", "2.0.0", "sent", "250 2.0.0 Ok: queued")
        self.assertDelivered(msg, body, SENDER, ["user@elsewhere.test"], relay)
        self.assertEqual(self.dns.queries, [])

    def test_unbracketed_relayhost_looks_up_mx_on_the_default_port(self):
        """relayhost = "smarthost.test" does an MX lookup and connects to the MX on delivery.port."""
        self.mx("smarthost.test", "10 mx.smarthost.test.")
        peer = self.peer("mx.smarthost.test", port=2526)
        relay = self.relay(delivery={"relayhost": "smarthost.test", "port": 2526})
        qid = submit(relay, content("smarthost"), rcpts=["user@elsewhere.test"])
        peer.wait_for_messages(1)
        self.assertStatus(self.status(relay, qid, "user@elsewhere.test"),
                          f"mx.smarthost.test[{peer.host}]:2526", "2.0.0", "sent", "250 2.0.0 Ok: queued")
        self.assertTrue(self.dns.queried("smarthost.test", "MX"))
        self.assertFalse(self.dns.queried("elsewhere.test", "MX"))

    def test_routes_override_relayhost_and_mx(self):
        """[[delivery.route]] entries (exact and .parent) win over relayhost; "[host]:port" is an A lookup only."""
        partner = self.peer("mx.partner.test", port=2527)
        sub = self.peer("hub.sub.test")
        self.mx("sub.test", "10 hub.sub.test.")
        fallback = self.peer(port=2528)
        relay = self.relay(delivery={"relayhost": f"[{fallback.host}]:2528"},
                           **{"delivery.route": [
                               {"destination": "partner.test", "nexthop": "[mx.partner.test]:2527"},
                               {"destination": ".sub.test", "nexthop": "sub.test"}]})
        rcpts = ["p@partner.test", "x@a.sub.test", "o@other.test"]
        qid = submit(relay, content("routes"), rcpts=rcpts)
        self.assertStatus(self.status(relay, qid, "p@partner.test"),
                          f"mx.partner.test[{partner.host}]:2527", "2.0.0", "sent", "250 2.0.0 Ok: queued")
        self.assertStatus(self.status(relay, qid, "x@a.sub.test"),
                          f"hub.sub.test[{sub.host}]:25", "2.0.0", "sent", "250 2.0.0 Ok: queued")
        self.assertStatus(self.status(relay, qid, "o@other.test"),
                          f"{fallback.host}[{fallback.host}]:2528", "2.0.0", "sent", "250 2.0.0 Ok: queued")
        self.assertEqual([m.rcpt_tos for m in partner.wait_for_messages(1)], [["p@partner.test"]])
        self.assertEqual([m.rcpt_tos for m in sub.wait_for_messages(1)], [["x@a.sub.test"]])
        self.assertEqual([m.rcpt_tos for m in fallback.wait_for_messages(1)], [["o@other.test"]])
        self.assertFalse(self.dns.queried("mx.partner.test", "MX"))
        self.assertFalse(self.dns.queried("partner.test", "MX"))


# ------------------------------------------------------------------------------------------
# Replies: per recipient, per message, per connection; bounces
# ------------------------------------------------------------------------------------------

class Replies(DeliveryCase):

    def setUp(self):
        super().setUp()
        self.mx("example.test", "10 mx1.example.test.")
        self.mx("sender.test", "10 mx.sender.test.")

    def test_rcpt_550_bounces_only_that_recipient_with_a_dsn(self):
        """A 550 to one RCPT bounces that recipient only; the others are sent; the sender gets an RFC 3464 report [70]."""
        bad = "bad@example.test"
        reply = f"550 5.1.1 <{bad}>: Recipient address rejected: User unknown"
        peer = self.peer("mx1.example.test", rcpt_replies={bad: reply})
        home = self.peer("mx.sender.test")
        relay = self.relay()
        body = content("rcpt550")
        rcpts = ["a@example.test", bad, "c@example.test"]
        qid = submit(relay, body, rcpts=rcpts)
        [msg] = peer.wait_for_messages(1)
        self.assertDelivered(msg, body, SENDER, ["a@example.test", "c@example.test"], relay)
        relay_field = f"mx1.example.test[{peer.host}]:25"
        self.assertStatus(self.status(relay, qid, bad), relay_field, "5.1.1", "bounced",
                          f"host mx1.example.test[{peer.host}] said: {reply} (in reply to RCPT TO command)")
        for r in ("a@example.test", "c@example.test"):
            self.assertStatus(self.status(relay, qid, r), relay_field, "2.0.0", "sent", "250 2.0.0 Ok: queued")
        m = relay.wait_for_log(rf"tlsrelay/bounce\[\d+\]: {qid}: sender non-delivery notification: (\w+)$")
        bounce_id = m.group(1)
        [dsn] = home.wait_for_messages(1)
        self.assertStatus(self.status(relay, bounce_id, SENDER), f"mx.sender.test[{home.host}]:25",
                          "2.0.0", "sent", "250 2.0.0 Ok: queued")
        self.assertEqual((dsn.mail_from, dsn.rcpt_tos), ("", [SENDER]))
        text = dsn.data.decode("utf-8", "replace")
        self.assertRegex(text, r"(?m)^Content-Type: multipart/report; report-type=delivery-status;")
        self.assertRegex(text, r"(?m)^Content-Type: message/delivery-status\r$")
        self.assertRegex(text, rf"(?m)^Final-Recipient: rfc822; {re.escape(bad)}\r$")
        self.assertRegex(text, r"(?m)^Action: failed\r$")
        self.assertRegex(text, r"(?m)^Status: 5\.1\.1\r$")
        self.assertRegex(text, rf"(?m)^Diagnostic-Code: smtp; {re.escape(reply)}\r$")
        headers = body.split(b"\r\n\r\n", 1)[0]
        self.assertIn(headers.decode(), text, "the original headers are returned")
        self.assertNotIn("token rcpt550", text, "only the headers are returned")
        self.assertEqual(text.count("Final-Recipient:"), 1, "only the failed recipient is reported")
        self.wait_removed(relay, qid)

    def test_null_sender_bounce_generates_no_dsn(self):
        """A message from <> whose recipient is rejected is bounced without a notification to anybody."""
        peer = self.peer("mx1.example.test", replies={"RCPT": "550 5.1.1 no such user"})
        home = self.peer("mx.sender.test")
        relay = self.relay()
        qid = submit(relay, content("nullsender"), sender="")
        self.assertStatus(self.status(relay, qid, "user@example.test"), f"mx1.example.test[{peer.host}]:25",
                          "5.1.1", "bounced", f"host mx1.example.test[{peer.host}] said: 550 5.1.1 no such user "
                          "(in reply to RCPT TO command)")
        self.wait_removed(relay, qid)
        self.assertNotIn("sender non-delivery notification", relay.log_text())
        self.assertEqual(relay.queue(), [])
        self.assertEqual(home.sessions, [])
        self.assertEqual(peer.messages, [])

    def test_all_recipients_rejected_sends_no_message_data(self):
        """When every RCPT is rejected no message data is sent; both recipients bounce and the session ends with QUIT."""
        peer = self.peer("mx1.example.test", replies={"RCPT": "550 5.7.1 relay denied"})
        relay = self.relay()
        qid = submit(relay, content("allrejected"), sender="", rcpts=["a@example.test", "b@example.test"])
        for r in ("a@example.test", "b@example.test"):
            self.assertStatus(self.status(relay, qid, r), f"mx1.example.test[{peer.host}]:25", "5.7.1",
                              "bounced", f"host mx1.example.test[{peer.host}] said: 550 5.7.1 relay denied "
                              "(in reply to RCPT TO command)")
        sess = peer.wait_for_sessions(1)[0]
        self.assertNotIn(".", sess.commands, "no message data after all recipients were rejected")
        self.assertEqual((sess.commands[-1], sess.ended), ("QUIT", "QUIT"), sess.commands)
        self.assertEqual(peer.messages, [])

    def test_pipelining_is_used_when_offered(self):
        """With PIPELINING offered, MAIL, RCPT and DATA reach the server together (RFC 2920)."""
        peer = self.peer("mx1.example.test")
        relay = self.relay()
        qid = submit(relay, content("pipe"), rcpts=["a@example.test", "b@example.test"])
        peer.wait_for_messages(1)
        self.status(relay, qid, "b@example.test", "sent")
        sess = peer.wait_for_sessions(1)[0]
        self.assertTrue(sess.pipelined, sess.commands)

    def test_lock_step_without_pipelining(self):
        """Without PIPELINING every command waits for its reply; the mail is delivered byte-exact."""
        peer = self.peer("mx1.example.test", pipelining=False)
        relay = self.relay()
        body = content("lockstep")
        qid = submit(relay, body, rcpts=["a@example.test", "b@example.test"])
        [msg] = peer.wait_for_messages(1)
        self.assertStatus(self.status(relay, qid, "b@example.test"), f"mx1.example.test[{peer.host}]:25",
                          "2.0.0", "sent", "250 2.0.0 Ok: queued")
        self.assertDelivered(msg, body, SENDER, ["a@example.test", "b@example.test"], relay)
        sess = peer.wait_for_sessions(1)[0]
        self.assertFalse(sess.pipelined, sess.commands)

    def test_soft_rcpt_error_on_a_non_final_mx_tries_the_next_for_that_recipient(self):
        """451 to one RCPT at the first MX: the others are sent there, that recipient goes to the next MX in the same attempt."""
        self.mx("example.test", "20 mx2.example.test.")
        mx1 = self.peer("mx1.example.test", rcpt_replies={"b@example.test": "451 4.3.0 later"})
        mx2 = self.peer("mx2.example.test")
        relay = self.relay()
        body = content("mixed")
        qid = submit(relay, body, rcpts=["a@example.test", "b@example.test"])
        self.assertStatus(self.status(relay, qid, "a@example.test"), f"mx1.example.test[{mx1.host}]:25",
                          "2.0.0", "sent", "250 2.0.0 Ok: queued")
        self.assertStatus(self.status(relay, qid, "b@example.test"), f"mx2.example.test[{mx2.host}]:25",
                          "2.0.0", "sent", "250 2.0.0 Ok: queued")
        relay.wait_for_log(rf"tlsrelay/smtp\[\d+\]: {qid}: host mx1\.example\.test\[{re.escape(mx1.host)}\] said: "
                           r"451 4\.3\.0 later \(in reply to RCPT TO command\)$")
        [m1] = mx1.wait_for_messages(1)
        [m2] = mx2.wait_for_messages(1)
        self.assertDelivered(m1, body, SENDER, ["a@example.test"], relay)
        self.assertDelivered(m2, body, SENDER, ["b@example.test"], relay)

    def test_5xx_to_mail_from_bounces_without_trying_the_next_mx(self):
        """553 to MAIL FROM is a hard error: bounced at once with 'in reply to MAIL FROM command', the next MX never contacted."""
        self.mx("example.test", "20 mx2.example.test.")
        mx1 = self.peer("mx1.example.test", replies={"MAIL": "553 5.7.1 sender rejected"})
        mx2 = self.peer("mx2.example.test")
        relay = self.relay()
        qid = submit(relay, content("mail553"), sender="")
        self.assertStatus(self.status(relay, qid, "user@example.test"), f"mx1.example.test[{mx1.host}]:25",
                          "5.7.1", "bounced", f"host mx1.example.test[{mx1.host}] said: 553 5.7.1 sender rejected "
                          "(in reply to MAIL FROM command)")
        self.wait_removed(relay, qid)
        self.assertEqual(mx2.sessions, [])
        self.assertNotIn(".", mx1.wait_for_sessions(1)[0].commands)

    def test_5xx_at_end_of_data_bounces(self):
        """554 after the final dot bounces with 'in reply to end of DATA command'."""
        mx1 = self.peer("mx1.example.test", replies={"DOT": "554 5.7.1 spam"})
        relay = self.relay()
        qid = submit(relay, content("dot554"), sender="")
        self.assertStatus(self.status(relay, qid, "user@example.test"), f"mx1.example.test[{mx1.host}]:25",
                          "5.7.1", "bounced", f"host mx1.example.test[{mx1.host}] said: 554 5.7.1 spam "
                          "(in reply to end of DATA command)")
        self.wait_removed(relay, qid)

    def test_lost_connection_at_each_stage_defers_442(self):
        """A server that closes at the banner, after EHLO or after RCPT: deferred 4.4.2 'lost connection ... while <stage>' (texts as Postfix 3.7)."""
        stages = {"CONNECT": "receiving the initial server greeting", "EHLO": "performing the EHLO handshake",
                  "RCPT": "sending RCPT TO"}
        peers, rcpts = {}, []
        for stage in stages:
            d = f"{stage.lower()}.test"
            self.mx(d, f"10 mx.{d}.")
            peers[stage] = self.peer(f"mx.{d}", drop=[stage])
            rcpts.append(f"user@{d}")
        relay = self.relay(queue={"retry_min": "1h", "retry_max": "1h"})
        qid = submit(relay, content("drops"), rcpts=rcpts)
        for (stage, what), rcpt in zip(stages.items(), rcpts):
            host = peers[stage].host
            d = rcpt.split("@")[1]
            self.assertStatus(self.status(relay, qid, rcpt), f"mx.{d}[{host}]:25", "4.4.2", "deferred",
                              f"lost connection with mx.{d}[{host}] while {what}")
            self.assertEqual(peers[stage].messages, [])

    def test_5xx_to_data_bounces(self):
        """554 to the DATA command bounces with 'in reply to DATA command'; no message data is sent."""
        mx1 = self.peer("mx1.example.test", replies={"DATA": "554 5.5.1 no data for you"})
        relay = self.relay()
        qid = submit(relay, content("data554"), sender="")
        self.assertStatus(self.status(relay, qid, "user@example.test"), f"mx1.example.test[{mx1.host}]:25",
                          "5.5.1", "bounced", f"host mx1.example.test[{mx1.host}] said: 554 5.5.1 no data for you "
                          "(in reply to DATA command)")
        self.assertNotIn(".", mx1.wait_for_sessions(1)[0].commands)

    def test_452_defers_the_excess_recipient_until_the_next_attempt(self):
        """452 4.5.3 to the second RCPT: the first is sent, the second deferred and sent by the retry; each exactly once [69]."""
        peer = self.peer("mx1.example.test", rcpt_limit=1)
        relay = self.relay()
        body = content("452")
        qid = submit(relay, body, rcpts=["a@example.test", "b@example.test"])
        relay_field = f"mx1.example.test[{peer.host}]:25"
        self.assertStatus(self.status(relay, qid, "a@example.test"), relay_field, "2.0.0", "sent",
                          "250 2.0.0 Ok: queued")
        self.assertStatus(self.status(relay, qid, "b@example.test"), relay_field, "4.5.3", "deferred",
                          f"host mx1.example.test[{peer.host}] said: 452 4.5.3 Error: too many recipients "
                          "(in reply to RCPT TO command)")
        self.assertStatus(self.status(relay, qid, "b@example.test", "sent", timeout=8), relay_field, "2.0.0",
                          "sent", "250 2.0.0 Ok: queued")
        msgs = peer.wait_for_messages(2)
        self.assertEqual([m.rcpt_tos for m in msgs], [["a@example.test"], ["b@example.test"]])
        for m in msgs:
            self.assertDelivered(m, body, SENDER, m.rcpt_tos, relay)
        self.wait_removed(relay, qid)
        self.assertEqual(len(self.statuses(relay, qid, "a@example.test")), 1)

    def test_4xx_at_end_of_data_defers_then_retries(self):
        """451 after the final dot defers with Postfix's 'in reply to end of DATA command'; the retry delivers."""
        peer = self.peer("mx1.example.test", replies={"DOT": "451 4.3.0 Error: queue file write error"})
        relay = self.relay()
        body = content("dot451")
        qid = submit(relay, body)
        relay_field = f"mx1.example.test[{peer.host}]:25"
        self.assertStatus(self.status(relay, qid, "user@example.test"), relay_field, "4.3.0", "deferred",
                          f"host mx1.example.test[{peer.host}] said: 451 4.3.0 Error: queue file write error "
                          "(in reply to end of DATA command)")
        self.assertEqual(self.recipient_state(relay, qid, "user@example.test", "deferred")["status"], "deferred")
        peer.replies.pop("DOT")
        self.assertStatus(self.status(relay, qid, "user@example.test", "sent", timeout=8), relay_field,
                          "2.0.0", "sent", "250 2.0.0 Ok: queued")
        [msg] = peer.wait_for_messages(1)
        self.assertDelivered(msg, body, SENDER, ["user@example.test"], relay)

    def test_connection_dropped_after_dot_defers_and_redelivers(self):
        """A server that closes after the final dot without a reply: deferred 4.4.2, never marked sent, redelivered later [71]."""
        peer = self.peer("mx1.example.test", drop=["DOT"])
        relay = self.relay()
        body = content("dropdot")
        qid = submit(relay, body)
        self.assertStatus(self.status(relay, qid, "user@example.test"), "mx1.example.test"
                          f"[{peer.host}]:25", "4.4.2", "deferred",
                          f"lost connection with mx1.example.test[{peer.host}] while sending end of data"
                          " -- message may be sent more than once")
        self.assertEqual(self.recipient_state(relay, qid, "user@example.test", "deferred")["status"], "deferred")
        peer.drop.clear()
        self.assertStatus(self.status(relay, qid, "user@example.test", "sent", timeout=8),
                          f"mx1.example.test[{peer.host}]:25", "2.0.0", "sent", "250 2.0.0 Ok: queued")
        [msg] = peer.wait_for_messages(1)
        self.assertDelivered(msg, body, SENDER, ["user@example.test"], relay)
        self.wait_removed(relay, qid)

    def test_message_over_the_servers_size_bounces_534(self):
        """A server whose SIZE is below the message size gets no MAIL FROM; the recipient bounces 5.3.4 [73]."""
        peer = self.peer("mx1.example.test", size=100)
        relay = self.relay()
        qid = submit(relay, content("size"), sender="")
        st = self.status(relay, qid, "user@example.test")
        self.assertStatus(st, f"mx1.example.test[{peer.host}]:25", "5.3.4", "bounced",
                          re.compile(rf"^message size (\d+) exceeds size limit 100 of server "
                                     rf"mx1\.example\.test\[{re.escape(peer.host)}\]$"))
        self.assertGreater(int(re.match(r"message size (\d+)", st["reason"]).group(1)), 100)
        sess = peer.wait_for_sessions(1)[0]
        self.assertFalse([c for c in sess.commands if c.upper().startswith(("MAIL", "RCPT", "DATA"))],
                         sess.commands)
        self.assertEqual(peer.messages, [])


# ------------------------------------------------------------------------------------------
# STARTTLS as seen from the peer
# ------------------------------------------------------------------------------------------

class StartTls(DeliveryCase):

    def setUp(self):
        super().setUp()
        self.mx("example.test", "10 mx1.example.test.")
        self.cert = pki.get_pki().leaf(dns=["mx1.example.test"])

    def test_may_without_starttls_sends_in_plaintext(self):
        """Level may and a server without STARTTLS: sent in clear."""
        peer = self.peer("mx1.example.test")
        relay = self.relay(tls={"security_level": "may"})
        body = content("may-plain")
        qid = submit(relay, body)
        [msg] = peer.wait_for_messages(1)
        self.assertStatus(self.status(relay, qid, "user@example.test"), f"mx1.example.test[{peer.host}]:25",
                          "2.0.0", "sent", "250 2.0.0 Ok: queued")
        self.assertFalse(msg.tls)
        self.assertDelivered(msg, body, SENDER, ["user@example.test"], relay)

    def test_may_with_starttls_uses_tls(self):
        """Level may and a server offering STARTTLS: the mail goes over TLS, EHLO is repeated inside TLS."""
        peer = self.peer("mx1.example.test", cert=self.cert)
        relay = self.relay(tls={"security_level": "may"})
        body = content("may-tls")
        qid = submit(relay, body)
        [msg] = peer.wait_for_messages(1)
        self.assertStatus(self.status(relay, qid, "user@example.test"), f"mx1.example.test[{peer.host}]:25",
                          "2.0.0", "sent", "250 2.0.0 Ok: queued")
        self.assertTrue(msg.tls)
        self.assertEqual(msg.tls_version, "TLSv1.3")
        self.assertDelivered(msg, body, SENDER, ["user@example.test"], relay)
        relay.wait_for_log(rf"(Anonymous|Untrusted|Trusted|Verified) TLS connection established to "
                           rf"mx1\.example\.test\[{re.escape(peer.host)}\]:25: TLSv1\.3 with cipher ")
        cmds = peer.wait_for_sessions(1)[0].commands
        self.assertEqual(cmds[:3], [f"EHLO {relay.hostname}", "STARTTLS", f"EHLO {relay.hostname}"])

    def test_bytes_after_the_starttls_220_are_discarded(self):
        """'220 Ready\\r\\n250 injected\\r\\n' in one segment: the injected line is ignored and EHLO is answered inside TLS [76]."""
        peer = self.peer("mx1.example.test", cert=self.cert, inject_after_starttls="250 injected\r\n")
        relay = self.relay(tls={"security_level": "may"})
        body = content("inject")
        qid = submit(relay, body)
        [msg] = peer.wait_for_messages(1)
        self.assertStatus(self.status(relay, qid, "user@example.test"), f"mx1.example.test[{peer.host}]:25",
                          "2.0.0", "sent", "250 2.0.0 Ok: queued")
        self.assertTrue(msg.tls)
        self.assertDelivered(msg, body, SENDER, ["user@example.test"], relay)
        sess = peer.wait_for_sessions(1)[0]
        verbs = [c.split(" ")[0].split(":")[0] for c in sess.commands]
        self.assertEqual(verbs, ["EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "DATA", ".", "QUIT"], sess.commands)
        self.assertNotIn("injected", relay.log_text())

    def test_encrypt_with_starttls_sends_over_tls(self):
        """Level encrypt and a server offering STARTTLS: delivered inside TLS, no MAIL FROM before it."""
        peer = self.peer("mx1.example.test", cert=self.cert)
        relay = self.relay(tls={"security_level": "encrypt"})
        body = content("encrypt-tls")
        qid = submit(relay, body)
        [msg] = peer.wait_for_messages(1)
        self.assertStatus(self.status(relay, qid, "user@example.test"), f"mx1.example.test[{peer.host}]:25",
                          "2.0.0", "sent", "250 2.0.0 Ok: queued")
        self.assertTrue(msg.tls)
        self.assertDelivered(msg, body, SENDER, ["user@example.test"], relay)
        cmds = peer.wait_for_sessions(1)[0].commands
        self.assertEqual(cmds[:3], [f"EHLO {relay.hostname}", "STARTTLS", f"EHLO {relay.hostname}"])

    def test_none_never_starts_tls(self):
        """Level none: STARTTLS is offered but never used; the mail goes in clear."""
        peer = self.peer("mx1.example.test", cert=self.cert)
        relay = self.relay(tls={"security_level": "none"})
        body = content("none")
        qid = submit(relay, body)
        [msg] = peer.wait_for_messages(1)
        self.assertStatus(self.status(relay, qid, "user@example.test"), f"mx1.example.test[{peer.host}]:25",
                          "2.0.0", "sent", "250 2.0.0 Ok: queued")
        self.assertFalse(msg.tls)
        self.assertNotIn("STARTTLS", peer.wait_for_sessions(1)[0].commands)
        self.assertDelivered(msg, body, SENDER, ["user@example.test"], relay)

    def test_encrypt_without_starttls_defers_474_and_sends_no_mail_from(self):
        """Level encrypt and no STARTTLS offered: deferred 4.7.4 and the peer never sees MAIL FROM in plaintext [74]."""
        peer = self.peer("mx1.example.test")
        relay = self.relay(tls={"security_level": "encrypt"}, queue={"retry_min": "1h", "retry_max": "1h"})
        qid = submit(relay, content("encrypt"))
        self.assertStatus(self.status(relay, qid, "user@example.test"), f"mx1.example.test[{peer.host}]:25",
                          "4.7.4", "deferred",
                          f"TLS is required, but was not offered by host mx1.example.test[{peer.host}]")
        for sess in peer.wait_for_sessions(1):
            self.assertFalse([c for c in sess.commands if c.upper().startswith(("MAIL", "RCPT", "DATA"))],
                             sess.commands)
        self.assertEqual(peer.messages, [])
        self.assertEqual(self.recipient_state(relay, qid, "user@example.test", "deferred")["last_dsn"], "4.7.4")


# ------------------------------------------------------------------------------------------
# The queue: flush, expiry, shutdown
# ------------------------------------------------------------------------------------------

class Scheduling(DeliveryCase):

    def setUp(self):
        super().setUp()
        self.mx("example.test", "10 mx1.example.test.")
        self.mx("sender.test", "10 mx.sender.test.")

    def test_queue_flush_retries_within_a_second_or_two(self):
        """`tlsrelay queue flush` makes the running daemon retry a deferred message at once (retry_min is 1h)."""
        peer = self.peer("mx1.example.test", replies={"RCPT": "451 4.3.0 try later"})
        relay = self.relay(queue={"retry_min": "1h", "retry_max": "1h"})
        body = content("flush")
        qid = submit(relay, body)
        self.status(relay, qid, "user@example.test", "deferred")
        # the attempt is over once its state is in the spool; a flush before that races
        # with the daemon's own update (as postqueue -f does not touch an active message)
        self.recipient_state(relay, qid, "user@example.test", "deferred")
        peer.replies.pop("RCPT")
        mark = relay.log_mark()
        t0 = time.monotonic()
        relay.cli("queue", "flush")
        [msg] = peer.wait_for_messages(1, timeout=5)
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, 2.5, "the daemon acts on a flush within a second or so")
        self.assertStatus(self.status(relay, qid, "user@example.test", since=mark),
                          f"mx1.example.test[{peer.host}]:25", "2.0.0", "sent", "250 2.0.0 Ok: queued")
        self.assertDelivered(msg, body, SENDER, ["user@example.test"], relay)

    def test_backoff_doubles_from_retry_min_up_to_retry_max(self):
        """Deferred attempts are retried after retry_min, then twice as long each time, never longer than retry_max (2s, 4s, 8s, 8s)."""
        self.dns.fail("sf.example.test", "MX", "SERVFAIL")
        # next_attempt counts from the whole second of the attempt, so the first retry may
        # come a second early: with retry_min 1s that left the spool row of attempt 1 a
        # fraction of a second to be read before attempt 2 replaced it (missed under ASan
        # on a loaded machine). 2s leaves at least one.
        relay = self.relay(queue={"retry_min": "2s", "retry_max": "8s"})
        rcpt = "user@sf.example.test"
        qid = submit(relay, content("backoff"), rcpts=[rcpt])
        waits = []
        for n in range(1, 5):
            st = self.status(relay, qid, rcpt, nth=n, timeout=20)
            self.assertEqual((st["dsn"], st["status"]), ("4.4.3", "deferred"), st["line"])
            deadline = time.monotonic() + 5
            while True:  # the spool row of this attempt (written right after its status line)
                row = self.recipient_state(relay, qid, rcpt)
                if row["attempts"] >= n or time.monotonic() > deadline:
                    break
                time.sleep(0.05)  # polling the spool through the CLI: there is no event to wait on
            self.assertEqual(row["attempts"], n, row)
            # next attempt, relative to the second the attempt was logged in
            logged = time.mktime(time.strptime(f"{time.localtime().tm_year} {st['line'][:15]}",
                                               "%Y %b %d %H:%M:%S"))
            waits.append(int(row["next_attempt"] - logged))
        # the log second may be one later than the one the next attempt was computed from;
        # linear growth (2, 4, 6, 8) fails the third
        for got, want in zip(waits, [2, 4, 8, 8]):
            self.assertIn(got, (want - 1, want), waits)

    def test_expiry_at_max_lifetime_bounces_to_the_sender(self):
        """A recipient still deferred after queue.max_lifetime is returned to the sender ('status=expired')."""
        peer = self.peer("mx1.example.test", replies={"RCPT": "451 4.3.0 try later"})
        home = self.peer("mx.sender.test")
        relay = self.relay(queue={"retry_min": "1s", "retry_max": "1s", "max_lifetime": "2s"})
        body = content("expiry")
        qid = submit(relay, body)
        relay.wait_for_log(rf"tlsrelay/qmgr\[\d+\]: {qid}: from=<{re.escape(SENDER)}>, status=expired, "
                           r"returned to sender$", timeout=10)
        st = self.statuses(relay, qid, "user@example.test")
        self.assertTrue(st and all(s["status"] == "deferred" for s in st), st)
        self.assertStatus(st[-1], f"mx1.example.test[{peer.host}]:25", "4.3.0", "deferred",
                          f"host mx1.example.test[{peer.host}] said: 451 4.3.0 try later "
                          "(in reply to RCPT TO command)")
        [dsn] = home.wait_for_messages(1)
        self.assertEqual((dsn.mail_from, dsn.rcpt_tos), ("", [SENDER]))
        text = dsn.data.decode("utf-8", "replace")
        self.assertRegex(text, r"(?m)^Final-Recipient: rfc822; user@example\.test\r$")
        self.assertRegex(text, r"(?m)^Action: failed\r$")
        self.assertRegex(text, r"(?m)^Status: 4\.3\.0\r$")
        self.assertIn("Subject: delivery expiry", text)
        self.wait_removed(relay, qid)
        self.assertEqual(peer.messages, [])

    def test_sigterm_during_delivery_loses_nothing(self):
        """SIGTERM while the server holds the final dot: exit 0, recipient still queued, delivered after restart [58]."""
        peer = self.peer("mx1.example.test", stall=["DOT"])
        relay = self.relay()
        body = content("sigterm")
        qid = submit(relay, body)
        peer.wait_for_command(".", timeout=10)
        self.assertEqual(relay.stop(timeout=5), 0)  # at once, not after the 10-minute data timeout
        self.assertEqual([s for s in self.statuses(relay, qid, "user@example.test") if s["status"] == "sent"], [])
        r = self.recipient_state(relay, qid, "user@example.test")
        self.assertIn(r["status"], ("queued", "deferred"))
        peer.stall.clear()
        mark = relay.log_mark()
        relay.start()
        self.assertStatus(self.status(relay, qid, "user@example.test", "sent", since=mark, timeout=10),
                          f"mx1.example.test[{peer.host}]:25", "2.0.0", "sent", "250 2.0.0 Ok: queued")
        msgs = peer.wait_for_messages(1)
        self.assertGreaterEqual(len(msgs), 1)
        for m in msgs:
            self.assertDelivered(m, body, SENDER, ["user@example.test"], relay)
        self.wait_removed(relay, qid, since=mark)
        self.assertEqual(relay.queue(), [])
        self.assertEqual(len([s for s in self.statuses(relay, qid, "user@example.test") if s["status"] == "sent"]),
                         1, "marked sent exactly once")


# ------------------------------------------------------------------------------------------
# Postfix in front of tlsrelay
# ------------------------------------------------------------------------------------------

class PostfixInFront(DeliveryCase):

    def test_postfix_relayhost_hands_mail_to_tlsrelay_which_delivers(self):
        """Postfix 3.7 with relayhost = [127.0.0.1]:PORT hands mail to tlsrelay, which delivers it to the MX."""
        from postfix_oracle import PostfixOracle
        self.mx("example.test", "10 mx1.example.test.")
        peer = self.peer("mx1.example.test")
        relay = self.relay()
        oracle = PostfixOracle(self.world, self.dns)
        body = content("postfix", sender="sender@client.tlsrelay.invalid")
        [pf] = oracle.deliver({"recipients": ["user@example.test"], "sender": "sender@client.tlsrelay.invalid",
                               "body": body, "main": {"relayhost": f"[127.0.0.1]:{relay.port}"}})
        self.assertEqual((pf["relay"], pf["dsn"], pf["status"]),
                         (f"127.0.0.1[127.0.0.1]:{relay.port}", "2.0.0", "sent"), pf["line"])
        m = re.fullmatch(r"250 2\.0\.0 Ok: queued as (\w+)", pf["reason"])
        self.assertTrue(m, pf["line"])
        qid = m.group(1)
        [msg] = peer.wait_for_messages(1)
        self.assertStatus(self.status(relay, qid, "user@example.test"), f"mx1.example.test[{peer.host}]:25",
                          "2.0.0", "sent", "250 2.0.0 Ok: queued")
        self.assertEqual((msg.mail_from, msg.rcpt_tos), ("sender@client.tlsrelay.invalid", ["user@example.test"]))
        # Postfix adds its own Received: and Message-ID-less headers stay; our content follows unchanged
        self.assertTrue(msg.data.endswith(body.split(b"\r\n\r\n", 1)[1]), msg.data[-400:])
        self.assertIn(b"Subject: delivery postfix\r\n", msg.data)
        self.assertEqual(msg.data.count(b"Received: "), 2, "Postfix's and ours")


if __name__ == "__main__":
    unittest.main()

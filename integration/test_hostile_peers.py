"""Outbound delivery against hostile or broken peers: the rows of docs/checklist.md §H/I
that test_delivery.py leaves open.

Each test runs the real tlsrelay against a DNS server and SMTP peers on private loopback
addresses (world.py) and asserts the relay's Postfix status line and what the peers got.
Checklist item numbers of security-and-durability.md §5 are in brackets.
Run: TLSRELAY_BIN=build/relay/tlsrelay /usr/bin/python3 -m unittest -v test_hostile_peers
"""

from __future__ import annotations

import re
import unittest

from test_delivery import SENDER, DeliveryCase, content, submit
from world import RawSmtp, dot_stuff, queued_id

RCPT = "user@example.test"


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
    LOGGED = "j??rgen@example.test"  # the log replaces every non-ASCII byte with '?'

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
        [dsn] = home.wait_for_messages(1)
        self.assertEqual((dsn.mail_from, dsn.rcpt_tos), ("", [SENDER]))
        self.assertRegex(dsn.data.decode("utf-8", "replace"), r"(?m)^Status: 5\.6\.7\r$")
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


if __name__ == "__main__":
    unittest.main()

"""A server that sends a line that is no SMTP reply inside a pipelined transaction.

Checklist §5 H item 72 of security-and-durability.md: garbage, then valid codes, while
tlsrelay pipelines MAIL, RCPT and DATA. tlsrelay gives up on the connection and defers
(4.5.0 "non-ESMTP response from HOST[ADDR] while STAGE: LINE"); a later reply is never
taken as the reply to end of data, so nothing is marked sent that the server did not
accept. Postfix 3.7 differs on purpose here (smtp_chat.c glues the garbage to the next
reply and only warns "non-ESMTP response"); `GarbageVsPostfix` shows the mail it loses
that way, which is why tlsrelay does not copy it.
Run: TLSRELAY_BIN=build/relay/tlsrelay /usr/bin/python3 -m unittest -v test_pipelining
"""

from __future__ import annotations

import unittest

from test_delivery import SENDER, DeliveryCase, content, submit

GARBAGE = "this is garbage"
RCPT = "user@example.test"
STAGES = {"MAIL": "sending MAIL FROM", "DATA": "sending DATA",
          "DOT": "sending end of data"}


class GarbageInPipelinedReplies(DeliveryCase):

    def setUp(self):
        super().setUp()
        self.mx("example.test", "10 mx1.example.test.")

    def deferred_for_garbage(self, stage: str, **behaviour):
        """Submits one message for a peer that misbehaves as told; returns (relay, qid,
        peer, body, relay field) once the deferral with the protocol-error reason is
        logged and the recipient is still queued. No retry comes before a flush."""
        peer = self.peer("mx1.example.test", **behaviour)
        relay = self.relay(queue={"retry_min": "1h", "retry_max": "1h"})
        body = content(f"garbage-{stage.lower()}")
        qid = submit(relay, body)
        field = f"mx1.example.test[{peer.host}]:25"
        reason = f"non-ESMTP response from mx1.example.test[{peer.host}] while {STAGES[stage]}: {GARBAGE}"
        if stage == "DOT":
            reason += " -- message may be sent more than once"
        self.assertStatus(self.status(relay, qid, RCPT), field, "4.5.0", "deferred", reason)
        self.assertEqual([s for s in self.statuses(relay, qid, RCPT) if s["status"] == "sent"], [])
        self.assertIn(self.recipient_state(relay, qid, RCPT)["status"], ("queued", "deferred"))
        self.assertTrue(peer.sessions[0].pipelined, "MAIL, RCPT and DATA were not pipelined")
        return relay, qid, peer, body, field

    def delivered_after_repair(self, relay, qid, peer, body, field, expected_copies: int):
        peer.garbage_before.clear()
        peer.replies.clear()
        relay.cli("queue", "flush")
        self.assertStatus(self.status(relay, qid, RCPT, "sent", timeout=10), field, "2.0.0", "sent",
                          "250 2.0.0 Ok: queued")
        msgs = peer.wait_for_messages(expected_copies)
        for m in msgs:
            self.assertDelivered(m, body, SENDER, [RCPT], relay)
        self.wait_removed(relay, qid)
        self.assertEqual(len(peer.messages), expected_copies)

    def test_garbage_before_the_mail_reply_defers(self):
        """Garbage, then 250 250 354 to a pipelined MAIL/RCPT/DATA: deferred 4.5.0 before any message data is sent; delivered once the server is sane [72]."""
        relay, qid, peer, body, field = self.deferred_for_garbage("MAIL", garbage_before={"MAIL": GARBAGE})
        self.assertNotIn(".", peer.sessions[0].commands, "message data sent after a protocol error")
        self.delivered_after_repair(relay, qid, peer, body, field, 1)

    def test_garbage_before_the_data_reply_defers(self):
        """250 250, garbage, 354: deferred 4.5.0, the 354 is not taken as the DATA reply, no message data is sent [72]."""
        relay, qid, peer, body, field = self.deferred_for_garbage("DATA", garbage_before={"DATA": GARBAGE})
        self.assertNotIn(".", peer.sessions[0].commands, "message data sent after a protocol error")
        self.delivered_after_repair(relay, qid, peer, body, field, 1)

    def test_garbage_as_the_end_of_data_reply_is_never_taken_as_sent(self):
        """Garbage as the only reply to the final dot (a client that read on would take the QUIT reply for it): deferred 4.5.0, never marked sent; the retry delivers [72]."""
        relay, qid, peer, body, field = self.deferred_for_garbage("DOT", replies={"DOT": GARBAGE})
        self.assertEqual(peer.messages, [], "the server accepted nothing")
        self.delivered_after_repair(relay, qid, peer, body, field, 1)

    def test_garbage_before_the_end_of_data_reply_defers_and_redelivers(self):
        """Garbage, then 250 after the final dot: deferred 4.5.0 (not sent); the retry delivers again, a duplicate rather than a guess [72]."""
        relay, qid, peer, body, field = self.deferred_for_garbage("DOT", garbage_before={"DOT": GARBAGE})
        self.delivered_after_repair(relay, qid, peer, body, field, 2)


class GarbageVsPostfix(DeliveryCase):

    def test_postfix_takes_the_quit_reply_as_the_end_of_data_reply(self):
        """Postfix 3.7 logs status=sent '(this is garbage 221 2.0.0 Bye)' for mail the server never accepted; tlsrelay defers the same case [72]."""
        from postfix_oracle import PostfixOracle
        self.mx("example.test", "10 mx1.example.test.")
        peer = self.peer("mx1.example.test", replies={"DOT": GARBAGE})
        [pf] = PostfixOracle(self.world, self.dns).deliver({"recipients": [RCPT]})
        self.assertEqual((pf["relay"], pf["dsn"], pf["status"], pf["reason"]),
                         (f"mx1.example.test[{peer.host}]:25", "2.0.0", "sent",
                          f"{GARBAGE} 221 2.0.0 Bye"), pf["line"])
        self.assertEqual(peer.messages, [], "the server accepted nothing, yet Postfix says sent")
        relay = self.relay()
        qid = submit(relay, content("garbage-vs-postfix"))
        st = self.status(relay, qid, RCPT)
        self.assertEqual((st["dsn"], st["status"]), ("4.5.0", "deferred"), st["line"])
        self.assertEqual(peer.messages, [])


if __name__ == "__main__":
    unittest.main()

"""Dead destinations: Postfix's "delivery temporarily suspended" throttling, end to end.

Postfix's queue manager (src/qmgr/qmgr_queue.c, qmgr_deliver.c) counts each site
failure of a destination (connection refused or timed out on every address, "Server
certificate not verified", TLS not offered, ...) as 1/window of a failed cohort, the
window starting at initial_destination_concurrency = 5 and dropping 5, 3, 2: the third
failure in a row while the destination has mail in the active queue reaches the cohort
limit of 1 and makes it dead for minimal_backoff_time. Its other mail is then deferred
with the same DSN, relay=none and the reason prefixed by "delivery temporarily
suspended: ", without a connection; `postqueue -f` revives it at once. A destination
with nothing left to do is forgotten: one message at a time never kills it.

Observed with Debian's Postfix 3.7.11 (relayhost = [127.0.0.1]:PORT, nobody listening):
  * six messages submitted one after the other, each deferred before the next arrived:
    six "connect to 127.0.0.1[127.0.0.1]:PORT: Connection refused", no suspension;
  * those six due together at the next queue run (or after `postqueue -f`): three
    attempts, then
    `postfix/error[...]: ID: to=<r1@example.test>, relay=none, delay=14,
    delays=14/0.07/0/0.01, dsn=4.4.1, status=deferred (delivery temporarily suspended:
    connect to 127.0.0.1[127.0.0.1]:PORT: Connection refused)` for the other three, and
    the same line for new mail arriving while the destination is dead; three or four
    attempts on another run: Postfix runs up to five deliveries to the destination at
    once, and those in flight at the third failure still connect;
  * with smtp_destination_concurrency_limit = 1 the window is 1, so the first failure
    is a whole cohort: one attempt, five suspended, every run.
The last is exact for both, so the tests here run the relay with
max_connections_per_domain = 1 (Postfix's smtp_destination_concurrency_limit) and
DeadDestinationVsPostfix compares the two; the default window's arithmetic (three
failures in a row) is in tests/relay/throttle_test.cpp.

Run: TLSRELAY_BIN=build/relay/tlsrelay /usr/bin/python3 -m unittest -v test_throttle
"""

from __future__ import annotations

import re
import time

import pki
from test_delivery import DeliveryCase, content, submit
from world import SmtpPeer

N = 6  # messages queued for the destination together
HOP = "mx1.example.test"
SUSPENDED = "delivery temporarily suspended: "


class ThrottleCase(DeliveryCase):
    """Helpers: N messages for one destination, due together."""

    def queue_together(self, relay_args: dict, phase2_queue: dict, relayhost: str = f"[{HOP}]:25",
                       peer: SmtpPeer | None = None, pad: int = 0) -> tuple:
        """N messages (pad bytes of text longer each) deferred once (phase 1), then the
        relay restarted with all of them due at once, one delivery at a time to the
        destination. Returns (relay, ids, log mark of the restart, sessions the peer had
        seen before it)."""
        filler = (b"x" * 78 + b"\r\n") * (pad // 80)
        delivery = {"relayhost": relayhost, "max_connections_per_domain": 1}
        relay = self.relay(queue={"retry_min": "1h", "retry_max": "1h"}, delivery=delivery, **relay_args)
        ids = []
        for i in range(N):
            rcpt = f"user{i}@example.test"
            ids.append((submit(relay, content(f"m{i}", rcpt=rcpt) + filler, rcpts=(rcpt,)), rcpt))
            self.status(relay, ids[-1][0], rcpt, "deferred")
        relay.stop()
        sessions = len(peer.sessions) if peer else 0
        relay.cli("queue", "flush")  # no daemon: every message due now
        relay.config["queue"].update(phase2_queue)
        mark = relay.log_mark()
        relay.start()
        return relay, ids, mark, sessions

    def outcomes(self, relay, ids, since: int) -> tuple[list[dict], list[dict]]:
        """The first status line of each message since the mark: (attempted, suspended)."""
        lines = [self.status(relay, qid, rcpt, since=since) for qid, rcpt in ids]
        suspended = [st for st in lines if st["reason"].startswith(SUSPENDED)]
        return [st for st in lines if st not in suspended], suspended


class DeadDestination(ThrottleCase):

    def test_verify_failure_kills_the_destination_until_flush(self):
        """A failed verification (a whole cohort at concurrency 1) makes the next hop dead: the rest deferred 4.7.5 "delivery temporarily suspended: Server certificate not verified", relay=none, no connection; `queue flush` revives it at once."""
        peer = self.peer(HOP, cert=pki.get_pki().leaf(dns=["other.example.test"]))
        relay, ids, mark, before = self.queue_together(
            {"tls": {"security_level": "verify", "ca_file": str(pki.get_pki().ca_file)}},
            {"retry_min": "1h", "retry_max": "1h"}, peer=peer)
        attempted, suspended = self.outcomes(relay, ids, mark)
        self.assertEqual(len(attempted), 1, relay.log_text(mark))
        for st in attempted:
            self.assertStatus(st, f"{HOP}[{peer.host}]:25", "4.7.5", "deferred",
                              re.compile(r"^Server certificate not verified"))
        self.assertEqual(len(suspended), N - 1)
        for st in suspended:
            self.assertStatus(st, "none", "4.7.5", "deferred",
                              re.compile("^" + SUSPENDED + "Server certificate not verified"))
        self.assertEqual(len(peer.wait_for_sessions(before + 1)), before + 1,
                         "a suspended message must not connect")
        row = self.recipient_state(relay, suspended[0]["queue_id"], suspended[0]["to"], "deferred")
        self.assertTrue(row["last_reason"].startswith(SUSPENDED), row)

        mark = relay.log_mark()
        relay.cli("queue", "flush")  # postqueue -f: dead destinations get another chance
        attempted, suspended = self.outcomes(relay, ids, mark)
        self.assertEqual((len(attempted), len(suspended)), (1, N - 1), relay.log_text(mark))
        self.assertEqual(len(peer.wait_for_sessions(before + 2)), before + 2)

    def test_refused_relayhost_suspended_then_delivered_after_the_backoff(self):
        """Connection refused (at concurrency 1, one failure is a cohort): the rest deferred 4.4.1 "delivery temporarily suspended: connect to ...: Connection refused" without connecting; once retry_min is over, mail flows again."""
        addr = self.dead_address(HOP)
        relay, ids, mark, _ = self.queue_together({}, {"retry_min": "2s", "retry_max": "2s"})
        attempted, suspended = self.outcomes(relay, ids, mark)
        refused = f"connect to {HOP}[{addr}]:25: Connection refused"
        self.assertEqual(len(attempted), 1, relay.log_text(mark))
        for st in attempted:
            self.assertStatus(st, "none", "4.4.1", "deferred", refused)
        self.assertEqual(len(suspended), N - 1)
        for st in suspended:
            self.assertStatus(st, "none", "4.4.1", "deferred", SUSPENDED + refused)
        tried = [l for l in relay.log_lines(mark) if re.search(r"tlsrelay/smtp\[\d+\]: " + re.escape(refused), l)]
        self.assertEqual(len(tried), 1, "one connection for the attempted message, none for the suspended")

        peer = SmtpPeer(self.world, host=addr).start()  # the destination comes back
        got = peer.wait_for_messages(N, timeout=30)
        self.assertEqual(sorted(m.rcpt_tos[0] for m in got), sorted(r for _, r in ids))
        for qid, _ in ids:
            self.wait_removed(relay, qid, timeout=10, since=mark)

    def test_suspended_mail_is_deferred_without_reading_it(self):
        """As Postfix's queue manager, mail for a dead destination is deferred from its envelope: at a retry, a message that finds the destination's time up is read whole (1 MiB here), those then suspended are not, so a long queue for a partner that is down is not read in full at every retry."""
        self.dead_address(HOP)
        relay, ids, mark, _ = self.queue_together({}, {"retry_min": "3s", "retry_max": "3s"}, pad=1 << 20)
        self.outcomes(relay, ids, mark)  # the start-up recovery has read every file whole
        before = read_bytes(relay)
        mark = relay.log_mark()
        attempted, suspended = self.outcomes(relay, ids, mark)  # the next retry, 3 s on
        read = read_bytes(relay) - before
        # The retry can come up to a second before the destination's dead time is over
        # (due times are whole seconds): then all six are suspended.
        self.assertGreaterEqual(len(suspended), N - 1, relay.log_text(mark))
        self.assertEqual(len(attempted) + len(suspended), N)
        self.assertGreaterEqual(read, len(attempted) << 20, "an attempted message is read whole")
        self.assertLess(read, (len(attempted) << 20) + (256 << 10), "suspended ones are not read")

    def test_one_message_at_a_time_never_kills(self):
        """As in Postfix, a destination with nothing else queued forgets its failures: messages submitted one after the other are all tried (default window: one failure is 1/5 of a cohort)."""
        addr = self.dead_address(HOP)
        relay = self.relay(queue={"retry_min": "1h", "retry_max": "1h"}, delivery={"relayhost": f"[{HOP}]:25"})
        for i in range(N):
            rcpt = f"user{i}@example.test"
            qid = submit(relay, content(f"s{i}", rcpt=rcpt), rcpts=(rcpt,))
            self.assertStatus(self.status(relay, qid, rcpt, "deferred"), "none", "4.4.1", "deferred",
                              f"connect to {HOP}[{addr}]:25: Connection refused")
            self.wait_attempt_over(relay, qid)  # nothing of it in flight when the next one comes

    def wait_attempt_over(self, relay, qid: str, timeout: float = 5.0) -> None:
        """Until the daemon no longer lists qid as active (its attempt fully over)."""
        deadline = time.monotonic() + timeout
        while True:
            row = next(m for m in relay.queue() if m["id"] == qid)
            if not row.get("waiting", "").startswith("active"):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{qid} still active after {timeout}s: {row!r}")
            time.sleep(0.05)  # polling the daemon through the CLI: there is no event to wait on


def read_bytes(relay) -> int:
    """Bytes the relay process has read through read(2) and its kind (/proc/PID/io rchar)."""
    with open(f"/proc/{relay.pid()}/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("rchar:"))


class DeadDestinationVsPostfix(ThrottleCase):
    """The same six messages due at once to a refused relayhost, one delivery at a time,
    through Postfix 3.7 and through tlsrelay: the same status lines."""

    def postfix_outcomes(self, relayhost: str) -> list[tuple]:
        from postfix_oracle import PostfixOracle
        pf = PostfixOracle(self.world, self.dns)
        main = {"relayhost": relayhost, "smtp_destination_concurrency_limit": "1",
                "minimal_backoff_time": "300s", "maximal_backoff_time": "600s", "queue_run_delay": "300s"}
        pf.configure(dict(main, defer_transports="smtp"))  # queue them all without trying
        pf.start()
        rcpts = [f"user{i}@example.test" for i in range(N)]
        ids = [(pf.inject("sender@client.tlsrelay.invalid", [r]), r) for r in rcpts]
        for qid, r in ids:
            pf.wait_status(qid, [r])
        pf.stop()
        pf.configure(main)
        pf._mark = len(pf.log_text())
        pf.start()
        pf.postfix("flush")  # postqueue -f: every message due now
        out = [pf.wait_status(qid, [r])[0] for qid, r in ids]
        pf.stop()
        return sorted((o["relay"], o["dsn"], o["status"], o["reason"]) for o in out)

    def test_refused_relayhost_same_lines_as_postfix(self):
        """Postfix and tlsrelay, six messages due at once to a refused [addr]:25 at concurrency 1: one "connect to ...: Connection refused" and five "delivery temporarily suspended: ..." lines, relay=none, 4.4.1, from both."""
        addr = self.world.ports.address()
        relayhost = f"[{addr}]:25"
        expected = self.postfix_outcomes(relayhost)
        refused = f"connect to {addr}[{addr}]:25: Connection refused"
        self.assertEqual(expected, sorted([("none", "4.4.1", "deferred", refused)] +
                                          [("none", "4.4.1", "deferred", SUSPENDED + refused)] * (N - 1)))
        relay, ids, mark, _ = self.queue_together({}, {"retry_min": "1h", "retry_max": "1h"}, relayhost)
        got = sorted((st["relay"], st["dsn"], st["status"], st["reason"])
                     for st in (self.status(relay, qid, rcpt, since=mark) for qid, rcpt in ids))
        self.assertEqual(got, expected, relay.log_text(mark))

    def test_second_destination_same_lines_as_postfix(self):
        """Postfix and tlsrelay, six messages each for a live and a refused domain, due at once, one delivery at a time per destination: every live recipient sent, and for the refused domain (each message's second next hop) one "connect to ...: Connection refused" and five "delivery temporarily suspended: ..." lines, relay=none, 4.4.1, from both, as each recipient waits in its destination's queue."""
        live = self.peer("live.test")
        dead_addr = self.dead_address("dead.test")
        pairs = [(f"user{i}@live.test", f"user{i}@dead.test") for i in range(N)]
        refused = f"connect to dead.test[{dead_addr}]:25: Connection refused"
        expected = self.dead_lines(self.postfix_two_domains(pairs))
        self.assertEqual(expected, sorted([("none", "4.4.1", "deferred", refused)] +
                                          [("none", "4.4.1", "deferred", SUSPENDED + refused)] * (N - 1)))
        got = self.dead_lines(self.relay_two_domains(pairs))
        self.assertEqual(got, expected)
        self.assertEqual(len(live.wait_for_messages(2 * N, timeout=30)), 2 * N)

    def dead_lines(self, outcomes: list[list[dict]]) -> list[tuple]:
        """(relay, dsn, status, reason) of each message's second recipient, sorted; its
        first recipient must have been sent."""
        for live_st, _ in outcomes:
            self.assertEqual(live_st["status"], "sent", live_st["line"])
        return sorted((d["relay"], d["dsn"], d["status"], d["reason"]) for _, d in outcomes)

    def postfix_two_domains(self, pairs: list[tuple]) -> list[list[dict]]:
        from postfix_oracle import PostfixOracle
        pf = PostfixOracle(self.world, self.dns)
        main = {"relayhost": "", "smtp_destination_concurrency_limit": "1",
                "minimal_backoff_time": "300s", "maximal_backoff_time": "600s", "queue_run_delay": "300s"}
        pf.configure(dict(main, defer_transports="smtp"))  # queue them all without trying
        pf.start()
        ids = [pf.inject("sender@client.tlsrelay.invalid", list(p)) for p in pairs]
        for qid, p in zip(ids, pairs):
            pf.wait_status(qid, list(p))
        pf.stop()
        pf.configure(main)
        pf._mark = len(pf.log_text())
        pf.start()
        pf.postfix("flush")  # postqueue -f: every message due now
        out = [pf.wait_status(qid, list(p)) for qid, p in zip(ids, pairs)]
        pf.stop()
        return out

    def relay_two_domains(self, pairs: list[tuple]) -> list[list[dict]]:
        """The messages deferred once through a refused relayhost, then the relay restarted
        without it, all of them due at once, one delivery at a time per destination."""
        relay = self.relay(queue={"retry_min": "1h", "retry_max": "1h"},
                           delivery={"relayhost": f"[{self.world.ports.address()}]:25",
                                     "max_connections_per_domain": 1})
        ids = []
        for i, p in enumerate(pairs):
            qid = submit(relay, content(f"two{i}", rcpt=p[0]), rcpts=p)
            for r in p:
                self.status(relay, qid, r, "deferred")
            ids.append(qid)
        relay.stop()
        relay.cli("queue", "flush")  # no daemon: every message due now
        relay.config["delivery"]["relayhost"] = ""
        mark = relay.log_mark()
        relay.start()
        return [[self.status(relay, qid, r, since=mark) for r in p] for qid, p in zip(ids, pairs)]

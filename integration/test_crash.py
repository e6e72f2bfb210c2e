"""Crash safety end to end: kill -9 at random moments while clients submit mail and the
relay delivers it to a sink; every message acknowledged with 250 reaches the sink whole.

Checklist §5 G items 52, 53, 58 and 60 of security-and-durability.md. Client threads send
messages without pause (unique token, a body checksum header, one to three recipients,
sizes from a few hundred bytes to 3 MB); a sink on loopback takes the deliveries, some
of them with a slow answer to the end of data. The relay is killed with SIGKILL at a
random moment (a delay drawn from a seeded rng: the fault being injected, not a wait)
and restarted on the same spool, ITERATIONS times; every fourth kill instead lands
while the sink holds a delivered message's 250, so the restarted relay must deliver it
again. At the end the queue drains and the sink's view is checked against the clients'.
Env: TLSRELAY_CRASH_ITERATIONS (default 30, about a minute), TLSRELAY_SEED (replay).
Run: TLSRELAY_BIN=build/relay/tlsrelay TLSRELAY_CRASH_ITERATIONS=300 \\
     /usr/bin/python3 -m unittest -v test_crash
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import socket
import threading
import time
import unittest

from world import (ConnectionClosed, RawSmtp, SmtpPeer, WorldTestCase, dot_stuff,
                   split_received)

ITERATIONS = int(os.environ.get("TLSRELAY_CRASH_ITERATIONS", "30"))
CLIENTS = 3
RECIPIENTS = [f"user{i}@sink.test" for i in range(4)]
DELIVERY_KILL_EVERY = 4   # every 4th kill waits for a delivery whose 250 the sink holds
HOLD_S = 2.0              # how long the sink holds that 250; the kill comes within 1 s
DRAIN_TIMEOUT = 120.0


def message_for(token: str, rng: random.Random) -> bytes:
    """Headers naming the token and the body's SHA-256, then a body of varied size with
    lines starting with a dot (stuffing on both hops) and an occasional long line."""
    big = rng.random() < 0.04
    size = rng.randrange(256 << 10, 3 << 20) if big else rng.randrange(100, 40000)
    lines, total, i = [], 0, 0
    while total < size:
        i += 1
        line = b"%s %d " % (token.encode(), i) + b"y" * rng.randrange(0, 90)
        if i % 37 == 0:
            line = b"." + line
        if i % 501 == 0:
            line += b"z" * 800  # long, but under 998: longer lines are folded on the way out
        lines.append(line)
        total += len(line) + 2
    body = b"\r\n".join(lines) + b"\r\n"
    head = (b"From: crash@client.test\r\nTo: sink@sink.test\r\nSubject: " + token.encode() + b"\r\n"
            b"Message-ID: <" + token.encode() + b"@client.test>\r\n"
            b"X-Body-SHA256: " + hashlib.sha256(body).hexdigest().encode() + b"\r\n\r\n")
    return head + body


def body_checksum_ok(content: bytes) -> bool:
    head, _, body = content.partition(b"\r\n\r\n")
    m = re.search(rb"(?m)^X-Body-SHA256: ([0-9a-f]{64})\r?$", head)
    return bool(m) and m.group(1).decode() == hashlib.sha256(body).hexdigest()


class Ledger:
    """What the clients know; shared by all client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent: dict[str, tuple[str, tuple[str, ...]]] = {}  # token -> (sha256, recipients)
        self.acked: set[str] = set()      # got "250 2.0.0 Ok: queued as ID" after the dot
        self.maybe: set[str] = set()      # final dot sent, reply never read (the kill)
        self.partial: set[str] = set()    # final dot never sent: must never arrive
        self.refused: dict[str, str] = {}  # other reply after the dot: must never arrive
        self.errors: list[str] = []       # replies no client should get from a live relay


class Run:
    """The relay's life: clients wait for `up` (a generation counter) after a kill."""

    def __init__(self, relay):
        self.relay = relay
        self.ledger = Ledger()
        self.cond = threading.Condition()
        self.generation = 1
        self.up = True
        self.stop = False

    def wait_up(self, after: int) -> int | None:
        """Blocks until the relay runs in a generation after `after`; None once stopped."""
        with self.cond:
            ok = self.cond.wait_for(lambda: self.stop or (self.up and self.generation > after), 60)
            return None if self.stop or not ok else self.generation

    def crash_and_restart(self) -> None:
        with self.cond:
            self.up = False
        self.relay.kill()  # SIGKILL to the process group, then reaped
        self.relay.start()
        with self.cond:
            self.generation += 1
            self.up = True
            self.cond.notify_all()

    def finish(self) -> None:
        with self.cond:
            self.stop = True
            self.cond.notify_all()


def transaction(c: RawSmtp, ledger: Ledger, token: str, rng: random.Random) -> None:
    content = message_for(token, rng)
    rcpts = tuple(rng.sample(RECIPIENTS, rng.choice((1, 1, 1, 2, 3))))
    with ledger.lock:
        ledger.sent[token] = (hashlib.sha256(content).hexdigest(), rcpts)
        ledger.partial.add(token)
    c.expect(f"MAIL FROM:<{token}@client.test>", 250, "2.1.0")
    for r in rcpts:
        c.expect(f"RCPT TO:<{r}>", 250, "2.1.5")
    c.expect("DATA", 354)
    wire = dot_stuff(content)
    if not c.send(wire[:-3]):  # all but ".\r\n": without it nothing can be committed
        raise ConnectionClosed("reset during DATA")
    with ledger.lock:
        ledger.partial.discard(token)
        ledger.maybe.add(token)
    if not c.send(wire[-3:]):
        raise ConnectionClosed("reset at the final dot")
    r = c.reply(timeout=30)
    with ledger.lock:
        ledger.maybe.discard(token)
        if r.code == 250 and re.fullmatch(r"2\.0\.0 Ok: queued as \S+", r.lines[-1]):
            ledger.acked.add(token)
        else:
            ledger.refused[token] = repr(r)


def client(run: Run, name: str, seed: int) -> None:
    """Sends messages back to back; after a kill, reconnects once the relay is back."""
    rng = random.Random(seed)
    n, generation = 0, 0
    while (generation := run.wait_up(generation)) is not None:
        try:
            c = RawSmtp(run.relay.address, timeout=30)
        except OSError:
            continue  # killed in between: wait for the next generation
        try:
            c.ehlo(f"{name}.client.test")
            while not run.stop:
                n += 1
                transaction(c, run.ledger, f"{name}n{n}r{rng.randrange(1 << 30):08x}", rng)
        except (OSError, ConnectionClosed):
            pass  # the kill: reset, EOF
        except AssertionError as e:
            with run.ledger.lock:
                run.ledger.errors.append(f"{name} (generation {generation}): {e}")
        finally:
            c.close()


class SlowSink:
    """The sink's dot_delay: mostly prompt, sometimes slow; when armed, holds the next
    250 for HOLD_S and remembers which message it was."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.armed = threading.Event()
        self.holding = threading.Event()
        self.held: list[tuple[str, tuple[str, ...]]] = []  # (token, recipients)

    def __call__(self, msg) -> float:
        if self.armed.is_set():
            self.armed.clear()
            self.held.append((msg.mail_from.split("@")[0], tuple(msg.rcpt_tos)))
            self.holding.set()
            return HOLD_S
        return self.rng.uniform(0.0, 0.3) if self.rng.random() < 0.3 else 0.0


class Deliveries:
    """The sink's messages reduced to (sha256 after our Received:, recipients) per token,
    taken as they arrive so a long run does not keep every body in memory."""

    def __init__(self, sink: SmtpPeer):
        self.sink = sink
        self.by_token: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        self.bad: list[str] = []

    def collect(self) -> None:
        for m in self.sink.take_messages():
            token = m.mail_from.split("@")[0]
            received, rest = split_received(m.data)
            if not received.startswith(b"Received: from ") or not body_checksum_ok(rest):
                self.bad.append(f"{token}: corrupt delivery, {len(m.data)} bytes: {m.data[:300]!r}")
            self.by_token.setdefault(token, []).append(
                (hashlib.sha256(rest).hexdigest(), tuple(m.rcpt_tos)))

    def count(self, token: str, rcpt: str) -> int:
        return sum(1 for _, rcpts in self.by_token.get(token, []) if rcpt in rcpts)


class KillDuringSubmissionAndDelivery(WorldTestCase):

    def test_kill9_loses_and_corrupts_nothing(self):
        """kill -9 at random moments of intake and delivery, restart on the same spool: every 250-acknowledged message reaches the sink byte-exact for each recipient, nothing unsent or altered arrives, the spool ends empty. [52, 53, 58, 60]"""
        seed = int(os.environ.get("TLSRELAY_SEED", time.time_ns() % (1 << 32)))
        rng = random.Random(seed)
        ctx = f"(TLSRELAY_SEED={seed} TLSRELAY_CRASH_ITERATIONS={ITERATIONS})"
        print(f"\n{self.id()}: seed {seed}, {ITERATIONS} iterations", flush=True)
        slow = SlowSink(rng.randrange(1 << 30))
        sink = SmtpPeer(self.world, hostname="sink.test", dot_delay=slow).start()
        relay = self.start_relay(delivery={"relayhost": sink.nexthop, "connect_timeout": "5s"},
                                 queue={"retry_min": "1s", "retry_max": "2s"},
                                 server={"max_connections": 100})
        run, deliveries, started = Run(relay), Deliveries(sink), time.monotonic()
        threads = [threading.Thread(target=client, args=(run, f"c{k}", rng.randrange(1 << 30)),
                                    daemon=True) for k in range(CLIENTS)]
        for t in threads:
            t.start()
        try:
            for it in range(ITERATIONS):
                self.wait_for_the_moment(it, rng, slow, ctx)
                run.crash_and_restart()
                deliveries.collect()
        finally:
            run.finish()
            for t in threads:
                t.join(60)
        self.assertFalse(any(t.is_alive() for t in threads), f"a client thread hung {ctx}")
        self.drain(relay, ctx)
        deliveries.collect()
        self.verify(run.ledger, deliveries, slow, ctx)
        self.assertSpoolEmpty(relay, ctx)
        self.report(run.ledger, deliveries, slow, seed, time.monotonic() - started)

    def wait_for_the_moment(self, it: int, rng: random.Random, slow: SlowSink, ctx: str) -> None:
        if it % DELIVERY_KILL_EVERY != DELIVERY_KILL_EVERY - 1:
            time.sleep(rng.uniform(0.02, 1.0))  # the fault: a random moment of the run
            return
        slow.holding.clear()
        slow.armed.set()
        self.assertTrue(slow.holding.wait(30), f"no delivery reached the sink within 30 s {ctx}")
        time.sleep(rng.uniform(0.0, 1.0))  # somewhere inside the HOLD_S the sink waits

    def drain(self, relay, ctx: str) -> None:
        """Makes every deferred recipient due and waits (bounded) for an empty queue."""
        relay.cli("queue", "flush")
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while (queue := relay.queue()):
            if time.monotonic() > deadline:
                self.fail(f"queue not drained within {DRAIN_TIMEOUT}s: {queue[:5]!r} {ctx}")
            time.sleep(0.2)  # polling the spool through the CLI: there is no event to wait on

    def verify(self, ledger: Ledger, deliveries: Deliveries, slow: SlowSink, ctx: str) -> None:
        self.assertEqual(ledger.errors, [], f"clients got unexpected replies {ctx}")
        self.assertEqual(deliveries.bad, [], f"the sink received corrupt messages {ctx}")
        self.assertGreater(len(ledger.acked), 0, f"no message was ever acknowledged {ctx}")
        for token, got in deliveries.by_token.items():
            self.assertIn(token, ledger.sent, f"the sink received a message no client sent {ctx}")
            sha, rcpts = ledger.sent[token]
            self.assertTrue(token in ledger.acked or token in ledger.maybe,
                            f"{token} arrived, but its final dot was never sent {ctx}")
            self.assertNotIn(token, ledger.refused, f"{token} arrived although refused: "
                                                    f"{ledger.refused.get(token)} {ctx}")
            for digest, to in got:
                self.assertEqual(digest, sha, f"{token} arrived with other bytes than were sent {ctx}")
                self.assertTrue(set(to) <= set(rcpts), f"{token} went to {to}, sent to {rcpts} {ctx}")
        for token in ledger.acked:
            for rcpt in ledger.sent[token][1]:
                self.assertGreaterEqual(deliveries.count(token, rcpt), 1,
                                        f"LOST: {token} acknowledged but never delivered to {rcpt} {ctx}")
        for token, rcpts in slow.held:
            for rcpt in rcpts:
                self.assertGreaterEqual(deliveries.count(token, rcpt), 2,
                                        f"{token}: the relay was killed while the sink held its 250, "
                                        f"yet it was not delivered again to {rcpt} {ctx}")

    def assertSpoolEmpty(self, relay, ctx: str) -> None:
        self.assertEqual(relay.queue(), [], ctx)
        for sub in ("tmp", "messages", "state", "corrupt"):
            self.assertEqual(relay.spool_files(sub), [], f"{sub}/ not empty after the drain {ctx}")

    def report(self, ledger: Ledger, deliveries: Deliveries, slow: SlowSink, seed: int,
               elapsed: float) -> None:
        pairs = [(t, r) for t, (_, rcpts) in ledger.sent.items() for r in rcpts]
        dups = sum(max(0, deliveries.count(t, r) - 1) for t, r in pairs)
        unacked = sum(1 for t in deliveries.by_token if t not in ledger.acked)
        print(f"{self.id()}: {ITERATIONS} kills ({len(slow.held)} while the sink held a 250) "
              f"in {elapsed:.0f}s; {len(ledger.sent)} messages started, {len(ledger.acked)} acknowledged, "
              f"{len(ledger.maybe)} cut after the dot ({unacked} of those delivered), "
              f"{len(ledger.partial)} cut before it; {sum(len(v) for v in deliveries.by_token.values())} "
              f"deliveries, {dups} duplicate recipient deliveries; seed {seed}", flush=True)


if __name__ == "__main__":
    unittest.main()

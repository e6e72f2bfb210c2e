"""Durability of intake: what was acknowledged with 250 survives kill -9, whole and once.

Checklist §5 G (items 51-53, 57, 60) of security-and-durability.md. The kill moment is
drawn from a seeded rng (printed on failure; set TLSRELAY_SEED to replay a run); it
is a fault-injection point, not synchronisation.
Run: TLSRELAY_BIN=build/relay/tlsrelay /usr/bin/python3 -m unittest -v test_durability
"""

import os
import random
import re
import threading
import time
import unittest

from world import RawSmtp, WorldTestCase, dot_stuff, split_received

BURST_BUDGET_S = 40.0   # all iterations together; the test stays well under 60 s
ITERATIONS = 5
CLIENTS = 6
RCPT = "rcpt@example.org"


def message_for(token: str, rng: random.Random) -> bytes:
    lines = [b"From: durability@example.com", b"To: rcpt@example.org",
             b"Subject: " + token.encode(), b"Message-ID: <" + token.encode() + b"@test>", b"",
             b"token " + token.encode()]
    # Bodies of varied size (up to ~64 KiB) so kills land inside DATA as well as between
    # transactions; a leading-dot line checks unstuffing survives recovery too.
    for i in range(rng.randrange(1, 800)):
        lines.append(b"%s line %d of %s " % (token.encode(), i, token.encode()) + b"x" * rng.randrange(0, 40))
    lines.append(b".dot line")
    return b"\r\n".join(lines) + b"\r\n"


class Ledger:
    """What the clients know, shared by the client threads of all iterations."""

    def __init__(self):
        self.lock = threading.Lock()
        self.content: dict[str, bytes] = {}
        self.acked: dict[str, str] = {}     # token -> queue id from "250 ... queued as ID"
        self.in_flight: set[str] = set()    # final dot sent (maybe partly), no reply read
        self.partial: set[str] = set()      # final dot never sent: must not be queued
        self.refused: dict[str, str] = {}   # token -> non-250 reply after the dot: must not be queued


def client(relay, ledger: Ledger, name: str, seed: int, dead: threading.Event) -> None:
    """Sends messages one after another until the relay dies under it. dead is set once
    the killed relay has been reaped: a final dot sent after that reached no one."""
    rng = random.Random(seed)
    n = 0
    try:
        c = RawSmtp(relay.address, timeout=20)
    except OSError:
        return
    try:
        c.ehlo(f"{name}.example")
        while True:
            n += 1
            token = f"{name}n{n}r{rng.randrange(1 << 30):08x}"
            content = message_for(token, rng)
            c.expect(f"MAIL FROM:<{token}@example.com>", 250, "2.1.0")
            c.expect(f"RCPT TO:<{RCPT}>", 250, "2.1.5")
            c.expect("DATA", 354)
            wire = dot_stuff(content)
            cut = rng.randrange(1, len(wire) - 5)  # two writes: a kill may fall between them
            with ledger.lock:
                ledger.content[token] = content
                ledger.partial.add(token)
            if not c.send(wire[:cut]):
                return
            if rng.random() < 0.3:
                # A slow client: stalls mid-DATA, so some kills land before the final dot.
                time.sleep(rng.uniform(0.0, 0.2))
            if dead.is_set():
                return  # the relay died mid-DATA: this message must not be queued
            with ledger.lock:
                ledger.partial.discard(token)
                ledger.in_flight.add(token)
            if not c.send(wire[cut:]):
                return
            r = c.reply()
            with ledger.lock:
                ledger.in_flight.discard(token)
                m = re.fullmatch(r"2\.0\.0 Ok: queued as (\S+)", r.lines[-1]) if r.code == 250 else None
                if m:
                    ledger.acked[token] = m.group(1)
                else:
                    ledger.refused[token] = repr(r)
    except Exception:  # the kill: reset, EOF, timeout; whatever was in flight stays there
        return
    finally:
        c.close()


class KillDuringBurst(WorldTestCase):
    def test_kill9_under_concurrent_load(self):
        """kill -9 at random moments of a 6-client burst: after restart every 250-acknowledged message is queued exactly once and whole; nothing unacknowledged-and-unsent is. [51-53, 60]"""
        seed = int(os.environ.get("TLSRELAY_SEED", time.time_ns() % (1 << 32)))
        rng = random.Random(seed)
        ctx = f"(TLSRELAY_SEED={seed})"
        relay = self.start_relay(server={"max_connections": 100})
        ledger = Ledger()
        checked: dict[str, str] = {}  # queue id -> token, content already compared
        t_end = time.monotonic() + BURST_BUDGET_S
        for it in range(ITERATIONS):
            if time.monotonic() > t_end:
                break
            dead = threading.Event()
            threads = [threading.Thread(target=client, daemon=True,
                                        args=(relay, ledger, f"i{it}c{k}", rng.randrange(1 << 30), dead))
                       for k in range(CLIENTS)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.05, 1.2))  # the fault: kill at a random moment of the burst
            relay.kill()
            dead.set()
            for t in threads:
                t.join(30)
                self.assertFalse(t.is_alive(), f"client thread hung after the kill {ctx}")
            relay.start()
            self.assertEqual(relay.spool_files("tmp"), [],
                             f"temp files left after restart (iteration {it}) {ctx}")
            self.verify(relay, ledger, checked, ctx + f" iteration {it}")
        with ledger.lock:
            acked, in_flight, partial = len(ledger.acked), len(ledger.in_flight), len(ledger.partial)
        self.assertGreater(acked, 0, f"no message was ever acknowledged {ctx}")
        print(f"\n{self.id()}: {acked} acknowledged, {in_flight} cut after the dot was sent, "
              f"{partial} cut mid-DATA, {len(checked)} queued; seed {seed}")

    def verify(self, relay, ledger: Ledger, checked: dict, ctx: str) -> None:
        queue = relay.queue()
        by_token: dict[str, list[dict]] = {}
        for entry in queue:
            token = entry["sender"].split("@")[0]
            by_token.setdefault(token, []).append(entry)
        with ledger.lock:
            acked = dict(ledger.acked)
            in_flight = set(ledger.in_flight)
            partial = set(ledger.partial)
            refused = dict(ledger.refused)
            content = dict(ledger.content)
        for token, qid in acked.items():
            entries = by_token.get(token, [])
            self.assertEqual([e["id"] for e in entries], [qid],
                             f"acknowledged message {token} (queued as {qid}) must be queued exactly once {ctx}")
        for token, entries in by_token.items():
            self.assertIn(token, content, f"queue holds a message no client sent: {entries} {ctx}")
            self.assertNotIn(token, partial, f"{token}: queued although its final dot was never sent {ctx}")
            self.assertNotIn(token, refused, f"{token}: queued although the reply was {refused.get(token)} {ctx}")
            self.assertTrue(token in acked or token in in_flight, f"{token}: unexpected state {ctx}")
            self.assertEqual(len(entries), 1, f"{token} queued {len(entries)} times {ctx}")
        for entry in queue:
            if entry["id"] in checked:
                continue
            token = entry["sender"].split("@")[0]
            self.assertEqual([r["address"] for r in entry["recipients"]], [RCPT], ctx)
            stored = relay.message_content(entry["id"], b"From: durability@example.com")
            _, rest = split_received(stored)
            self.assertEqual(rest, content[token], f"{token} ({entry['id']}) stored content differs {ctx}")
            checked[entry["id"]] = token


class SpoolRecovery(WorldTestCase):
    """Start-up recovery of the spool folder. [57]"""

    def prepared(self):
        """A relay with one committed message, stopped; returns (relay, qid, its file)."""
        relay = self.start_relay()
        with RawSmtp(relay.address) as c:
            c.ehlo()
            c.expect("MAIL FROM:<a@example.com>", 250, "2.1.0")
            c.expect(f"RCPT TO:<{RCPT}>", 250, "2.1.5")
            c.expect("DATA", 354)
            c.send(dot_stuff(b"Subject: keep\r\n\r\nkeep me\r\n"))
            r = c.reply()
        qid = re.fullmatch(r"2\.0\.0 Ok: queued as (\S+)", r.lines[-1]).group(1)
        self.assertEqual(relay.stop(), 0)
        path = relay.spool / "messages" / qid
        self.assertTrue(path.is_file(), f"committed message not at {path}: {relay.spool_files('messages')}")
        return relay, qid, path

    @staticmethod
    def other_id(qid: str, salt: int) -> str:
        """A name shaped like a queue id (same length and alphabet), different from qid."""
        alphabet = "0123456789ABCDEF" if re.fullmatch(r"[0-9A-F]+", qid) else \
            "".join(sorted(set(qid)))
        rng = random.Random(salt)
        while True:
            cand = "".join(rng.choice(alphabet) for _ in qid)
            if cand != qid:
                return cand

    def assertSurvivorIntact(self, relay, qid):
        self.assertEqual(relay.queue_ids(), [qid])
        self.assertIn(b"keep me\r\n", relay.message_content(qid, b"Subject: keep"))

    def test_tmp_leftover_removed(self):
        """A file left in <spool>/tmp/ by a crash mid-DATA is removed at restart; committed mail is kept. [51]"""
        relay, qid, path = self.prepared()
        leftover = relay.spool / "tmp" / self.other_id(qid, 1)
        leftover.parent.mkdir(exist_ok=True)
        leftover.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
        relay.start()
        self.assertFalse(leftover.exists(), "temp file of an unacknowledged message survived restart")
        self.assertEqual(relay.spool_files("tmp"), [])
        self.assertSurvivorIntact(relay, qid)

    def moved_to_corrupt(self, relay, name: str, data: bytes, mark: int):
        self.assertFalse((relay.spool / "messages" / name).exists(), f"{name} still in messages/")
        corrupt = [p for p in relay.spool_files("corrupt") if p.is_file()]
        self.assertIn(data, [p.read_bytes() for p in corrupt],
                      f"{name} not moved intact to corrupt/ (corrupt/ holds {corrupt})")
        relay.wait_for_log(re.escape(name), since=mark)
        self.assertNotIn(name, relay.queue_ids())

    def test_garbage_moved_to_corrupt(self):
        """A garbage file in <spool>/messages/ is moved to <spool>/corrupt/ (not deleted, not delivered) and logged. [57]"""
        relay, qid, _ = self.prepared()
        name = self.other_id(qid, 2)
        data = random.Random(7).randbytes(3000)
        (relay.spool / "messages" / name).write_bytes(data)
        mark = relay.log_mark()
        relay.start()
        self.moved_to_corrupt(relay, name, data, mark)
        self.assertSurvivorIntact(relay, qid)

    def test_truncated_moved_to_corrupt(self):
        """A truncated queue file (missing its end) is moved to corrupt/, never listed as a partial message. [57]"""
        relay, qid, path = self.prepared()
        whole = path.read_bytes()
        for n, cut in enumerate((len(whole) - 1, len(whole) // 2, 8)):
            name = self.other_id(qid, 10 + n)
            (relay.spool / "messages" / name).write_bytes(whole[:cut])
        mark = relay.log_mark()
        relay.start()
        for n, cut in enumerate((len(whole) - 1, len(whole) // 2, 8)):
            with self.subTest(cut=cut):
                self.moved_to_corrupt(relay, self.other_id(qid, 10 + n), whole[:cut], mark)
        self.assertSurvivorIntact(relay, qid)

    def test_bit_flip_moved_to_corrupt(self):
        """A queue file with one flipped bit is detected (checksum) and moved to corrupt/, never delivered altered. [57]"""
        relay, qid, path = self.prepared()
        whole = bytearray(path.read_bytes())
        whole[len(whole) // 3] ^= 0x01
        name = self.other_id(qid, 20)
        (relay.spool / "messages" / name).write_bytes(bytes(whole))
        mark = relay.log_mark()
        relay.start()
        self.moved_to_corrupt(relay, name, bytes(whole), mark)
        self.assertSurvivorIntact(relay, qid)


if __name__ == "__main__":
    unittest.main()

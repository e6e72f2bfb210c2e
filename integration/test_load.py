"""Load: tlsrelay under abuse keeps serving a well-behaved client, with bounded memory.

A smaller but real run of bench/load (integration/loadgen.py): held connections,
slowloris clients (in a command and in the message text), pipelining floods, a RCPT
flood, a client that never reads, and a delivery peer answering EHLO with megabytes of
continuation lines, all at once. Asserts behaviour, not speed: every well-behaved
message is accepted within a generous deadline, each abuser gets the reply Postfix's
smtpd would give, memory stays bounded, the hostile peer's message is deferred.
ConnectionFlood (integration/connflood.py): connections far beyond max_connections.
Under ASan (TLSRELAY_SANITIZED=1) the memory bounds allow for the sanitizer's overhead.
Run: TLSRELAY_BIN=build/relay/tlsrelay /usr/bin/python3 -m unittest -v test_load
"""

import os
import re
import resource
import select
import socket
import time
from pathlib import Path

import connflood
import loadgen
from world import WorldTestCase, sanitized

HELD = 1000
COMMAND_TIMEOUT = 4  # seconds: slowloris and the never-reading client run into it
DATA_TIMEOUT = 3     # seconds: the clients trickling the message text run into it
HARD_ERROR_LIMIT = 20
MAX_RECIPIENTS = 50


def raise_fd_limit(need: int) -> None:
    """This process and the relay (which inherits the limit) hold one descriptor per
    connection each; the tests run as root, which may raise the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, max(need, hard)))
        except (ValueError, PermissionError):  # no CAP_SYS_RESOURCE: up to the hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))


class Load(WorldTestCase):
    def setUp(self):
        super().setUp()
        raise_fd_limit(HELD + 1000)
        host = self.world.ports.address()
        self.hostile = (host, self.world.ports.port(host))
        self.relay = self.world.relay("relay", server={
            "max_connections": HELD + 100, "max_recipients": MAX_RECIPIENTS,
            "command_timeout": f"{COMMAND_TIMEOUT}s", "data_timeout": f"{DATA_TIMEOUT}s",
            "hard_error_limit": HARD_ERROR_LIMIT,
        }, **{"delivery.route": [
            {"destination": "hostile.example", "nexthop": f"[{host}]:{self.hostile[1]}"}]}).start()
        self.params = loadgen.Params(
            held=HELD, slowloris=3, data_slowloris=3, trickle=0.5, floods=1, flood_commands=2000,
            max_recipients=MAX_RECIPIENTS, mute_bytes=32 << 20, interval=0.1, deadline=5.0,
            duration=20.0, keepalive=COMMAND_TIMEOUT / 2, hostile_bytes=8 << 20,
            hostile_rcpt="victim@hostile.example")

    def test_abusers_get_their_replies_and_a_good_client_gets_through(self):
        """Under 1000 held connections and every kind of abuse at once, a client sending
        a message every 100 ms has each accepted within 5 s; abusers get 452 4.5.3,
        421 4.7.0 and 421 4.4.2; RSS stays bounded; the hostile peer's mail is deferred."""
        idle_kib = loadgen.rss(self.relay.pid())
        res = loadgen.run_load(self.params, self.relay.address, self.relay.pid(), self.hostile,
                               progress=lambda _msg: None)
        self.assertTrue(self.relay.running(), "the relay died under load")
        self.assertEqual(res.held_peak, HELD, f"not every connection was admitted: {res.replies}")
        self.assert_well_behaved(res)
        self.assert_abusers_answered(res.replies)
        self.assert_memory_bounded(res, idle_kib)
        self.assert_hostile_deferred(res)

    def assert_well_behaved(self, res: loadgen.Results) -> None:
        self.assertEqual(res.failures, [], "the well-behaved client was refused or starved")
        self.assertGreaterEqual(len(res.latencies), 20, "the well-behaved client hardly ran")
        self.assertLess(max(res.latencies), self.params.deadline)

    def assert_abusers_answered(self, replies: dict) -> None:
        rcpt = replies["rcpt-flood"]
        self.assertGreater(rcpt["452 4.5.3"], 0, rcpt)
        self.assertGreater(rcpt["421 4.7.0"], 0, rcpt)  # the error limit ends the flood
        self.assertLessEqual(rcpt["250 2.1.5"], MAX_RECIPIENTS * rcpt["250 2.1.0"], rcpt)
        errors = replies["error-flood"]
        self.assertGreater(errors["421 4.7.0"], 0, errors)
        self.assertLessEqual(errors["503 5.5.1"], HARD_ERROR_LIMIT * errors["250 2.1.0"], errors)
        noop = replies["noop-flood"]  # every pipelined command answered, in one go
        self.assertGreater(noop["221 2.0.0"], 0, noop)
        self.assertEqual(noop["250 2.0.0"], self.params.flood_commands * noop["221 2.0.0"], noop)
        slow = replies["slowloris"]  # a whole-command deadline, not one per byte
        self.assertGreater(slow["421 4.4.2"], 0, slow)
        self.assertEqual(slow["250"] + slow["250 2.0.0"], 0, slow)
        slow = replies["data-slowloris"]  # a whole-DATA deadline, however steady the bytes
        self.assertGreater(slow["421 4.4.2"], 0, slow)
        self.assertEqual(set(slow), {"421 4.4.2", "closed"}, slow)
        self.assertNotIn(loadgen.DATA_SLOWLORIS_RCPT,
                         [r["address"] for m in self.relay.queue() for r in m["recipients"]])
        mute = replies["mute"]  # the relay gave up on it rather than buffer its replies
        self.assertEqual(mute["still open"], 0, mute)
        self.assertEqual(sum(n for k, n in replies.get("held", {}).items() if k != "421 4.4.2"), 0,
                         replies.get("held"))

    def assert_memory_bounded(self, res: loadgen.Results, idle_kib: int) -> None:
        # Measured on the 2-core VM (bench/load with these parameters): 11.6 KiB per held
        # session and 1.6 MiB of growth during the abuse; under ASan/UBSan 24.1 KiB and
        # 10.8 MiB (redzones, shadow memory, the 4 MiB quarantine of world.sanitizer_env).
        # During the abuse the relay may grow by its per-session buffers (4 KiB in, a few
        # KiB of replies, 64 KiB of a server reply at most) and the spool writes; the
        # never-reading client wrote 32 MiB and the hostile peer 8 MiB, so buffering
        # either would cross the bound of a normal build. Under ASan the bounds are about
        # twice what it measured: they still catch the 32 MiB, and the hostile peer is
        # caught by its deferral reason.
        per_bound, growth_bound = (48, 24 << 10) if sanitized() else (24, 8 << 10)
        per_connection = (res.rss_held_kib - idle_kib) / HELD
        self.assertLess(per_connection, per_bound, f"{per_connection:.1f} KiB per held connection")
        growth = res.hwm_kib - res.rss_held_kib
        self.assertLess(growth, growth_bound, f"RSS grew {growth} KiB during the abuse "
                                              f"(samples {res.rss_kib[-10:]})")

    def assert_hostile_deferred(self, res: loadgen.Results) -> None:
        self.assertTrue(res.hostile_queue_id)
        self.relay.wait_for_log(
            rf"{res.hostile_queue_id}: to=<victim@hostile\.example>, relay=.*dsn=4\.5\.0, "
            r"status=deferred \(bad reply from host .* while performing the EHLO handshake: "
            r"reply longer than 65536 bytes\)", timeout=10)
        self.assertEqual(res.hostile.get("data", 0), 0, res.hostile)
        self.assertEqual(res.hostile.get("completed", 0), 0, res.hostile)  # not read to the end


class ConnectionFlood(WorldTestCase):
    MAX = 200       # server.max_connections
    FLOODERS = 400  # clients connecting again and again, twice the slots

    def test_beyond_max_connections_new_clients_get_421_and_a_client_inside_is_served(self):
        """400 clients connecting again and again hold a relay at max_connections = 200:
        every further connection gets 421 4.7.0 and is closed right after it, memory
        stays flat, a client already inside has each message accepted within a second,
        and once the flood ends a new client is greeted again."""
        raise_fd_limit(self.FLOODERS + self.MAX + 1000)
        relay = self.world.relay("relay", server={"max_connections": self.MAX, "command_timeout": "60s"})
        relay.start()
        sources = tuple(self.world.ports.address("127.0.3") for _ in range(4))
        p = connflood.FloodParams(flooders=self.FLOODERS, sources=sources, duration=8.0)
        res = connflood.run_flood(p, relay.address, relay.pid())
        self.assertTrue(relay.running(), "the relay died under the flood")
        self.assertEqual(res.failures, [], "the client inside was refused or starved")
        self.assertGreaterEqual(len(res.latencies), 30, "the client inside hardly ran")
        self.assertLess(max(res.latencies), 1.0)
        self.assertEqual(len(relay.queue()), len(res.latencies), "each accepted message is queued")
        self.assertEqual(res.held_peak, self.MAX - 1, "the flood got every slot but the client's")
        self.assertEqual(set(res.replies), {"220", "421 4.7.0"}, res.replies)
        self.assertGreater(res.replies["421 4.7.0"], 2 * self.FLOODERS, res.replies)
        self.assertLess(max(res.refused_close), 1.0, "a refused connection was left open")
        self.assertLess(loadgen.percentile(res.refused_reply, 0.5), 1.0, "refusals came late")
        growth = res.hwm_kib - res.rss_full_kib  # refusing holds nothing per connection
        self.assertLess(growth, (16 if sanitized() else 8) << 10, f"RSS grew {growth} KiB: {res.rss_kib}")
        self.assertGreaterEqual(res.greeted_after, 0, "no slot came back after the flood")
        self.assertLess(res.greeted_after, 5)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class FdExhaustion(WorldTestCase):
    LIMIT = 64  # the relay's hard open-file limit; max_connections allows far more

    def start_limited_relay(self):
        """Starts the relay with a hard RLIMIT_NOFILE of LIMIT."""
        relay = self.world.relay("relay", server={"max_connections": 500})
        relay.preexec = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (self.LIMIT, self.LIMIT))
        # clang 14's UBSan checks a virtual call's vptr by writing the vtable into a pipe
        # (IsAccessibleMemoryRange); with no descriptor left the pipe fails and every
        # first virtual call of a type is reported as "invalid vptr".
        # Out of descriptors is this test's point, so only here the vptr check is off.
        supp = self.world.root / "ubsan-no-vptr.supp"
        supp.write_text("vptr:*\n")
        relay.env["UBSAN_OPTIONS"] = f"suppressions={supp}"
        return relay.start()

    def test_out_of_descriptors_the_relay_pauses_accepting_and_recovers(self):
        """With more clients than descriptors, the relay warns once, does not spin
        retrying accept, keeps its sessions, and greets the waiting clients once
        descriptors free up."""
        relay = self.start_limited_relay()
        relay.wait_for_log(r"open-file limit 64 is below the 756 that server\.max_connections needs")
        mark = relay.log_mark()
        socks = [socket.create_connection(relay.address, timeout=10) for _ in range(2 * self.LIMIT)]
        self.addCleanup(lambda: [s.close() for s in socks])
        relay.wait_for_log(r"accept: Too many open files; pausing accepts", since=mark)
        before = cpu_seconds(relay.pid())
        ended = time.monotonic() + 2.0
        while time.monotonic() < ended:  # out of descriptors the whole time: accept keeps failing
            self.assertTrue(relay.running())
            time.sleep(0.2)
        self.assertLess(cpu_seconds(relay.pid()) - before, 0.5, "the accept loop spins")
        self.assertEqual(len(re.findall("accept: Too many open files", relay.log_text(mark))), 1)
        greeted = [s for s in socks if readable(s)]  # accepted before the descriptors ran out
        self.assertLess(len(greeted), len(socks))
        for s in greeted:  # free descriptors: the clients still waiting get their turn
            s.close()
        waiting = [s for s in socks if s not in greeted]
        for s in waiting[:len(greeted) // 2]:
            s.settimeout(10)
            self.assertTrue(s.recv(100).startswith(b"220 "))
        relay.wait_for_log(r"accepting again", since=mark)


def readable(s: socket.socket) -> bool:
    return bool(select.select([s], [], [], 0)[0])


if __name__ == "__main__":
    import unittest
    unittest.main()

"""Hostile SMTP clients against the real tlsrelay: the rows of docs/checklist.md §B, D,
E and G that test_intake.py and test_durability.py leave open.

Each test starts the relay (and, where mail must go on, a DNS server and an SMTP peer)
on loopback and checks what the client, the spool, the process table or the peer saw.
Checklist item numbers of security-and-durability.md §5 are in brackets.
Run: TLSRELAY_BIN=build/relay/tlsrelay /usr/bin/python3 -m unittest -v test_hostile_clients
"""

from __future__ import annotations

import os
import re
import socket
import struct
import time
import unittest

from test_delivery import DeliveryCase, content
from world import ConnectionClosed, RawSmtp, WorldTestCase, dot_stuff

SENDER = "sender@sender.test"
RCPT = "user@example.test"


def children_of(pid: int) -> list[str]:
    """Every process whose parent is pid, as 'PID COMMAND' (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # exited meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
            out.append(f"{entry} {comm}")
    return out


def processes_running(needle: str) -> list[str]:
    """Command lines anywhere on the machine that contain needle."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            if needle in cmd:
                found.append(f"{entry}: {cmd}")
    return found


class HostileClients(WorldTestCase):
    """A relay on its default limits, and clients that abuse it [14, 27]."""

    def setUp(self):
        super().setUp()
        self.relay = self.start_relay()

    def transaction(self, c: RawSmtp) -> None:
        c.ehlo()
        c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
        c.expect(f"RCPT TO:<{RCPT}>", 250, "2.1.5")
        c.expect("DATA", 354)

    def test_one_ten_megabyte_header_is_refused_552(self):
        """One 10 MB header line, under the 50 MiB size limit, is refused 552 5.3.4; nothing queued, memory bounded, the session goes on [14]."""
        rss_before = self.relay.rss_kib()
        with RawSmtp(self.relay.address, timeout=30) as c:
            self.transaction(c)
            c.send(b"Subject: big header\r\nX-Big: ")
            chunk = b"y" * (1 << 20)
            for _ in range(10):
                c.send(chunk)
            c.send(b"\r\n\r\nbody\r\n.\r\n")
            c.expect(None, 552, "5.3.4")
            growth = self.relay.rss_kib() - rss_before
            c.expect("RSET", 250, "2.0.0")
        self.assertLess(growth, 16 * 1024, f"RSS grew {growth} KiB for a 10 MB header")
        self.assertEqual(self.relay.queue(), [])
        self.assertEqual(self.relay.spool_files("tmp"), [])

    def test_header_at_postfix_size_limit_is_accepted(self):
        """A 100 KB header field (Postfix's header_size_limit, 102400 with its CRLF) is still accepted [14]."""
        with RawSmtp(self.relay.address) as c:
            self.transaction(c)
            c.send(b"X-Big: " + b"y" * (102400 - 9) + b"\r\n\r\nbody\r\n.\r\n")
            c.expect(None, 250, "2.0.0")

    def test_cve_2020_7247_starts_no_process_and_queues_nothing(self):
        """MAIL FROM:<;sleep 66;> and shell-shaped recipients: refused, no child process, no 'sleep 66' anywhere, Q+0 [27]."""
        pid = self.relay.pid()
        with RawSmtp(self.relay.address) as c:
            c.ehlo()
            r = c.cmd("MAIL FROM:<;sleep 66;>")
            self.assertIn((r.code, r.enhanced), ((501, "5.1.7"), (553, "5.1.7")), r)
            r = c.cmd("MAIL FROM:<;sleep 66;@sender.test>")
            self.assertEqual(r.code // 100, 5, r)
            c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
            r = c.cmd("RCPT TO:<`sleep 66`@example.test>")
            if r.code == 250:  # a literal local part is legal: then it must stay a literal
                c.expect("RSET", 250, "2.0.0")
            c.expect("QUIT", 221, "2.0.0")
        self.assertEqual(children_of(pid), [], "the relay started a process")
        self.assertEqual(processes_running("sleep 66"), [])
        self.assertEqual(self.relay.queue(), [])
        self.assertTrue(self.relay.running())


class ClientGoneAfterTheDot(DeliveryCase):
    """A client that hangs up right after its final dot, never reading the 250 [60]."""

    def setUp(self):
        super().setUp()
        self.mx("example.test", "10 mx1.example.test.")
        self.sink = self.peer("mx1.example.test")
        self.relay_ = self.relay()

    def send_and_hang_up(self, token: str, reset: bool) -> None:
        c = RawSmtp(self.relay_.address)
        try:
            c.ehlo()
            c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
            c.expect(f"RCPT TO:<{RCPT}>", 250, "2.1.5")
            c.expect("DATA", 354)
            if reset:  # close with RST: the kernel may drop what the relay had not read
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.send(dot_stuff(content(token)))
        finally:
            c.close()

    def delivered_tokens(self) -> list[str]:
        return [re.search(rb"token (\S+)", m.data).group(1).decode() for m in self.sink.messages]

    def committed(self) -> int:
        return len(re.findall(r"tlsrelay/qmgr\[\d+\]: \w+: from=<", self.relay_.log_text()))

    def test_fin_right_after_the_dot_is_still_delivered_once(self):
        """Data, dot and FIN in one go: each message is committed and delivered exactly once [60]."""
        tokens = [f"fin{i}" for i in range(10)]
        for t in tokens:
            self.send_and_hang_up(t, reset=False)
        self.sink.wait_for_messages(len(tokens))
        self.relay_.wait_for_log(r"removed$", timeout=10)
        self.assertEqual(sorted(self.delivered_tokens()), sorted(tokens))
        self.assertEqual(self.committed(), len(tokens))
        self.assertEqual(self.relay_.spool_files("tmp"), [])

    def test_reset_right_after_the_dot_is_queued_once_or_not_at_all(self):
        """Data, dot and RST: each message is committed and delivered once, or not queued at all; nothing half-stored [60]."""
        tokens = [f"rst{i}" for i in range(10)]
        for t in tokens:
            self.send_and_hang_up(t, reset=True)
        # every session has ended (connect and disconnect lines pair up) before counting
        deadline = time.monotonic() + 10
        while len(re.findall(r"smtpd\[\d+\]: disconnect from", self.relay_.log_text())) < len(tokens):
            self.assertLess(time.monotonic(), deadline, self.relay_.log_text())
            self.relay_.wait_for_log(r"disconnect from", timeout=1, since=self.relay_.log_mark(), fail=False)
        committed = self.committed()
        if committed:
            self.sink.wait_for_messages(committed)
        delivered = self.delivered_tokens()
        self.assertEqual(len(delivered), len(set(delivered)), "a message was delivered twice")
        self.assertTrue(set(delivered) <= set(tokens))
        self.assertEqual(len(delivered), committed, "every committed message is delivered")
        self.assertEqual(self.relay_.spool_files("tmp"), [])


class ConnectionFlood(WorldTestCase):
    """One peer opening hundreds of connections, and a client next to it [44]."""

    def flood(self, address, source: str, n: int) -> tuple[list[RawSmtp], list]:
        """n connections from source; returns (those greeted 220, the 421 replies)."""
        greeted, refused = [], []
        for _ in range(n):
            c = RawSmtp(address, source=source)
            self.addCleanup(c.close)
            r = c.reply()
            if r.code == 220:
                greeted.append(c)
            else:
                refused.append(r)
                self.assertTrue(c.closed())
        return greeted, refused

    def test_one_peer_past_its_limit_gets_421_and_others_are_served(self):
        """200 connections from one outside address: 50 are served, the rest get 421 4.7.0; a local client still sends mail at once [44]."""
        relay = self.start_relay(server={"allow_networks": ["127.0.0.1/32"]})
        flooder = self.world.ports.address()
        greeted, refused = self.flood(relay.address, flooder, 200)
        self.assertEqual(len(greeted), 50, "max_connections_per_client defaults to 50, as Postfix")
        self.assertEqual(len(refused), 150)
        for r in refused:
            self.assertEqual((r.code, r.enhanced), (421, "4.7.0"), r)
            self.assertEqual(r.text, f"4.7.0 {relay.hostname} Error: too many connections from {flooder}")
        relay.wait_for_log(rf"warning: Connection concurrency limit exceeded: 51 from unknown\[{re.escape(flooder)}\] "
                           r"for service smtp$")
        started = time.monotonic()
        with RawSmtp(relay.address) as c:
            c.ehlo()
            c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
            c.expect(f"RCPT TO:<{RCPT}>", 250, "2.1.5")
            c.expect("DATA", 354)
            c.send(dot_stuff(content("beside-the-flood")))
            c.expect(None, 250, "2.0.0")
        self.assertLess(time.monotonic() - started, 1.0)
        greeted[0].expect("QUIT", 221, "2.0.0")  # one leaves: the next from there is served
        self.assertTrue(greeted[0].closed())
        deadline = time.monotonic() + 5
        while True:  # the relay notices the QUIT asynchronously: a bounded retry
            again, _ = self.flood(relay.address, flooder, 1)
            if again:
                break
            self.assertLess(time.monotonic(), deadline, "the freed slot was never given back")

    def test_clients_in_allow_networks_are_exempt(self):
        """As Postfix exempts $mynetworks, a client allowed to relay may hold more than the per-client limit [44]."""
        relay = self.start_relay(server={"max_connections_per_client": 3})
        greeted, refused = self.flood(relay.address, "127.0.0.1", 8)
        self.assertEqual((len(greeted), refused), (8, []))
        outsider = self.world.ports.address()
        relay.stop()
        relay.config["server"]["allow_networks"] = ["127.0.0.1/32"]
        relay.start()
        greeted, refused = self.flood(relay.address, outsider, 5)
        self.assertEqual((len(greeted), len(refused)), (3, 2))


if __name__ == "__main__":
    unittest.main()

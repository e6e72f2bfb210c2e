"""Queue control of the running daemon over <queue.dir>/control: `tlsrelay queue flush
[ID]`, `hold`, `release` and `delete` act at once, `queue list` says why each message
waits, hostile bytes on the socket change nothing, and with the daemon stopped (or
killed, leaving its socket behind) the commands change the spool files as before.

Every relay here retries after an hour (retry_min = 1h), so a delivery within seconds
can only come from the control socket. Waits are on log lines and peer conditions with
deadlines."""

from __future__ import annotations

import os
import pwd
import re
import socket
import stat
import subprocess
import time
import unittest

from test_delivery import SENDER, DeliveryCase, content, submit

RCPT = "user@example.test"
LATER = {"retry_min": "1h", "retry_max": "1h"}
DEFER = {"RCPT": "451 4.3.0 try later"}


def control_request(relay, data: bytes, timeout: float = 10.0) -> bytes:
    """Raw bytes to the daemon's socket, its whole reply back. The spool's path may be
    longer than a socket address, so the socket is reached through a folder descriptor."""
    fd = os.open(relay.spool, os.O_PATH | os.O_DIRECTORY)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(f"/proc/self/fd/{fd}/control")
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused before all was read: the reply is still there
            chunks = []
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks)
    finally:
        os.close(fd)


class ControlCase(DeliveryCase):
    def setUp(self):
        super().setUp()
        self.mx("example.test", "10 mx1.example.test.")

    def deferred_message(self, relay, token: str) -> str:
        """A submitted message whose first attempt is over and recorded as deferred."""
        qid = submit(relay, content(token))
        self.status(relay, qid, RCPT, "deferred")
        self.recipient_state(relay, qid, RCPT, "deferred")
        return qid

    def entry(self, relay, qid: str) -> dict:
        [e] = [m for m in relay.queue() if m["id"] == qid]
        return e

    def wait_waiting(self, relay, qid: str, pattern: str, timeout: float = 10.0) -> dict:
        """The message's `queue list --json` entry once its "waiting" matches."""
        deadline = time.monotonic() + timeout
        while True:
            e = self.entry(relay, qid)
            if re.fullmatch(pattern, e.get("waiting", "")):
                return e
            if time.monotonic() > deadline:
                raise AssertionError(f"{qid}: waiting is not {pattern!r} within {timeout}s: {e!r}")
            time.sleep(0.05)  # polling the CLI: there is no event to wait on

    def delivered(self, peer, token: str, timeout: float = 10.0) -> None:
        """The peer got the message carrying token within timeout (far below retry_min)."""
        body = content(token)
        deadline = time.monotonic() + timeout
        while not any(m.data.endswith(body) for m in peer.messages):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"message {token} not delivered within {timeout}s")
            try:
                peer.wait_for_messages(len(peer.messages) + 1, timeout=left)
            except AssertionError:
                pass

    def never_delivered(self, peer, token: str) -> None:
        self.assertFalse([m for m in peer.messages if m.data.endswith(content(token))], token)


class ControlActions(ControlCase):

    def test_flush_id_delivers_a_deferred_message_at_once(self):
        """`queue flush ID` to the running daemon retries that message now although retry_min is 1h; the list said why it waited."""
        peer = self.peer("mx1.example.test", replies=dict(DEFER))
        relay = self.relay(queue=LATER)
        qid = self.deferred_message(relay, "flush-id")
        e = self.wait_waiting(relay, qid, r"deferred until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d: .*")
        self.assertIn(f"host mx1.example.test[{peer.host}] said: 451 4.3.0 try later", e["waiting"])
        self.assertEqual((e["held"], e["recipients"][0]["status"]), (False, "deferred"))  # old fields as before
        peer.replies.pop("RCPT")
        mark = relay.log_mark()
        relay.cli("queue", "flush", qid)
        relay.wait_for_log(rf"tlsrelay/queue\[\d+\]: {qid}: flush requested$", since=mark)
        self.delivered(peer, "flush-id")
        self.assertEqual(self.status(relay, qid, RCPT, since=mark)["status"], "sent")
        self.wait_removed(relay, qid, since=mark)

    def test_flush_all_delivers_every_deferred_message(self):
        """`queue flush` without an id retries every deferred message through the daemon."""
        peer = self.peer("mx1.example.test", replies=dict(DEFER))
        relay = self.relay(queue=LATER)
        a = self.deferred_message(relay, "all-a")
        b = self.deferred_message(relay, "all-b")
        peer.replies.pop("RCPT")
        mark = relay.log_mark()
        relay.cli("queue", "flush")
        relay.wait_for_log(r"tlsrelay/queue\[\d+\]: flush requested$", since=mark)
        self.delivered(peer, "all-a")
        self.delivered(peer, "all-b")
        self.wait_removed(relay, a, since=mark)
        self.wait_removed(relay, b, since=mark)

    def test_held_message_stays_through_flush_until_released(self):
        """A message held through the daemon is listed held and not delivered on flush while other mail is; release + flush delivers it."""
        peer = self.peer("mx1.example.test", replies=dict(DEFER))
        relay = self.relay(queue=LATER)
        qid = self.deferred_message(relay, "held")
        mark = relay.log_mark()
        relay.cli("queue", "hold", qid)
        relay.wait_for_log(rf"tlsrelay/queue\[\d+\]: {qid}: placed on hold$", since=mark)
        e = self.wait_waiting(relay, qid, "held")
        self.assertEqual((e["held"], e["recipients"][0]["status"]), (True, "held"))
        peer.replies.pop("RCPT")
        relay.cli("queue", "flush", qid)
        relay.cli("queue", "flush")
        marker = submit(relay, content("marker"))  # delivered at once: the peer now accepts
        self.delivered(peer, "marker")
        self.wait_removed(relay, marker, since=mark)
        self.never_delivered(peer, "held")
        self.assertEqual(self.statuses(relay, qid, RCPT, since=mark), [])
        self.assertEqual(self.entry(relay, qid)["waiting"], "held")
        relay.cli("queue", "release", qid)
        relay.wait_for_log(rf"tlsrelay/queue\[\d+\]: {qid}: released from hold$", since=mark)
        e = self.wait_waiting(relay, qid, r"deferred until .*")  # its old retry time again
        self.assertEqual((e["held"], e["recipients"][0]["status"]), (False, "deferred"))
        relay.cli("queue", "flush", qid)
        self.delivered(peer, "held")
        self.wait_removed(relay, qid, since=mark)

    def test_deleted_message_is_gone_and_never_delivered(self):
        """`queue delete ID` through the daemon removes the message; flushing after that delivers other mail, never it."""
        peer = self.peer("mx1.example.test", replies=dict(DEFER))
        relay = self.relay(queue=LATER)
        qid = self.deferred_message(relay, "deleted")
        mark = relay.log_mark()
        relay.cli("queue", "delete", qid)
        relay.wait_for_log(rf"tlsrelay/queue\[\d+\]: {qid}: removed$", since=mark)
        self.assertNotIn(qid, relay.queue_ids())
        self.assertEqual(relay.spool_files("messages"), [])
        peer.replies.pop("RCPT")
        relay.cli("queue", "flush")
        marker = submit(relay, content("after-delete"))
        self.delivered(peer, "after-delete")
        self.wait_removed(relay, marker, since=mark)
        self.never_delivered(peer, "deleted")
        cp = relay.cli("queue", "flush", qid, check=False)  # the daemon no longer knows it
        self.assertEqual(cp.returncode, 1)
        self.assertEqual(cp.stderr.decode(), f"tlsrelay: queue: no message {qid}\n")
        cp = relay.cli("queue", "hold", qid, check=False)
        self.assertEqual((cp.returncode, cp.stderr.decode()), (1, f"tlsrelay: queue: no message {qid}\n"))

    def test_delete_during_delivery_is_not_resurrected(self):
        """Deleting a message whose attempt is in progress: the list shows it active, the attempt's end records nothing and the message never comes back."""
        peer = self.peer("mx1.example.test", stall=["DOT"])
        relay = self.relay(queue=LATER)
        qid = submit(relay, content("in-flight"))
        peer.wait_for_command(".", timeout=10)
        self.wait_waiting(relay, qid, r"active \(delivery in progress\)")
        table = relay.cli("queue", "list").stdout.decode()
        self.assertIn(f"{qid}*  ", table)
        self.assertIn("  (active (delivery in progress))\n", table)
        mark = relay.log_mark()
        relay.cli("queue", "delete", qid)  # answered at once, the attempt still running
        relay.wait_for_log(rf"tlsrelay/queue\[\d+\]: {qid}: removed$", since=mark)
        self.assertNotIn(qid, relay.queue_ids())
        peer.stop()  # the attempt ends (deferred: lost connection)
        relay.wait_for_log(rf"tlsrelay/qmgr\[\d+\]: {qid}: deleted during delivery; outcome not recorded$",
                           since=mark)
        self.assertNotIn("cannot record delivery state", relay.log_text(mark))
        self.assertEqual(relay.spool_files("messages"), [])
        self.assertEqual(relay.spool_files("state"), [])
        cp = relay.cli("queue", "flush", qid, check=False)  # not rescheduled in the daemon either
        self.assertEqual((cp.returncode, cp.stderr.decode()), (1, f"tlsrelay: queue: no message {qid}\n"))

    def test_hold_during_delivery_records_the_attempt_but_never_retries_it(self):
        """A message held while its attempt runs: the attempt's outcome is recorded, it is not retried (not even on flush) until released and flushed."""
        peer = self.peer("mx1.example.test", stall=["DOT"])
        relay = self.relay(queue=LATER)
        qid = submit(relay, content("held-in-flight"))
        peer.wait_for_command(".", timeout=10)
        mark = relay.log_mark()
        relay.cli("queue", "hold", qid)
        relay.wait_for_log(rf"tlsrelay/queue\[\d+\]: {qid}: placed on hold$", since=mark)
        peer.stop()  # the attempt ends: deferred, lost connection
        self.status(relay, qid, RCPT, "deferred", since=mark)
        e = self.wait_waiting(relay, qid, "held")
        self.assertEqual((e["held"], e["recipients"][0]["attempts"]), (True, 1))
        again = self.peer(port=25, host=peer.host)  # the same MX address, accepting now
        relay.cli("queue", "flush")
        marker = submit(relay, content("held-marker"))
        self.delivered(again, "held-marker")
        self.wait_removed(relay, marker, since=mark)
        self.never_delivered(again, "held-in-flight")
        self.assertEqual(len(self.statuses(relay, qid, RCPT, since=mark)), 1, "one attempt only")
        relay.cli("queue", "release", qid)
        relay.cli("queue", "flush", qid)
        self.delivered(again, "held-in-flight")
        self.wait_removed(relay, qid, since=mark)

    def test_list_says_a_message_waits_for_a_connection_slot(self):
        """With max_connections_per_domain = 1 and one delivery stalled, a second message for the domain is listed as waiting for a connection slot."""
        peer = self.peer("mx1.example.test", stall=["DOT"])
        relay = self.relay(queue=LATER, delivery={"max_connections_per_domain": 1})
        first = submit(relay, content("first"))
        peer.wait_for_command(".", timeout=10)
        second = submit(relay, content("second"))
        self.wait_waiting(relay, second, "waiting for a connection slot to example.test")
        self.assertEqual(self.entry(relay, first)["waiting"], "active (delivery in progress)")
        table = relay.cli("queue", "list").stdout.decode()
        self.assertIn("  (waiting for a connection slot to example.test)\n", table)


class ControlSocket(ControlCase):

    def test_socket_is_private_and_hostile_requests_change_nothing(self):
        """The socket is mode 0600; garbage, overlong lines, NULs and bad ids get `error: ...`, a silent client blocks nobody, and mail still flows."""
        peer = self.peer("mx1.example.test", replies=dict(DEFER))
        relay = self.relay(queue=LATER)
        st = os.lstat(relay.spool / "control")
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        qid = self.deferred_message(relay, "hostile")
        cases = {
            b"x" * 100000: b"error: request too long\n",
            b"hold " + b"A" * 59 + b"\n": b"error: request too long\n",
            b"hold " + qid.encode() + b"\0\n": b"error: request holds a control or non-ASCII byte\n",
            b"\0" * 10 + b"\n": b"error: request holds a control or non-ASCII byte\n",
            b"delete ../../etc/passwd\n": b"error: not a queue id\n",
            b"delete " + qid.lower().encode() + b"\n": b"error: not a queue id\n",
            b"GET / HTTP/1.0\r\n": b"error: unknown request\n",
            b"hold\n": b"error: hold needs a queue id\n",
            b"\xff\xfe\n": b"error: request holds a control or non-ASCII byte\n",
            b"list\n": f"{qid} due ".encode(),
        }
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:  # says nothing at all
            fd = os.open(relay.spool, os.O_PATH | os.O_DIRECTORY)
            try:
                silent.connect(f"/proc/self/fd/{fd}/control")
            finally:
                os.close(fd)
            for request, reply in cases.items():
                got = control_request(relay, request)
                self.assertTrue(got.startswith(reply), (request[:80], got))
        self.assertTrue(control_request(relay, b"list\n").endswith(b"\nok\n"))
        e = self.entry(relay, qid)  # nothing was held, deleted or flushed
        self.assertEqual((e["held"], e["recipients"][0]["status"]), (False, "deferred"))
        self.assertRegex(e["waiting"], r"^deferred until ")
        self.assertEqual(peer.messages, [])
        peer.replies.pop("RCPT")
        relay.cli("queue", "flush", qid)
        self.delivered(peer, "hostile")

    def test_only_root_and_the_daemon_user_are_served(self):
        """A client of another uid that reaches the socket (opened up to 0666 here) is refused by its peer credentials, and the refusal is logged."""
        nobody = pwd.getpwnam("nobody")
        os.chmod(self.world.root, 0o755)
        relay = self.relay(start=False, queue=LATER)
        os.chmod(relay.dir, 0o755)
        relay.start()
        os.chmod(relay.spool, 0o711)
        os.chmod(relay.spool / "control", 0o666)
        mark = relay.log_mark()
        probe = ("import os, socket, sys\n"
                 "fd = os.open(sys.argv[1], os.O_PATH | os.O_DIRECTORY)\n"
                 "s = socket.socket(socket.AF_UNIX); s.settimeout(10)\n"
                 "s.connect(f'/proc/self/fd/{fd}/control')\n"
                 "try: s.sendall(b'flush\\n')\n"
                 "except BrokenPipeError: pass  # refused before the request was read\n"
                 "sys.stdout.write(s.recv(1000).decode())\n")
        cp = subprocess.run(["/usr/bin/python3", "-c", probe, str(relay.spool)], user=nobody.pw_uid,
                            group=nobody.pw_gid, extra_groups=[], capture_output=True, timeout=30)
        self.assertEqual(cp.stdout.decode(), "error: permission denied\n", cp.stderr.decode())
        relay.wait_for_log(rf"tlsrelay/queue\[\d+\]: warning: control: refused a client running as uid "
                           rf"{nobody.pw_uid}$", since=mark)
        self.assertNotIn("flush requested", relay.log_text(mark))

    def test_dropped_daemon_owns_its_socket_and_root_commands_reach_it(self):
        """Started as root with server.user = nobody, the socket belongs to nobody (0600) and a root `queue hold` is done by the daemon."""
        nobody = pwd.getpwnam("nobody")
        os.chmod(self.world.root, 0o755)
        self.peer("mx1.example.test", replies=dict(DEFER))
        relay = self.relay(start=False, queue=LATER, server={"user": "nobody"})
        os.chmod(relay.dir, 0o755)
        relay.start()
        st = os.lstat(relay.spool / "control")
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (nobody.pw_uid, 0o600))
        qid = self.deferred_message(relay, "dropped")
        mark = relay.log_mark()
        relay.cli("queue", "hold", qid)
        relay.wait_for_log(rf"tlsrelay/queue\[\d+\]: {qid}: placed on hold$", since=mark)
        self.assertEqual(self.entry(relay, qid)["waiting"], "held")


class ControlOffline(ControlCase):

    def test_without_a_daemon_the_commands_change_the_spool_files(self):
        """Daemon stopped (socket removed) or killed (socket left behind): hold, release, flush and delete still work on the files, and list has no "waiting"."""
        peer = self.peer("mx1.example.test", replies=dict(DEFER))
        relay = self.relay(queue=LATER)
        keep = self.deferred_message(relay, "offline-keep")
        gone = self.deferred_message(relay, "offline-gone")
        self.assertEqual(relay.stop(), 0)
        self.assertFalse((relay.spool / "control").exists(), "a clean stop removes the socket")
        self.offline_round(relay, keep, gone)
        relay.start()
        self.assertTrue(stat.S_ISSOCK(os.lstat(relay.spool / "control").st_mode))
        relay.kill()  # kill -9: the socket file stays, nobody listens on it
        self.assertTrue(stat.S_ISSOCK(os.lstat(relay.spool / "control").st_mode))
        cp = relay.cli("queue", "hold", keep)
        self.assertEqual(cp.stderr, b"", "a stale socket means no daemon: no warning")
        self.assertTrue(self.entry(relay, keep)["held"])
        relay.cli("queue", "release", keep)
        relay.cli("queue", "flush", keep)
        self.assertEqual(self.entry(relay, keep)["recipients"][0]["next_attempt"], 0)
        peer.replies.pop("RCPT")
        mark = relay.log_mark()
        relay.start()  # replaces the stale socket; the files say `keep` is due now
        self.delivered(peer, "offline-keep")
        self.wait_removed(relay, keep, since=mark)
        self.never_delivered(peer, "offline-gone")

    def offline_round(self, relay, keep: str, gone: str) -> None:
        for e in relay.queue():
            self.assertNotIn("waiting", e)
        self.assertNotIn("  (", relay.cli("queue", "list").stdout.decode())
        relay.cli("queue", "hold", keep)
        e = self.entry(relay, keep)
        self.assertEqual((e["held"], e["recipients"][0]["status"]), (True, "held"))
        relay.cli("queue", "release", keep)
        self.assertFalse(self.entry(relay, keep)["held"])
        relay.cli("queue", "flush", keep)
        self.assertEqual(self.entry(relay, keep)["recipients"][0]["next_attempt"], 0)
        relay.cli("queue", "delete", gone)
        self.assertEqual(relay.queue_ids(), [keep])
        cp = relay.cli("queue", "hold", gone, check=False)
        self.assertEqual(cp.returncode, 1)


if __name__ == "__main__":
    unittest.main()

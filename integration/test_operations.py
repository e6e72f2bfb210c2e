"""Running tlsrelay as an administrator does: started as root it binds and then drops to
server.user with the spool still usable; its logs reach syslog, come out as JSON with
the same fields, and Debian's pflogsumm reads them (--syslog-name=tlsrelay).

The test world runs as root; the drop target is `nobody`."""

from __future__ import annotations

import os
import pwd
import re
import unittest
from pathlib import Path

from test_delivery import DeliveryCase, content, submit

DROP_USER = "nobody"


def proc_ids(pid: int) -> dict[str, list[int]]:
    """Uid, Gid (real, effective, saved, fs) and Groups from /proc/PID/status."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("Uid", "Gid", "Groups"):
            out[key] = [int(v) for v in value.split()]
        elif key == "CapEff":
            out[key] = [int(value.strip(), 16)]
    return out


class PrivilegeDrop(DeliveryCase):
    def setUp(self):
        super().setUp()
        self.user = pwd.getpwnam(DROP_USER)
        self.assertEqual(os.geteuid(), 0, "the integration world runs as root")
        # Like /var/spool: the folders above the spool are traversable by everyone.
        os.chmod(self.world.root, 0o755)
        self.peer_ = self.peer("mx.example.test")
        self.mx("example.test", "10 mx.example.test.")

    def dropping_relay(self, **server):
        relay = self.relay(start=False, server={"user": DROP_USER, **server})
        os.chmod(relay.dir, 0o755)
        return relay

    def assertRunsAsUser(self, relay) -> None:
        ids = proc_ids(relay.pid())
        self.assertEqual(ids["Uid"], [self.user.pw_uid] * 4, ids)
        self.assertEqual(ids["Gid"], [self.user.pw_gid] * 4, ids)
        self.assertNotIn(0, ids["Groups"], ids)
        self.assertEqual(ids["CapEff"], [0], "no capability may survive the drop")

    def assertSpoolOwnedByUser(self, relay) -> None:
        for path in [relay.spool, *relay.spool.rglob("*")]:
            st = path.lstat()
            self.assertEqual((st.st_uid, st.st_gid), (self.user.pw_uid, self.user.pw_gid), path)

    def deliver_one(self, relay, token: str) -> None:
        mark = relay.log_mark()
        body = content(token)
        qid = submit(relay, body)  # 250 after DATA: committed by the dropped process
        self.status(relay, qid, "user@example.test", "sent", since=mark)
        self.wait_removed(relay, qid, since=mark)
        self.assertEqual([m.data.endswith(body) for m in self.peer_.messages].count(True), 1)

    def test_started_as_root_it_runs_as_server_user_and_the_spool_stays_writable(self):
        """Started as root with server.user = nobody: /proc shows nobody's uid/gid and no capabilities, and mail is committed, delivered and removed."""
        relay = self.dropping_relay()
        relay.start()
        self.assertRunsAsUser(relay)
        self.deliver_one(relay, "drop")
        self.assertSpoolOwnedByUser(relay)

    def test_spool_made_by_an_earlier_root_run_is_handed_to_the_user(self):
        """A spool created by a run as root (0700 root folders) is given to server.user at the next start, so mail still commits."""
        relay = self.relay(start=False)
        os.chmod(relay.dir, 0o755)
        relay.start()
        self.deliver_one(relay, "as-root")
        self.assertEqual(relay.stop(), 0)
        self.assertEqual(relay.spool.stat().st_uid, 0)
        relay.config["server"]["user"] = DROP_USER
        relay.start()
        self.assertRunsAsUser(relay)
        self.deliver_one(relay, "after-drop")
        self.assertSpoolOwnedByUser(relay)

    def test_unknown_user_is_a_startup_error(self):
        """server.user naming no account stops serve at start with exit 1 and the reason."""
        relay = self.dropping_relay(user="no-such-user-tlsrelay")
        with self.assertRaises(AssertionError):
            relay.start(timeout=10)
        self.assertEqual(relay.proc.returncode, 1)
        self.assertRegex(relay.log_text(), r'tlsrelay/master\[\d+\]: error: unknown user "no-such-user-tlsrelay"')


if __name__ == "__main__":
    unittest.main()

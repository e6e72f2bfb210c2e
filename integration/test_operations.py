"""Running tlsrelay as an administrator does: started as root it binds and then drops to
server.user with the spool still usable; its logs reach syslog, come out as JSON with
the same fields, and Debian's pflogsumm reads them (--syslog-name=tlsrelay).

The test world runs as root; the drop target is `nobody`."""

from __future__ import annotations

import datetime
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
import unittest
from pathlib import Path

import world
from test_delivery import STATUS_RX, DeliveryCase, content, submit

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
        # After the drop the relay must still be able to write a sanitizer report.
        relay.report_dir = self.world.mkdir(f"{relay.name}-reports")
        os.chmod(relay.report_dir, 0o1777)
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



# ------------------------------------------------------------------------------------------
# Logs
# ------------------------------------------------------------------------------------------

# Runs "$@" in a private mount namespace whose /dev is a small tmpfs holding the usual
# devices and, as /dev/log, the test's datagram socket: glibc's syslog() only ever
# talks to /dev/log, and the host's (if any) stays untouched.
PRIVATE_DEV_LOG = """set -e
sock=$1 old=$2; shift 2
mount --rbind /dev "$old"
mount -t tmpfs -o mode=0755,size=64k tlsrelay-test-dev /dev
for n in null zero full random urandom; do : > /dev/$n; mount --bind "$old/$n" /dev/$n; done
: > /dev/log
mount --bind "$sock" /dev/log
exec "$@"
"""

SYSLOG_RX = re.compile(r"^<(?P<pri>\d+)>(?P<stamp>\w{3} [ \d]\d \d\d:\d\d:\d\d) "
                       r"(?P<service>tlsrelay/\w+)\[(?P<pid>\d+)\]: (?P<text>.*)$")
LOG_MAIL, LOG_INFO = 2 << 3, 6


class Syslog(world.WorldTestCase):
    def setUp(self):
        super().setUp()
        for tool in ("unshare", "mount"):
            self.assertIsNotNone(shutil.which(tool), f"{tool} (util-linux, mount) missing")
        self.sock_path = self.world.root / "dev-log"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(self.sock.close)
        self.sock.bind(str(self.sock_path))
        self.datagrams: list[str] = []

    def wait_for_datagram(self, pattern: str, timeout: float = 10.0) -> re.Match:
        """Reads syslog datagrams (bounded) until one matches; all are kept."""
        rx = re.compile(pattern)
        for d in self.datagrams:
            if m := rx.search(d):
                return m
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(65536).decode("utf-8", "replace").rstrip("\n")
            except socket.timeout:
                break
            self.datagrams.append(d)
            if m := rx.search(d):
                return m
        raise AssertionError(f"no syslog datagram matching {pattern!r} within {timeout}s; got:\n"
                             + "\n".join(self.datagrams))

    def test_syslog_target_sends_postfix_lines_to_dev_log(self):
        """log.target = "syslog": mail-facility datagrams on /dev/log as tlsrelay/smtpd[PID] with connect from and from=<..>, nothing on stderr."""
        relay = self.world.relay(log={"target": "syslog"})
        relay.write_config()
        old_dev = self.world.mkdir("old-dev")
        stderr_path = self.world.root / "stderr"
        with open(stderr_path, "wb") as stderr:
            relay.proc = world.popen_sanitized(
                ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-ec", PRIVATE_DEV_LOG,
                 "sh", self.sock_path, old_dev, world.relay_binary(), "serve", "--config", relay.config_path],
                relay.dir, cwd=relay.dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                start_new_session=True)
        started = self.wait_for_datagram(r"tlsrelay/master\[\d+\]: daemon started", timeout=15)
        pid = relay.pid()  # unshare and sh exec: the relay keeps the Popen pid
        self.assertEqual(started.string[:1], "<")
        qid = submit(relay, content("syslog"))
        connect = SYSLOG_RX.match(self.wait_for_datagram(r"tlsrelay/smtpd\[\d+\]: connect from ").string)
        self.assertIsNotNone(connect, self.datagrams)
        self.assertEqual(int(connect["pri"]), LOG_MAIL | LOG_INFO)
        self.assertEqual(int(connect["pid"]), pid)
        self.assertEqual(connect["text"], "connect from unknown[127.0.0.1]")
        self.wait_for_datagram(rf"tlsrelay/\w+\[{pid}\]: {qid}: from=<{re.escape('sender@sender.test')}>, "
                               r"size=\d+, nrcpt=1 \(queue active\)$")
        self.wait_for_datagram(rf"tlsrelay/smtpd\[{pid}\]: disconnect from unknown\[127\.0\.0\.1\] ")
        os.kill(pid, signal.SIGTERM)
        world.check_sanitizer(relay.name, relay.dir, relay.proc.wait(10))
        self.assertEqual(relay.proc.returncode, 0)
        self.wait_for_datagram(r"tlsrelay/master\[\d+\]: terminating on signal 15")
        self.assertEqual(stderr_path.read_bytes(), b"", "with the syslog target nothing goes to stderr")


class JsonLog(world.WorldTestCase):
    FIELDS = {"time", "host", "service", "pid", "message"}

    def events(self, relay) -> list[dict]:
        out = []
        for line in relay.log_lines():
            event = json.loads(line)  # every line is one JSON object
            self.assertLessEqual(self.FIELDS, set(event), line)
            self.assertLessEqual(set(event), self.FIELDS | {"severity"}, line)
            out.append(event)
        return out

    def find(self, events: list[dict], service: str, pattern: str) -> dict:
        for e in events:
            if e["service"] == service and re.fullmatch(pattern, e["message"]):
                return e
        raise AssertionError(f"no {service} event matching {pattern!r} in {events!r}")

    def test_json_lines_carry_the_postfix_fields(self):
        """log.format = "json": one object per line with time, host, service, pid, message (severity for warnings) holding the Postfix texts."""
        relay = self.world.relay(log={"format": "json"}).start()
        qid = submit(relay, content("json"))
        relay.wait_for_log(r'"message":"disconnect from ')
        relay.wait_for_log(rf'"message":"{qid}: to=<user@example\.test>, relay=none.*status=deferred')
        relay.config["server"]["listen"] = [f"127.0.0.1:{self.world.ports.port()}"]
        relay.write_config()
        mark = relay.log_mark()
        os.kill(relay.pid(), signal.SIGHUP)
        relay.wait_for_log(r'"message":"reload -- configuration ', since=mark)
        events = self.events(relay)
        for e in events:
            self.assertEqual(e["host"], relay.hostname)
            self.assertEqual(e["pid"], relay.pid())
            self.assertRegex(e["service"], r"^tlsrelay/(master|smtpd|smtp|qmgr|queue)$")
            stamp = datetime.datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S%z")
            now = datetime.datetime.now(datetime.timezone.utc)
            self.assertLess(abs((now - stamp).total_seconds()), 600, e)
        self.find(events, "tlsrelay/master", r"daemon started -- version .*")
        self.find(events, "tlsrelay/smtpd", r"connect from unknown\[127\.0\.0\.1\]")
        self.find(events, "tlsrelay/smtpd", rf"{qid}: client=unknown\[127\.0\.0\.1\]")
        self.find(events, "tlsrelay/qmgr", rf"{qid}: from=<sender@sender\.test>, size=\d+, nrcpt=1 \(queue active\)")
        self.find(events, "tlsrelay/smtpd", r"disconnect from unknown\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1 "
                                            r"data=1 quit=1 commands=5")
        status = self.find(events, "tlsrelay/smtp", rf"{qid}: to=<user@example\.test>, .*")
        m = STATUS_RX.search(f"{status['service']}[{status['pid']}]: {status['message']}")
        self.assertIsNotNone(m, status)
        self.assertEqual((m["relay"], m["dsn"], m["status"]), ("none", "4.4.1", "deferred"), status)
        warning = self.find(events, "tlsrelay/master", r"reload: server\.listen changes need a restart; kept")
        self.assertEqual(warning.get("severity"), "warning")
        self.assertNotIn("severity", self.find(events, "tlsrelay/smtpd", r"connect from .*"))


# ------------------------------------------------------------------------------------------
# pflogsumm
# ------------------------------------------------------------------------------------------

def pflogsumm_totals(report: str) -> dict[str, int]:
    """The "Grand Totals" numbers of a pflogsumm report: label -> count ("deferrals" too)."""
    units = {"": 1, "k": 1024, "m": 1024 * 1024}
    totals = {}
    for m in re.finditer(r"(?m)^\s+(\d+)([km]?)\s+([a-z/ ]+?)(?:\s+\(\s*(\d+)\s+deferrals\)|\s+\(\d+%\))?$",
                         report.split("Grand Totals", 1)[1].split("Per-Day", 1)[0]):
        totals[m[3]] = int(m[1]) * units[m[2]]
        if m[4]:
            totals["deferrals"] = int(m[4])
    return totals


class Pflogsumm(DeliveryCase):
    def test_pflogsumm_counts_what_the_relay_logged(self):
        """Debian's pflogsumm --syslog-name=tlsrelay on the relay's log counts received, delivered, deferred, bytes and senders right."""
        tool = shutil.which("pflogsumm")
        self.assertIsNotNone(tool, "pflogsumm missing: scripts/common.sh TEST_PACKAGES has it")
        peer = self.peer("mx.example.test",
                         rcpt_replies={"later@example.test": "451 4.3.0 Try again later"})
        self.mx("example.test", "10 mx.example.test.")
        relay = self.relay(queue={"retry_min": "1h", "retry_max": "1h"})
        sent = [("a@sender.test", ["user@example.test"]),
                ("b@sender.test", ["later@example.test"]),
                ("a@sender.test", ["other@example.test", "later@example.test"])]
        ids = [submit(relay, content(f"pf{i}", sender=s), sender=s, rcpts=r)
               for i, (s, r) in enumerate(sent)]
        for qid, (_, rcpts) in zip(ids, sent):
            for r in rcpts:
                self.status(relay, qid, r, "deferred" if r.startswith("later@") else "sent")
        self.wait_removed(relay, ids[0])
        self.assertEqual(len(peer.wait_for_messages(2)), 2)
        log = self.world.root / "maillog"
        log.write_text("\n".join(relay.log_lines()) + "\n")
        cp = subprocess.run([tool, "--syslog-name=tlsrelay", str(log)], capture_output=True, timeout=60)
        report = cp.stdout.decode(errors="replace")
        self.assertEqual(cp.returncode, 0, report + cp.stderr.decode(errors="replace"))
        sizes = {m[1]: int(m[2]) for m in re.finditer(r"(\w+): from=<[^>]*>, size=(\d+)", log.read_text())}
        self.assertEqual(set(sizes), set(ids))
        totals = pflogsumm_totals(report)
        expected = {"received": 3, "delivered": 2, "deferred": 2, "deferrals": 2, "bounced": 0,
                    "rejected": 0, "bytes received": sum(sizes.values()),
                    "bytes delivered": sizes[ids[0]] + sizes[ids[2]], "senders": 2,
                    "sending hosts/domains": 1, "recipients": 2, "recipient hosts/domains": 1}
        self.assertEqual({k: totals.get(k) for k in expected}, expected, report)
        self.assertRegex(report, r"(?s)message deferral detail.*smtp \(total: 2\).*Try again later")


if __name__ == "__main__":
    unittest.main()

"""Postfix 3.7 as a test oracle: a private instance whose smtp(8) makes the delivery and
TLS-policy decision that tlsrelay must reproduce (see spec/postfix-as-oracle.md).

    oracle = PostfixOracle(world, dns)          # dns: a started world.DnsServer (port 53)
    lines = oracle.deliver({"recipients": ["user@example.test"],
                            "main": {"smtp_tls_security_level": "verify"},
                            "policy": ["example.test secure match=nexthop"]})
    lines[0]["status"], lines[0]["dsn"], lines[0]["reason"], lines[0]["relay"]
    oracle.log_since_injection()                # every maillog line of that delivery

Each deliver() runs on a fresh start of the instance (stop, rewrite main.cf, start): a
deferral throttles the destination inside qmgr and leaves the message queued, so reusing
a running instance would leak one case into the next. The instance lives in a mount
namespace of its own (`unshare -m`) where /etc/resolv.conf is bind-mounted to point at
the scenario's DNS server and /etc/postfix is bind-mounted to the instance's config
folder (so nothing outside the test's temp folder is touched, and `postfix -c` finds a
default main.cf without one being installed system-wide). Logs go to maillog_file via
postlogd. Waiting for a result reads the maillog until the status line appears, with a
deadline. Cleanup stops the master (SIGTERM, as `postfix stop` does) and waits for the master's pid to exit (pidfd),
killing that one pid if it does not.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import select
import shutil
import signal
import smtplib
import subprocess
import tempfile
import time
from pathlib import Path

import pki
from world import DnsServer, World

# A status line as log_adhoc.c writes it (any daemon: smtp, error, retry, ...).
STATUS_RX = re.compile(
    r"postfix/(?P<program>[\w/-]+)\[\d+\]: (?P<queue_id>[0-9A-F]+): to=<(?P<to>[^>]*)>,"
    r"(?: orig_to=<(?P<orig_to>[^>]*)>,)? relay=(?P<relay>[^,]+),(?: conn_use=\d+,)?"
    r" delay=(?P<delay>[\d.]+), delays=(?P<delays>[\d./]+), dsn=(?P<dsn>[\d.]+),"
    r" status=(?P<status>\w+) \((?P<reason>.*)\)$")

MASTER_CF = """\
{listen} inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def default_main(root: Path, ca_file: Path) -> dict[str, str]:
    """The oracle's main.cf before a scenario's own settings are applied."""
    return {
        "compatibility_level": "3.6",
        "queue_directory": f"{root}/queue",
        "data_directory": f"{root}/data",
        "mail_owner": "postfix",
        "myhostname": "oracle.tlsrelay.invalid",
        "mydomain": "tlsrelay.invalid",
        "myorigin": "$myhostname",
        "inet_interfaces": "127.0.0.1",
        "mynetworks": "127.0.0.0/8",
        "mydestination": "",
        "relay_domains": "",
        "local_recipient_maps": "",
        "alias_maps": "",
        "alias_database": "",
        "biff": "no",
        "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
        "maillog_file": f"{root}/maillog",
        "maillog_file_prefixes": f"{root}",
        # the TLS client: logging, no shared state between cases, the test CA
        "smtp_tls_loglevel": "1",
        "smtp_tls_session_cache_database": "",
        "smtp_connection_cache_on_demand": "no",
        "smtp_tls_CAfile": str(ca_file),
        "smtp_tls_security_level": "may",
        "smtp_tls_policy_maps": f"texthash:{root}/conf/tls_policy",
        "transport_maps": f"texthash:{root}/conf/transport",
        # bounded waits when a peer stalls (scenarios may override)
        "smtp_connect_timeout": "10s",
        "smtp_helo_timeout": "20s",
        "smtp_starttls_timeout": "20s",
        "smtp_mail_timeout": "20s",
        "smtp_rcpt_timeout": "20s",
        "smtp_data_init_timeout": "20s",
        "smtp_data_xfer_timeout": "20s",
        "smtp_data_done_timeout": "20s",
    }


# `postfix set-permissions create-missing` takes seconds (it runs postconf dozens of
# times), so it runs once per test process, in a template tree that every instance then
# copies with owners and modes kept (`cp -a`): its conf/ (Debian's /etc/postfix files
# that post-install and the map loader expect next to main.cf), queue/ and data/.
_template: Path | None = None
MASTER = "/usr/lib/postfix/sbin/master"  # Debian's daemon_directory


def _prepare_template() -> Path:
    tpl = Path(tempfile.mkdtemp(prefix="tlsrelay-pf-template-"))
    atexit.register(shutil.rmtree, tpl, ignore_errors=True)
    os.chmod(tpl, 0o755)
    conf = tpl / "conf"
    shutil.copytree("/etc/postfix", conf, ignore=shutil.ignore_patterns("main.cf", "master.cf"))
    for d in ("queue", "data"):
        (tpl / d).mkdir()
    pw = pwd.getpwnam("postfix")
    os.chown(tpl / "data", pw.pw_uid, pw.pw_gid)
    (conf / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in default_main(
        tpl, pki.get_pki().ca_file).items()))
    (conf / "master.cf").write_text(MASTER_CF.format(listen="127.0.0.1:1"))
    (tpl / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    cp = _run_in_namespace(tpl, ("postfix", "-c", str(conf), "set-permissions", "create-missing"), 120)
    (tpl / "resolv.conf").unlink()
    if cp.returncode != 0:
        raise AssertionError(f"postfix set-permissions failed: {cp.stderr}{cp.stdout}")
    return tpl


def _run_in_namespace(root: Path, args, timeout: float) -> subprocess.CompletedProcess:
    """args in a mount namespace where /etc/resolv.conf is root/resolv.conf and
    /etc/postfix is root/conf."""
    script = ('set -e; mount --bind "$1" /etc/resolv.conf; mount --bind "$2" /etc/postfix; '
              'shift 2; exec "$@"')
    cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
           str(root / "resolv.conf"), str(root / "conf"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def _group_alive(pgid: int) -> list[int]:
    """Processes of group pgid that are still running (zombies waiting for init to reap
    them hold no sockets and do not count)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def _wait_group_gone(pgid: int, timeout: float) -> None:
    """Polls until no process of group pgid runs (there is no handle to wait on for a
    group of non-children); SIGKILLs what is left at the deadline."""
    deadline = time.monotonic() + timeout
    while _group_alive(pgid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            deadline += 5
        time.sleep(0.01)


def _copy_prepared_tree(root: Path) -> None:
    """conf/, queue/ and data/ under root, as set-permissions leaves them."""
    global _template
    if _template is None:
        _template = _prepare_template()
    subprocess.run(["cp", "-a", f"{_template}/.", f"{root}/"], check=True)


def _pidfd_wait(pid: int, timeout: float) -> bool:
    """True when pid exited within timeout (waits on a pidfd: no polling)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        r, _, _ = select.select([fd], [], [], timeout)
        return bool(r)
    finally:
        os.close(fd)


class PostfixOracle:
    """One private Postfix instance under world.root/NAME (see the module docstring)."""

    def __init__(self, world: World, dns: DnsServer | None, name: str = "postfix"):
        if not shutil.which("postfix") or not shutil.which("unshare"):
            raise unittest_skip("postfix or unshare not installed")
        self.world = world
        self.dns = dns
        # A short root of its own: queue/private/<service> must fit in a UNIX socket
        # path (108 bytes), which a world folder named after a long test id may not.
        self.root = Path(tempfile.mkdtemp(prefix="tlsrelay-pf-"))
        if not world.keep:
            world.on_cleanup(lambda: shutil.rmtree(self.root, ignore_errors=True))
        (world.root / name).symlink_to(self.root)  # found from the world's folder
        self.conf = self.root / "conf"
        self.maillog = self.root / "maillog"
        self.port = world.ports.port("127.0.0.1")
        self.running = False
        self.master_pid: int | None = None
        self._mark = 0
        self._prepared = False
        # The postfix user must traverse every folder above its queue and data.
        os.chmod(self.root, 0o755)
        world.on_cleanup(self.stop)

    # -- commands inside the instance's mount namespace ----------------------------------
    def _ns(self, *args: str, check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess:
        cp = _run_in_namespace(self.root, args, timeout)
        if check and cp.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({cp.returncode}): {cp.stderr}{cp.stdout}\n"
                                 f"maillog tail:\n{self.log_text()[-3000:]}")
        return cp

    def postfix(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self._ns("postfix", "-c", str(self.conf), *args, check=check)

    # -- configuration -------------------------------------------------------------------
    def configure(self, main: dict | None = None, policy: list[str] | None = None,
                  transport: dict | None = None) -> None:
        """Writes main.cf (defaults + main), master.cf, the policy and transport tables
        (texthash: no postmap) and resolv.conf. Takes effect at the next start()."""
        if not self._prepared:
            _copy_prepared_tree(self.root)
        settings = default_main(self.root, pki.get_pki().ca_file)
        settings.update({k: str(v) for k, v in (main or {}).items()})
        (self.conf / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        (self.conf / "master.cf").write_text(MASTER_CF.format(listen=f"127.0.0.1:{self.port}"))
        (self.conf / "tls_policy").write_text("".join(l + "\n" for l in (policy or [])))
        (self.conf / "transport").write_text("".join(f"{k} {v}\n" for k, v in (transport or {}).items()))
        resolv = self.dns.resolv_conf() if self.dns else "nameserver 127.0.0.1\n"
        (self.root / "resolv.conf").write_text(resolv)
        os.chmod(self.root / "resolv.conf", 0o644)
        # Postfix reads a configuration file or table only once its mtime lies in the
        # past (load_file(): a file changed this second may still be being written), in
        # 300 ms naps: a main.cf written just now costs every daemon 1-2 s at start-up.
        # These are complete, so they get a time ten seconds ago.
        past = time.time() - 10
        for f in ("main.cf", "master.cf", "tls_policy", "transport"):
            os.chmod(self.conf / f, 0o644)
            os.utime(self.conf / f, (past, past))
        self._prepared = True

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> None:
        assert not self.running
        # What `postfix start` ends with, without postfix-script's integrity checks
        # (a second of postconf and find per start): the tree comes from set-permissions
        # untouched, and the daemons refuse a bad main.cf themselves. -w returns once
        # the master initialised, non-zero if it could not.
        cp = _run_in_namespace(self.root, (MASTER, "-c", str(self.conf), "-w"), 60)
        if cp.returncode != 0:
            raise AssertionError(f"postfix master failed to start ({cp.returncode}): {cp.stderr}"
                                 f"\nmaillog tail:\n{self.log_text()[-3000:]}")
        self.running = True
        pid_file = self.root / "queue" / "pid" / "master.pid"
        with contextlib.suppress(OSError, ValueError):
            self.master_pid = int(pid_file.read_text().split()[0])

    def stop(self, timeout: float = 15.0) -> None:
        if not self.running:
            return
        self.running = False
        pid, self.master_pid = self.master_pid, None
        if not pid:
            return
        # `postfix stop` is a SIGTERM to the master, which passes it on to its process
        # group (its children). Done means that whole group is gone: a child that still
        # holds the smtpd listener would make the next start fail to bind.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _pidfd_wait(pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        _wait_group_gone(pid, 5)

    # -- mail ----------------------------------------------------------------------------
    def inject(self, sender: str, recipients: list[str], body: bytes | None = None,
               mail_options: list[str] | None = None) -> str:
        """Submits one message to the instance's smtpd; returns Postfix's queue id."""
        body = body or (b"From: <%s>\r\nTo: <%s>\r\nSubject: oracle test\r\n\r\nhello\r\n"
                        % (sender.encode(), recipients[0].encode()))
        with smtplib.SMTP("127.0.0.1", self.port, local_hostname="client.tlsrelay.invalid",
                          timeout=30) as s:
            s.ehlo()
            code, msg = s.mail(sender, list(mail_options or []))
            assert code == 250, f"MAIL: {code} {msg!r}"
            for r in recipients:
                code, msg = s.rcpt(r)
                assert code == 250, f"RCPT {r}: {code} {msg!r}"
            code, msg = s.data(body)
            m = re.search(rb"queued as ([0-9A-F]+)", msg)
            assert code == 250 and m, f"DATA: {code} {msg!r}"
            return m.group(1).decode()

    def log_text(self) -> str:
        try:
            return self.maillog.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_since_injection(self) -> str:
        return self.log_text()[self._mark:]

    def wait_status(self, queue_id: str, recipients: list[str], timeout: float = 60.0) -> list[dict]:
        """The first status= line for each recipient of queue_id, read from the maillog
        until all appeared or the deadline passed (AssertionError with the log)."""
        want = {r.lower() for r in recipients}
        deadline = time.monotonic() + timeout
        found: dict[str, dict] = {}
        while True:
            for line in self.log_since_injection().splitlines():
                m = STATUS_RX.search(line)
                if m and m.group("queue_id") == queue_id and m.group("to").lower() in want:
                    found.setdefault(m.group("to").lower(), dict(m.groupdict(), line=line))
            if len(found) == len(want):
                return [found[r.lower()] for r in recipients]
            if time.monotonic() > deadline:
                raise AssertionError(f"no status line for {sorted(want - set(found))} of {queue_id} "
                                     f"within {timeout}s; maillog:\n{self.log_since_injection()}")
            time.sleep(0.05)  # reading a growing log file: there is nothing to wait on

    def deliver(self, case: dict, timeout: float = 60.0) -> list[dict]:
        """Runs one case on a freshly started instance. case: recipients (list), and
        optionally sender, body (bytes), main (dict of main.cf settings), policy (list of
        policy-table lines), transport (dict domain -> transport:nexthop). Returns one dict
        per recipient: queue_id, to, relay, dsn, status, reason (+ program, delay, delays,
        orig_to, line). The instance is stopped again afterwards."""
        self.stop()
        self.configure(case.get("main"), case.get("policy"), case.get("transport"))
        self._mark = len(self.log_text())
        self.start()
        try:
            qid = self.inject(case.get("sender", "sender@client.tlsrelay.invalid"),
                              list(case["recipients"]), case.get("body"), case.get("mail_options"))
            return self.wait_status(qid, list(case["recipients"]), timeout)
        finally:
            self.stop()


def unittest_skip(reason: str) -> Exception:
    import unittest
    return unittest.SkipTest(reason)

"""The integration test world: real tlsrelay processes and real peers on loopback.

A test builds a World (one per test, torn down even on failure), asks it for ports
and addresses, starts one or more Relays with a config written from Python values,
talks to them with real clients, and inspects the spool through the relay's own CLI
(`tlsrelay queue list --json`, `queue show`). Nothing here sleeps to synchronise:
readiness is the `daemon started` log line, replies are read with deadlines, and
waits on logs are bounded.

Extension points for the delivery half: DnsServer (dnslib, answers from a dict) and
SmtpPeer (aiosmtpd, records what it receives) run on 127.0.1.x addresses that the
World hands out; a delivery test points `[dns] servers` and routes at them.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PORT_CLAIMS = Path(tempfile.gettempdir()) / "tlsrelay-test-ports"
STARTUP_TIMEOUT = 15.0
REPLY_TIMEOUT = 10.0


def relay_binary() -> Path:
    """The binary under test: $TLSRELAY_BIN (set by ctest) or <repo>/build/relay/tlsrelay."""
    path = Path(os.environ.get("TLSRELAY_BIN", REPO / "build" / "relay" / "tlsrelay")).resolve()
    if not path.exists():
        raise FileNotFoundError(f"tlsrelay binary not found at {path}; build it or set TLSRELAY_BIN")
    return path


# ----------------------------------------------------------------------------------------
# Ports and addresses
# ----------------------------------------------------------------------------------------

def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _claim(name: str) -> bool:
    """Claims a port/address across concurrently running test processes (ctest -j)."""
    PORT_CLAIMS.mkdir(parents=True, exist_ok=True)
    path = PORT_CLAIMS / name
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        try:
            owner = int(path.read_text() or "0")
        except (OSError, ValueError):
            return False
        if owner and _pid_alive(owner):
            return False
        with contextlib.suppress(OSError):
            path.unlink()  # stale claim of a dead test process
        return _claim(name)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    return True


def _release(name: str) -> None:
    with contextlib.suppress(OSError):
        (PORT_CLAIMS / name).unlink()


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class Ports:
    """Hands out TCP+UDP ports below the kernel's ephemeral range, so that outgoing
    connections never steal them, and claims each one in a shared folder so parallel
    test processes never pick the same port."""

    def __init__(self, rng_seed: int | None = None):
        import random
        self._rng = random.Random(rng_seed if rng_seed is not None else os.getpid() ^ time.time_ns())
        self._claimed: list[str] = []

    def port(self, host: str = "127.0.0.1") -> int:
        for _ in range(2000):
            port = self._rng.randrange(20000, 32000)
            name = f"port-{port}"
            if not _claim(name):
                continue
            if _bindable(host, port):
                self._claimed.append(name)
                return port
            _release(name)
        raise RuntimeError("no free port found")

    def address(self) -> str:
        """A loopback address 127.0.1.N of its own (for peers that must listen on port 25
        or be told apart by address). Linux routes all of 127/8 to lo."""
        for _ in range(2000):
            n = self._rng.randrange(2, 254)
            name = f"addr-127.0.1.{n}"
            if _claim(name):
                self._claimed.append(name)
                return f"127.0.1.{n}"
        raise RuntimeError("no free loopback address found")

    def release_all(self) -> None:
        for name in self._claimed:
            _release(name)
        self._claimed.clear()


# ----------------------------------------------------------------------------------------
# TOML
# ----------------------------------------------------------------------------------------

def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # TOML basic strings accept JSON escapes for what we write
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def to_toml(config: dict) -> str:
    """{section: {key: value}}; a value that is a list of dicts is an array of tables
    ("delivery.route" style keys are written as [[delivery.route]])."""
    out: list[str] = []
    for section, body in config.items():
        if isinstance(body, list):
            for table in body:
                out.append(f"[[{section}]]")
                out += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
                out.append("")
            continue
        out.append(f"[{section}]")
        out += [f"{k} = {_toml_value(v)}" for k, v in body.items()]
        out.append("")
    return "\n".join(out)


# ----------------------------------------------------------------------------------------
# The relay process
# ----------------------------------------------------------------------------------------

class Relay:
    """One tlsrelay serve process with its own config file and spool in a temp folder."""

    def __init__(self, world: "World", name: str = "relay", **sections):
        self.world = world
        self.name = name
        self.dir = world.mkdir(name)
        self.config_path = self.dir / "tlsrelay.toml"
        self.port = world.ports.port()
        self.host = "127.0.0.1"
        self.hostname = f"{name}.test.example"
        self.config: dict = {
            "server": {
                "listen": [f"{self.host}:{self.port}"],
                "hostname": self.hostname,
                "allow_networks": ["127.0.0.0/8"],
            },
            "queue": {"dir": "spool"},
            # Delivery is not part of intake tests: an unreachable relayhost keeps
            # every message in the queue for inspection. Delivery tests override this.
            "delivery": {"relayhost": "[127.0.0.1]:1"},
        }
        for section, values in sections.items():
            if isinstance(values, list):
                self.config[section] = values
            else:
                self.config.setdefault(section, {}).update(values)
        self.proc: subprocess.Popen | None = None
        self._log: list[str] = []
        self._log_cond = threading.Condition()
        self._reader: threading.Thread | None = None
        self.starts = 0

    # -- paths ----------------------------------------------------------------------------
    @property
    def spool(self) -> Path:
        return self.dir / self.config["queue"]["dir"]

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def write_config(self) -> None:
        self.config_path.write_text(to_toml(self.config))

    # -- life cycle -----------------------------------------------------------------------
    def start(self, timeout: float = STARTUP_TIMEOUT) -> "Relay":
        """Starts serve and returns once it logged `daemon started` (a bounded wait)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.write_config()
        mark = self.log_mark()
        self.proc = subprocess.Popen(
            [str(relay_binary()), "serve", "--config", str(self.config_path)],
            cwd=self.dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=True)
        self.starts += 1
        self._reader = threading.Thread(target=self._read_stderr, args=(self.proc,), daemon=True)
        self._reader.start()
        if not self.wait_for_log(r"daemon started", timeout=timeout, since=mark, fail=False):
            code = self.proc.poll()
            self.kill()
            raise AssertionError(
                f"{self.name} did not log 'daemon started' within {timeout}s "
                f"(exit code {code}); log:\n{self.log_text()}")
        return self

    def _read_stderr(self, proc: subprocess.Popen) -> None:
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._log_cond:
                self._log.append(line)
                self._log_cond.notify_all()
        with self._log_cond:
            self._log_cond.notify_all()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait; returns the exit code (the contract says 0)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"{self.name} did not exit within {timeout}s of SIGTERM")
        self._join_reader()
        return self.proc.returncode

    def kill(self) -> None:
        """kill -9 (the whole process group, in case it ever forks helpers)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._join_reader()

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(5)
            self._reader = None
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()

    def restart(self) -> "Relay":
        self.stop()
        return self.start()

    def rss_kib(self) -> int:
        """Resident set size of the running relay, from /proc/PID/status VmRSS."""
        for line in Path(f"/proc/{self.pid()}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    # -- log ------------------------------------------------------------------------------
    def log_mark(self) -> int:
        with self._log_cond:
            return len(self._log)

    def log_lines(self, since: int = 0) -> list[str]:
        with self._log_cond:
            return list(self._log[since:])

    def log_text(self, since: int = 0) -> str:
        return "\n".join(self.log_lines(since))

    def wait_for_log(self, pattern: str, timeout: float = 5.0, since: int = 0,
                     fail: bool = True) -> re.Match | None:
        """Waits (bounded) until a log line at index >= since matches pattern."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._log_cond:
            while True:
                for line in self._log[since:]:
                    m = rx.search(line)
                    if m:
                        return m
                remaining = deadline - time.monotonic()
                exited = (self.proc is not None and self.proc.poll() is not None
                          and (self._reader is None or not self._reader.is_alive()))
                if remaining <= 0 or exited:
                    break
                self._log_cond.wait(min(remaining, 0.5))
        if fail:
            raise AssertionError(f"no log line matching {pattern!r} within {timeout}s; log:\n"
                                 + self.log_text(since))
        return None

    # -- CLI ------------------------------------------------------------------------------
    def cli(self, *args: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess:
        """Runs `tlsrelay ARGS --config FILE` (the config is written first)."""
        self.write_config()
        cp = subprocess.run([str(relay_binary()), *args, "--config", str(self.config_path)],
                            cwd=self.dir, capture_output=True, timeout=timeout)
        if check and cp.returncode != 0:
            raise AssertionError(f"tlsrelay {' '.join(args)} exited {cp.returncode}:\n"
                                 f"{cp.stderr.decode(errors='replace')}")
        return cp

    def queue(self) -> list[dict]:
        """`queue list --json`: one dict per message (id, arrival, size, sender, recipients)."""
        out = self.cli("queue", "list", "--json").stdout.decode()
        data = json.loads(out)
        assert isinstance(data, list), f"queue list --json did not print an array: {out!r}"
        return data

    def queue_ids(self) -> list[str]:
        return [m["id"] for m in self.queue()]

    def queue_show(self, queue_id: str) -> bytes:
        return self.cli("queue", "show", queue_id).stdout

    def message_content(self, queue_id: str, first_line: bytes | None = None) -> bytes:
        """The stored content of a message, from `queue show` (envelope first, then the
        content). The content starts at our Received: header, or at first_line (the
        client's first header) when a test wants to locate it by what it sent."""
        return extract_content(self.queue_show(queue_id), first_line)

    def spool_files(self, sub: str) -> list[Path]:
        d = self.spool / sub
        return sorted(p for p in d.iterdir()) if d.is_dir() else []


def extract_content(show: bytes, first_line: bytes | None = None) -> bytes:
    """Finds where the message content begins in `queue show` output."""
    candidates = []
    m = re.search(rb"(?m)^Received: ", show)
    if m:
        candidates.append(m.start())
    if first_line is not None:
        i = show.find(first_line)
        if i >= 0:
            candidates.append(i)
    if not candidates:
        raise AssertionError(f"cannot find the message content in queue show output:\n{show[:2000]!r}")
    return show[min(candidates):]


def split_received(content: bytes) -> tuple[bytes, bytes]:
    """Splits off the leading Received: header (with its folded continuation lines)."""
    if not content.startswith(b"Received: "):
        return b"", content
    end = 0
    while True:
        nl = content.find(b"\r\n", end)
        if nl < 0:
            return content, b""
        end = nl + 2
        if content[end:end + 1] not in (b" ", b"\t"):
            return content[:end], content[end:]


# ----------------------------------------------------------------------------------------
# A raw SMTP client: exact bytes out, exact replies in, with deadlines
# ----------------------------------------------------------------------------------------

class Reply:
    def __init__(self, code: int, lines: list[str]):
        self.code = code
        self.lines = lines  # text after "250-" / "250 "

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def enhanced(self) -> str:
        m = re.match(r"([245]\.\d{1,3}\.\d{1,3})\b", self.lines[-1] if self.lines else "")
        return m.group(1) if m else ""

    def __repr__(self) -> str:
        return " | ".join(f"{self.code} {l}" for l in self.lines)


class ConnectionClosed(Exception):
    pass


class RawSmtp:
    """SMTP at the byte level, for the cases no well-behaved client library will send."""

    def __init__(self, address: tuple[str, int], timeout: float = REPLY_TIMEOUT,
                 source: str | None = None):
        self.sock = socket.create_connection(address, timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.timeout = timeout
        self.buf = b""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes | str) -> bool:
        """Sends everything; False when the server already closed (reset/broken pipe)."""
        if isinstance(data, str):
            data = data.encode()
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("reply deadline passed")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise ConnectionClosed(f"connection closed; unparsed bytes {self.buf!r}")
        self.buf += chunk

    def _line(self, deadline: float) -> bytes:
        while b"\n" not in self.buf:
            self._fill(deadline)
        line, _, self.buf = self.buf.partition(b"\n")
        assert line.endswith(b"\r"), f"reply line not CRLF-terminated: {line!r}"
        return line[:-1]

    def reply(self, timeout: float | None = None) -> Reply:
        """Reads one (possibly multi-line) reply. Raises ConnectionClosed on EOF."""
        deadline = time.monotonic() + (timeout or self.timeout)
        lines: list[str] = []
        while True:
            line = self._line(deadline)
            m = re.fullmatch(rb"([2-5]\d\d)([ -])(.*)", line, re.S)
            assert m, f"malformed reply line {line!r}"
            assert len(line) + 2 <= 512, f"reply line over 512 octets: {line[:80]!r}..."
            lines.append(m.group(3).decode("utf-8", "replace"))
            if m.group(2) == b" ":
                return Reply(int(m.group(1)), lines)

    def cmd(self, line: str | bytes, timeout: float | None = None) -> Reply:
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.reply(timeout)

    def expect(self, line: str | bytes | None, code: int, enhanced: str | None = None) -> Reply:
        """Sends line (None: just read) and asserts the reply code and enhanced code."""
        r = self.reply() if line is None else self.cmd(line)
        if r.code != code or (enhanced is not None and r.enhanced != enhanced):
            raise AssertionError(f"after {line!r}: expected {code} {enhanced or ''}, got {r!r}")
        return r

    def greeting(self) -> Reply:
        return self.expect(None, 220)

    def ehlo(self, name: str = "client.example") -> Reply:
        self.greeting()
        return self.expect(f"EHLO {name}", 250)

    def starttls(self, context=None, server_hostname: str | None = None) -> None:
        """Wraps the socket in TLS after a 220 to STARTTLS. Bytes already received in
        plaintext would be a response-injection hole, so there must be none."""
        import ssl
        assert not self.buf, f"plaintext bytes pending at TLS start: {self.buf!r}"
        if context is None:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self.sock.settimeout(self.timeout)
        self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)

    def quiet(self, timeout: float = 0.5) -> bool:
        """True when the server sends nothing within timeout (a bounded negative check)."""
        try:
            self._fill(time.monotonic() + timeout)
        except socket.timeout:
            return True
        except ConnectionClosed:
            return False
        return False

    def closed(self, timeout: float | None = None) -> bool:
        """True when the server closes the connection (EOF) with nothing more to say
        within the deadline; the leftover replies, if any, make it fail loudly."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while True:
                self._fill(deadline)
        except ConnectionClosed:
            if self.buf:
                raise AssertionError(f"unexpected bytes before close: {self.buf!r}")
            return True
        except socket.timeout:
            return False

    def replies_until_close(self, timeout: float | None = None) -> list[Reply]:
        out = []
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            try:
                out.append(self.reply(max(0.01, deadline - time.monotonic())))
            except ConnectionClosed:
                return out


QUEUED = re.compile(r"^2\.0\.0 Ok: queued as ([0-9A-Za-z]+)$")


def queued_id(reply: Reply) -> str:
    m = QUEUED.match(reply.lines[-1]) if reply.code == 250 else None
    if not m:
        raise AssertionError(f"expected '250 2.0.0 Ok: queued as ID', got {reply!r}")
    return m.group(1)


def dot_stuff(content: bytes) -> bytes:
    """content (CRLF lines) as sent after DATA, with the terminating dot."""
    lines = content.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    stuffed = [b"." + l if l.startswith(b".") else l for l in lines]
    return b"\r\n".join(stuffed) + b"\r\n.\r\n"


def make_certificate(folder: Path, names: list[str], stem: str = "cert",
                     issuer: tuple | None = None, days: int = 30, not_before_days: int = -1):
    """Writes STEM.pem (certificate) and STEM.key (key) into folder; self-signed unless
    issuer = (issuer_cert, issuer_key) is given. Returns (cert, key, cert_path, key_path)
    so a test can build chains (CA -> intermediate -> leaf) and expired certificates."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    signer_cert, signer_key = issuer if issuer else (None, key)
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(signer_cert.subject if signer_cert else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now + datetime.timedelta(days=not_before_days))
               .not_valid_after(now + datetime.timedelta(days=days)))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                                        critical=False)
    builder = builder.add_extension(x509.BasicConstraints(ca=not names, path_length=None), critical=True)
    cert = builder.sign(signer_key, hashes.SHA256())
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert, key, cert_path, key_path


# ----------------------------------------------------------------------------------------
# Peers for the delivery half (extension points)
# ----------------------------------------------------------------------------------------

class DnsServer:
    """An authoritative-for-everything DNS server on UDP+TCP (dnslib). records maps
    (name, type) to a list of RR text in zone-file syntax, e.g.
    records[("example.com.", "MX")] = ["10 mx.example.com."];
    rcodes maps (name, type) to an rcode name ("SERVFAIL", "NXDOMAIN") to fail a name.
    Point the relay at it with [dns] servers = [f"{dns.host}:{dns.port}"]."""

    def __init__(self, world: "World", host: str | None = None):
        self.world = world
        self.host = host or world.ports.address()
        self.port = world.ports.port(self.host)
        self.records: dict[tuple[str, str], list[str]] = {}
        self.rcodes: dict[tuple[str, str], str] = {}
        self.ad = False  # set the AD bit (a "validating" upstream for dnssec = true)
        self.queries: list[tuple[str, str]] = []
        self._servers = []

    def add(self, name: str, rtype: str, *rdata: str) -> None:
        name = name if name.endswith(".") else name + "."
        self.records.setdefault((name.lower(), rtype.upper()), []).extend(rdata)

    def start(self) -> "DnsServer":
        from dnslib import QTYPE, RCODE, RR
        from dnslib.server import BaseResolver, DNSServer

        outer = self

        class Resolver(BaseResolver):
            def resolve(self, request, handler):
                reply = request.reply()
                q = request.q
                name, rtype = str(q.qname).lower(), QTYPE[q.qtype]
                outer.queries.append((name, rtype))
                if (name, rtype) in outer.rcodes:
                    reply.header.rcode = getattr(RCODE, outer.rcodes[(name, rtype)])
                    return reply
                found = False
                for (n, t), rdatas in outer.records.items():
                    if n == name:
                        found = True
                        if t == rtype:
                            for rd in rdatas:
                                reply.add_answer(*RR.fromZone(f"{name} 60 IN {t} {rd}"))
                if not found:
                    reply.header.rcode = RCODE.NXDOMAIN
                reply.header.ad = int(outer.ad)
                return reply

        for tcp in (False, True):
            srv = DNSServer(Resolver(), address=self.host, port=self.port, tcp=tcp)
            srv.start_thread()
            self._servers.append(srv)
        self.world.on_cleanup(self.stop)
        return self

    def stop(self) -> None:
        for srv in self._servers:
            with contextlib.suppress(Exception):
                srv.stop()
        self._servers.clear()


class SmtpPeer:
    """A receiving SMTP server (aiosmtpd) that records every message; the delivery tests
    subclass it (or pass a handler) to misbehave on command: wrong certificates, 4xx/5xx
    at chosen stages, STARTTLS stripped, and so on. tls_context enables STARTTLS."""

    def __init__(self, world: "World", host: str | None = None, port: int | None = None,
                 handler=None, tls_context=None, require_starttls: bool = False):
        self.world = world
        self.host = host or world.ports.address()
        self.port = port or world.ports.port(self.host)
        self.messages: list = []  # aiosmtpd Envelope objects
        self.handler = handler or self._Recorder(self)
        self.tls_context = tls_context
        self.require_starttls = require_starttls
        self.controller = None

    class _Recorder:
        def __init__(self, peer: "SmtpPeer"):
            self.peer = peer

        async def handle_DATA(self, server, session, envelope):
            self.peer.messages.append(envelope)
            return "250 2.0.0 Ok: received"

    def start(self) -> "SmtpPeer":
        from aiosmtpd.controller import Controller
        self.controller = Controller(self.handler, hostname=self.host, port=self.port,
                                     tls_context=self.tls_context,
                                     require_starttls=self.require_starttls)
        self.controller.start()
        self.world.on_cleanup(self.stop)
        return self

    def stop(self) -> None:
        if self.controller is not None:
            with contextlib.suppress(Exception):
                self.controller.stop()
            self.controller = None

    @property
    def nexthop(self) -> str:
        return f"[{self.host}]:{self.port}"


# ----------------------------------------------------------------------------------------
# The world and the TestCase base
# ----------------------------------------------------------------------------------------

class World:
    """Owns everything a test started: temp folders, processes, claimed ports."""

    def __init__(self, name: str = "world"):
        self.root = Path(tempfile.mkdtemp(prefix=f"tlsrelay-{name}-"))
        self.ports = Ports()
        self._cleanups: list = []
        self.relays: list[Relay] = []
        self.keep = os.environ.get("TLSRELAY_KEEP_WORLD") == "1"

    def mkdir(self, name: str) -> Path:
        p = self.root / name
        p.mkdir(parents=True, exist_ok=False)
        return p

    def on_cleanup(self, fn) -> None:
        self._cleanups.append(fn)

    def relay(self, name: str = "relay", **sections) -> Relay:
        r = Relay(self, name, **sections)
        self.relays.append(r)
        return r

    def cleanup(self) -> None:
        for relay in self.relays:
            with contextlib.suppress(Exception):
                relay.kill()
        for fn in reversed(self._cleanups):
            with contextlib.suppress(Exception):
                fn()
        self._cleanups.clear()
        self.ports.release_all()
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)


class WorldTestCase(unittest.TestCase):
    """setUp makes a fresh World; cleanup runs even when the test or setUp fails.
    On failure the relay logs are printed, so a CI log shows what the daemon said."""

    def setUp(self):
        self.world = World(self.id().rsplit(".", 1)[-1])
        self.addCleanup(self._cleanup_world)

    def _cleanup_world(self):
        outcome = getattr(self, "_outcome", None)
        failed = False
        if outcome is not None:
            result = getattr(outcome, "result", None)
            if result is not None:
                failed = any(t is self for t, _ in result.failures + result.errors)
        if failed or os.environ.get("TLSRELAY_SHOW_LOGS") == "1":
            for r in self.world.relays:
                print(f"\n----- {r.name} log ({self.id()}) -----\n{r.log_text()}")
        self.world.cleanup()

    def start_relay(self, **sections) -> Relay:
        return self.world.relay(**sections).start()

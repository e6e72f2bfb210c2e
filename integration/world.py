"""The integration test world: real tlsrelay processes and real peers on loopback.

A test builds a World (one per test, torn down even on failure), asks it for ports
and addresses, starts one or more Relays with a config written from Python values,
talks to them with real clients, and inspects the spool through the relay's own CLI
(`tlsrelay queue list --json`, `queue show`). Nothing here sleeps to synchronise:
readiness is the `daemon started` log line, replies are read with deadlines, and
waits on logs are bounded.

The delivery half: DnsServer (dnslib, answers from a dict, programmable failures) runs
on port 53 of a private 127.0.2.x, SmtpPeer (asyncio, scripted misbehaviour, records
what it receives) on port 25 of a private 127.0.1.x; a delivery test points `[dns]
servers` (and Postfix's resolv.conf, see postfix_oracle.py) at them. Certificates come
from pki.py; scenario.py runs one description through Postfix and through tlsrelay.
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


# A relay built with TLSRELAY_SANITIZE that hits ASan, UBSan or LSan writes its report to
# DIR/sanitizer.PID and exits with this code; Relay.stop, check_sanitizer and
# World.cleanup fail the test on either. Every tlsrelay process a test starts, through
# Relay or directly (run_sanitized, popen_sanitized), gets this environment. Harmless for a
# normal build (the variables are then ignored). A small ASan quarantine keeps freed
# buffers from counting as growth in the tests that bound RSS.
SANITIZER_EXIT = 86


def sanitized() -> bool:
    """The binary under test runs under ASan/UBSan (set by ctest for such a build)."""
    return os.environ.get("TLSRELAY_SANITIZED") == "1"


def sanitizer_env(log_dir: Path, base: dict | None = None) -> dict:
    env = dict(os.environ if base is None else base)
    opts = f"log_path={log_dir}/sanitizer:exitcode={SANITIZER_EXIT}"
    for var, extra in (("ASAN_OPTIONS", ":quarantine_size_mb=4"), ("UBSAN_OPTIONS", "")):
        env[var] = ":".join(filter(None, [env.get(var), opts + extra]))
    return env


def sanitizer_reports(root: Path) -> str:
    """Every sanitizer report written under root, or "" if none."""
    return "\n".join(f"--- {p}\n{p.read_text(errors='replace')}"
                     for p in sorted(root.rglob("sanitizer.*")))


def check_sanitizer(what: str, log_dir: Path, returncode: int | None) -> None:
    """Fails the test if a tlsrelay process logging to log_dir hit a sanitizer."""
    if returncode == SANITIZER_EXIT or sanitizer_reports(log_dir):
        raise AssertionError(f"{what}: sanitizer report (exit {returncode})\n"
                             f"{sanitizer_reports(log_dir)}")


def run_sanitized(args: list, log_dir: Path, **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run of a command that runs tlsrelay (args[0] may be a wrapper such as
    unshare), with the sanitizer environment; fails on a sanitizer report."""
    cp = subprocess.run([str(a) for a in args], env=sanitizer_env(log_dir, kwargs.pop("env", None)),
                        **kwargs)
    check_sanitizer(" ".join(str(a) for a in args[:3]), log_dir, cp.returncode)
    return cp


def popen_sanitized(args: list, log_dir: Path, **kwargs) -> subprocess.Popen:
    """subprocess.Popen with the sanitizer environment; check_sanitizer(log_dir) once it
    has exited (World.cleanup does so for every folder under its root)."""
    return subprocess.Popen([str(a) for a in args], env=sanitizer_env(log_dir, kwargs.pop("env", None)),
                            **kwargs)


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

    def address(self, net: str = "127.0.1") -> str:
        """A loopback address NET.N of its own (127.0.1.N for peers that must listen on
        port 25 or be told apart by address, 127.0.2.N for DNS servers on port 53).
        Linux routes all of 127/8 to lo."""
        for _ in range(2000):
            n = self._rng.randrange(2, 254)
            name = f"addr-{net}.{n}"
            if _claim(name):
                self._claimed.append(name)
                return f"{net}.{n}"
        raise RuntimeError(f"no free loopback address found in {net}.0/24")

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
        self.preexec = None  # runs in the child before exec, e.g. to set a resource limit
        self.env = dict(os.environ)  # its environment (the sanitizer options are added)
        self.report_dir = self.dir  # where sanitizer reports go: writable by the relay's user
        # Benchmarks set this: stderr goes to a file (as Postfix logs to its maillog) and is
        # read back in bulk, so the relay never waits on a pipe reader woken once a line.
        self.log_file: Path | None = None

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
        sink = open(self.log_file, "ab") if self.log_file else subprocess.PIPE
        start_offset = sink.tell() if self.log_file else 0
        try:
            self.proc = popen_sanitized(
                [relay_binary(), "serve", "--config", self.config_path], self.report_dir,
                cwd=self.dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=sink, start_new_session=True, preexec_fn=self.preexec, env=self.env)
        finally:
            if self.log_file:
                sink.close()
        self.starts += 1
        if self.log_file:
            self._reader = threading.Thread(target=self._tail_log_file,
                                            args=(self.proc, start_offset), daemon=True)
        else:
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

    def _tail_log_file(self, proc: subprocess.Popen, offset: int) -> None:
        """The log_file twin of _read_stderr: reads what was appended, in bulk, every
        50 ms until the relay has exited and everything it wrote has been read."""
        with open(self.log_file, "rb") as f:
            f.seek(offset)
            pending = b""
            while True:
                exited = proc.poll() is not None
                data = f.read()
                if data:
                    pending += data
                    *lines, pending = pending.split(b"\n")
                    with self._log_cond:
                        self._log.extend(x.decode("utf-8", "replace") for x in lines)
                        self._log_cond.notify_all()
                elif exited:
                    break
                else:
                    time.sleep(0.05)  # a file has no readiness to wait on
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
        check_sanitizer(self.name, self.report_dir, self.proc.returncode)
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
        cp = run_sanitized([relay_binary(), *args, "--config", self.config_path], self.report_dir,
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
# Peers for the delivery half: a DNS server and SMTP servers on private loopback addresses
# ----------------------------------------------------------------------------------------

DNS_FAILURES = ("NXDOMAIN", "NODATA", "SERVFAIL", "REFUSED", "TIMEOUT", "MALFORMED")


class DnsServer:
    """An authoritative-for-everything DNS server (dnslib) on UDP and TCP port 53 of a
    private 127.0.2.N: Postfix's resolver only speaks to port 53 (from resolv.conf), and
    tlsrelay is pointed at the same server with [dns] servers = [dns.server_spec].

    records: (name, type) -> rdata strings in zone-file syntax (trailing dots optional
    on the owner name), e.g. dns.add("example.test", "MX", "10 mx1.example.test.");
    a null MX is dns.add("example.test", "MX", "0 ."). CNAMEs are followed within the
    data, as an authoritative server does. Unknown names are NXDOMAIN; a name that has
    other types, or records below it, answers NODATA.

    Failures per name and type ("*" = every type): dns.fail(name, "MX", kind) with kind
    NXDOMAIN, NODATA, SERVFAIL, REFUSED, TIMEOUT (no answer at all, UDP or TCP) or
    MALFORMED (a reply that claims one answer record and holds a compression pointer
    that points past its end).
    rcodes (the older spelling) maps (name, type) to the same kinds.

    ad: set the AD bit in answers (a "validating" upstream, for dane / dnssec = true),
    except for names in `insecure`. queries lists (name, type) as asked."""

    def __init__(self, world: "World", host: str | None = None, port: int = 53):
        self.world = world
        self.host = host or world.ports.address("127.0.2")
        self.port = port
        self.records: dict[tuple[str, str], list[str]] = {}
        self.rcodes: dict[tuple[str, str], str] = {}
        self.ad = False
        self.insecure: set[str] = set()
        self.queries: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._servers: list = []
        self._threads: list[threading.Thread] = []

    @staticmethod
    def _fqdn(name: str) -> str:
        name = name.lower()
        return name if name.endswith(".") else name + "."

    def add(self, name: str, rtype: str, *rdata: str) -> "DnsServer":
        with self._lock:
            self.records.setdefault((self._fqdn(name), rtype.upper()), []).extend(rdata)
        return self

    def fail(self, name: str, rtype: str = "*", kind: str = "SERVFAIL") -> "DnsServer":
        kind = kind.upper()
        assert kind in DNS_FAILURES, f"unknown DNS failure {kind!r}"
        with self._lock:
            self.rcodes[(self._fqdn(name), rtype.upper())] = kind
        return self

    @property
    def server_spec(self) -> str:
        return f"{self.host}:{self.port}"

    def resolv_conf(self, trust_ad: bool = True, timeout: int = 1, attempts: int = 1) -> str:
        """resolv.conf text for a process that must use this server (port 53 only).
        trust-ad keeps the AD bit (glibc strips it otherwise); short timeouts keep the
        TIMEOUT failure bounded."""
        assert self.port == 53, "the system resolver can only use port 53"
        opts = [f"timeout:{timeout}", f"attempts:{attempts}"] + (["trust-ad"] if trust_ad else [])
        return f"nameserver {self.host}\noptions {' '.join(opts)}\n"

    def queried(self, name: str, rtype: str) -> bool:
        with self._lock:
            return (self._fqdn(name), rtype.upper()) in self.queries

    # -- answering -----------------------------------------------------------------------
    def _exists(self, name: str) -> bool:
        return any(n == name or n.endswith("." + name) for n, _ in self.records)

    def answer(self, data: bytes, max_udp: int | None = 512) -> bytes | None:
        """The wire reply to a wire query; None = stay silent (TIMEOUT or garbage)."""
        from dnslib import EDNS0, QTYPE, RCODE, RR, DNSRecord
        try:
            req = DNSRecord.parse(data)
        except Exception:
            return None
        reply = req.reply()  # qr, aa, ra, same id and question
        q = req.q
        name, rtype = str(q.qname).lower(), QTYPE.get(q.qtype, f"TYPE{q.qtype}")
        opt = next((rr for rr in req.ar if rr.rtype == QTYPE.OPT), None)
        with self._lock:
            self.queries.append((name, rtype))
            kind = self.rcodes.get((name, rtype)) or self.rcodes.get((name, "*"))
            if kind == "TIMEOUT":
                return None
            if kind == "MALFORMED":
                wire = bytearray(reply.pack())
                wire[6:8] = (1).to_bytes(2, "big")        # ANCOUNT 1 ...
                return bytes(wire) + b"\xc0\xff"           # ... whose owner points nowhere
            if kind in ("NXDOMAIN", "SERVFAIL", "REFUSED"):
                reply.header.rcode = getattr(RCODE, kind)
            chain = [name]  # an answer is secure only if every name in its CNAME chain is
            if kind not in ("NXDOMAIN", "SERVFAIL", "REFUSED", "NODATA"):
                cur = name
                for _ in range(10):  # follow CNAMEs inside our own data
                    if (cur, rtype) in self.records:
                        for rd in self.records[(cur, rtype)]:
                            reply.add_answer(*RR.fromZone(f"{cur} 60 IN {rtype} {rd}"))
                        break
                    if rtype != "CNAME" and (cur, "CNAME") in self.records:
                        target = self.records[(cur, "CNAME")][0]
                        reply.add_answer(*RR.fromZone(f"{cur} 60 IN CNAME {target}"))
                        cur = self._fqdn(target)
                        chain.append(cur)
                        continue
                    if not self._exists(cur):
                        reply.header.rcode = RCODE.NXDOMAIN
                    break
            reply.header.ad = int(self.ad and not any(n in self.insecure for n in chain))
        if opt is not None:
            reply.add_ar(EDNS0(udp_len=1232, flags="do" if (opt.ttl >> 15) & 1 else ""))
        packed = reply.pack()
        limit = max(512, opt.rclass) if opt is not None else 512
        if max_udp is not None and len(packed) > limit:
            reply.rr, reply.auth, reply.ar = [], [], []
            reply.header.tc = 1
            packed = reply.pack()
        return packed

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> "DnsServer":
        import socketserver
        outer = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                out = outer.answer(data)
                if out is not None:
                    sock.sendto(out, self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.settimeout(30)
                buf = b""
                while True:
                    while len(buf) < 2 or len(buf) < 2 + int.from_bytes(buf[:2], "big"):
                        try:
                            chunk = self.request.recv(65536)
                        except OSError:
                            return
                        if not chunk:
                            return
                        buf += chunk
                    n = int.from_bytes(buf[:2], "big")
                    msg, buf = buf[2:2 + n], buf[2 + n:]
                    out = outer.answer(msg, max_udp=None)
                    if out is not None:  # TIMEOUT: keep the connection, never answer
                        self.request.sendall(len(out).to_bytes(2, "big") + out)

        class UdpServer(socketserver.ThreadingUDPServer):
            daemon_threads = True
            allow_reuse_address = True

        class TcpServer(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.world.on_cleanup(self.stop)
        for cls, handler in ((UdpServer, Udp), (TcpServer, Tcp)):
            srv = cls((self.host, self.port), handler)
            # stop() waits for the loop to look at its shutdown flag: a short interval
            # keeps that wait (twice per scenario) from adding up over hundreds of rows.
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02},
                                 daemon=True, name=f"dns-{self.host}")
            t.start()
            self._servers.append(srv)
            self._threads.append(t)
        return self

    def stop(self) -> None:
        for srv in self._servers:
            with contextlib.suppress(Exception):
                srv.shutdown()
                srv.server_close()
        for t in self._threads:
            t.join(5)
        self._servers.clear()
        self._threads.clear()


# -- SMTP peer ------------------------------------------------------------------------------

class PeerMessage:
    """One accepted transaction as the peer saw it."""

    def __init__(self, session: "PeerSession", mail_from: str, rcpt_tos: list[str], data: bytes):
        self.session = session.n
        self.helo = session.helo
        self.mail_from = mail_from
        self.rcpt_tos = list(rcpt_tos)   # the recipients the peer accepted
        self.data = data                 # content as sent, dot-unstuffed, CRLF, no final dot
        self.tls = session.tls
        self.tls_version = session.tls_version
        self.cipher = session.cipher
        self.sni = session.sni

    def __repr__(self) -> str:
        return (f"PeerMessage(from={self.mail_from!r}, to={self.rcpt_tos!r}, {len(self.data)} bytes, "
                f"tls={self.tls_version if self.tls else None}, sni={self.sni!r})")


class PeerSession:
    """One connection: every command line received, TLS facts, how it ended."""

    def __init__(self, n: int, client: tuple):
        self.n = n
        self.client = client
        self.helo: str | None = None
        self.commands: list[str] = []
        self.tls = False
        self.tls_version: str | None = None
        self.cipher: str | None = None
        self.sni: str | None = None
        self.tls_error: str | None = None
        self.pipelined = False  # a command line arrived with further bytes behind it
        self.ended = ""   # "QUIT", "EOF", "dropped at X", "stalled at X", "error: ..."

    def __repr__(self) -> str:
        return (f"PeerSession#{self.n}(commands={self.commands!r}, tls={self.tls_version}, "
                f"sni={self.sni!r}, ended={self.ended!r})")


class SmtpPeer:
    """A receiving SMTP server on its own 127.0.1.N, port 25 by default (we run as root),
    in an asyncio loop on a thread of its own. It records every session (commands, TLS
    version, cipher, SNI) and every accepted message; wait_for_messages(n, timeout) blocks
    on a condition variable until n messages arrived.

    Behaviour (all optional):
      hostname            banner and EHLO name (default peer-127-0-1-N.test)
      cert                a pki.Cert to present (enables STARTTLS); or tls_context
      starttls            offer STARTTLS (default: when a cert/context is given)
      strip_starttls      advertise it as XXXXXXXA (a middlebox stripping it)
      starttls_reply      reply to STARTTLS instead of 220, e.g. "454 4.7.0 TLS not available"
      tls_break           close the connection right after 220 Ready to start TLS
      inject_after_starttls  bytes sent in the same write as the 220 (e.g. "250 injected\\r\\n")
      tls_min_version / tls_max_version   ssl.TLSVersion limits; tls_ciphers: OpenSSL list
      sni_certs           SNI name -> pki.Cert: the certificate served when the client
                          asks for that name (cert stays the default), as virtual hosts do
      greeting            e.g. "421 4.3.2 Service not available" (then close) or "554 5.7.1 No"
                          (then 503 to everything but QUIT)
      replies             stage -> reply, stages EHLO HELO MAIL RCPT DATA DOT (end of data)
                          RSET QUIT, e.g. {"MAIL": "451 4.3.0 Try later"}
      rcpt_replies        recipient address -> reply
      rcpt_limit          452 4.5.3 after this many accepted recipients
      stall               stages at which the peer never replies ("connect" = no banner)
      drop                stages at which the peer closes without replying
      close_after         stages at which the peer sends its reply, then closes (with a
                          reply such as "250-first line", a reply cut off by EOF)
      esmtp               False: EHLO is answered 502, so the client falls back to HELO
      size                the SIZE limit advertised in EHLO (None: no SIZE keyword)
      eight_bit_mime      False: 8BITMIME is not advertised
      pipelining          False: PIPELINING is not advertised (a session records in
                          `pipelined` whether a command came with more bytes behind it)
      garbage_before      stage -> text sent before that stage's normal reply, e.g.
                          {"MAIL": "this is garbage"}: a desynchronised server
      dot_delay           seconds (or a callable(PeerMessage) -> seconds) between taking a
                          message and answering its end of data: a slow server, so a
                          relay killed meanwhile has delivered without seeing the 250
    wait_for_command(prefix, timeout) blocks until some session received a command line
    starting with prefix ("." = the end of DATA).
    """

    def __init__(self, world: "World", host: str | None = None, port: int = 25, *,
                 hostname: str | None = None, cert=None, tls_context=None,
                 starttls: bool | None = None, strip_starttls: bool = False,
                 starttls_reply: str | None = None, tls_break: bool = False,
                 inject_after_starttls: bytes | str | None = None,
                 tls_min_version=None, tls_max_version=None, tls_ciphers: str | None = None,
                 greeting: str | None = None, replies: dict | None = None,
                 rcpt_replies: dict | None = None, rcpt_limit: int | None = None,
                 stall=(), drop=(), esmtp: bool = True, extensions: list[str] | None = None,
                 size: int | None = 10240000, eight_bit_mime: bool = True,
                 pipelining: bool = True, dot_delay=None,
                 garbage_before: dict | None = None, close_after=(), sni_certs: dict | None = None):
        self.world = world
        self.host = host or world.ports.address()
        self.port = port
        self.hostname = hostname or f"peer-{self.host.replace('.', '-')}.test"
        self.cert = cert
        self.tls_context = tls_context
        self.starttls = (cert is not None or tls_context is not None) if starttls is None else starttls
        self.strip_starttls = strip_starttls
        self.starttls_reply = starttls_reply
        self.tls_break = tls_break
        if isinstance(inject_after_starttls, str):
            inject_after_starttls = inject_after_starttls.encode()
        self.inject_after_starttls = inject_after_starttls
        self.tls_min_version, self.tls_max_version = tls_min_version, tls_max_version
        self.tls_ciphers = tls_ciphers
        self.sni_certs = {k.lower(): v for k, v in (sni_certs or {}).items()}
        self.greeting = greeting
        self.replies = {k.upper(): v for k, v in (replies or {}).items()}
        self.rcpt_replies = {k.lower(): v for k, v in (rcpt_replies or {}).items()}
        self.rcpt_limit = rcpt_limit
        self.stall = {s.upper() for s in stall}
        self.drop = {s.upper() for s in drop}
        self.close_after = {s.upper() for s in close_after}
        self.esmtp = esmtp
        self.extensions = extensions
        self.size = size
        self.eight_bit_mime = eight_bit_mime
        self.pipelining = pipelining
        self.dot_delay = dot_delay
        self.garbage_before = {k.upper(): v for k, v in (garbage_before or {}).items()}
        self.messages: list[PeerMessage] = []
        self.sessions: list[PeerSession] = []
        self._cond = threading.Condition()
        self._sni: dict[int, str] = {}
        self._loop = None
        self._thread: threading.Thread | None = None
        self._stop_future = None

    # -- TLS --------------------------------------------------------------------------------
    def _make_context(self, cert=None):
        """The server context; with cert, a virtual host's context for sni_certs."""
        import ssl
        if self.tls_context is not None and cert is None:
            ctx = self.tls_context
        else:
            chain = cert or self.cert
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(chain.chain_path), str(chain.key_path))
        if self.tls_min_version is not None:
            ctx.minimum_version = self.tls_min_version
        if self.tls_max_version is not None:
            ctx.maximum_version = self.tls_max_version
        if self.tls_ciphers:
            ctx.set_ciphers(self.tls_ciphers)
        if cert is not None:
            return ctx  # a virtual host's context: the default one records the SNI
        by_name = {name: self._make_context(c) for name, c in self.sni_certs.items()}

        def on_sni(sslobj, name, _ctx):
            self._sni[id(sslobj)] = name
            if name and name.lower() in by_name:
                sslobj.context = by_name[name.lower()]
        ctx.sni_callback = on_sni
        return ctx

    # -- life cycle -----------------------------------------------------------------------
    def start(self, timeout: float = STARTUP_TIMEOUT) -> "SmtpPeer":
        import asyncio
        self._ssl = self._make_context() if self.starttls or self.tls_context else None
        ready = threading.Event()
        failure: list[BaseException] = []

        async def main():
            self._stop_future = asyncio.get_running_loop().create_future()
            try:
                server = await asyncio.start_server(self._client, self.host, self.port,
                                                    reuse_address=True, limit=1 << 20)
            except BaseException as e:
                failure.append(e)
                ready.set()
                return
            ready.set()
            async with server:
                await self._stop_future
                server.close()
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

        def run():
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(main())
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name=f"smtp-peer-{self.host}")
        self._thread.start()
        if not ready.wait(timeout):
            raise AssertionError(f"SMTP peer on {self.host}:{self.port} did not start")
        if failure:
            self._thread.join(5)
            raise failure[0]
        self.world.on_cleanup(self.stop)
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        loop, fut = self._loop, self._stop_future
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(None))
        self._thread.join(10)
        self._thread = None

    # -- waiting ----------------------------------------------------------------------------
    def wait_for_messages(self, n: int = 1, timeout: float = 10.0) -> list[PeerMessage]:
        """Blocks until at least n messages were accepted (bounded); returns them all."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.messages) >= n, timeout):
                raise AssertionError(f"{self.host}: {len(self.messages)} of {n} messages within "
                                     f"{timeout}s; sessions: {self.sessions!r}")
            return list(self.messages)

    def take_messages(self) -> list[PeerMessage]:
        """Removes and returns the messages accepted so far (long runs keep memory flat)."""
        with self._cond:
            taken, self.messages = self.messages, []
            return taken

    def wait_for_sessions(self, n: int = 1, timeout: float = 10.0) -> list[PeerSession]:
        """Blocks until at least n sessions have ended; returns all sessions."""
        with self._cond:
            if not self._cond.wait_for(lambda: sum(1 for s in self.sessions if s.ended) >= n, timeout):
                raise AssertionError(f"{self.host}: fewer than {n} sessions ended within {timeout}s; "
                                     f"sessions: {self.sessions!r}")
            return list(self.sessions)

    def wait_for_command(self, prefix: str, timeout: float = 10.0) -> PeerSession:
        """Blocks until a session received a command line starting with prefix
        (case-insensitive; "." is the end of DATA); returns that session."""
        prefix = prefix.upper()

        def find():
            return next((s for s in self.sessions
                         if any(c.upper().startswith(prefix) for c in s.commands)), None)
        with self._cond:
            if not self._cond.wait_for(lambda: find() is not None, timeout):
                raise AssertionError(f"{self.host}: no {prefix!r} command within {timeout}s; "
                                     f"sessions: {self.sessions!r}")
            return find()

    @property
    def nexthop(self) -> str:
        return f"[{self.host}]:{self.port}"

    # -- the dialogue -----------------------------------------------------------------------
    async def _client(self, reader, writer):
        import asyncio
        with self._cond:
            sess = PeerSession(len(self.sessions) + 1, writer.get_extra_info("peername"))
            self.sessions.append(sess)
        try:
            sess.ended = await self._dialogue(reader, writer, sess)
        except asyncio.CancelledError:
            sess.ended = sess.ended or "peer stopped"
            raise
        except (ConnectionError, asyncio.IncompleteReadError, OSError) as e:
            sess.ended = f"error: {e!r}"
        except Exception as e:  # ssl.SSLError and friends: a failed handshake
            sess.ended = f"error: {e!r}"
        finally:
            with contextlib.suppress(Exception):
                writer.transport.abort() if sess.ended.startswith("dropped") else writer.close()
            with self._cond:
                sess.ended = sess.ended or "closed"
                self._cond.notify_all()

    async def _stall(self, reader, stage: str) -> str:
        while await reader.read(65536):
            pass
        return f"stalled at {stage}"

    async def _dialogue(self, reader, writer, sess: PeerSession) -> str:
        async def send(text: str | bytes):
            # surrogateescape: "\udce4" in a reply sends the raw byte 0xE4 (invalid UTF-8)
            writer.write(text if isinstance(text, bytes)
                         else (text + "\r\n").encode("utf-8", "surrogateescape"))
            await writer.drain()

        if "CONNECT" in self.drop:
            return "dropped at CONNECT"
        if "CONNECT" in self.stall:
            return await self._stall(reader, "CONNECT")
        greeting = self.greeting or f"220 {self.hostname} ESMTP tlsrelay test peer"
        await send(greeting)
        if greeting.startswith("421"):
            return "greeting 421"
        refuse_all = greeting.startswith("5")
        mail_from, rcpts = None, []
        while True:
            raw = await reader.readline()
            if not raw:
                return "EOF"
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if getattr(reader, "_buffer", None):  # more commands arrived with this one
                sess.pipelined = True
            with self._cond:
                sess.commands.append(line)
                self._cond.notify_all()
            verb = line.split(" ", 1)[0].upper()
            arg = line[len(verb):].strip()
            if verb == "QUIT" and "QUIT" not in self.replies and "QUIT" not in self.drop | self.stall:
                await send("221 2.0.0 Bye")
                return "QUIT"
            if refuse_all:
                await send("503 5.5.1 Error: access denied")
                continue
            if verb in self.drop:
                return f"dropped at {verb}"
            if verb in self.stall:
                return await self._stall(reader, verb)
            override = self.replies.get(verb)
            if verb in self.garbage_before:
                await send(self.garbage_before[verb])
            if verb == "EHLO":
                if not self.esmtp:
                    await send("502 5.5.2 Error: command not recognized")
                    continue
                sess.helo, mail_from, rcpts = arg, None, []
                if override:
                    await send(override)
                    continue
                ext = (["PIPELINING"] if self.pipelining else []) \
                    + ([f"SIZE {self.size}"] if self.size is not None else []) \
                    + (["8BITMIME"] if self.eight_bit_mime else []) + ["ENHANCEDSTATUSCODES"]
                if self.starttls and not sess.tls:
                    ext.append("XXXXXXXA" if self.strip_starttls else "STARTTLS")
                ext += self.extensions or []
                lines = [self.hostname] + ext
                await send("\r\n".join(f"250{' ' if i == len(lines) - 1 else '-'}{l}"
                                       for i, l in enumerate(lines)))
            elif verb == "HELO":
                sess.helo, mail_from, rcpts = arg, None, []
                await send(override or f"250 {self.hostname}")
            elif verb == "STARTTLS":
                if not self.starttls or sess.tls:
                    await send("502 5.5.1 Error: command not implemented"
                               if not self.starttls else "554 5.5.1 Error: TLS already active")
                    continue
                reply = self.starttls_reply or override or "220 2.0.0 Ready to start TLS"
                if not reply.startswith("2"):  # any 2xx starts TLS, as clients take it
                    await send(reply)
                    continue
                await send((reply + "\r\n").encode() + (self.inject_after_starttls or b""))
                if self.tls_break:
                    writer.close()
                    return "closed after 220 to STARTTLS"
                try:
                    await writer.start_tls(self._ssl)
                except Exception as e:
                    sess.tls_error = repr(e)
                    return f"TLS handshake failed: {e!r}"
                sslobj = writer.get_extra_info("ssl_object")
                sess.tls = True
                sess.tls_version = sslobj.version()
                sess.cipher = sslobj.cipher()[0]
                sess.sni = self._sni.pop(id(sslobj), None)
                sess.helo, mail_from, rcpts = None, None, []
            elif verb == "MAIL":
                m = re.match(r"(?i)FROM:\s*<([^>]*)>", arg)
                if override:
                    await send(override)
                elif not m:
                    await send("501 5.5.4 Syntax: MAIL FROM:<address>")
                else:
                    await send("250 2.1.0 Ok")
                    mail_from, rcpts = m.group(1), []
            elif verb == "RCPT":
                m = re.match(r"(?i)TO:\s*<([^>]*)>", arg)
                addr = m.group(1) if m else ""
                if mail_from is None:
                    reply = "503 5.5.1 Error: need MAIL command"
                elif self.rcpt_limit is not None and len(rcpts) >= self.rcpt_limit:
                    reply = "452 4.5.3 Error: too many recipients"
                else:
                    reply = self.rcpt_replies.get(addr.lower()) or override or "250 2.1.5 Ok"
                if reply.startswith("2"):
                    rcpts.append(addr)
                await send(reply)
            elif verb == "DATA":
                if override:
                    await send(override)
                    continue
                if not rcpts:
                    await send("554 5.5.1 Error: no valid recipients")
                    continue
                await send("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while True:
                    l = await reader.readline()
                    if not l:
                        return "EOF in DATA"
                    if l in (b".\r\n", b".\n"):
                        break
                    lines.append(l[1:] if l.startswith(b".") else l)
                with self._cond:
                    sess.commands.append(".")
                    self._cond.notify_all()
                if "DOT" in self.drop:
                    return "dropped at DOT"
                if "DOT" in self.stall:
                    return await self._stall(reader, "DOT")
                reply = self.replies.get("DOT") or "250 2.0.0 Ok: queued"
                if "DOT" in self.garbage_before:
                    await send(self.garbage_before["DOT"])
                if reply.startswith("2"):
                    msg = PeerMessage(sess, mail_from, rcpts, b"".join(lines))
                    with self._cond:
                        self.messages.append(msg)
                        self._cond.notify_all()
                    delay = self.dot_delay(msg) if callable(self.dot_delay) else self.dot_delay
                    if delay:
                        import asyncio
                        await asyncio.sleep(delay)
                mail_from, rcpts = None, []
                await send(reply)
                if "DOT" in self.close_after:
                    return "closed after DOT"
            elif verb == "RSET":
                mail_from, rcpts = None, []
                await send(override or "250 2.0.0 Ok")
            elif verb == "NOOP":
                await send(override or "250 2.0.0 Ok")
            elif verb == "QUIT":
                await send(override or "221 2.0.0 Bye")
                return "QUIT"
            else:
                await send("502 5.5.2 Error: command not recognized")
            if verb in self.close_after:
                return f"closed after {verb}"


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
        # A relay that already exited with the sanitizer's code counts even when its
        # report could not be written (out of descriptors, say).
        died = [r.name for r in self.relays if r.proc is not None and r.proc.poll() == SANITIZER_EXIT]
        for relay in self.relays:
            with contextlib.suppress(Exception):
                relay.kill()
        for fn in reversed(self._cleanups):
            with contextlib.suppress(Exception):
                fn()
        self._cleanups.clear()
        self.ports.release_all()
        reports = sanitizer_reports(self.root)
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)
        if reports or died:
            raise AssertionError(f"a tlsrelay process hit a sanitizer ({', '.join(died)} exited "
                                 f"{SANITIZER_EXIT}):\n{reports}")


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

#!/usr/bin/python3
"""A small, fast SMTP sink with STARTTLS, for bench/e2e (smtp-sink has no TLS).

    tls_sink.py --port PORT [--host 127.0.0.1] [--workers N] [--dir DIR]
    tls_sink.py --selftest [--sessions 50] [--msgs 5000] [--size 4096] [--workers N]

Sink mode: generates a self-signed ECDSA P-256 certificate into DIR (a temp folder
when not given, removed at exit) with python3-cryptography (or `openssl req` when that
is missing), listens on HOST:PORT with N worker processes (SO_REUSEPORT), offers
PIPELINING, 8BITMIME, SIZE and STARTTLS, accepts every message and throws it away.
stdout: one line `ready PORT` once every worker listens, then one line
`mesg MONOTONIC` per accepted message (the end of DATA, CLOCK_MONOTONIC seconds, which
is the same clock as time.monotonic() in the reading process), so a reader counts
lines and knows when the last message arrived without a reading delay.

Self-test mode: starts a sink and an asyncio load client in another process (SESSIONS
concurrent sessions, one message per STARTTLS connection, as a relay without connection
reuse delivers) and prints messages/s: the sink's capacity on this machine, with the
client sharing the cores.
"""

import argparse
import asyncio
import os
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HOSTNAME = "tls-sink.test.example"


# ------------------------------------------------------------------------------------------
# Certificate
# ------------------------------------------------------------------------------------------

def make_cert(folder: Path) -> tuple[Path, Path]:
    cert_path, key_path = folder / "sink.pem", folder / "sink.key"
    try:
        import datetime
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "2", "-subj", f"/CN={HOSTNAME}",
                        "-keyout", str(key_path), "-out", str(cert_path)],
                       check=True, capture_output=True)
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOSTNAME)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOSTNAME)]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


# ------------------------------------------------------------------------------------------
# The sink
# ------------------------------------------------------------------------------------------

def report(line: bytes) -> None:
    # One write(2) per line: lines from several workers never interleave (< PIPE_BUF).
    try:
        os.write(1, line)
    except BrokenPipeError:
        pass


class SinkSession(asyncio.Protocol):
    """One SMTP session. Commands are handled as they arrive; all replies for one read
    go out in one write, so a pipelining client is answered in one segment."""

    def __init__(self, tls_ctx: ssl.SSLContext):
        self.tls_ctx = tls_ctx
        self.transport = None
        self.buf = b""
        self.in_data = False
        self.tls = False
        self.upgrading = False
        self.early = b""
        self.have_mail = False
        self.rcpts = 0
        self.queued = 0

    def connection_made(self, transport):
        self.transport = transport
        transport.write(f"220 {HOSTNAME} ESMTP tls_sink\r\n".encode())

    def data_received(self, data: bytes):
        if self.upgrading:
            # Decrypted data that the SSL protocol delivers before loop.start_tls()
            # has returned the new transport to us: answered once it has.
            self.early += data
            return
        self.buf += data
        out: list[bytes] = []
        while self.buf:
            if self.in_data:
                # buf starts with the CRLF that ended the DATA line (see below), so one
                # search finds the terminator, also for an empty message.
                end = self.buf.find(b"\r\n.\r\n")
                if end < 0:
                    self.buf = self.buf[-4:]  # what might be the start of the terminator
                    break
                self.buf = self.buf[end + 5:]
                self.in_data = False
                self.have_mail, self.rcpts = False, 0
                self.queued += 1
                report(b"mesg %.6f\n" % time.monotonic())
                out.append(b"250 2.0.0 Ok: queued as %X\r\n" % self.queued)
                continue
            nl = self.buf.find(b"\n")
            if nl < 0:
                if len(self.buf) > 4096:
                    out.append(b"500 5.5.2 Line too long\r\n")
                    self.buf = b""
                break
            line, self.buf = self.buf[:nl].rstrip(b"\r"), self.buf[nl + 1:]
            verb = line[:4].upper()
            if verb == b"EHLO":
                caps = [HOSTNAME.encode(), b"PIPELINING", b"SIZE 104857600", b"8BITMIME",
                        b"ENHANCEDSTATUSCODES"]
                if not self.tls:
                    caps.append(b"STARTTLS")
                out.append(b"".join((b"250-" if i < len(caps) - 1 else b"250 ") + c + b"\r\n"
                                    for i, c in enumerate(caps)))
                self.have_mail, self.rcpts = False, 0
            elif verb == b"HELO":
                out.append(b"250 " + HOSTNAME.encode() + b"\r\n")
            elif verb == b"MAIL":
                self.have_mail, self.rcpts = True, 0
                out.append(b"250 2.1.0 Ok\r\n")
            elif verb == b"RCPT":
                if self.have_mail:
                    self.rcpts += 1
                    out.append(b"250 2.1.5 Ok\r\n")
                else:
                    out.append(b"503 5.5.1 Error: need MAIL command\r\n")
            elif verb == b"DATA":
                if self.have_mail and self.rcpts:
                    self.in_data = True
                    self.buf = b"\r\n" + self.buf
                    out.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                else:
                    out.append(b"503 5.5.1 Error: need RCPT command\r\n")
            elif verb == b"RSET":
                self.have_mail, self.rcpts = False, 0
                out.append(b"250 2.0.0 Ok\r\n")
            elif verb == b"NOOP":
                out.append(b"250 2.0.0 Ok\r\n")
            elif verb == b"QUIT":
                out.append(b"221 2.0.0 Bye\r\n")
                self.transport.write(b"".join(out))
                self.transport.close()
                return
            elif line.upper() == b"STARTTLS" and not self.tls:
                if self.buf:
                    out.append(b"554 5.5.0 Error: command pipelined after STARTTLS\r\n")
                    self.transport.write(b"".join(out))
                    self.transport.close()
                    return
                out.append(b"220 2.0.0 Ready to start TLS\r\n")
                self.transport.write(b"".join(out))
                # Reading pauses now, not in the task: the task starts after the next
                # poll, which would hand the ClientHello to data_received.
                self.tls, self.upgrading = True, True
                self.buf, self.have_mail, self.rcpts = b"", False, 0
                self.transport.pause_reading()
                asyncio.ensure_future(self.start_tls())
                return
            else:
                out.append(b"502 5.5.2 Error: command not recognized\r\n")
        if out:
            self.transport.write(b"".join(out))

    async def start_tls(self):
        loop = asyncio.get_running_loop()
        try:
            self.transport = await loop.start_tls(self.transport, self, self.tls_ctx, server_side=True,
                                                  ssl_handshake_timeout=30)
        except (OSError, ssl.SSLError, ConnectionError, asyncio.TimeoutError):
            if self.transport is not None:
                self.transport.abort()
            return
        self.upgrading = False
        early, self.early = self.early, b""
        if early:
            self.data_received(early)

    def connection_lost(self, exc):
        self.transport = None


def listen_socket(host: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((host, port))
    s.listen(1024)
    s.setblocking(False)
    return s


def worker(sock: socket.socket, tls_ctx: ssl.SSLContext, ready_fd: int) -> None:
    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SinkSession(tls_ctx), sock=sock)
        os.write(ready_fd, b"r")
        os.close(ready_fd)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        await stop.wait()
        server.close()
    asyncio.run(main())


def run_sink(host: str, port: int, workers: int, folder: Path | None) -> int:
    tmp = None
    if folder is None:
        tmp = folder = Path(tempfile.mkdtemp(prefix="tls-sink-"))
    try:
        cert, key = make_cert(folder)
        tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls_ctx.load_cert_chain(cert, key)
        # Every worker binds its own SO_REUSEPORT socket: the kernel spreads connections.
        socks = [listen_socket(host, port) for _ in range(workers)]
        ready_r, ready_w = os.pipe()
        children = []
        for s in socks:
            pid = os.fork()
            if pid == 0:
                os.close(ready_r)
                for other in socks:
                    if other is not s:
                        other.close()
                try:
                    worker(s, tls_ctx, ready_w)
                finally:
                    os._exit(0)
            children.append(pid)
        os.close(ready_w)
        for s in socks:
            s.close()
        got = b""
        while len(got) < workers:
            chunk = os.read(ready_r, workers)
            if not chunk:
                break
            got += chunk
        os.close(ready_r)
        report(b"ready %d\n" % port)

        def forward(sig, _frame):
            for pid in children:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        for pid in children:
            while True:
                try:
                    os.waitpid(pid, 0)
                    break
                except ChildProcessError:
                    break
                except InterruptedError:
                    continue
        return 0
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------------------
# Self-test: a STARTTLS load client
# ------------------------------------------------------------------------------------------

async def client_session(host: str, port: int, ctx: ssl.SSLContext, message: bytes) -> None:
    reader, writer = await asyncio.open_connection(host, port)

    async def reply() -> int:
        while True:
            line = await reader.readline()
            if not line:
                raise ConnectionError("closed")
            if line[3:4] != b"-":
                return int(line[:3])

    async def expect(code: int) -> None:
        got = await reply()
        if got != code:
            raise RuntimeError(f"expected {code}, got {got}")

    await expect(220)
    writer.write(b"EHLO load.example\r\n")
    await expect(250)
    writer.write(b"STARTTLS\r\n")
    await expect(220)
    await writer.start_tls(ctx)
    writer.write(b"EHLO load.example\r\n")
    await expect(250)
    writer.write(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
    for code in (250, 250, 354):
        await expect(code)
    writer.write(message + b".\r\nQUIT\r\n")
    await expect(250)
    await expect(221)
    writer.close()
    try:
        await writer.wait_closed()
    except (OSError, ssl.SSLError):
        pass


async def load(host: str, port: int, sessions: int, msgs: int, size: int) -> float:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    line = b"X" * 78 + b"\r\n"
    message = b"Subject: load\r\n\r\n" + line * max(1, size // len(line))
    remaining = [msgs]
    errors = []

    async def runner():
        while remaining[0] > 0:
            remaining[0] -= 1
            try:
                await client_session(host, port, ctx, message)
            except Exception as e:  # noqa: BLE001 - a load client counts failures
                errors.append(e)
    t0 = time.monotonic()
    await asyncio.gather(*(runner() for _ in range(sessions)))
    elapsed = time.monotonic() - t0
    if errors:
        print(f"load client: {len(errors)} failed sessions, e.g. {errors[0]!r}", file=sys.stderr)
    return elapsed


def selftest(sessions: int, msgs: int, size: int, workers: int) -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = subprocess.Popen([sys.executable, __file__, "--port", str(port), "--workers", str(workers)],
                            stdout=subprocess.PIPE)
    try:
        first = sink.stdout.readline()
        if not first.startswith(b"ready"):
            print(f"sink did not start: {first!r}", file=sys.stderr)
            return 1
        lines: list[bytes] = []
        reader = threading.Thread(target=lambda: lines.extend(sink.stdout), daemon=True)
        reader.start()  # a full pipe would stall the sink
        t_start = time.monotonic()
        elapsed = asyncio.run(load("127.0.0.1", port, sessions, msgs, size))
        sink.terminate()
        sink.wait(10)
        reader.join(10)
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)  # the sink and its workers
        cpu = ru.ru_utime + ru.ru_stime
        stamps = [float(l.split()[1]) for l in lines if l.startswith(b"mesg ")]
        last = max(stamps) - t_start if stamps else float("nan")
        print(f"tls_sink self-test: {len(stamps)}/{msgs} messages over STARTTLS, {sessions} sessions, "
              f"{size} bytes, {workers} worker(s): {elapsed:.2f}s, {msgs / elapsed:.0f} msgs/s "
              f"(last message at {last:.2f}s; the Python client shares the cores); "
              f"sink CPU {cpu:.2f}s = {cpu / max(len(stamps), 1) * 1e3:.2f} ms per message, "
              f"so about {len(stamps) / max(cpu, 1e-9):.0f} msgs/s per core")
        return 0 if len(stamps) == msgs else 1
    finally:
        if sink.poll() is None:
            sink.kill()
        sink.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--dir", type=Path, help="folder for the certificate (default: a temp folder)")
    ap.add_argument("--selftest", action="store_true")
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--msgs", type=int, default=5000)
    ap.add_argument("--size", type=int, default=4096)
    args = ap.parse_args()
    if args.selftest:
        return selftest(args.sessions, args.msgs, args.size, args.workers)
    if not args.port:
        ap.error("--port is required")
    return run_sink(args.host, args.port, args.workers, args.dir)


if __name__ == "__main__":
    sys.exit(main())

"""Abusive and well-behaved SMTP load against a running tlsrelay, plus a hostile delivery
peer, all in one asyncio loop: shared by bench/load (prints the figures) and
integration/test_load.py (asserts the behaviour). Nothing here starts the relay.

What runs at once (run_load): HELD connections idle after EHLO (a NOOP every
`keepalive` seconds keeps each one inside server.command_timeout), slowloris clients
that trickle one byte every `trickle` seconds, into a command or into the message text
after 354 (server.data_timeout ends those), pipelining floods (NOOP/RSET, a MAIL
error flood, a RCPT flood past max_recipients, a client that writes megabytes of
commands and never reads), a peer that answers EHLO with megabytes of `250-` lines,
and a well-behaved client that sends a message every `interval` seconds and records
how long each took from connect to the 250 after the end of DATA.
"""

import asyncio
import collections
import contextlib
import dataclasses
import multiprocessing
import random
import re
import time
from pathlib import Path

QUEUED = re.compile(rb"queued as ([0-9A-Za-z]+)")
DATA_SLOWLORIS_RCPT = "slow@sink.example"


@dataclasses.dataclass
class Params:
    held: int = 1000             # idle connections to open and keep
    slowloris: int = 5           # concurrent trickling clients
    data_slowloris: int = 0      # concurrent clients trickling the message text after 354
    trickle: float = 1.0         # seconds between their bytes
    floods: int = 2              # concurrent clients per flood kind
    flood_commands: int = 5000   # commands in one pipelined write
    max_recipients: int = 100    # the relay's server.max_recipients (RCPT flood overshoots it)
    mute_bytes: int = 4 << 20    # the never-reading client writes this much
    interval: float = 0.1        # the well-behaved client's pace
    deadline: float = 5.0        # per well-behaved message
    duration: float = 20.0       # seconds of load once the held connections are open
    keepalive: float = 2.0       # NOOP interval of held connections
    pause: float = 0.2           # abusive clients reconnect after this
    connect_parallel: int = 100  # connections being opened at once
    open_timeout: float = 300.0  # give up waiting for the held connections to open
    hostile_bytes: int = 8 << 20  # size of the hostile peer's EHLO reply
    hostile_rcpt: str = ""       # a recipient routed to the hostile peer ("" = none)


@dataclasses.dataclass
class Results:
    held_peak: int = 0
    held_at_end: int = 0
    held_lost_at: list = dataclasses.field(default_factory=list)  # monotonic times
    held_refused: int = 0                      # connections that got no 250 to EHLO
    latencies: list = dataclasses.field(default_factory=list)
    failures: list = dataclasses.field(default_factory=list)  # well-behaved: what went wrong
    replies: dict = dataclasses.field(default_factory=dict)   # client kind -> Counter
    rss_kib: list = dataclasses.field(default_factory=list)   # (seconds, VmRSS) samples
    hwm_kib: int = 0
    rss_held_kib: int = 0                      # VmRSS once the held connections are open
    loop_lag: float = 0.0                      # the load generator's worst wake-up delay
    t_start: float = 0.0                       # when the abusive clients started
    hostile_queue_id: str = ""
    hostile: dict = dataclasses.field(default_factory=dict)


class Reply:
    def __init__(self, code: int, lines: list[bytes]):
        self.code, self.lines = code, lines

    @property
    def key(self) -> str:
        return reply_key(b"%03d " % self.code + (self.lines[0] if self.lines else b""))


KEY = re.compile(rb"(\d{3})(?:[ -]([245]\.\d{1,3}\.\d{1,3})(?: |$))?")


def reply_key(line: bytes) -> str:
    """"421 4.4.2": the code and the enhanced status code of a reply line, what the
    counters count."""
    m = KEY.match(line)
    if not m:
        return "malformed"
    return m.group(1).decode() + (" " + m.group(2).decode() if m.group(2) else "")


async def read_reply(reader: asyncio.StreamReader, timeout: float) -> Reply | None:
    """One (multi-line) reply, or None at end of stream; raises TimeoutError."""
    lines = []
    async with asyncio.timeout(timeout):
        while True:
            line = await reader.readline()
            if not line:
                return None
            lines.append(line[4:].rstrip(b"\r\n"))
            if len(line) < 4 or line[3:4] != b"-":
                return Reply(int(line[:3]), lines)


def rss(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class Load:
    def __init__(self, params: Params, relay: tuple[str, int], results: Results):
        self.p, self.relay, self.r = params, relay, results
        self.stop = asyncio.Event()
        self.held = 0
        self.gate = asyncio.Semaphore(params.connect_parallel)

    def count(self, kind: str, reply: Reply | None) -> None:
        c = self.r.replies.setdefault(kind, collections.Counter())
        c["closed" if reply is None else reply.key] += 1

    async def connect(self, kind: str, ehlo: bool = True):
        """Connects and reads the greeting (and EHLO); None unless both were positive."""
        async with self.gate:
            reader, writer = await asyncio.open_connection(*self.relay, limit=1 << 20)
            greeting = await read_reply(reader, 30)
            if greeting is None or greeting.code != 220:
                self.count(kind, greeting)
                writer.close()
                return None
            if ehlo:
                writer.write(f"EHLO {kind}.example\r\n".encode())
                r = await read_reply(reader, 30)
                if r is None or r.code != 250:
                    self.count(kind, r)
                    writer.close()
                    return None
        return reader, writer

    async def until_stopped(self, seconds: float) -> bool:
        """Sleeps; True once the run is over."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)
        return self.stop.is_set()

    # -- the idle crowd --------------------------------------------------------------------
    async def hold_one(self) -> None:
        try:
            conn = await self.connect("held")
        except (OSError, TimeoutError) as e:
            self.r.replies.setdefault("held", collections.Counter())[type(e).__name__] += 1
            conn = None
        if conn is None:
            self.r.held_refused += 1
            return
        reader, writer = conn
        self.held += 1
        self.r.held_peak = max(self.r.held_peak, self.held)
        try:
            while True:  # a plain sleep: 5000 wait_for() tasks would load this loop
                await asyncio.sleep(self.p.keepalive * random.uniform(0.5, 1.0))
                if self.stop.is_set():
                    break
                writer.write(b"NOOP\r\n")
                r = await read_reply(reader, 30)
                if r is None or r.code != 250:
                    self.count("held", r)
                    self.r.held_lost_at.append(time.monotonic())
                    return
            self.r.held_at_end += 1
        finally:
            self.held -= 1
            writer.close()

    async def open_held(self, progress) -> list[asyncio.Task]:
        """Opens the held connections; returns once all are open or refused."""
        t0 = time.monotonic()
        holders = [asyncio.create_task(self.hold_one()) for _ in range(self.p.held)]
        while self.held + self.r.held_refused < self.p.held and not all(t.done() for t in holders):
            if time.monotonic() - t0 > self.p.open_timeout:
                break
            await asyncio.sleep(0.2)
        progress(f"{self.held} connections held after {time.monotonic() - t0:.1f}s "
                 f"({self.r.held_refused} refused)")
        return holders

    # -- abusive clients -------------------------------------------------------------------
    async def repeat(self, kind: str, session) -> None:
        """Runs session() again and again until the end, counting its errors."""
        while not self.stop.is_set():
            try:
                await session()
                await asyncio.sleep(self.p.pause)
            except (OSError, TimeoutError) as e:
                self.r.replies.setdefault(kind, collections.Counter())[type(e).__name__] += 1
                await asyncio.sleep(0.5)

    async def drain_replies(self, kind: str, reader, timeout: float) -> None:
        """Counts every reply until the relay closes the connection. Reads in chunks:
        a flood's thousands of replies line by line would stall this loop for seconds."""
        c = self.r.replies.setdefault(kind, collections.Counter())
        rest = b""
        while True:
            async with asyncio.timeout(timeout):
                chunk = await reader.read(1 << 16)
            if not chunk:
                c["closed"] += 1
                return
            *lines, rest = (rest + chunk).split(b"\r\n")
            for line in lines:
                if line[3:4] != b"-":
                    c[reply_key(line)] += 1

    async def trickle(self, kind: str, reader, writer, payload: bytes) -> None:
        """Writes payload a byte every p.trickle seconds, counting the relay's replies,
        until the relay hangs up or the run ends."""
        replies = asyncio.create_task(self.drain_replies(kind, reader, 3600))
        stopped = asyncio.create_task(self.stop.wait())
        try:
            for b in payload:
                if replies.done() or await self.until_stopped(self.p.trickle):
                    break
                writer.write(bytes([b]))
            await asyncio.wait([replies, stopped], return_when=asyncio.FIRST_COMPLETED)
        finally:
            replies.cancel()
            stopped.cancel()
            writer.close()

    async def slowloris(self) -> None:
        conn = await self.connect("slowloris", ehlo=False)
        if conn is not None:
            await self.trickle("slowloris", *conn,
                               b"EHLO slowloris.example.with.a.long.name.to.trickle.byte.by.byte\r\n")

    async def data_slowloris(self) -> None:
        """A transaction up to 354, then the message text a byte at a time: a steady
        trickle must not keep the session alive past server.data_timeout (421 4.4.2)."""
        kind = "data-slowloris"
        conn = await self.connect(kind)
        if conn is None:
            return
        reader, writer = conn
        for line, code in ((b"MAIL FROM:<slow@client.example>\r\n", 250),
                           (f"RCPT TO:<{DATA_SLOWLORIS_RCPT}>\r\n".encode(), 250), (b"DATA\r\n", 354)):
            writer.write(line)
            r = await read_reply(reader, 30)
            if r is None or r.code != code:
                self.count(kind, r)
                writer.close()
                return
        await self.trickle(kind, reader, writer, b"Subject: slow\r\n\r\n" + b"slow " * 4000)

    async def flood(self, kind: str, payload: bytes) -> None:
        conn = await self.connect(kind)
        if conn is None:
            return
        reader, writer = conn
        try:
            writer.write(payload)  # one write, thousands of commands, nothing read first
            await self.drain_replies(kind, reader, 60)
        finally:
            writer.close()

    def flood_payloads(self) -> dict[str, bytes]:
        n = self.p.flood_commands
        rcpts = b"".join(b"RCPT TO:<r%d@sink.example>\r\n" % i
                         for i in range(self.p.max_recipients + n // 10))
        return {
            "noop-flood": b"NOOP\r\nRSET\r\n" * (n // 2) + b"QUIT\r\n",
            "error-flood": b"MAIL FROM:<a@flood.example>\r\n" * n,
            "rcpt-flood": b"MAIL FROM:<a@flood.example>\r\n" + rcpts,
        }

    def start_abusers(self) -> list[asyncio.Task]:
        tasks = [asyncio.create_task(self.repeat("slowloris", self.slowloris)) for _ in range(self.p.slowloris)]
        tasks += [asyncio.create_task(self.repeat("data-slowloris", self.data_slowloris))
                  for _ in range(self.p.data_slowloris)]
        for kind, payload in self.flood_payloads().items():
            tasks += [asyncio.create_task(self.repeat(kind, lambda k=kind, b=payload: self.flood(k, b)))
                      for _ in range(self.p.floods)]
        tasks.append(asyncio.create_task(self.mute()))
        return tasks

    async def mute(self) -> None:
        """Writes megabytes of commands and never reads until the end: the relay must
        stop reading once its replies back up, not buffer them, and end the session at
        its timeout. Counts the last reply it sent before closing."""
        conn = await self.connect("mute")
        if conn is None:
            return
        reader, writer = conn
        try:
            writer.write(b"NOOP\r\n" * (self.p.mute_bytes // 6))
            await self.until_stopped(self.p.duration + 60)
            tail, end = b"", "still open"
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    try:
                        while chunk := await reader.read(1 << 20):
                            tail = (tail + chunk)[-512:]
                        end = "closed"
                    except OSError:
                        end = "reset"
            last = tail.rstrip(b"\r\n").rsplit(b"\r\n", 1)[-1]
            c = self.r.replies.setdefault("mute", collections.Counter())
            c[end] += 1
            if last:
                c[f"{end}, last reply {reply_key(last)}"] += 1
        finally:
            writer.close()

    # -- the well-behaved client -----------------------------------------------------------
    async def send_message(self, rcpt: str, token: str) -> tuple[float, bytes]:
        """One message on a fresh connection; returns (seconds, final reply text)."""
        t0 = time.monotonic()
        reader, writer = await asyncio.open_connection(*self.relay)
        try:
            async with asyncio.timeout(self.p.deadline):
                steps = [None, b"EHLO good.example\r\n", b"MAIL FROM:<good@client.example>\r\n",
                         f"RCPT TO:<{rcpt}>\r\n".encode(), b"DATA\r\n",
                         b"Subject: " + token.encode() + b"\r\n\r\nwell-behaved\r\n.\r\n"]
                expect = [220, 250, 250, 250, 354, 250]
                for step, code in zip(steps, expect):
                    if step:
                        writer.write(step)
                    r = await read_reply(reader, self.p.deadline)
                    if r is None or r.code != code:
                        raise RuntimeError(f"{token}: {step!r} got {r and r.key} {r and r.lines}")
                elapsed = time.monotonic() - t0
                writer.write(b"QUIT\r\n")
                return elapsed, r.lines[0]
        finally:
            writer.close()

    async def well_behaved(self) -> None:  # (runs in the child process)
        n = 0
        while not self.stop.is_set():
            t0 = time.monotonic()
            n += 1
            try:
                elapsed, _ = await self.send_message("good@sink.example", f"good-{n}")
                self.r.latencies.append(elapsed)
            except (OSError, TimeoutError, RuntimeError) as e:
                self.r.failures.append(f"good-{n}: {type(e).__name__}: {e}")
            await asyncio.sleep(max(0.0, t0 + self.p.interval - time.monotonic()))

    async def sample_rss(self, pid: int) -> None:
        """VmRSS twice a second, and how late this loop wakes up (if it lags, held
        connections miss their keepalive and the figures say more about us)."""
        t0 = time.monotonic()
        while True:
            with contextlib.suppress(OSError):
                self.r.rss_kib.append((time.monotonic() - t0, rss(pid)))
            t = time.monotonic()
            if await self.until_stopped(0.5):
                return
            self.r.loop_lag = max(self.r.loop_lag, time.monotonic() - t - 0.5)


class HostilePeer:
    """Answers EHLO with `size` bytes of `250-xxxx` continuation lines (then a last
    `250 ok`), and otherwise like a normal server. Records how many bytes it got out
    before the client went away and whether a message ever reached it."""

    def __init__(self, host: str, port: int, size: int, line: int = 1000):
        self.host, self.port, self.size, self.line = host, port, size, line
        self.stats = collections.Counter()
        self.server = None

    async def start(self) -> "HostilePeer":
        self.server = await asyncio.start_server(self.session, self.host, self.port, reuse_address=True)
        return self

    async def close(self) -> None:
        if self.server:
            self.server.close()

    async def session(self, reader, writer) -> None:
        self.stats["sessions"] += 1
        try:
            writer.write(b"220 hostile.example ESMTP\r\n")
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    await self.flood(writer)
                elif verb == b"DATA":
                    self.stats["data"] += 1
                    writer.write(b"354 go\r\n")
                    while (body := await reader.readline()) not in (b".\r\n", b""):
                        pass
                    writer.write(b"250 2.0.0 taken\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    break
                else:
                    writer.write(b"250 2.0.0 ok\r\n")
                await writer.drain()
        except OSError:
            self.stats["reset"] += 1
        finally:
            writer.close()

    async def flood(self, writer) -> None:
        chunk = (b"250-" + b"x" * (self.line - 6) + b"\r\n") * (65536 // self.line)
        sent = 0
        while sent < self.size:
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
            self.stats["bytes"] += len(chunk)
        writer.write(b"250 PIPELINING\r\n")
        self.stats["completed"] += 1


def _well_behaved_child(p: Params, relay, start, stop, out) -> None:
    """The well-behaved client in a process of its own, so that the load generator's
    own CPU use does not count as the relay's latency."""
    async def main():
        load = Load(p, relay, Results())
        while not start.wait(0) and not stop.wait(0):
            await asyncio.sleep(0.05)
        task = asyncio.create_task(load.well_behaved())
        while not stop.wait(0):
            await asyncio.sleep(0.05)
        load.stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, p.deadline + 5)
        out.send((load.r.latencies, load.r.failures))
    asyncio.run(main())


async def _abuse(p: Params, relay, relay_pid: int, hostile, progress, start, stop) -> Results:
    res = Results()
    load = Load(p, relay, res)
    peer = await HostilePeer(*hostile, p.hostile_bytes).start() if hostile else None
    tasks = [asyncio.create_task(load.sample_rss(relay_pid))]
    try:
        if p.hostile_rcpt:
            _, last = await load.send_message(p.hostile_rcpt, "hostile")
            m = QUEUED.search(last)
            res.hostile_queue_id = m.group(1).decode() if m else ""
        tasks += await load.open_held(progress)
        start.set()
        res.t_start = time.monotonic()
        res.rss_held_kib = rss(relay_pid)
        tasks += load.start_abusers()
        await asyncio.sleep(p.duration)
        stop.set()
        load.stop.set()
        await asyncio.wait(tasks, timeout=30)
    finally:
        stop.set()
        load.stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if peer:
            res.hostile = dict(peer.stats)
            await peer.close()
    with contextlib.suppress(OSError):
        res.hwm_kib = rss(relay_pid, "VmHWM")
    return res


def run_load(p: Params, relay: tuple[str, int], relay_pid: int,
             hostile: tuple[str, int] | None = None, progress=print) -> Results:
    """Starts everything, keeps the load up for p.duration seconds after the held
    connections are open, stops it and returns what was seen. hostile: where the
    hostile peer listens (the relay routes p.hostile_rcpt's domain there)."""
    res, got = beside_child(_well_behaved_child, (p, relay), p.deadline + 15, lambda start, stop: asyncio.run(
        _abuse(p, relay, relay_pid, hostile, progress, start, stop)))
    if got is None:
        res.failures.append("the well-behaved client reported nothing")
    else:
        res.latencies, res.failures = got
    return res


def beside_child(child, args: tuple, wait: float, parent):
    """Runs child(*args, start, stop, out) in a forked process (made before any event
    loop or socket exists) while parent(start, stop) runs here; returns parent's result
    and what the child sent on out within `wait` seconds of it (None if nothing)."""
    ctx = multiprocessing.get_context("fork")
    start, stop = ctx.Event(), ctx.Event()
    results_in, results_out = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=child, args=(*args, start, stop, results_out), daemon=True)
    proc.start()
    try:
        res = parent(start, stop)
        return res, (results_in.recv() if results_in.poll(wait) else None)
    finally:
        stop.set()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]

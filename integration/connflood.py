"""A connection flood beyond server.max_connections, and a client already inside it:
shared by bench/load (prints the figures) and integration/test_load.py (asserts them).
Nothing here starts the relay.

run_flood: a well-behaved client connects first and keeps its session, sending a
message every `interval` seconds over it (MAIL, RCPT, DATA, RSET; latency from MAIL to
the 250 after the dot). Then `flooders` clients connect as fast as they can and keep
whatever session they get, so the relay sits at max_connections and every further
connection must get 421 4.7.0 and be closed at once; each flooder counts the first
reply, times a refusal from connect to the 421 and from there to the relay's close,
and connects again. When the
flood ends and frees its slots, a new client must be greeted again within seconds.
"""

import asyncio
import collections
import contextlib
import dataclasses
import time

from loadgen import beside_child, read_reply, rss


@dataclasses.dataclass
class FloodParams:
    flooders: int = 400          # clients connecting at once, each again and again
    sources: tuple = ("127.0.0.1",)  # local addresses to spread them over (ephemeral ports)
    duration: float = 10.0       # seconds of flood once the well-behaved client is inside
    interval: float = 0.1        # the well-behaved client's pace
    deadline: float = 1.0        # per well-behaved message
    pause: float = 0.02          # a refused flooder connects again after this


@dataclasses.dataclass
class FloodResults:
    replies: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    refused_reply: list = dataclasses.field(default_factory=list)  # connect to the 421
    refused_close: list = dataclasses.field(default_factory=list)  # the 421 to the relay's close
    held_peak: int = 0           # flood sessions the relay admitted (and they kept)
    latencies: list = dataclasses.field(default_factory=list)  # the well-behaved client's
    failures: list = dataclasses.field(default_factory=list)
    rss_full_kib: int = 0        # VmRSS once the flood filled the slots
    rss_kib: list = dataclasses.field(default_factory=list)
    hwm_kib: int = 0
    greeted_after: float = -1.0  # seconds from the flood's end to a new client's 220
    loop_lag: float = 0.0        # the flood's worst wake-up delay (its own share of the times)


class Flood:
    def __init__(self, p: FloodParams, relay: tuple[str, int]):
        self.p, self.relay = p, relay
        self.r = FloodResults()
        self.stop = asyncio.Event()
        self.held = 0

    async def flooder(self, source: str) -> None:
        while not self.stop.is_set():
            t0 = time.monotonic()
            writer = None
            try:
                async with asyncio.timeout(10):
                    reader, writer = await asyncio.open_connection(*self.relay, local_addr=(source, 0))
                    first = await read_reply(reader, 10)
                self.r.replies["closed" if first is None else first.key] += 1
                if first is not None and first.code == 220:
                    await self.hold()
                    continue
                t1 = time.monotonic()
                async with asyncio.timeout(10):  # refused: the relay hangs up right after
                    rest = await reader.read(1024)
                if rest == b"":
                    self.r.refused_reply.append(t1 - t0)
                    self.r.refused_close.append(time.monotonic() - t1)
                else:
                    self.r.replies["not closed after the refusal"] += 1
            except (OSError, TimeoutError) as e:
                self.r.replies[type(e).__name__] += 1
            finally:
                if writer is not None:
                    writer.close()
            await asyncio.sleep(self.p.pause)

    async def hold(self) -> None:
        self.held += 1
        self.r.held_peak = max(self.r.held_peak, self.held)
        try:
            await self.stop.wait()
        finally:
            self.held -= 1

    async def greeted_again(self, timeout: float = 10.0) -> float:
        """Seconds until a new connection gets 220 (the freed slots are reused), or -1."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            with contextlib.suppress(OSError, TimeoutError):
                reader, writer = await asyncio.open_connection(*self.relay)
                try:
                    r = await read_reply(reader, 5)
                finally:
                    writer.close()
                if r is not None and r.code == 220:
                    return time.monotonic() - t0
            await asyncio.sleep(0.05)
        return -1.0


async def _session_messages(p: FloodParams, relay, start, stop) -> tuple[list, list]:
    """The well-behaved client: inside before the flood, a message every p.interval."""
    latencies, failures = [], []
    reader, writer = await asyncio.open_connection(*relay)
    try:
        for line, code in ((None, 220), (b"EHLO good.example\r\n", 250)):
            if line:
                writer.write(line)
            r = await read_reply(reader, 10)
            assert r is not None and r.code == code, f"{line!r}: {r and r.key}"
        start.set()
        n = 0
        while not stop.wait(0):
            n += 1
            t0 = time.monotonic()
            try:
                await _one_message(writer, reader, p.deadline, n)
                latencies.append(time.monotonic() - t0)
            except (OSError, TimeoutError, RuntimeError) as e:
                failures.append(f"message {n}: {type(e).__name__}: {e}")
                break  # the session is out of step or gone
            await asyncio.sleep(max(0.0, t0 + p.interval - time.monotonic()))
        writer.write(b"QUIT\r\n")
    finally:
        writer.close()
    return latencies, failures


async def _one_message(writer, reader, deadline: float, n: int) -> None:
    steps = [(b"MAIL FROM:<good@client.example>\r\n", 250), (b"RCPT TO:<good@sink.example>\r\n", 250),
             (b"DATA\r\n", 354), (b"Subject: inside-%d\r\n\r\nwell-behaved\r\n.\r\n" % n, 250),
             (b"RSET\r\n", 250)]
    async with asyncio.timeout(deadline):
        for line, code in steps:
            writer.write(line)
            r = await read_reply(reader, deadline)
            if r is None or r.code != code:
                raise RuntimeError(f"{line[:20]!r} got {r and r.key} {r and r.lines}")


def _well_behaved_child(p: FloodParams, relay, start, stop, out) -> None:
    try:
        out.send(asyncio.run(_session_messages(p, relay, start, stop)))
    except Exception as e:  # noqa: BLE001 - reported to the parent as a failure
        out.send(([], [f"well-behaved client: {type(e).__name__}: {e}"]))
        start.set()


async def _flood(p: FloodParams, relay, relay_pid: int, start, stop) -> FloodResults:
    f = Flood(p, relay)
    t0 = time.monotonic()
    while not start.wait(0):  # the well-behaved client is inside (or gave up)
        if time.monotonic() - t0 > 30:
            raise TimeoutError("the well-behaved client did not get in")
        await asyncio.sleep(0.05)
    tasks = [asyncio.create_task(f.flooder(p.sources[i % len(p.sources)])) for i in range(p.flooders)]
    t0 = time.monotonic()
    while time.monotonic() - t0 < p.duration:
        t = time.monotonic()
        await asyncio.sleep(0.5)
        f.r.loop_lag = max(f.r.loop_lag, time.monotonic() - t - 0.5)
        with contextlib.suppress(OSError):
            f.r.rss_kib.append((round(time.monotonic() - t0, 1), rss(relay_pid)))
        if not f.r.rss_full_kib and f.r.replies["421 4.7.0"]:
            f.r.rss_full_kib = f.r.rss_kib[-1][1]  # the slots are full from here on
    stop.set()
    f.stop.set()
    await asyncio.wait(tasks, timeout=30)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    f.r.greeted_after = await f.greeted_again()
    with contextlib.suppress(OSError):
        f.r.hwm_kib = rss(relay_pid, "VmHWM")
    return f.r


def run_flood(p: FloodParams, relay: tuple[str, int], relay_pid: int) -> FloodResults:
    """The well-behaved client (a process of its own, so that the flood's CPU use does
    not count as the relay's latency) connects; then the flood runs p.duration seconds."""
    res, got = beside_child(_well_behaved_child, (p, relay), p.deadline + 15, lambda start, stop: asyncio.run(
        _flood(p, relay, relay_pid, start, stop)))
    if got is None:
        res.failures.append("the well-behaved client reported nothing")
    else:
        res.latencies, res.failures = got
    return res

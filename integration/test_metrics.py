"""The Prometheus endpoint ([metrics] listen) and the certificate early warnings ([watch]).

A relay with metrics on delivers to SMTP peers on loopback (DNS server, TLS peers with
the test PKI): a destination without policy, one whose policy-table certificate expires
in five days, one pinned by fingerprint whose server rolled over to another pinned key,
and one pinned to a key the server no longer has. Each test scrapes /metrics over HTTP
with urllib and compares the counters with what the relay logged and the peers saw;
the warnings are asserted in the relay's log.

Run: TLSRELAY_BIN=build/relay/tlsrelay /usr/bin/python3 -m unittest -v test_metrics
"""

from __future__ import annotations

import datetime
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pki
from test_delivery import DeliveryCase, content, submit
from world import SmtpPeer, relay_binary, run_sanitized

SAMPLE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> dict:
    """{(name, frozenset(labels)): value}; also checks that every sample's family has
    HELP and TYPE lines before it, as the text format requires."""
    samples, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.groups()
        assert name in typed, f"{name} has no TYPE line before its samples"
        key = (name, frozenset(LABEL.findall(labels or "")))
        samples[key] = float(value)
    return samples


class MetricsCase(DeliveryCase):
    """A relay with [metrics] listen on a port of its own."""

    def metrics_relay(self, **sections):
        self.metrics_port = self.world.ports.port()
        return self.relay(metrics={"listen": f"127.0.0.1:{self.metrics_port}"}, **sections)

    def scrape(self) -> dict:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
            return parse_metrics(r.read().decode())

    def value(self, samples: dict, name: str, **labels) -> float | None:
        return samples.get((name, frozenset(labels.items())))


class Metrics(MetricsCase):

    def setUp(self):
        super().setUp()
        p = pki.get_pki()
        self.soon = p.leaf(dns=["mx.soon.test"], valid_days=5.05)
        self.old = p.leaf(dns=["mx.rolled.test"])
        self.new = p.leaf(dns=["mx.rolled.test", "new.rolled.test"])
        self.lost = p.leaf(dns=["mx.pinned.test"])
        self.plain = p.leaf(dns=["mx.plain.test"])
        for d in ("soon", "rolled", "pinned", "plain"):
            self.mx(f"{d}.test", f"10 mx.{d}.test.")
        policy = self.world.root / "tls_policy"
        stale = pki.fingerprint(b"a key this server had once")
        policy.write_text(
            "soon.test secure\n"
            f"rolled.test fingerprint match={self.old.pkey_fp['sha256']}|{self.new.pkey_fp['sha256']}\n"
            f"pinned.test fingerprint match={stale}\n")
        self.policy_path = policy

    def test_counters_gauges_and_certificate_warnings(self):
        """Deliveries show up as counters by status, DSN class and destination, TLS sessions by adjective
        and protocol, the queue as gauges; policy destinations get notAfter, expiry, key-change and pin warnings."""
        peers = {"soon": self.peer("mx.soon.test", cert=self.soon),
                 "rolled": self.peer("mx.rolled.test", cert=self.old),
                 "pinned": self.peer("mx.pinned.test", cert=self.lost),
                 "plain": self.peer("mx.plain.test", cert=self.plain,
                                    rcpt_replies={"nobody@plain.test": "550 5.1.1 no such user"})}
        relay = self.metrics_relay(tls={"ca_file": str(pki.get_pki().ca_file), "policy_file": str(self.policy_path)},
                                   queue={"retry_min": "1h", "retry_max": "1h"})
        self.assertEqual(self.value(self.scrape(), "tlsrelay_messages_received_total"), 0)
        waits = [(submit(relay, content("soon1"), rcpts=["a@soon.test"]), "a@soon.test", "sent"),
                 (submit(relay, content("plain"), rcpts=["a@plain.test", "nobody@plain.test"]),
                  "nobody@plain.test", "bounced"),
                 (submit(relay, content("rolled1"), rcpts=["a@rolled.test"]), "a@rolled.test", "sent"),
                 (submit(relay, content("pinned"), rcpts=["a@pinned.test"]), "a@pinned.test", "deferred")]
        for qid, rcpt, status in waits:
            self.status(relay, qid, rcpt, status)
        # Cached connections end after 2 s idle: the next messages need sessions of their own.
        peers["soon"].wait_for_sessions(1)
        peers["rolled"].wait_for_sessions(1)
        # The rolled destination's server gets its new (also pinned) key at the same address.
        peers["rolled"].stop()
        SmtpPeer(self.world, host=peers["rolled"].host, cert=self.new).start()
        waits = [(submit(relay, content("rolled2"), rcpts=["b@rolled.test"]), "b@rolled.test", "sent"),
                 (submit(relay, content("soon2"), rcpts=["b@soon.test"]), "b@soon.test", "sent")]
        for qid, rcpt, status in waits:
            self.status(relay, qid, rcpt, status)
        m = self.scrape()

        def v(name, **labels):
            return self.value(m, name, **labels)
        self.assertEqual(v("tlsrelay_messages_received_total"), 6)
        self.assertEqual(v("tlsrelay_delivery_outcomes_total", status="sent", dsn_class="2",
                           destination="plain.test"), 1)
        self.assertEqual(v("tlsrelay_delivery_outcomes_total", status="bounced", dsn_class="5",
                           destination="plain.test"), 1)
        self.assertEqual(v("tlsrelay_delivery_outcomes_total", status="sent", dsn_class="2",
                           destination="rolled.test"), 2)
        self.assertEqual(v("tlsrelay_delivery_outcomes_total", status="deferred", dsn_class="4",
                           destination="pinned.test"), 1)
        self.assertEqual(v("tlsrelay_tls_policy_failures_total", destination="pinned.test"), 1)
        self.assertIsNone(v("tlsrelay_tls_policy_failures_total", destination="soon.test"))
        # One TLS session counted per "TLS connection established" line, by adjective and protocol.
        logged: dict = {}
        for line in relay.log_lines():
            s = re.search(r"(\w+) TLS connection established to \S+: (TLSv[\d.]+) with", line)
            if s:
                logged[s.groups()] = logged.get(s.groups(), 0) + 1
        counted = {(dict(k[1])["adjective"], dict(k[1])["protocol"]): val for k, val in m.items()
                   if k[0] == "tlsrelay_tls_sessions_total"}
        self.assertEqual(counted, logged)
        self.assertEqual(sum(logged.values()), 6)  # soon x2, plain, rolled x2, pinned
        self.assertGreaterEqual(logged.get(("Verified", "TLSv1.3"), 0), 4)
        # The queue: the pinned message waits (and the bounce notice to the sender).
        self.assertGreaterEqual(v("tlsrelay_queue_messages"), 1)
        self.assertGreater(v("tlsrelay_queue_oldest_message_age_seconds"), 0)
        self.assertLess(v("tlsrelay_queue_oldest_message_age_seconds"), 120)
        # Certificates of policy destinations, per destination and host; none for plain.test.
        soon_after = self.soon.cert.not_valid_after.replace(tzinfo=datetime.timezone.utc).timestamp()
        self.assertEqual(v("tlsrelay_tls_certificate_not_after_timestamp_seconds", destination="soon.test",
                           host="mx.soon.test"), soon_after)
        self.assertFalse([k for k in m if k[0] == "tlsrelay_tls_certificate_not_after_timestamp_seconds"
                          and ("destination", "plain.test") in k[1]])
        self.assertEqual(v("tlsrelay_tls_certificate_expiry_warnings_total", destination="soon.test",
                           host="mx.soon.test"), 1)
        self.assertEqual(v("tlsrelay_tls_public_key_changes_total", destination="rolled.test",
                           host="mx.rolled.test"), 1)
        self.assertEqual(v("tlsrelay_tls_pin_mismatches_total", destination="pinned.test",
                           host="mx.pinned.test"), 1)
        self.assertIsNone(v("tlsrelay_tls_certificate_expiry_warnings_total", destination="rolled.test",
                            host="mx.rolled.test"))
        self.assertWarnings(relay, peers)

    def assertWarnings(self, relay, peers):
        """The warning lines: expiry once a day, the key change with both keys, the pin line."""
        soon_date = self.soon.cert.not_valid_after.strftime("%b %e %H:%M:%S %Y GMT")
        expiry = [l for l in relay.log_lines() if "for destination soon.test expires" in l]
        self.assertEqual(len(expiry), 1, expiry)  # two sessions, one warning
        self.assertRegex(expiry[0], r"tlsrelay/smtp\[\d+\]: warning: TLS certificate of "
                         rf"mx\.soon\.test\[{re.escape(peers['soon'].host)}\]:25 for destination soon\.test "
                         rf"expires in 5 days \({re.escape(soon_date)}\)$")
        relay.wait_for_log(
            r"warning: public key of TLS certificate of mx\.rolled\.test\[[\d.]+\]:25 for destination rolled\.test "
            rf"changed: sha256 {self.old.pkey_fp['sha256']} before, {self.new.pkey_fp['sha256']} now$")
        relay.wait_for_log(
            rf"warning: TLS certificate of mx\.pinned\.test\[{re.escape(peers['pinned'].host)}\]:25 for destination "
            rf"pinned\.test matches none of the fingerprints pinned in {re.escape(str(self.policy_path))}:3; "
            rf"this policy line would match: pinned\.test fingerprint match={self.lost.pkey_fp['sha256']}$")

    def test_expiry_warning_off_with_zero(self):
        """[watch] expiry_warning = "0s": no expiry warning, no warning count, but the notAfter gauge stays."""
        peer = self.peer("mx.soon.test", cert=self.soon)
        relay = self.metrics_relay(tls={"ca_file": str(pki.get_pki().ca_file), "policy_file": str(self.policy_path)},
                                   watch={"expiry_warning": "0s"})
        self.status(relay, submit(relay, content("soon-off"), rcpts=["a@soon.test"]), "a@soon.test", "sent")
        peer.wait_for_messages(1)
        m = self.scrape()
        self.assertEqual(self.value(m, "tlsrelay_delivery_outcomes_total", status="sent", dsn_class="2",
                                    destination="soon.test"), 1)
        self.assertIsNotNone(self.value(m, "tlsrelay_tls_certificate_not_after_timestamp_seconds",
                                        destination="soon.test", host="mx.soon.test"))
        self.assertIsNone(self.value(m, "tlsrelay_tls_certificate_expiry_warnings_total",
                                     destination="soon.test", host="mx.soon.test"))
        self.assertNotIn("expires in", relay.log_text())


class MetricsHttp(MetricsCase):

    def setUp(self):
        super().setUp()
        self.relay_ = self.metrics_relay()

    def raw(self, data: bytes, timeout: float = 5.0) -> bytes:
        """Sends data and end-of-file on a fresh connection; reads until the server closes it."""
        with socket.create_connection(("127.0.0.1", self.metrics_port), timeout=timeout) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            out = b""
            while chunk := s.recv(4096):
                out += chunk
            return out

    def test_paths_methods_and_garbage(self):
        """404 for other paths, 405 for other methods, 400 for garbage and oversized heads; the endpoint keeps serving."""
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/", timeout=5)
        self.assertEqual(e.exception.code, 404)
        req = urllib.request.Request(f"http://127.0.0.1:{self.metrics_port}/metrics", data=b"x", method="POST")
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=5)
        self.assertEqual(e.exception.code, 405)
        self.assertEqual(e.exception.headers["Allow"], "GET")
        self.assertTrue(self.raw(b"\x16\x03\x01\x00\xa5garbage\r\n\r\n").startswith(b"HTTP/1.1 400 "))
        self.assertTrue(self.raw(b"GET /metrics HTTP/1.1\n\n").startswith(b"HTTP/1.1 400 "))
        self.assertTrue(self.raw(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000).startswith(b"HTTP/1.1 400 "))
        self.assertEqual(self.raw(b"GET /metr"), b"")  # half a request, then end-of-file: no answer
        self.assertTrue(self.relay_.running())
        self.assertIn(("tlsrelay_messages_received_total", frozenset()), self.scrape())

    def test_a_taken_metrics_port_stops_serve_at_start(self):
        """A second relay whose metrics.listen is taken exits 1 at start, naming the address, instead of running blind."""
        other = self.world.relay("other", metrics={"listen": f"127.0.0.1:{self.metrics_port}"})
        other.write_config()
        run = run_sanitized([relay_binary(), "serve", "--config", other.config_path], other.dir, cwd=other.dir,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=15)
        self.assertEqual(run.returncode, 1, run.stderr)
        self.assertIn(f"cannot listen on 127.0.0.1:{self.metrics_port} for metrics: ".encode(), run.stderr)
        self.assertNotIn(b"daemon started", run.stderr)

    def test_idle_connection_does_not_block_scrapes(self):
        """A client that connects and sends nothing does not hold up the next scrape."""
        with socket.create_connection(("127.0.0.1", self.metrics_port), timeout=5) as idle:
            idle.sendall(b"GET /metrics HTTP/1.1\r\n")
            self.assertIn(("tlsrelay_queue_messages", frozenset()), self.scrape())


class ActiveWatch(MetricsCase):

    def test_interval_checks_policy_destinations_without_mail(self):
        """[watch] interval: the relay connects to a policy destination's server on its own, goes up to TLS and
        QUIT without MAIL FROM, and warns about the expiring certificate before any mail was sent."""
        cert = pki.get_pki().leaf(dns=["mx.soon.test"], valid_days=3.05)
        self.mx("soon.test", "10 mx.soon.test.")
        peer = self.peer("mx.soon.test", cert=cert)
        policy = self.world.root / "tls_policy"
        policy.write_text("soon.test secure\n.parent.test secure\n")
        relay = self.metrics_relay(tls={"ca_file": str(pki.get_pki().ca_file), "policy_file": str(policy)},
                                   watch={"interval": "1h"})
        relay.wait_for_log(r"tlsrelay/smtp\[\d+\]: warning: TLS certificate of mx\.soon\.test\["
                           rf"{re.escape(peer.host)}\]:25 for destination soon\.test expires in 3 days \(",
                           timeout=15)
        [session] = peer.wait_for_sessions(1)
        self.assertEqual(session.commands, [f"EHLO {relay.hostname}", "STARTTLS", f"EHLO {relay.hostname}", "QUIT"])
        m = self.scrape()
        self.assertEqual(self.value(m, "tlsrelay_tls_certificate_expiry_warnings_total", destination="soon.test",
                                    host="mx.soon.test"), 1)
        self.assertFalse([k for k in m if k[0] == "tlsrelay_tls_sessions_total"])
        self.assertEqual(self.value(m, "tlsrelay_messages_received_total"), 0)
        self.assertEqual(relay.stop(), 0)

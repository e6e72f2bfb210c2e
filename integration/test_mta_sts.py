"""MTA-STS (RFC 8461) end to end: the relay looks up `_mta-sts.<domain>` TXT at the
test DNS server, fetches https://mta-sts.<domain>/.well-known/mta-sts.txt from a real
HTTPS server (Python http.server + ssl, test PKI, port 443 of a private 127.0.1.N) and
delivers to real SMTP peers under the policy. Each test asserts the Postfix status
line and what the peers and the policy server saw; waits are on log lines and peer
conditions with deadlines, never fixed sleeps.

Run: TLSRELAY_BIN=build/relay/tlsrelay /usr/bin/python3 -m unittest -v test_mta_sts
"""

from __future__ import annotations

import http.server
import re
import ssl
import threading

import pki
from test_delivery import SENDER, DeliveryCase, content, submit
from world import WorldTestCase  # noqa: F401  (the base of DeliveryCase)

DOMAIN = "example.test"
RCPT = f"user@{DOMAIN}"


def policy_text(mode: str = "enforce", mx=("mx1.example.test",), max_age: int = 86400) -> str:
    lines = ["version: STSv1", f"mode: {mode}"] + [f"mx: {m}" for m in mx] + [f"max_age: {max_age}"]
    return "\r\n".join(lines) + "\r\n"


class PolicyServer:
    """An HTTPS server on port 443 of its own 127.0.1.N serving one policy document.
    status/content_type/body/location say what GET /.well-known/mta-sts.txt answers;
    requests lists (path, Host header) as received."""

    def __init__(self, world, cert, body: str):
        self.world = world
        self.host = world.ports.address()
        self.status, self.content_type, self.body, self.location = 200, "text/plain", body, None
        self.requests: list[tuple[str, str]] = []
        self._cond = threading.Condition()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with outer._cond:
                    outer.requests.append((self.path, self.headers.get("Host", "")))
                    outer._cond.notify_all()
                data = outer.body.encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", outer.content_type)
                if outer.location:
                    self.send_header("Location", outer.location)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert.chain_path), str(cert.key_path))
        self.httpd = http.server.ThreadingHTTPServer((self.host, 443), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True, name=f"https-{self.host}")
        self.thread.start()
        world.on_cleanup(self.stop)

    def stop(self) -> None:
        if self.thread is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(5)
            self.thread = None

    def count(self) -> int:
        with self._cond:
            return len(self.requests)


class MtaStsCase(DeliveryCase):
    """DNS with the domain's MX, one peer per MX host name, a policy server, a relay."""

    def setUp(self):
        super().setUp()
        self.pki = pki.get_pki()
        self.mx(DOMAIN, "10 mx1.example.test.")

    def publish(self, body: str, record_id: str = "20240101", cert_names=("mta-sts.example.test",)) -> PolicyServer:
        server = PolicyServer(self.world, self.pki.leaf(dns=list(cert_names)), body)
        self.dns.add(f"mta-sts.{DOMAIN}", "A", server.host)
        self.set_txt(f'"v=STSv1; id={record_id};"')
        return server

    def set_txt(self, *rdata: str) -> None:
        with self.dns._lock:
            self.dns.records[(f"_mta-sts.{DOMAIN}.", "TXT")] = list(rdata)

    def sts_relay(self, enabled: bool = True, **sections):
        tls = {"ca_file": str(self.pki.ca_file)}
        tls.update(sections.pop("tls", {}))
        return self.relay(tls=tls, mta_sts={"enabled": enabled}, **sections)

    def tls_line(self, relay, adjective: str, peer) -> None:
        relay.wait_for_log(rf"{adjective} TLS connection established to mx1\.example\.test"
                           rf"\[{re.escape(peer.host)}\]:25: ")

    def attempt(self, policy: str, token: str, mx_names=("mx1.example.test",),
                policy_names=("mta-sts.example.test",), **relay_sections):
        """Publishes policy (TXT record and policy server with a certificate for
        policy_names), starts the MX peer with a certificate for mx_names and a relay, and
        submits one message. Returns (policy server, peer, relay, queue id)."""
        server = self.publish(policy, cert_names=policy_names)
        peer = self.peer("mx1.example.test", cert=self.pki.leaf(dns=list(mx_names)))
        relay = self.sts_relay(**relay_sections)
        return server, peer, relay, submit(relay, content(token))

    def assertSent(self, relay, qid: str, peer) -> None:
        peer.wait_for_messages(1)
        self.assertStatus(self.status(relay, qid, RCPT, "sent"), f"mx1.example.test[{peer.host}]:25",
                          "2.0.0", "sent", "250 2.0.0 Ok: queued")


class MtaStsEnforce(MtaStsCase):

    def test_enforce_with_matching_mx_and_valid_certificate_is_verified(self):
        """enforce, the MX in the policy, a certificate for its name: sent, and the TLS line says Verified (may alone says Trusted)."""
        server, peer, relay, qid = self.attempt(policy_text("enforce", mx=("mx1.example.test",)), "enforce-ok")
        self.assertSent(relay, qid, peer)
        self.tls_line(relay, "Verified", peer)
        relay.wait_for_log(r"MTA-STS policy for example\.test fetched: mode enforce, max_age 86400, "
                           r"mx mx1\.example\.test, id 20240101")
        self.assertEqual(server.requests, [("/.well-known/mta-sts.txt", "mta-sts.example.test")])
        cached = (relay.spool / "mta-sts" / DOMAIN).read_text()
        self.assertTrue(cached.startswith("tlsrelay-mta-sts 1\nid 20240101\nfetched "), cached)

    def test_enforce_wildcard_pattern_matches_one_label(self):
        """enforce with mx *.example.test: mx1.example.test matches the pattern, and the mail is Verified."""
        _, peer, relay, qid = self.attempt(policy_text("enforce", mx=("*.example.test",)), "enforce-wildcard")
        self.assertSent(relay, qid, peer)
        self.tls_line(relay, "Verified", peer)

    def test_enforce_with_mx_not_in_policy_defers_without_connecting(self):
        """enforce, the domain's only MX not in the policy: deferred 4.7.5 with an MTA-STS reason, the MX never contacted."""
        _, peer, relay, qid = self.attempt(policy_text("enforce", mx=("mx.elsewhere.test", "*.other.test")),
                                           "enforce-mx")
        st = self.status(relay, qid, RCPT, "deferred")
        self.assertStatus(st, "none", "4.7.5", "deferred",
                          "MTA-STS policy for example.test: MX host mx1.example.test is not in the policy's "
                          "mx list (mx.elsewhere.test, *.other.test)")
        self.assertEqual(peer.sessions, [])

    def test_enforce_with_certificate_name_mismatch_defers(self):
        """enforce, the MX listed but its certificate names another host: deferred 4.7.5, Server certificate not verified, naming MTA-STS."""
        _, peer, relay, qid = self.attempt(policy_text("enforce"), "enforce-name", mx_names=("other.example.test",))
        st = self.status(relay, qid, RCPT, "deferred")
        self.assertStatus(st, f"mx1.example.test[{peer.host}]:25", "4.7.5", "deferred",
                          "Server certificate not verified: MTA-STS policy for example.test: names "
                          "other.example.test do not match mx1.example.test")
        self.assertEqual(peer.messages, [])

    def test_policy_certificate_for_another_name_is_no_policy(self):
        """The policy server's certificate does not name mta-sts.<domain>: no policy, the default level delivers (Trusted)."""
        _, peer, relay, qid = self.attempt(policy_text("enforce", mx=("mx.elsewhere.test",)), "policy-cert",
                                           policy_names=("www.example.test",))
        self.assertSent(relay, qid, peer)
        self.tls_line(relay, "Trusted", peer)
        relay.wait_for_log(r"MTA-STS policy fetch for example\.test failed: https://mta-sts\.example\.test/"
                           r"\.well-known/mta-sts\.txt: certificate not verified")

    def test_redirect_is_not_followed(self):
        """A 301 from the policy server is not followed (RFC 8461 3.3): no policy, the default level delivers."""
        server = self.publish(policy_text("enforce", mx=("mx.elsewhere.test",)))
        server.status, server.location = 301, "https://mta-sts.elsewhere.test/.well-known/mta-sts.txt"
        peer = self.peer("mx1.example.test", cert=self.pki.leaf(dns=["mx1.example.test"]))
        relay = self.sts_relay()
        qid = submit(relay, content("redirect"))
        self.assertSent(relay, qid, peer)
        relay.wait_for_log(r"MTA-STS policy fetch for example\.test failed: .*: HTTP status 301 "
                           r"\(redirects are not followed\)")
        self.assertEqual(server.count(), 1)


class MtaStsModes(MtaStsCase):

    def test_testing_mode_delivers_and_logs_what_enforce_would_do(self):
        """testing, a certificate for another name: sent as the default level allows, with a log line saying enforce would defer."""
        _, peer, relay, qid = self.attempt(policy_text("testing"), "testing", mx_names=("other.example.test",))
        self.assertSent(relay, qid, peer)
        relay.wait_for_log(r"MTA-STS policy for example\.test \(mode testing\): enforce would defer: Server "
                           r"certificate not verified: names other\.example\.test do not match mx1\.example\.test")

    def test_testing_mode_with_mx_not_in_policy_delivers(self):
        """testing, the MX not in the policy: sent anyway, with a log line saying enforce would skip it."""
        _, peer, relay, qid = self.attempt(policy_text("testing", mx=("mx.elsewhere.test",)), "testing-mx")
        self.assertSent(relay, qid, peer)
        relay.wait_for_log(r"MTA-STS policy for example\.test \(mode testing\): MX host mx1\.example\.test is "
                           r"not in the policy's mx list \(mx\.elsewhere\.test\); enforce would skip it")

    def test_no_txt_record_keeps_the_default_and_fetches_nothing(self):
        """No _mta-sts record: the default level delivers (Trusted) and the policy server is never asked."""
        server = PolicyServer(self.world, self.pki.leaf(dns=["mta-sts.example.test"]),
                              policy_text("enforce", mx=("mx.elsewhere.test",)))
        self.dns.add(f"mta-sts.{DOMAIN}", "A", server.host)
        peer = self.peer("mx1.example.test", cert=self.pki.leaf(dns=["mx1.example.test"]))
        relay = self.sts_relay()
        qid = submit(relay, content("no-txt"))
        self.assertSent(relay, qid, peer)
        self.tls_line(relay, "Trusted", peer)
        self.assertTrue(self.dns.queried(f"_mta-sts.{DOMAIN}", "TXT"))
        self.assertEqual(server.count(), 0)

    def test_disabled_looks_nothing_up(self):
        """mta_sts.enabled = false: no TXT query at all, even with an enforce policy published."""
        server, peer, relay, qid = self.attempt(policy_text("enforce", mx=("mx.elsewhere.test",)), "disabled",
                                                enabled=False)
        self.assertSent(relay, qid, peer)
        self.assertFalse(self.dns.queried(f"_mta-sts.{DOMAIN}", "TXT"))
        self.assertEqual(server.count(), 0)

    def test_policy_table_entry_overrides_mta_sts(self):
        """A [[tls.policy]] entry for the domain wins: enforce lists another MX, the table says encrypt, the mail is sent."""
        table = [{"destination": DOMAIN, "level": "encrypt"}]
        _, peer, relay, qid = self.attempt(policy_text("enforce", mx=("mx.elsewhere.test",)), "table",
                                           **{"tls.policy": table})
        self.assertSent(relay, qid, peer)
        self.tls_line(relay, "Trusted", peer)


class MtaStsProbe(MtaStsCase):

    def test_probe_shows_record_policy_and_mx_match(self):
        """tlsrelay probe DOMAIN prints the TXT record, the fetched policy and whether each MX host is in its mx list."""
        self.mx(DOMAIN, "20 mx2.example.test.")
        self.publish(policy_text("enforce", mx=("mx1.example.test",), max_age=604800), record_id="R1")
        cert = self.pki.leaf(dns=["mx1.example.test", "mx2.example.test"])
        self.peer("mx1.example.test", cert=cert)
        self.peer("mx2.example.test", cert=cert)
        relay = self.sts_relay(start=False)
        out = relay.cli("probe", DOMAIN).stdout.decode()
        self.assertIn("MTA-STS (mta_sts.enabled = true):\n"
                      "  TXT _mta-sts.example.test: id R1\n"
                      "    \"v=STSv1; id=R1;\"\n"
                      "  policy https://mta-sts.example.test/.well-known/mta-sts.txt: mode enforce, max_age 604800, "
                      "mx mx1.example.test\n"
                      "    MX mx1.example.test: in the policy's mx list\n"
                      "    MX mx2.example.test: not in the policy's mx list (enforce skips it)\n", out)


class MtaStsCache(MtaStsCase):

    def test_failed_fetch_uses_the_valid_cached_policy(self):
        """A policy cached in the spool stays in force across a restart when the TXT id changes and the fetch fails."""
        server, peer, relay, qid = self.attempt(policy_text("enforce"), "cache-1", mx_names=("other.example.test",))
        self.assertStatus(self.status(relay, qid, RCPT, "deferred"), f"mx1.example.test[{peer.host}]:25",
                          "4.7.5", "deferred",
                          "Server certificate not verified: MTA-STS policy for example.test: names "
                          "other.example.test do not match mx1.example.test")
        relay.cli("queue", "delete", qid)
        relay.stop()
        server.stop()
        self.set_txt('"v=STSv1; id=20250202;"')
        mark = relay.log_mark()
        relay.start()
        qid = submit(relay, content("cache-2"))
        # Still enforce (the default may would send): the cached policy, not a fresh one.
        self.assertStatus(self.status(relay, qid, RCPT, "deferred", since=mark), f"mx1.example.test[{peer.host}]:25",
                          "4.7.5", "deferred",
                          "Server certificate not verified: MTA-STS policy for example.test: names "
                          "other.example.test do not match mx1.example.test")
        relay.wait_for_log(r"MTA-STS policy fetch for example\.test failed: ", since=mark)
        self.assertEqual(peer.messages, [])


if __name__ == "__main__":
    import unittest
    unittest.main()

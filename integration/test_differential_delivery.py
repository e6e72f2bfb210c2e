"""Differential tests for the delivery half: DNS shapes (NXDOMAIN, null MX, SERVFAIL,
unusable MX hosts, implicit MX, CNAMEs, the address limit) and SMTP reply classes
(4xx/5xx per stage, replies without or with odd enhanced codes, greetings that refuse,
unreachable hosts), SMTPUTF8, EHLO SIZE shapes, several domains in one message, an
IPv6-only MX and 8BITMIME, each delivered by Postfix 3.7 and by tlsrelay in the same
world.

The rows and the comparison are test_differential.py's (make_scenario,
DifferentialCase): the same status, DSN, relay=, a reason starting with Postfix's,
the same TLS lines and the same sessions seen by the peers. "expect" is what
postfix-tls-semantics.md §6 predicts, checked against the oracle before the two are
compared. Rows with own_size mask each engine's own message size in a 5.3.4 reason;
rows with wire=True compare what the server received as well (test_differential.py).

Not here on purpose: a multi-line reply whose lines carry different codes, and a line
with no code glued to a reply (security-and-durability.md items 68 and 72: tlsrelay
defers 4.5.0 where Postfix takes the last line); replies over 2048 octets (Postfix cuts
its log line there, so its status cannot be read back).

Unreachable hosts live on 127.0.9.N, where nothing in the test world listens (world.py
puts peers on 127.0.1.N, relays on 127.0.3.N): a connection there is refused at once.
"""

from __future__ import annotations

import unittest

from test_differential import GOOD, SENT, define_groups

NOT_FOUND = "Host or domain name not found. Name service error for name="
PEER = "mx1.example.test[{mx1.addr}]"


def said(reply: str, stage: str) -> str:
    """Postfix's reason for a reply from mx1: 'host H said: REPLY (in reply to STAGE)'."""
    return f"host {PEER} said: {reply} (in reply to {stage})"


def refused(n: int) -> str:
    return f"connect to mx{n}.example.test[127.0.9.{n}]:25: Connection refused"


def unreachable_mx(count: int) -> dict:
    """example.test with count MX hosts (preferences 10, 20, ...) on 127.0.9.N."""
    dns = []
    for n in range(1, count + 1):
        dns += [("example.test", "MX", f"{n * 10} mx{n}.example.test."),
                (f"mx{n}.example.test", "A", f"127.0.9.{n}")]
    return {"peers": {}, "dns": dns}


def ehlo(*keywords: str) -> str:
    """An EHLO reply from mx1 with exactly these keyword lines (no STARTTLS unless named)."""
    lines = ["mx1.example.test", *keywords]
    return "\r\n".join(f"250{' ' if i == len(lines) - 1 else '-'}{l}" for i, l in enumerate(lines))


TOO_BIG = ("bounced", "5.3.4", f"message size N exceeds size limit 100 of server {PEER}")


def domains(*names: str, first: dict | None = None, others: dict | None = None) -> dict:
    """One MX per domain: mx1.example.test for the first, mx2.<name> for the second, ...
    without STARTTLS; mx1 behaves as first says, the others as others says."""
    peers, dns = {}, []
    for n, domain in enumerate(names, 1):
        host = "mx1.example.test" if n == 1 else f"mx{n}.{domain}"
        peers[f"mx{n}"] = {"names": [host], "behaviour": (first if n == 1 else others) or {}}
        dns.append((domain, "MX", f"10 {host}."))
    return {"peers": peers, "dns": dns}


def then_mx2(reply_stage: dict) -> dict:
    """mx1 (preference 10) with the given behaviour, mx2 (20) a good peer."""
    return {"peers": {"mx1": {"names": ["mx1.example.test"], "behaviour": reply_stage},
                      "mx2": {"names": ["mx2.example.test"]}},
            "dns": [("example.test", "MX", "10 mx1.example.test."),
                    ("example.test", "MX", "20 mx2.example.test.")]}


SCENARIOS: dict[str, list[dict]] = {
    # postfix-tls-semantics §6: what the MX and address lookups can answer.
    "DnsShapes": [
        dict(name="recipient-domain-nxdomain", recipients=["user@absent.test"],
             expect=("bounced", "5.4.4", NOT_FOUND + "absent.test type=AAAA: Host not found")),
        dict(name="null-mx", dns=[("example.test", "MX", "0 .")], peers={},
             expect=("bounced", "5.1.0", "Domain example.test does not accept mail (nullMX)")),
        dict(name="mx-servfail", dns_failures=[("example.test", "MX", "SERVFAIL")],
             expect=("deferred", "4.4.3", NOT_FOUND + "example.test type=MX: Host not found, try again")),
        dict(name="mx-refused", dns_failures=[("example.test", "MX", "REFUSED")],
             expect=("deferred", "4.4.3", NOT_FOUND + "example.test type=MX: Host not found, try again")),
        dict(name="mx-host-nxdomain", peers={}, dns=[("example.test", "MX", "10 gone.example.test.")],
             expect=("bounced", "5.4.4", NOT_FOUND + "gone.example.test type=")),
        dict(name="mx-host-a-servfail", dns_failures=[("mx1.example.test", "A", "SERVFAIL")],
             expect=("deferred", "4.4.3", NOT_FOUND + "mx1.example.test type=A: Host not found, try again")),
        dict(name="mx-host-without-addresses", peers={},
             dns=[("example.test", "MX", "10 mx1.example.test."), ("mx1.example.test", "TXT", '"no address"')],
             expect=("bounced", "5.4.4", NOT_FOUND + "mx1.example.test type=")),
        dict(name="implicit-mx", peers={"mx1": {"names": ["example.test"]}}, dns=[],
             expect=SENT),
        dict(name="no-mx-no-address", peers={}, dns=[("example.test", "TXT", '"nothing here"')],
             expect=("bounced", "5.4.4", NOT_FOUND + "example.test type=")),
        dict(name="domain-cname-to-mx-domain",
             dns=[("example.test", "CNAME", "alias.test."), ("alias.test", "MX", "10 mx1.example.test.")],
             expect=SENT),
        dict(name="first-mx-unresolvable-second-ok",
             dns=[("example.test", "MX", "10 gone.example.test."), ("example.test", "MX", "20 mx1.example.test.")],
             expect=SENT),
        dict(name="first-mx-servfail-second-ok", dns_failures=[("gone.example.test", "A", "SERVFAIL")],
             dns=[("example.test", "MX", "10 gone.example.test."), ("example.test", "MX", "20 mx1.example.test.")],
             expect=SENT),
        dict(name="mx-connection-refused", **unreachable_mx(1),
             expect=("deferred", "4.4.1", refused(1))),
        dict(name="address-limit-five", **unreachable_mx(6),
             expect=("deferred", "4.4.1", refused(5))),
        dict(name="unreachable-then-peer", peers={"mx2": {"names": ["mx2.example.test"]}},
             dns=[("example.test", "MX", "10 mx1.example.test."), ("mx1.example.test", "A", "127.0.9.1"),
                  ("example.test", "MX", "20 mx2.example.test.")],
             expect=SENT),
    ],
    # §1.5 and §6: what each reply class does to the recipient, the message and the host.
    "ReplyShapes": [
        dict(name="rcpt-550-bounces", behaviour={"replies": {"RCPT": "550 5.1.1 No such user"}},
             expect=("bounced", "5.1.1", said("550 5.1.1 No such user", "RCPT TO command"))),
        dict(name="rcpt-450-defers", behaviour={"replies": {"RCPT": "450 4.2.0 Mailbox busy"}},
             expect=("deferred", "4.2.0", said("450 4.2.0 Mailbox busy", "RCPT TO command"))),
        dict(name="rcpt-550-without-enhanced-code", behaviour={"replies": {"RCPT": "550 No such user"}},
             expect=("bounced", "5.0.0", said("550 No such user", "RCPT TO command"))),
        # An enhanced code whose class differs from the reply's is replaced by x.0.0.
        dict(name="rcpt-550-with-4xx-enhanced-code", behaviour={"replies": {"RCPT": "550 4.1.1 Odd"}},
             expect=("bounced", "5.0.0", said("550 4.1.1 Odd", "RCPT TO command"))),
        dict(name="rcpt-450-with-5xx-enhanced-code", behaviour={"replies": {"RCPT": "450 5.2.2 Odd"}},
             expect=("deferred", "4.0.0", said("450 5.2.2 Odd", "RCPT TO command"))),
        dict(name="mail-552-bounces", behaviour={"replies": {"MAIL": "552 5.3.4 Message too big"}},
             expect=("bounced", "5.3.4", said("552 5.3.4 Message too big", "MAIL FROM command"))),
        dict(name="mail-451-defers", behaviour={"replies": {"MAIL": "451 4.3.0 Try later"}},
             expect=("deferred", "4.3.0", said("451 4.3.0 Try later", "MAIL FROM command"))),
        dict(name="data-554-bounces", behaviour={"replies": {"DATA": "554 5.5.1 No valid recipients"}},
             expect=("bounced", "5.5.1", said("554 5.5.1 No valid recipients", "DATA command"))),
        dict(name="dot-552-bounces", behaviour={"replies": {"DOT": "552 5.2.2 Over quota"}},
             expect=("bounced", "5.2.2", said("552 5.2.2 Over quota", "end of DATA command"))),
        dict(name="dot-421-defers", behaviour={"replies": {"DOT": "421 4.4.2 Closing"}},
             expect=("deferred", "4.4.2", said("421 4.4.2 Closing", "end of DATA command"))),
        dict(name="two-recipients-one-refused", recipients=["ok@example.test", "no@example.test"],
             behaviour={"rcpt_replies": {"no@example.test": "550 5.1.1 Unknown"}}, expect=SENT),
        dict(name="rcpt-limit-452-for-the-second", recipients=["one@example.test", "two@example.test"],
             behaviour={"rcpt_limit": 1}, expect=SENT),
        dict(name="rcpt-limit-452-three-recipients",
             recipients=["one@example.test", "two@example.test", "three@example.test"],
             behaviour={"rcpt_limit": 2}, expect=SENT),
        dict(name="no-pipelining", behaviour={"pipelining": False}, expect=SENT),
        # smtp_trouble.c: a refusal whose DSN is not 4.x.x/5.x.x is a protocol error.
        dict(name="data-250-instead-of-354", behaviour={"replies": {"DATA": "250 2.0.0 Ok"}},
             expect=("bounced", "5.5.0", "Protocol error: " + said("250 2.0.0 Ok", "DATA command"))),
        dict(name="mail-354-protocol-error", behaviour={"replies": {"MAIL": "354 go ahead"}},
             expect=("bounced", "5.5.0")),
        dict(name="rcpt-354-protocol-error", behaviour={"replies": {"RCPT": "354 go ahead"}},
             expect=("bounced", "5.5.0")),
        dict(name="dot-354-protocol-error", behaviour={"replies": {"DOT": "354 more"}},
             expect=("bounced", "5.5.0")),
        dict(name="greeting-354", behaviour={"greeting": "354 hello"},
             expect=("bounced", "5.5.0", f"host {PEER} refused to talk to me: 354 hello")),
        dict(name="helo-250-then-ehlo-421", behaviour={"replies": {"EHLO": "421 4.7.0 Closing"}},
             expect=("deferred", "4.7.0")),
        dict(name="helo-354-after-ehlo-502", behaviour={"esmtp": False, "replies": {"HELO": "354 what"}},
             expect=("bounced", "5.5.0")),
        dict(name="rcpt-550-multiline", behaviour={"replies": {"RCPT": "550-5.1.1 No such user\r\n550 5.1.1 here"}},
             expect=("bounced", "5.1.1", said("550-5.1.1 No such user 550 5.1.1 here", "RCPT TO command"))),
        dict(name="rcpt-550-utf8-text", behaviour={"replies": {"RCPT": "550 5.1.1 Unbekannter Empf\u00e4nger"}},
             expect=("bounced", "5.1.1")),
        # Postfix's printable(): which byte sequences count as UTF-8 and stay
        dict(name="rcpt-550-truncated-utf8", behaviour={"replies": {"RCPT": "550 5.1.1 a\udce4\udcb8b"}},
             expect=("bounced", "5.1.1")),
        dict(name="rcpt-550-surrogate-utf8", behaviour={"replies": {"RCPT": "550 5.1.1 a\udced\udca0\udc80b"}},
             expect=("bounced", "5.1.1")),
        dict(name="rcpt-550-overlong-utf8", behaviour={"replies": {"RCPT": "550 5.1.1 a\udcc0\udcafb\udce0\udc80\udcafc"}},
             expect=("bounced", "5.1.1")),
        dict(name="rcpt-550-latin1", behaviour={"replies": {"RCPT": "550 5.1.1 caf\udce9 ok"}},
             expect=("bounced", "5.1.1")),
        dict(name="rcpt-550-multiline-codes-from-last-line",
             behaviour={"replies": {"RCPT": "550-5.1.1 first\r\n550 5.7.1 second"}}, expect=("bounced", "5.7.1")),
        dict(name="rcpt-550-spaces-before-enhanced-code", behaviour={"replies": {"RCPT": "550   5.7.1 spaced"}},
             expect=("bounced", "5.7.1")),
        dict(name="starttls-250-instead-of-220", level="encrypt", behaviour={"starttls_reply": "250 go ahead"},
             expect=SENT),
        dict(name="rcpt-550-control-bytes", behaviour={"replies": {"RCPT": "550 5.1.1 bad\x01\x7fname\tx"}},
             expect=("bounced", "5.1.1")),
        dict(name="all-recipients-refused", recipients=["one@example.test", "two@example.test"],
             behaviour={"replies": {"RCPT": "550 5.1.1 Unknown"}}, expect=("bounced", "5.1.1")),
        dict(name="greeting-multiline", behaviour={"greeting": "220-mx1.example.test first\r\n220 second"},
             expect=SENT),
        dict(name="helo-refused-after-ehlo-502", behaviour={"esmtp": False, "replies": {"HELO": "554 5.7.1 No HELO"}},
             expect=("bounced", "5.7.1")),
        dict(name="null-sender", sender="", expect=SENT),
        dict(name="quit-dropped", behaviour={"drop": ["QUIT"]}, expect=SENT),
        dict(name="helo-fallback-after-ehlo-502", behaviour={"esmtp": False}, expect=SENT),
        # smtp_skip_5xx_greeting = yes: a 5xx greeting is a deferral (4.x.y), next MX first.
        dict(name="greeting-554-defers", behaviour={"greeting": "554 5.7.1 Go away"},
             expect=("deferred", "4.7.1", f"host {PEER} refused to talk to me: 554 5.7.1 Go away")),
        dict(name="greeting-421-defers", behaviour={"greeting": "421 4.3.2 Not now"},
             expect=("deferred", "4.3.2", f"host {PEER} refused to talk to me: 421 4.3.2 Not now")),
        dict(name="greeting-421-then-next-mx", **then_mx2({"greeting": "421 4.3.2 Not now"}), expect=SENT),
        dict(name="greeting-554-then-next-mx", **then_mx2({"greeting": "554 5.7.1 Go away"}), expect=SENT),
        dict(name="mail-421-then-next-mx", **then_mx2({"replies": {"MAIL": "421 4.3.2 Shutting down"}}),
             expect=SENT),
        dict(name="ehlo-dropped-then-next-mx", **then_mx2({"drop": ["EHLO"]}), expect=SENT),
        dict(name="ehlo-dropped-defers", behaviour={"drop": ["EHLO"]},
             expect=("deferred", "4.4.2", f"lost connection with {PEER} while performing the EHLO handshake")),
    ],
    # SMTPUTF8 (RFC 6531) requested by the client, and a server with or without it.
    "Smtputf8": [
        dict(name="requested-ascii-envelope-and-headers", mail_options=["SMTPUTF8"], expect=SENT),
        dict(name="utf8-recipient-not-offered", mail_options=["SMTPUTF8"], recipients=["j\u00fcrgen@example.test"],
             expect=("bounced", "5.6.7", f"SMTPUTF8 is required, but was not offered by host {PEER}")),
        dict(name="utf8-recipient-offered", mail_options=["SMTPUTF8"], recipients=["j\u00fcrgen@example.test"],
             behaviour={"extensions": ["SMTPUTF8"]}, expect=SENT),
        dict(name="utf8-sender-not-offered", mail_options=["SMTPUTF8"], sender="j\u00fcrgen@client.tlsrelay.invalid",
             expect=("bounced", "5.6.7", f"SMTPUTF8 is required, but was not offered by host {PEER}")),
        dict(name="utf8-subject-not-offered", mail_options=["SMTPUTF8"],
             body="From: <s@client.tlsrelay.invalid>\r\nSubject: Gr\u00fc\u00dfe\r\n\r\nhello\r\n".encode(),
             expect=("bounced", "5.6.7", f"SMTPUTF8 is required, but was not offered by host {PEER}")),
        dict(name="utf8-body-only-not-offered", mail_options=["SMTPUTF8"],
             body="From: <s@client.tlsrelay.invalid>\r\nSubject: hi\r\n\r\nGr\u00fc\u00dfe\r\n".encode(),
             expect=SENT),
        dict(name="utf8-subject-not-requested", body="From: <s@client.tlsrelay.invalid>\r\nSubject: Gr\u00fc\u00dfe\r\n\r\nhi\r\n".encode(),
             expect=SENT),
    ],
}

# RFC 1870 SIZE as Postfix's smtp_helo reads it and smtp_xfer applies it: a message
# larger than a positive limit is bounced 5.3.4 before MAIL, at that server, with no
# other MX tried. The two engines' copies differ by their trace headers (about 290
# octets here against Postfix's 400), so limits stay far from both.
SCENARIOS["SizeLimits"] = [
    dict(name="size-smaller-bounces", behaviour={"size": 100}, own_size=True, expect=TOO_BIG),
    dict(name="size-smaller-no-next-mx", **then_mx2({"size": 100}), own_size=True, expect=TOO_BIG),
    dict(name="size-larger-sent", behaviour={"size": 100000}, expect=SENT),
    dict(name="size-zero-is-no-limit", behaviour={"size": 0}, expect=SENT),
    dict(name="size-without-number", behaviour={"replies": {"EHLO": ehlo("PIPELINING", "SIZE", "8BITMIME")}},
         expect=SENT),
    dict(name="size-garbage-number", behaviour={"replies": {"EHLO": ehlo("SIZE 12abc", "8BITMIME")}},
         expect=SENT),
    dict(name="size-negative-number", behaviour={"replies": {"EHLO": ehlo("SIZE -5")}}, expect=SENT),
    dict(name="size-overflowing-number", behaviour={"replies": {"EHLO": ehlo("SIZE 99999999999999999999")}},
         expect=SENT),
    dict(name="size-beyond-off-t", behaviour={"replies": {"EHLO": ehlo("SIZE 9223372036854775808")}},
         expect=SENT),
    dict(name="size-lowercase-keyword", behaviour={"replies": {"EHLO": ehlo("size 100")}}, own_size=True,
         expect=TOO_BIG),
    dict(name="size-equals-sign", behaviour={"replies": {"EHLO": ehlo("SIZE=100")}}, own_size=True,
         expect=TOO_BIG),
    dict(name="size-two-spaces", behaviour={"replies": {"EHLO": ehlo("SIZE  100")}}, own_size=True,
         expect=TOO_BIG),
    dict(name="size-tab-separated", behaviour={"replies": {"EHLO": ehlo("SIZE\t100")}}, expect=SENT),
    dict(name="size-two-parameters", behaviour={"replies": {"EHLO": ehlo("SIZE 100 200")}}, own_size=True,
         expect=TOO_BIG),
    dict(name="size-keyword-prefix", behaviour={"replies": {"EHLO": ehlo("SIZEX 100")}}, expect=SENT),
    dict(name="size-smaller-without-8bitmime", behaviour={"size": 100, "eight_bit_mime": False},
         own_size=True, expect=TOO_BIG),
    dict(name="size-smaller-helo-only", behaviour={"size": 100, "esmtp": False}, expect=SENT),
    dict(name="size-smaller-after-starttls-only", level="encrypt",
         behaviour={"replies": {"EHLO": ehlo("STARTTLS", "SIZE 100")}}, own_size=True, expect=TOO_BIG),
]

# Replies of odd shapes at more stages; errors to RSET and QUIT change nothing.
SCENARIOS["MoreReplies"] = [
    dict(name="rcpt-code-alone", behaviour={"replies": {"RCPT": "550"}},
         expect=("bounced", "5.0.0", said("550", "RCPT TO command"))),
    dict(name="rcpt-code-and-space", behaviour={"replies": {"RCPT": "550 "}},
         expect=("bounced", "5.0.0", said("550 ", "RCPT TO command"))),
    dict(name="dot-code-alone", behaviour={"replies": {"DOT": "554"}},
         expect=("bounced", "5.0.0", said("554", "end of DATA command"))),
    dict(name="mail-code-and-space-defers", behaviour={"replies": {"MAIL": "451 "}},
         expect=("deferred", "4.0.0", said("451 ", "MAIL FROM command"))),
    dict(name="greeting-code-alone", behaviour={"greeting": "554"},
         expect=("deferred", "4.0.0", f"host {PEER} refused to talk to me: 554")),
    dict(name="rcpt-multiline-last-line-bare", behaviour={"replies": {"RCPT": "550-5.7.1 Blocked\r\n550"}},
         expect=("bounced", "5.0.0", said("550-5.7.1 Blocked 550", "RCPT TO command"))),
    dict(name="rcpt-multiline-empty-middle-line",
         behaviour={"replies": {"RCPT": "550-5.1.1 first\r\n550-\r\n550 5.1.1 last"}},
         expect=("bounced", "5.1.1", said("550-5.1.1 first 550- 550 5.1.1 last", "RCPT TO command"))),
    dict(name="rcpt-552-second-of-three", recipients=["one@example.test", "two@example.test", "three@example.test"],
         behaviour={"rcpt_replies": {"two@example.test": "552 5.2.2 Over quota"}}, expect=SENT),
    dict(name="rcpt-452-second-of-three", recipients=["one@example.test", "two@example.test", "three@example.test"],
         behaviour={"rcpt_replies": {"two@example.test": "452 4.2.2 Mailbox full"}}, expect=SENT),
    dict(name="rcpt-421-second-of-three", recipients=["one@example.test", "two@example.test", "three@example.test"],
         behaviour={"rcpt_replies": {"two@example.test": "421 4.3.0 Closing"}}, expect=SENT),
    dict(name="rcpt-251-will-forward", behaviour={"replies": {"RCPT": "251 2.1.5 Will forward"}}, expect=SENT),
    dict(name="rcpt-550-with-2xx-enhanced-code", behaviour={"replies": {"RCPT": "550 2.1.5 Odd"}},
         expect=("bounced", "5.0.0")),
    dict(name="data-451-defers", behaviour={"replies": {"DATA": "451 4.3.0 Later"}},
         expect=("deferred", "4.3.0", said("451 4.3.0 Later", "DATA command"))),
    dict(name="dot-250-multiline", behaviour={"replies": {"DOT": "250-2.0.0 Ok\r\n250 2.0.0 queued as X"}},
         expect=("sent", "2.0.0", "250-2.0.0 Ok 250 2.0.0 queued as X")),
    dict(name="dot-450-multiline", behaviour={"replies": {"DOT": "450-4.7.1 Greylisted\r\n450 4.7.1 retry"}},
         expect=("deferred", "4.7.1", said("450-4.7.1 Greylisted 450 4.7.1 retry", "end of DATA command"))),
    dict(name="rset-500-after-all-refused", recipients=["one@example.test", "two@example.test"],
         behaviour={"replies": {"RCPT": "550 5.1.1 Unknown", "RSET": "500 5.5.1 What"}},
         expect=("bounced", "5.1.1")),
    dict(name="rset-dropped-after-mail-refused",
         behaviour={"replies": {"MAIL": "553 5.1.8 Bad sender"}, "drop": ["RSET"]},
         expect=("bounced", "5.1.8", said("553 5.1.8 Bad sender", "MAIL FROM command"))),
    dict(name="quit-500", behaviour={"replies": {"QUIT": "500 5.5.1 No"}}, expect=SENT),
    dict(name="quit-421", behaviour={"replies": {"QUIT": "421 4.3.0 Bye anyway"}}, expect=SENT),
]

# Postfix splits a message per next hop (one delivery, and here one session, per
# domain); an MX host with an IPv6 address only (::1).
SCENARIOS["DomainsAndFamilies"] = [
    dict(name="two-domains-second-refuses", recipients=["a@example.test", "b@other.test"],
         **domains("example.test", "other.test", others={"replies": {"RCPT": "550 5.1.1 Unknown"}}), expect=SENT),
    dict(name="two-domains-first-refuses", recipients=["a@example.test", "b@other.test"],
         **domains("example.test", "other.test", first={"replies": {"RCPT": "550 5.1.1 Unknown"}}),
         expect=("bounced", "5.1.1")),
    dict(name="two-domains-first-greeting-421", recipients=["a@example.test", "b@other.test"],
         **domains("example.test", "other.test", first={"greeting": "421 4.3.2 Not now"}),
         expect=("deferred", "4.3.2")),
    dict(name="three-domains-middle-defers", recipients=["a@example.test", "b@other.test", "c@third.test"],
         **domains("example.test", "other.test", "third.test", others={"replies": {"MAIL": "451 4.3.0 Later"}}),
         expect=SENT),
    dict(name="two-domains-one-nxdomain", recipients=["a@example.test", "b@absent.test"], expect=SENT),
    dict(name="three-domains-one-mx-host", recipients=["a@example.test", "b@other.test", "c@third.test"],
         peers={"mx1": {"names": ["mx1.example.test"], "behaviour": {"rcpt_limit": 1}}},
         dns=[("example.test", "MX", "10 mx1.example.test."), ("other.test", "MX", "10 mx1.example.test."),
              ("third.test", "MX", "10 mx1.example.test.")], expect=SENT),
    dict(name="two-domains-one-transport-route", recipients=["a@example.test", "b@other.test"],
         transport={"other.test": "smtp:[mx1.example.test]"}, expect=SENT),
    dict(name="two-domains-one-relayhost", recipients=["a@example.test", "b@other.test"],
         main={"relayhost": "[mx1.example.test]"}, dns=[], expect=SENT),
    dict(name="domain-case-differs-one-next-hop", recipients=["a@Example.TEST", "b@example.test"], expect=SENT),
    dict(name="aaaa-only-mx", peers={"mx1": {"names": ["mx1.example.test"], "behaviour": {"host": "::1"}}},
         expect=SENT),
    dict(name="aaaa-only-mx-verify", level="verify",
         peers={"mx1": {"names": ["mx1.example.test"], "cert": GOOD, "behaviour": {"host": "::1"}}},
         expect=SENT),
    dict(name="aaaa-only-mx-refused", peers={}, dns=[("example.test", "MX", "10 mx1.example.test."),
                                                     ("mx1.example.test", "AAAA", "::1")],
         expect=("deferred", "4.4.1", "connect to mx1.example.test[::1]:25: Connection refused")),
]

def mime(cte: str, body: str, ctype: str = "text/plain; charset=utf-8") -> bytes:
    """A one-part MIME message with this Content-Transfer-Encoding and body."""
    return ("From: <s@client.tlsrelay.invalid>\r\nSubject: eight bits\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: {ctype}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n{body}").encode()


NO_8BITMIME = {"eight_bit_mime": False}
MULTIPART = ("From: <s@client.tlsrelay.invalid>\r\nMIME-Version: 1.0\r\n"
             "Content-Type: multipart/mixed;\r\n boundary=\"=-b1\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
             "preamble\r\n--=-b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
             "Content-Transfer-Encoding: 8bit\r\n\r\nGr\u00fc\u00dfe = \r\n"
             "--=-b1\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
             "--=-b1\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
             "Subject: inner\r\nContent-Type: text/plain; charset=utf-8\r\n"
             "Content-Transfer-Encoding: 8bit\r\n\r\ninner \u00e4\r\n--=-b1--\r\n").encode()

# RFC 6152 8BITMIME: what MAIL says (SIZE=, BODY=8BITMIME) and what the server gets,
# compared on the wire ("wire": MAIL parameters, Content-* headers and the body).
# Postfix 3.7 downgrades parts declared 8bit or binary to quoted-printable for a server
# without 8BITMIME, sends undeclared 8-bit text as it is, and leaves SIZE= out then.
SCENARIOS["EightBitMime"] = [
    dict(name="8bit-mime-declared-to-7bit-server", mail_options=["BODY=8BITMIME"], behaviour=NO_8BITMIME,
         body=mime("8bit", "Gr\u00fc\u00dfe\r\n"), wire=True, expect=SENT),
    dict(name="8bit-mime-undeclared-to-7bit-server", behaviour=NO_8BITMIME,
         body=mime("8bit", "Gr\u00fc\u00dfe\r\n"), wire=True, expect=SENT),
    dict(name="8bit-plain-declared-to-7bit-server", mail_options=["BODY=8BITMIME"], behaviour=NO_8BITMIME,
         body="From: <s@client.tlsrelay.invalid>\r\nSubject: hi\r\n\r\nGr\u00fc\u00dfe\r\n".encode(),
         wire=True, expect=SENT),
    dict(name="ascii-to-7bit-server", behaviour=NO_8BITMIME, wire=True, expect=SENT),
    dict(name="8bit-mime-declared-to-8bit-server", mail_options=["BODY=8BITMIME"],
         body=mime("8bit", "Gr\u00fc\u00dfe\r\n"), wire=True, expect=SENT),
    dict(name="8bit-mime-undeclared-to-8bit-server", body=mime("8bit", "Gr\u00fc\u00dfe\r\n"), wire=True,
         expect=SENT),
    dict(name="binary-cte-to-7bit-server", behaviour=NO_8BITMIME, body=mime("binary", "caf\u00e9\r\n"),
         wire=True, expect=SENT),
    dict(name="base64-to-7bit-server-unchanged", behaviour=NO_8BITMIME, body=mime("base64", "R3LDvMOfZQ==\r\n"),
         wire=True, expect=SENT),
    dict(name="quoted-printable-rules", behaviour=NO_8BITMIME, wire=True, expect=SENT,
         body=mime("8bit", "x" * 72 + "\u00e4\u00e4 tail \r\n= sign\ttab\t\r\n" + "\u00fc" * 40 + "\r\n")),
    dict(name="cte-case-and-comment", behaviour=NO_8BITMIME, wire=True, expect=SENT,
         body=mime("8BIT (raw)", "Gr\u00fc\u00dfe\r\n")),
    dict(name="multipart-with-nested-message-to-7bit-server", behaviour=NO_8BITMIME, body=MULTIPART, wire=True,
         expect=SENT),
    dict(name="multipart-to-8bit-server", body=MULTIPART, wire=True, expect=SENT),
    dict(name="8bit-header-to-7bit-server", behaviour=NO_8BITMIME, wire=True, expect=SENT,
         body="From: <s@client.tlsrelay.invalid>\r\nSubject: Gr\u00fc\u00dfe\r\n\r\nhi\r\n".encode()),
    dict(name="long-line-to-8bit-server", mail_options=["BODY=8BITMIME"], wire=True, expect=SENT,
         body=mime("8bit", "\u00e4" * 1500 + "\r\n")),
    dict(name="long-line-to-7bit-server", behaviour=NO_8BITMIME, wire=True, expect=SENT,
         body=mime("8bit", "a" * 2500 + "\u00e4\r\n" + "b" * 3000 + "\r\n")),
    dict(name="dot-lines-to-7bit-server", behaviour=NO_8BITMIME, wire=True, expect=SENT,
         body=mime("8bit", ".\r\n..\u00e4\r\n.x\r\n")),
    dict(name="cte-folded-value", behaviour=NO_8BITMIME, wire=True, expect=SENT,
         body=mime("\r\n 8bit", "Gr\u00fc\u00dfe\r\n")),
    dict(name="cte-folded-value-to-8bit-server", wire=True, expect=SENT, body=mime("\r\n 8bit", "Gr\u00fc\u00dfe\r\n")),
    dict(name="digest-parts-are-messages", behaviour=NO_8BITMIME, wire=True, expect=SENT,
         body=("From: <s@client.tlsrelay.invalid>\r\nMIME-Version: 1.0\r\n"
               "Content-Type: MULTIPART/DIGEST; BOUNDARY=d\r\n\r\n--d\r\n\r\n"
               "Subject: inner\r\nContent-Transfer-Encoding: 8bit\r\n\r\ninner \u00e4\r\n--d--\r\n").encode()),
    dict(name="8bit-to-7bit-server-too-big", behaviour={"eight_bit_mime": False, "size": 100},
         body=mime("8bit", "Gr\u00fc\u00dfe\r\n"), own_size=True, expect=TOO_BIG),
]

define_groups(globals(), SCENARIOS)

if __name__ == "__main__":
    unittest.main()

"""Mail intake end to end: real SMTP clients against a running tlsrelay.

Each test proves one behaviour a user or an attacker can observe at the SMTP port or
in the queue. Codes follow interface.md and, where it is silent, Postfix 3.9 defaults
and checklist §5 A-F of security-and-durability.md (item numbers in brackets).
Run: TLSRELAY_BIN=build/relay/tlsrelay /usr/bin/python3 -m unittest -v test_intake
"""

import os
import re
import shutil
import smtplib
import socket
import subprocess
import time
import unittest

from world import (ConnectionClosed, RawSmtp, WorldTestCase, dot_stuff, make_certificate,
                   queued_id, split_received)

SENDER = "sender@example.com"
RCPT = "rcpt@example.org"
BARE_CR_OR_LF = re.compile(rb"\r(?!\n)|(?<!\r)\n")


def sample_content(token: str = "t0") -> bytes:
    """A message exercising what must survive byte-exact: folded headers, empty lines,
    leading dots, trailing blanks, tabs, 8-bit text, a 998-octet line."""
    return (b"From: Sender <sender@example.com>\r\n"
            b"To: rcpt@example.org\r\n"
            b"Subject: intake " + token.encode() + b"\r\n"
            b"X-Folded: first\r\n\tsecond\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n"
            b"\r\n"
            b"token " + token.encode() + b"\r\n"
            b".\r\n..\r\n.leading dot\r\n"
            b"\r\n\r\n"
            b"trailing blanks   \r\n"
            b"\ttab\r\n"
            b"gr\xc3\xbc\xc3\x9fe\r\n"
            + b"L" * 998 + b"\r\n"
            b"end\r\n")


def send_message(relay, content: bytes, sender: str = SENDER, rcpts=(RCPT,),
                 mail_params: str = "") -> str:
    """One clean transaction over a raw socket; returns the queue id from the 250."""
    with RawSmtp(relay.address) as c:
        c.ehlo()
        c.expect(f"MAIL FROM:<{sender}>{mail_params}", 250, "2.1.0")
        for r in rcpts:
            c.expect(f"RCPT TO:<{r}>", 250, "2.1.5")
        c.expect("DATA", 354)
        c.send(dot_stuff(content))
        qid = queued_id(c.reply())
        c.expect("QUIT", 221, "2.0.0")
    return qid


class IntakeTestCase(WorldTestCase):
    relay_config: dict = {}

    def setUp(self):
        super().setUp()
        self.relay = self.start_relay(**self.relay_config)

    def assertQueueEmpty(self):
        self.assertEqual(self.relay.queue(), [], "nothing may be queued")

    def assertStoredExactly(self, qid: str, content: bytes):
        stored = self.relay.message_content(qid, content.split(b"\r\n", 1)[0])
        received, rest = split_received(stored)
        self.assertTrue(received.startswith(b"Received: from "), f"no Received header first: {stored[:200]!r}")
        self.assertIn(self.relay.hostname.encode(), received)
        self.assertEqual(rest, content, "stored content differs from what the client sent")
        self.assertIsNone(BARE_CR_OR_LF.search(stored), "stored content holds a bare CR or LF")


# -----------------------------------------------------------------------------------------
# Well-behaved clients
# -----------------------------------------------------------------------------------------

class SmtplibClient(IntakeTestCase):
    relay_config = {"server": {"max_message_size": 1048576}}

    def smtp(self) -> smtplib.SMTP:
        s = smtplib.SMTP(*self.relay.address, local_hostname="client.example", timeout=10)
        self.addCleanup(s.close)
        return s

    def test_ehlo_advertises_extensions(self):
        """EHLO lists PIPELINING, SIZE <max_message_size>, 8BITMIME, ENHANCEDSTATUSCODES, SMTPUTF8 and no CHUNKING/STARTTLS (no cert)."""
        s = self.smtp()
        code, banner = s.ehlo()
        self.assertEqual(code, 250)
        self.assertEqual(banner.split(b"\n")[0].split()[0].decode(), self.relay.hostname)
        f = s.esmtp_features
        for ext in ("pipelining", "8bitmime", "enhancedstatuscodes", "smtputf8"):
            self.assertIn(ext, f, f"{ext} not advertised: {banner!r}")
        self.assertEqual(f.get("size"), "1048576")
        self.assertNotIn("chunking", f)
        self.assertNotIn("starttls", f, "STARTTLS advertised without tls_cert")

    def test_greeting_names_host(self):
        """The 220 greeting starts with the configured hostname."""
        with RawSmtp(self.relay.address) as c:
            g = c.greeting()
            self.assertEqual(g.lines[0].split()[0], self.relay.hostname)

    def test_message_stored_byte_exact(self):
        """A message sent with smtplib is acknowledged 250 2.0.0 queued as ID and stored byte-exact after one Received: header."""
        content = sample_content("exact")
        s = self.smtp()
        s.ehlo()
        s.mail(SENDER, ["BODY=8BITMIME"])
        s.rcpt(RCPT)
        code, msg = s.data(content)
        self.assertEqual(code, 250)
        m = re.fullmatch(rb"2\.0\.0 Ok: queued as ([0-9A-Za-z]+)", msg)
        self.assertIsNotNone(m, msg)
        qid = m.group(1).decode()
        s.quit()
        q = self.relay.queue()
        self.assertEqual([e["id"] for e in q], [qid])
        entry = q[0]
        self.assertEqual(entry["sender"], SENDER)
        self.assertEqual([r["address"] for r in entry["recipients"]], [RCPT])
        # The relayhost is unreachable: at most one attempt has been made by now.
        self.assertIn(entry["recipients"][0]["attempts"], (0, 1))
        self.assertIn(entry["recipients"][0]["status"], ("queued", "deferred"))
        stored = self.relay.message_content(qid, b"From: Sender")
        self.assertEqual(entry["size"], len(stored), "size is the stored content size")
        self.assertStoredExactly(qid, content)

    def test_multiple_recipients(self):
        """One message for three recipients is one queue entry listing all three in RCPT order."""
        rcpts = ["a@example.org", "b@example.net", "c@example.org"]
        s = self.smtp()
        refused = s.sendmail(SENDER, rcpts, sample_content("multi"))
        self.assertEqual(refused, {})
        s.quit()
        q = self.relay.queue()
        self.assertEqual(len(q), 1)
        self.assertEqual([r["address"] for r in q[0]["recipients"]], rcpts)

    def test_rset_noop_vrfy_help_quit(self):
        """RSET/NOOP answer 250 2.0.0, VRFY 252 2.0.0 (no disclosure), HELP 214, QUIT 221 2.0.0; RSET drops the transaction."""
        s = self.smtp()
        s.ehlo()
        code, msg = s.noop()
        self.assertEqual((code, msg[:5]), (250, b"2.0.0"))
        code, msg = s.docmd("VRFY", "rcpt@example.org")
        self.assertEqual((code, msg[:5]), (252, b"2.0.0"))
        code, msg = s.docmd("HELP")
        self.assertEqual(code, 214, msg)
        self.assertTrue(msg.startswith(b"2.0.0"), msg)
        self.assertEqual(s.mail(SENDER)[0], 250)
        self.assertEqual(s.rcpt(RCPT)[0], 250)
        code, msg = s.rset()
        self.assertEqual((code, msg[:5]), (250, b"2.0.0"))
        code, msg = s.docmd("DATA")
        self.assertEqual((code, msg[:5]), (503, b"5.5.1"), "DATA after RSET must find no transaction")
        code, msg = s.docmd("QUIT")
        self.assertEqual((code, msg[:5]), (221, b"2.0.0"))
        self.assertQueueEmpty()

    def test_smtputf8_declared(self):
        """With MAIL ... SMTPUTF8, a non-ASCII sender and recipient are accepted and stored byte-exact. [37]"""
        sender, rcpt = "jörg@exämple.com", "ünïcode@example.org"
        with RawSmtp(self.relay.address) as c:
            c.ehlo()
            c.expect(f"MAIL FROM:<{sender}> SMTPUTF8", 250, "2.1.0")
            c.expect(f"RCPT TO:<{rcpt}>", 250, "2.1.5")
            c.expect("DATA", 354)
            c.send(dot_stuff(sample_content("utf8")))
            qid = queued_id(c.reply())
        q = self.relay.queue()
        self.assertEqual(q[0]["id"], qid)
        self.assertEqual(q[0]["sender"], sender)
        self.assertEqual(q[0]["recipients"][0]["address"], rcpt)
        self.assertStoredExactly(qid, sample_content("utf8"))

    def test_null_sender(self):
        """MAIL FROM:<> (bounces) is accepted and queued with an empty sender. [35]"""
        qid = send_message(self.relay, sample_content("null"), sender="")
        q = self.relay.queue()
        self.assertEqual([(e["id"], e["sender"]) for e in q], [(qid, "")])

    def test_two_messages_one_session(self):
        """Two transactions on one connection give two distinct queue ids, each stored intact."""
        with RawSmtp(self.relay.address) as c:
            c.ehlo()
            ids = []
            for tok in ("one", "two"):
                c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
                c.expect(f"RCPT TO:<{RCPT}>", 250, "2.1.5")
                c.expect("DATA", 354)
                c.send(dot_stuff(sample_content(tok)))
                ids.append(queued_id(c.reply()))
        self.assertNotEqual(ids[0], ids[1])
        self.assertEqual(sorted(self.relay.queue_ids()), sorted(ids))
        for qid, tok in zip(ids, ("one", "two")):
            self.assertStoredExactly(qid, sample_content(tok))


class ExternalClients(IntakeTestCase):
    def test_swaks_pipelining(self):
        """swaks --pipeline (MAIL+RCPT+DATA in one write) gets every reply and the message is queued. [24]"""
        if not shutil.which("swaks"):
            self.skipTest("swaks not installed")
        cp = subprocess.run(
            ["swaks", "--server", self.relay.host, "--port", str(self.relay.port),
             "--ehlo", "swaks.example", "--from", SENDER, "--to", f"{RCPT},second@example.org",
             "--pipeline", "--header", "Subject: swaks pipelined", "--body", "pipelined body"],
            capture_output=True, timeout=30)
        out = cp.stdout.decode(errors="replace")
        self.assertEqual(cp.returncode, 0, out + cp.stderr.decode(errors="replace"))
        m = re.search(r"<\*\* 250 2\.0\.0 Ok: queued as ([0-9A-Za-z]+)|<~?  ?250 2\.0\.0 Ok: queued as ([0-9A-Za-z]+)", out)
        m = m or re.search(r"250 2\.0\.0 Ok: queued as ([0-9A-Za-z]+)", out)
        self.assertIsNotNone(m, out)
        qid = next(g for g in m.groups() if g)
        q = self.relay.queue()
        self.assertEqual([e["id"] for e in q], [qid])
        self.assertEqual([r["address"] for r in q[0]["recipients"]], [RCPT, "second@example.org"])
        self.assertIn(b"pipelined body", self.relay.message_content(qid))

    def test_smtp_source_burst(self):
        """Postfix smtp-source -s 5 -m 100 -l 4096: all 100 messages are acknowledged and queued."""
        if not shutil.which("smtp-source"):
            self.skipTest("smtp-source not installed")
        cp = subprocess.run(
            ["smtp-source", "-s", "5", "-m", "100", "-l", "4096", "-f", SENDER, "-t", RCPT,
             "-M", "source.example", f"{self.relay.host}:{self.relay.port}"],
            capture_output=True, timeout=60)
        self.assertEqual(cp.returncode, 0, cp.stderr.decode(errors="replace"))
        self.assertNotIn(b"error", cp.stderr.lower(), cp.stderr)
        q = self.relay.queue()
        self.assertEqual(len(q), 100)
        self.assertEqual(len({e["id"] for e in q}), 100)
        self.assertTrue(all(e["size"] >= 4096 for e in q), [e["size"] for e in q][:5])


# -----------------------------------------------------------------------------------------
# A. Line endings and smuggling
# -----------------------------------------------------------------------------------------

SMUGGLING_ENDINGS = [b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r.\n", b"\n.\r", b"\r.\r\n",
                     b"\r\n.\r\r\n", b"\r\r\n.\r\r\n"]


def smuggling_payload(ending: bytes) -> bytes:
    return (b"From: a@example.com\r\nSubject: first\r\n\r\nfirst body" + ending +
            b"MAIL FROM:<smuggled@evil.example>\r\n"
            b"RCPT TO:<victim@example.org>\r\n"
            b"DATA\r\n"
            b"From: smuggled@evil.example\r\nSubject: SMUGGLED\r\n\r\nsmuggled body\r\n"
            b".\r\n")


class Smuggling(IntakeTestCase):
    def smuggle(self, payload: bytes):
        """Sends payload as the whole DATA phase in one write; returns (replies, queue)."""
        before = set(self.relay.queue_ids())
        with RawSmtp(self.relay.address) as c:
            c.ehlo()
            c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
            c.expect(f"RCPT TO:<{RCPT}>", 250, "2.1.5")
            c.expect("DATA", 354)
            c.send(payload)
            first = c.reply()
            # If the smuggled commands were parsed, their replies come next, before QUIT's.
            c.send(b"QUIT\r\n")
            rest = c.replies_until_close()
        new = [e for e in self.relay.queue() if e["id"] not in before]
        return [first] + rest, new

    def test_smuggling_endings(self):
        """Only CRLF.CRLF ends DATA: each non-standard end-of-data variant yields one message, the smuggled one stays body. [1-3]"""
        for ending in SMUGGLING_ENDINGS:
            with self.subTest(ending=ending):
                replies, new = self.smuggle(smuggling_payload(ending))
                self.assertEqual([r.code for r in replies], [250, 221], replies)
                self.assertEqual(replies[0].enhanced, "2.0.0")
                self.assertEqual(len(new), 1, new)
                self.assertEqual([r["address"] for r in new[0]["recipients"]], [RCPT])
                self.assertEqual(new[0]["sender"], SENDER)
                stored = self.relay.message_content(new[0]["id"], b"From: a@example.com")
                self.assertIsNone(BARE_CR_OR_LF.search(stored), stored)
                self.assertIn(b"smuggled body", stored)

    def test_nul_before_dot(self):
        """CRLF NUL . CRLF is not end-of-data: at most one message (kept as data or refused 554 5.6.0). [4]"""
        replies, new = self.smuggle(smuggling_payload(b"\r\n\x00.\r\n"))
        codes = [(r.code, r.enhanced) for r in replies]
        self.assertIn(codes, ([(250, "2.0.0"), (221, "2.0.0")], [(554, "5.6.0"), (221, "2.0.0")]))
        self.assertEqual(len(new), 1 if codes[0][0] == 250 else 0)
        if new:
            stored = self.relay.message_content(new[0]["id"], b"From: a@example.com")
            self.assertIn(b"smuggled body", stored)
            self.assertIsNone(BARE_CR_OR_LF.search(stored))

    def test_bare_lf_lines_normalised(self):
        """Body and header lines ending in bare LF are stored with CRLF; a bare CR never reaches the queue. [5]"""
        payload = b"From: a@example.com\nSubject: lf\n\nline one\nline\rtwo\r\n.\r\n"
        replies, new = self.smuggle(payload)
        self.assertEqual([r.code for r in replies], [250, 221], replies)
        stored = self.relay.message_content(new[0]["id"], b"From: a@example.com")
        self.assertIsNone(BARE_CR_OR_LF.search(stored), stored)
        _, body = split_received(stored)
        self.assertTrue(body.startswith(b"From: a@example.com\r\nSubject: lf\r\n\r\nline one\r\n"), body)

    def test_command_with_bare_lf(self):
        """A command ending in bare LF is one command (or 500 5.5.2), never merged with the next. [6]"""
        with RawSmtp(self.relay.address) as c:
            c.greeting()
            c.send(b"EHLO client.example\n")
            r = c.reply()
            self.assertIn((r.code, r.enhanced), ((250, ""), (500, "5.5.2")), r)
            c.expect("NOOP", 250, "2.0.0")

    def test_dot_lines_round_trip(self):
        """Body lines '.', '..', '.x' (dot-stuffed by the client) are stored unstuffed, byte-exact. [8]"""
        content = b"Subject: dots\r\n\r\n.\r\n..\r\n...\r\n.x\r\nx.\r\n. \r\n"
        qid = send_message(self.relay, content)
        self.assertStoredExactly(qid, content)


# -----------------------------------------------------------------------------------------
# B. Line and size limits
# -----------------------------------------------------------------------------------------

class Limits(IntakeTestCase):
    relay_config = {"server": {"max_message_size": 100000}}

    def test_command_length(self):
        """A 512-octet command (RFC floor) is accepted; a 10000-octet one gets 500 5.5.2 and the session goes on. [9]"""
        with RawSmtp(self.relay.address) as c:
            c.ehlo()
            c.expect(b"NOOP " + b"x" * (512 - 7), 250, "2.0.0")
            c.expect(b"NOOP " + b"x" * 10000, 500, "5.5.2")
            c.expect("NOOP", 250, "2.0.0")
            c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")

    def test_megabytes_without_newline(self):
        """1 MB without a newline gets 500 5.5.2 (or 421 at a hard cap); 32 MB more do not grow memory. [10]"""
        rss_before = self.relay.rss_kib()
        with RawSmtp(self.relay.address, timeout=30) as c:
            c.ehlo()
            sent = c.send(b"a" * (1 << 20)) and c.send(b"\r\n")
            replies = c.replies_until_close(timeout=2) if not sent else [c.reply()]
            self.assertTrue(replies, "no reply to an over-long line")
            self.assertEqual((replies[0].code, replies[0].enhanced), (500, "5.5.2"), replies)
            if sent:
                r = c.cmd("NOOP")
                self.assertIn((r.code, r.enhanced), ((250, "2.0.0"), (421, "4.7.0")), r)
        with RawSmtp(self.relay.address, timeout=30) as c:
            c.ehlo()
            chunk = b"b" * (1 << 20)
            sent = all(c.send(chunk) for _ in range(32)) and c.send(b"\r\n")
            if sent:  # the reply proves the relay consumed all 32 MB before we measure
                c.expect(None, 500, "5.5.2")
            self.assertTrue(self.relay.running())
            growth = self.relay.rss_kib() - rss_before
        self.assertLess(growth, 16 * 1024, f"RSS grew {growth} KiB while reading an endless line")

    def test_size_parameter(self):
        """MAIL SIZE= above max_message_size: 552 5.3.4; at the limit: 250; SIZE=abc/-1/30 digits: 501 5.5.4. [12]"""
        with RawSmtp(self.relay.address) as c:
            c.ehlo()
            c.expect(f"MAIL FROM:<{SENDER}> SIZE=100001", 552, "5.3.4")
            for bad in ("abc", "-1", "1" * 30):
                c.expect(f"MAIL FROM:<{SENDER}> SIZE={bad}", 501, "5.5.4")
            c.expect(f"MAIL FROM:<{SENDER}> SIZE=100000", 250, "2.1.0")

    def test_content_over_limit(self):
        """Content over max_message_size is read to the dot, refused 552 5.3.4, not queued; RSET then 250 and the session still works. [13]"""
        with RawSmtp(self.relay.address) as c:
            c.ehlo()
            c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
            c.expect(f"RCPT TO:<{RCPT}>", 250, "2.1.5")
            c.expect("DATA", 354)
            big = b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 3000
            c.send(dot_stuff(big))
            c.expect(None, 552, "5.3.4")
            c.expect("RSET", 250, "2.0.0")
            self.assertQueueEmpty()
            c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
            c.expect(f"RCPT TO:<{RCPT}>", 250, "2.1.5")
            c.expect("DATA", 354)
            c.send(dot_stuff(b"Subject: small\r\n\r\nsmall\r\n"))
            qid = queued_id(c.reply())
        self.assertEqual(self.relay.queue_ids(), [qid])

    def test_single_huge_line_in_data(self):
        """A 20 MB single line in DATA is read to the dot and refused 552 5.3.4 with bounded memory; nothing queued. [11]"""
        rss_before = self.relay.rss_kib()
        with RawSmtp(self.relay.address, timeout=30) as c:
            c.ehlo()
            c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
            c.expect(f"RCPT TO:<{RCPT}>", 250, "2.1.5")
            c.expect("DATA", 354)
            c.send(b"Subject: huge\r\n\r\n")
            chunk = b"z" * (1 << 20)
            for _ in range(20):
                c.send(chunk)
            c.send(b"\r\n.\r\n")
            c.expect(None, 552, "5.3.4")
            growth = self.relay.rss_kib() - rss_before
        self.assertLess(growth, 16 * 1024, f"RSS grew {growth} KiB for a 20 MB line")
        self.assertQueueEmpty()

    def test_hop_limit(self):
        """50 Received: headers are accepted; 51 are refused 554 5.4.0 (mail loop), nothing queued. [15]"""
        def with_hops(n: int) -> bytes:
            return b"".join(b"Received: from h%d.example by h%d.example; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                            % (i, i + 1) for i in range(n)) + b"Subject: hops\r\n\r\nbody\r\n"
        qid = send_message(self.relay, with_hops(50))
        with RawSmtp(self.relay.address) as c:
            c.ehlo()
            c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
            c.expect(f"RCPT TO:<{RCPT}>", 250, "2.1.5")
            c.expect("DATA", 354)
            c.send(dot_stuff(with_hops(51)))
            c.expect(None, 554, "5.4.0")
        self.assertEqual(self.relay.queue_ids(), [qid])

    def test_long_header_block(self):
        """A header of 200k continuation lines is refused 552 5.3.4 (or 5xx), not queued, and the relay survives. [14]"""
        with RawSmtp(self.relay.address, timeout=30) as c:
            c.ehlo()
            c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
            c.expect(f"RCPT TO:<{RCPT}>", 250, "2.1.5")
            c.expect("DATA", 354)
            c.send(b"X-Long: start\r\n" + b" c\r\n" * 200000 + b"\r\nbody\r\n.\r\n")
            r = c.reply()
            self.assertEqual(r.code // 100, 5, r)
        self.assertTrue(self.relay.running())
        self.assertQueueEmpty()


# -----------------------------------------------------------------------------------------
# C. Sequence and synchronisation
# -----------------------------------------------------------------------------------------

class Sequence(IntakeTestCase):
    def test_mail_before_ehlo(self):
        """MAIL before EHLO/HELO gets 503 5.5.1. [17]"""
        with RawSmtp(self.relay.address) as c:
            c.greeting()
            c.expect(f"MAIL FROM:<{SENDER}>", 503, "5.5.1")

    def test_rcpt_before_mail(self):
        """RCPT before MAIL gets 503 5.5.1. [18]"""
        with RawSmtp(self.relay.address) as c:
            c.ehlo()
            c.expect(f"RCPT TO:<{RCPT}>", 503, "5.5.1")

    def test_data_without_recipient(self):
        """DATA with no accepted RCPT gets 503 5.5.1 (or 554 5.5.1 when all were refused); nothing queued. [18]"""
        with RawSmtp(self.relay.address) as c:
            c.ehlo()
            c.expect("DATA", 503, "5.5.1")
            c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
            r = c.cmd("DATA")
            self.assertIn((r.code, r.enhanced), ((503, "5.5.1"), (554, "5.5.1")), r)
            c.expect("RCPT TO:<>", 501, "5.1.3")
            r = c.cmd("DATA")
            self.assertIn((r.code, r.enhanced), ((503, "5.5.1"), (554, "5.5.1")), r)
        self.assertQueueEmpty()

    def test_nested_mail(self):
        """A second MAIL inside a transaction gets 503 5.5.1; after RSET MAIL is 250. [19]"""
        with RawSmtp(self.relay.address) as c:
            c.ehlo()
            c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
            c.expect(f"MAIL FROM:<{SENDER}>", 503, "5.5.1")
            c.expect("RSET", 250, "2.0.0")
            c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")

    def test_unknown_verb_and_error_limit(self):
        """FOO gets 500 5.5.2; after hard_error_limit (20) errors the relay says 421 4.7.0 and closes. [20]"""
        with RawSmtp(self.relay.address) as c:
            c.ehlo()
            for i in range(20):
                c.expect("FOO bar", 500, "5.5.2")
            c.send(b"FOO bar\r\n")
            c.expect(None, 421, "4.7.0")
            self.assertTrue(c.closed(), "connection still open after 421")

    def test_error_limit_configurable(self):
        """hard_error_limit = 3: the 421 4.7.0 comes after three errors."""
        relay = self.world.relay("strict", server={"hard_error_limit": 3}).start()
        with RawSmtp(relay.address) as c:
            c.ehlo()
            for _ in range(3):
                c.expect("FOO", 500, "5.5.2")
            c.send(b"FOO\r\n")
            c.expect(None, 421, "4.7.0")
            self.assertTrue(c.closed())

    def test_http_request_hangs_up(self):
        """An HTTP request line (GET/POST/CONNECT) or a header-shaped command gets 221 2.7.0 and the connection is closed. [21]"""
        for line in ("GET / HTTP/1.1", "POST /x HTTP/1.0", "CONNECT example.com:25 HTTP/1.1", "Subject: hello"):
            with self.subTest(line=line), RawSmtp(self.relay.address) as c:
                c.greeting()
                c.send(line + "\r\nHost: x\r\n\r\n")
                c.expect(None, 221, "2.7.0")
                self.assertTrue(c.closed(), "connection still open after a forbidden command")

    def test_talk_before_greeting(self):
        """A client that sends EHLO before the 220 greeting gets 554 5.5.0 and is disconnected; its EHLO is never answered 250. [22]"""
        with RawSmtp(self.relay.address) as c:
            c.send(f"EHLO early.example\r\nMAIL FROM:<{SENDER}>\r\n")
            replies = c.replies_until_close()
        codes = [(r.code, r.enhanced) for r in replies]
        self.assertIn(codes, ([(554, "5.5.0")], [(220, ""), (554, "5.5.0")]),
                      f"pre-greeting talk answered {replies!r}")

    def test_helo_client_pipelining(self):
        """A HELO client (PIPELINING not offered) that sends MAIL+RCPT+DATA+text in one write gets 554 5.5.0 and is disconnected; nothing queued. [23]"""
        with RawSmtp(self.relay.address) as c:
            c.greeting()
            c.expect("HELO client.example", 250)
            c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{RCPT}>\r\nDATA\r\n".encode()
                   + dot_stuff(b"Subject: sync\r\n\r\nbody\r\n"))
            replies = c.replies_until_close()
        self.assertTrue(replies, "no reply")
        self.assertEqual((replies[-1].code, replies[-1].enhanced), (554, "5.5.0"), replies)
        self.assertNotIn(354, [r.code for r in replies], replies)
        self.assertQueueEmpty()

    def test_text_before_354(self):
        """An EHLO client that pipelines the message text after DATA, before 354, gets 554 5.5.0 and is disconnected; nothing queued. [23]"""
        with RawSmtp(self.relay.address) as c:
            c.ehlo()
            c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{RCPT}>\r\nDATA\r\n".encode()
                   + dot_stuff(b"Subject: sync\r\n\r\nbody\r\n"))
            replies = c.replies_until_close()
        codes = [(r.code, r.enhanced) for r in replies]
        self.assertEqual(codes, [(250, "2.1.0"), (250, "2.1.5"), (554, "5.5.0")], replies)
        self.assertQueueEmpty()

    def test_correct_pipelining(self):
        """EHLO, then MAIL + 3 RCPT + DATA in one write: five replies in order, then the message is accepted. [24]"""
        with RawSmtp(self.relay.address) as c:
            c.ehlo()
            rcpts = ["a@example.org", "b@example.org", "c@example.org"]
            c.send(f"MAIL FROM:<{SENDER}>\r\n" + "".join(f"RCPT TO:<{r}>\r\n" for r in rcpts) + "DATA\r\n")
            c.expect(None, 250, "2.1.0")
            for _ in rcpts:
                c.expect(None, 250, "2.1.5")
            c.expect(None, 354)
            c.send(dot_stuff(b"Subject: pipelined\r\n\r\nbody\r\n") + b"QUIT\r\n")
            qid = queued_id(c.reply())
            c.expect(None, 221, "2.0.0")
        q = self.relay.queue()
        self.assertEqual([e["id"] for e in q], [qid])
        self.assertEqual([r["address"] for r in q[0]["recipients"]], rcpts)

    def test_bdat_not_offered(self):
        """BDAT without CHUNKING advertised gets 502 5.5.1 or 500 5.5.2; nothing queued. [25]"""
        with RawSmtp(self.relay.address) as c:
            c.ehlo()
            c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
            c.expect(f"RCPT TO:<{RCPT}>", 250, "2.1.5")
            r = c.cmd("BDAT 10 LAST")
            self.assertIn((r.code, r.enhanced), ((502, "5.5.1"), (500, "5.5.2")), r)
        self.assertQueueEmpty()


# -----------------------------------------------------------------------------------------
# D. Envelope and address syntax
# -----------------------------------------------------------------------------------------

class Addresses(IntakeTestCase):
    def session(self) -> RawSmtp:
        c = RawSmtp(self.relay.address)
        self.addCleanup(c.close)
        c.ehlo()
        return c

    def test_cve_2020_7247_sender(self):
        """MAIL FROM:<;sleep 66;> (OpenSMTPD CVE-2020-7247) is refused 501 5.1.7 (or 553 5.1.7). [27]"""
        c = self.session()
        r = c.cmd("MAIL FROM:<;sleep 66;>")
        self.assertIn((r.code, r.enhanced), ((501, "5.1.7"), (553, "5.1.7")), r)
        c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")

    def test_empty_recipient(self):
        """RCPT TO:<> is refused 501 5.1.3. [35]"""
        c = self.session()
        c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
        c.expect("RCPT TO:<>", 501, "5.1.3")

    def test_non_ascii_without_smtputf8(self):
        """A non-ASCII address without the SMTPUTF8 parameter is refused 553 5.6.7, in MAIL and in RCPT. [37]"""
        c = self.session()
        c.expect("MAIL FROM:<jörg@example.com>", 553, "5.6.7")
        c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
        c.expect("RCPT TO:<ünïcode@example.org>", 553, "5.6.7")

    def test_invalid_utf8(self):
        """An address with an invalid UTF-8 sequence is refused 500/501 5.5.2 (or 501 5.1.7) even with SMTPUTF8. [37]"""
        c = self.session()
        r = c.cmd(b"MAIL FROM:<j\xff\xfe@example.com> SMTPUTF8")
        self.assertIn(r.code, (500, 501), r)
        self.assertIn(r.enhanced, ("5.5.2", "5.1.7"), r)

    def test_unknown_mail_parameter(self):
        """An unknown ESMTP parameter (FOO=1) is refused 555 5.5.4. [31]"""
        c = self.session()
        c.expect(f"MAIL FROM:<{SENDER}> FOO=1", 555, "5.5.4")

    def test_bare_cr_in_address(self):
        """A bare CR inside MAIL FROM is refused (501 5.1.7 or 500 5.5.2), never turned into a header. [29]"""
        c = self.session()
        r = c.cmd(b"MAIL FROM:<a@b\rX-Evil: 1>")
        self.assertIn((r.code, r.enhanced), ((501, "5.1.7"), (500, "5.5.2"), (501, "5.5.2")), r)

    def test_nul_in_command(self):
        """NUL inside MAIL FROM is refused (500 5.5.2 / 501), never truncated to the part before it. [38]"""
        c = self.session()
        r = c.cmd(b"MAIL FROM:<a\x00@example.com>")
        self.assertIn(r.code, (500, 501), r)

    def test_ehlo_without_argument(self):
        """EHLO with no argument is refused 501 5.5.4. [39]"""
        with RawSmtp(self.relay.address) as c:
            c.greeting()
            c.expect("EHLO", 501, "5.5.4")

    def queued_recipients(self, rcpts: list[str]) -> list[str]:
        """Sends one message to rcpts (each must get 250) and returns the stored addresses."""
        c = self.session()
        c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
        for r in rcpts:
            c.expect(f"RCPT TO:<{r}>", 250, "2.1.5")
        c.expect("DATA", 354)
        c.send(dot_stuff(b"Subject: x\r\n\r\nx\r\n"))
        qid = queued_id(c.reply())
        entry = next(e for e in self.relay.queue() if e["id"] == qid)
        return [r["address"] for r in entry["recipients"]]

    def test_rfc_length_floors(self):
        """A 64-octet local part in a 256-octet path is accepted and stored untruncated. [16]"""
        local = "l" * 64
        domain = ".".join(["d" * 60, "e" * 60, "f" * 60]) + ".example"  # path = 256 octets
        domain = domain[: 256 - 3 - len(local)]
        domain = domain.rstrip(".")
        addr = f"{local}@{domain}"
        self.assertLessEqual(len(addr) + 2, 256)
        self.assertEqual(self.queued_recipients([addr]), [addr])

    def test_quoted_local_parts(self):
        """Quoted local parts are kept byte-exact ("a@b"@c.example: domain c.example); an unbalanced quote is 501 5.1.3. [33]"""
        addrs = ['"a@b"@c.example', '"john doe"@d.example']
        self.assertEqual(self.queued_recipients(addrs), addrs)
        c = self.session()
        c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
        c.expect('RCPT TO:<"abc@d.example>', 501, "5.1.3")

    def test_source_route(self):
        """A source route (<@a,@b:u@c>) is stripped: the stored recipient is u@c.example (or the RCPT is refused 501). [32]"""
        c = self.session()
        c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
        r = c.cmd("RCPT TO:<@a.example,@b.example:u@c.example>")
        if r.code != 250:
            self.assertEqual((r.code, r.enhanced), (501, "5.1.3"), r)
            return
        c.expect("DATA", 354)
        c.send(dot_stuff(b"Subject: x\r\n\r\nx\r\n"))
        qid = queued_id(c.reply())
        entry = next(e for e in self.relay.queue() if e["id"] == qid)
        self.assertEqual([x["address"] for x in entry["recipients"]], ["u@c.example"])

    def test_address_literals(self):
        """Good address literals get 250 (or 550/553 if literals are off); [999.1.1.1] and [IPv6:zz] get 501 5.1.3. [34]"""
        c = self.session()
        c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
        for good in ("u@[192.0.2.1]", "u@[IPv6:2001:db8::1]"):
            r = c.cmd(f"RCPT TO:<{good}>")
            self.assertIn(r.code, (250, 550, 553), r)
        for bad in ("u@[999.1.1.1]", "u@[IPv6:zz]", "u@[stuff", 'u@["stuff]'):
            c.expect(f"RCPT TO:<{bad}>", 501, "5.1.3")

    def test_xtext_parameters_with_controls(self):
        """AUTH=, ORCPT=, ENVID= carrying encoded CR/LF are refused 501/555 5.5.4; nothing reaches the envelope. [30]"""
        c = self.session()
        for line in ("MAIL FROM:<> AUTH=x+0AEvil", f"MAIL FROM:<{SENDER}> ENVID=+0A"):
            r = c.cmd(line)
            self.assertIn((r.code, r.enhanced), ((501, "5.5.4"), (555, "5.5.4")), f"{line}: {r!r}")
        c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
        r = c.cmd("RCPT TO:<u@example.org> ORCPT=rfc822;a+0D+0Ab")
        self.assertIn((r.code, r.enhanced), ((501, "5.5.4"), (555, "5.5.4")), r)

    def test_helo_with_control_characters(self):
        """An EHLO argument with control characters is refused 501, or sanitised before it reaches Received:. [39]"""
        with RawSmtp(self.relay.address) as c:
            c.greeting()
            r = c.cmd(b"EHLO evil\x01\x1b[31m.example")
            if r.code == 501:
                return
            self.assertEqual(r.code, 250, r)
            c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
            c.expect(f"RCPT TO:<{RCPT}>", 250, "2.1.5")
            c.expect("DATA", 354)
            c.send(dot_stuff(b"Subject: helo\r\n\r\nx\r\n"))
            qid = queued_id(c.reply())
        received, _ = split_received(self.relay.message_content(qid, b"Subject: helo"))
        self.assertIsNone(re.search(rb"[\x00-\x08\x0b-\x1f\x7f]", received), received)

    def test_expansion_shaped_address_is_literal(self):
        """RCPT TO:<${run{/bin/true}}@localhost> is stored as a literal string (or refused 501/553), never expanded. [28]"""
        c = self.session()
        c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
        r = c.cmd("RCPT TO:<${run{/bin/true}}@localhost>")
        if r.code == 250:
            c.expect(f"RCPT TO:<{RCPT}>", 250, "2.1.5")
            c.expect("DATA", 354)
            c.send(dot_stuff(b"Subject: x\r\n\r\nx\r\n"))
            queued_id(c.reply())
            q = self.relay.queue()
            self.assertEqual(q[0]["recipients"][0]["address"], "${run{/bin/true}}@localhost")
        else:
            self.assertIn(r.code, (501, 553), r)


# -----------------------------------------------------------------------------------------
# E. Resources and access
# -----------------------------------------------------------------------------------------

class Resources(WorldTestCase):
    def test_max_recipients(self):
        """With max_recipients = 3 the fourth and later RCPT get 452 4.5.3 and the message lists the first three. [40]"""
        relay = self.start_relay(server={"max_recipients": 3})
        with RawSmtp(relay.address) as c:
            c.ehlo()
            c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
            for i in range(3):
                c.expect(f"RCPT TO:<r{i}@example.org>", 250, "2.1.5")
            c.expect("RCPT TO:<r3@example.org>", 452, "4.5.3")
            c.expect("RCPT TO:<r4@example.org>", 452, "4.5.3")
            c.expect("DATA", 354)
            c.send(dot_stuff(b"Subject: many\r\n\r\nx\r\n"))
            qid = queued_id(c.reply())
        q = relay.queue()
        self.assertEqual([e["id"] for e in q], [qid])
        self.assertEqual([r["address"] for r in q[0]["recipients"]],
                         ["r0@example.org", "r1@example.org", "r2@example.org"])

    def test_command_timeout(self):
        """A client idle past command_timeout gets 421 4.4.2 <host> Error: timeout exceeded and is disconnected. [42]"""
        relay = self.start_relay(server={"command_timeout": "1s"})
        with RawSmtp(relay.address) as c:
            c.ehlo()
            t0 = time.monotonic()
            r = c.expect(None, 421, "4.4.2")
            waited = time.monotonic() - t0
            self.assertEqual(r.lines[-1], f"4.4.2 {relay.hostname} Error: timeout exceeded")
            self.assertTrue(c.closed())
        self.assertGreater(waited, 0.5, "timed out before command_timeout")

    def test_data_timeout(self):
        """A client that stalls inside DATA past data_timeout gets 421 4.4.2; nothing is queued and no temp file is left. [43]"""
        relay = self.start_relay(server={"data_timeout": "2s", "command_timeout": "10s"})
        with RawSmtp(relay.address) as c:
            c.ehlo()
            c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
            c.expect(f"RCPT TO:<{RCPT}>", 250, "2.1.5")
            c.expect("DATA", 354)
            c.send(b"Subject: slow\r\n\r\n")
            deadline = time.monotonic() + 6
            r = None
            while r is None and time.monotonic() < deadline:
                c.send(b"x")  # trickle: each byte resets nothing but the whole-DATA deadline counts
                try:
                    r = c.reply(timeout=0.5)
                except socket.timeout:
                    pass
                except ConnectionClosed:
                    break
            self.assertIsNotNone(r, "no 421 while trickling past data_timeout")
            self.assertEqual((r.code, r.enhanced), (421, "4.4.2"), r)
        self.assertEqual(relay.queue(), [])
        self.assertEqual(relay.spool_files("tmp"), [])

    def test_client_outside_allow_networks(self):
        """A client outside allow_networks can talk but RCPT gets 554 5.7.1 Relay access denied; nothing queued. [45]"""
        relay = self.start_relay(server={"allow_networks": ["10.0.0.0/8"]})
        with RawSmtp(relay.address) as c:
            c.ehlo()
            c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
            r = c.expect(f"RCPT TO:<{RCPT}>", 554, "5.7.1")
            self.assertIn("Relay access denied", r.text)
            r = c.cmd("DATA")
            self.assertIn((r.code, r.enhanced), ((503, "5.5.1"), (554, "5.5.1")), r)
        self.assertEqual(relay.queue(), [])

    def test_max_connections(self):
        """Beyond max_connections = 2 a new client gets 421 4.7.0 and is closed; once one leaves, a new client is served."""
        relay = self.start_relay(server={"max_connections": 2})
        a, b = RawSmtp(relay.address), RawSmtp(relay.address)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        a.greeting()
        b.greeting()
        with RawSmtp(relay.address) as c:
            c.expect(None, 421, "4.7.0")
            self.assertTrue(c.closed())
        a.expect("QUIT", 221, "2.0.0")
        self.assertTrue(a.closed())
        # The relay notices the QUIT asynchronously: a bounded retry, not a sleep.
        deadline = time.monotonic() + 5
        while True:
            with RawSmtp(relay.address) as d:
                r = d.reply()
                if r.code == 220:
                    d.expect("EHLO client.example", 250)
                    break
            self.assertLess(time.monotonic(), deadline, "slot of a closed session never freed")
        b.expect("NOOP", 250, "2.0.0")


class Access(WorldTestCase):
    def test_ipv6_client_networks(self):
        """An IPv6 client on a [::1] listener is allowed by ::1/128 and refused 554 5.7.1 when only 127.0.0.0/8 is allowed. [45, 46]
        (IPv6 listeners are v6-only, as in Postfix, so IPv4-mapped peers cannot arrive.)"""
        for nets, code, enhanced in ((["::1/128"], 250, "2.1.5"), (["127.0.0.0/8"], 554, "5.7.1")):
            with self.subTest(allow_networks=nets):
                relay = self.world.relay(f"v6-{code}", server={"allow_networks": nets})
                relay.config["server"]["listen"] = [f"[::1]:{relay.port}"]
                relay.start()
                with RawSmtp(("::1", relay.port)) as c:
                    c.ehlo()
                    c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
                    c.expect(f"RCPT TO:<{RCPT}>", code, enhanced)
                relay.wait_for_log(r"connect from [^\s\[]+\[::1\]")
                relay.stop()

    def test_malformed_network_fails_closed(self):
        """A malformed CIDR in allow_networks stops serve from starting; check-config reports FILE:LINE and exits 1. [46]"""
        relay = self.world.relay(server={"allow_networks": ["10.0.0.0/33"]})
        with self.assertRaises(AssertionError):
            relay.start(timeout=10)
        self.assertNotEqual(relay.proc.returncode, 0)
        cp = relay.cli("check-config", check=False)
        self.assertEqual(cp.returncode, 1, cp)
        out = (cp.stdout + cp.stderr).decode()
        self.assertRegex(out, re.escape(str(relay.config_path)) + r":\d+: .*allow_networks")


class InboundTls(WorldTestCase):
    """Server-side STARTTLS with tls_cert/tls_key. [48-50]"""

    def setUp(self):
        super().setUp()
        folder = self.world.mkdir("certs")
        _, _, cert, key = make_certificate(folder, ["relay.test.example"])
        self.relay = self.start_relay(server={"tls_cert": str(cert), "tls_key": str(key)})

    def test_starttls_advertised_and_mail_accepted(self):
        """EHLO offers STARTTLS; after the handshake EHLO no longer offers it and a message is accepted."""
        with RawSmtp(self.relay.address) as c:
            self.assertIn("STARTTLS", c.ehlo().lines)
            c.expect("STARTTLS", 220, "2.0.0")
            c.starttls()
            r = c.expect("EHLO client.example", 250)
            self.assertNotIn("STARTTLS", r.lines)
            c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
            c.expect(f"RCPT TO:<{RCPT}>", 250, "2.1.5")
            c.expect("DATA", 354)
            c.send(dot_stuff(b"Subject: tls\r\n\r\nover tls\r\n"))
            qid = queued_id(c.reply())
        self.assertEqual(self.relay.queue_ids(), [qid])

    def test_plaintext_injection_discarded(self):
        """STARTTLS and RSET in one write (CVE-2011-0411): 220, then nothing until a command is sent inside TLS. [48]"""
        with RawSmtp(self.relay.address) as c:
            c.ehlo()
            c.send(b"STARTTLS\r\nRSET\r\n")
            c.expect(None, 220, "2.0.0")
            c.starttls()  # asserts no plaintext reply to RSET is already buffered
            self.assertTrue(c.quiet(0.5), "a reply arrived inside TLS that no encrypted command asked for")
            c.expect("EHLO client.example", 250)
            c.expect("NOOP", 250, "2.0.0")

    def test_starttls_syntax_and_twice(self):
        """STARTTLS with an argument is 501 5.5.4; STARTTLS inside TLS is 554 5.5.1 (or 503 5.5.1). [49]"""
        with RawSmtp(self.relay.address) as c:
            c.ehlo()
            c.expect("STARTTLS foo", 501, "5.5.4")
            c.expect("STARTTLS", 220, "2.0.0")
            c.starttls()
            c.expect("EHLO client.example", 250)
            r = c.cmd("STARTTLS")
            self.assertIn((r.code, r.enhanced), ((554, "5.5.1"), (503, "5.5.1")), r)

    def test_starttls_resets_transaction(self):
        """MAIL and RCPT sent before STARTTLS are forgotten: DATA after the handshake is 503 5.5.1. [50]"""
        with RawSmtp(self.relay.address) as c:
            c.ehlo()
            c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
            c.expect(f"RCPT TO:<{RCPT}>", 250, "2.1.5")
            c.expect("STARTTLS", 220, "2.0.0")
            c.starttls()
            c.expect("EHLO client.example", 250)
            c.expect("DATA", 503, "5.5.1")
        self.assertEqual(self.relay.queue(), [])


class DiskFull(WorldTestCase):
    """The spool on a small tmpfs (needs root for mount; skipped otherwise). [47]"""

    def setUp(self):
        super().setUp()
        self.relay = self.world.relay(queue={"dir": "fs/spool"}, server={"max_message_size": 1 << 20})
        fs = self.relay.dir / "fs"
        fs.mkdir()
        cp = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tlsrelay-test", str(fs)],
                            capture_output=True)
        if cp.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs: {cp.stderr.decode().strip()}")
        self.world.on_cleanup(lambda: subprocess.run(["umount", "-l", str(fs)], capture_output=True))
        self.fs = fs
        self.relay.start()

    def fill(self, leave: int) -> None:
        st = os.statvfs(self.fs)
        free = st.f_bavail * st.f_frsize
        with open(self.fs / "filler", "wb") as f:
            f.write(b"\0" * max(0, free - leave))

    def test_no_space_refused_temporarily(self):
        """When the spool fills during DATA (two 900 KB messages, 1.7 MB free) a message gets 451 4.3.0/452 4.3.1, never a false 250; no temp file is left; mail flows again once space is back."""
        self.fill(leave=1700 << 10)
        body = dot_stuff(b"Subject: full\r\n\r\n" + (b"f" * 998 + b"\r\n") * 900)
        clients = [RawSmtp(self.relay.address, timeout=30) for _ in range(2)]
        in_data = []
        for c in clients:
            self.addCleanup(c.close)
            c.ehlo()
            r = c.cmd(f"MAIL FROM:<{SENDER}>")
            if r.code != 250:  # a MAIL-time free-space check (the first one's temp file counts) is fine too
                self.assertEqual((r.code, r.enhanced), (452, "4.3.1"), r)
                continue
            c.expect(f"RCPT TO:<{RCPT}>", 250, "2.1.5")
            c.expect("DATA", 354)
            in_data.append(c)
        self.assertEqual(len(in_data), 2, "both clients reach DATA while the spool still has room")
        for c in in_data:  # only now does the content arrive: the disk fills during DATA
            c.send(body[:-5])
        replies = []
        for c in in_data:
            if c.send(body[-5:]):
                replies.append(c.reply())
        ok = [queued_id(r) for r in replies if r.code == 250]
        for r in replies:
            if r.code != 250:
                self.assertIn((r.code, r.enhanced), ((451, "4.3.0"), (452, "4.3.1")), r)
        self.assertLess(len(ok), 2, "two 900 KB messages acknowledged on 1.7 MB of free space")
        self.assertEqual(sorted(self.relay.queue_ids()), sorted(ok))
        self.assertEqual(self.relay.spool_files("tmp"), [])
        (self.fs / "filler").unlink()
        c = clients[0]
        c.expect("RSET", 250, "2.0.0")
        c.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
        c.expect(f"RCPT TO:<{RCPT}>", 250, "2.1.5")
        c.expect("DATA", 354)
        c.send(dot_stuff(b"Subject: ok\r\n\r\nx\r\n"))
        ok.append(queued_id(c.reply()))
        self.assertEqual(sorted(self.relay.queue_ids()), sorted(ok))

    def test_declared_size_over_free_space(self):
        """MAIL with a SIZE larger than the spool's free space gets 452 4.3.1. [47]"""
        self.fill(leave=256 << 10)
        with RawSmtp(self.relay.address) as c:
            c.ehlo()
            c.expect(f"MAIL FROM:<{SENDER}> SIZE={900 << 10}", 452, "4.3.1")


# -----------------------------------------------------------------------------------------
# Logs and process life cycle
# -----------------------------------------------------------------------------------------

class Logging(IntakeTestCase):
    def test_postfix_log_lines(self):
        """One session logs Postfix's connect from, QUEUEID: client=, from=<..>, size=N, nrcpt=N (queue active), disconnect ... commands=N."""
        mark = self.relay.log_mark()
        qid = send_message(self.relay, sample_content("log"), rcpts=(RCPT, "two@example.org"))
        size = self.relay.queue()[0]["size"]
        peer = r"[^\s\[\]]+\[127\.0\.0\.1\]"
        w = lambda p: self.relay.wait_for_log(p, since=mark)
        w(rf"\bconnect from {peer}")
        w(rf"\b{qid}: client={peer}")
        w(rf"\b{qid}: from=<{re.escape(SENDER)}>, size={size}, nrcpt=2 \(queue active\)")
        m = w(rf"\bdisconnect from {peer}(.*) commands=(\d+)")
        self.assertEqual(m.group(2), "6", m.group(0))
        self.assertIn("ehlo=1 mail=1 rcpt=2 data=1 quit=1", m.group(1))

    def test_sigterm_exit_zero_and_queue_survives(self):
        """SIGTERM makes serve exit 0; a restart lists the same queue."""
        qid = send_message(self.relay, sample_content("term"))
        self.assertEqual(self.relay.stop(), 0)
        self.assertEqual(self.relay.queue_ids(), [qid])
        self.relay.start()
        self.assertEqual(self.relay.queue_ids(), [qid])
        self.assertStoredExactly(qid, sample_content("term"))


if __name__ == "__main__":
    unittest.main()

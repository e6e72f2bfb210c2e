"""Differential rows for statements of postfix-tls-semantics.md that test_differential.py
and test_differential_delivery.py did not reach yet (the audit of branch diffaudit):
smtp_mx_session_limit and smtp_mx_address_limit against TLS failures, relayhost and
transport next-hop forms (4.3.5 for a relayhost that does not resolve, the most
specific transport entry), policy-table file syntax (duplicate keys, continuation and
comment lines, keys without a value, trailing dots), attributes Postfix 3.7 rejects or
accepts, match= forms at verify/secure/fingerprint, cipher grades and protocol lists;
certificate shapes (CertificateShapes): weak keys and digests, CA and key-usage flags,
extended key usage, unknown critical extensions, other key types, a trailing-dot SAN,
an intermediate's fingerprint at the fingerprint level, name constraints; negotiated
sessions (SessionLines): TLS 1.2 suites per key exchange and signature, TLS 1.3 suites
and groups, anonymous suites, TLS 1.0/1.1, whose TLS lines are compared in full;
certificate chains (ChainShapes): CAs out of validity, untrusted roots sent along,
chain order and padding, chain length against smtp_tls_scert_verifydepth, weak CA
keys, path lengths, a CA's purpose.

Rows and comparison are test_differential.py's: the same status, DSN and relay=, a
reason starting with Postfix's, the same TLS lines, verification lines and sessions
seen by the peers. "expect" is what the spec predicts, checked against the oracle first.
"""

from __future__ import annotations

import ctypes
import re
import ssl
import unittest
import warnings
from unittest import mock

from cryptography.hazmat.primitives import serialization

import pki
import test_differential
from test_differential import (ANON, CONFIG, GOOD, HANDSHAKE, NOMATCH, NOT_OFFERED, NOT_VERIFIED, SENT, TLS12,
                               TLS13, DifferentialCase, define_groups, two_mx)

NOT_FOUND = "Host or domain name not found. Name service error for name="


def mx_list(*peers: dict) -> dict:
    """example.test with one MX host per entry (mx1 preference 10, mx2 20, ...); each
    entry holds the peer's cert (default a good one for its name) and behaviour."""
    out: dict = {"peers": {}, "dns": []}
    for n, spec in enumerate(peers, 1):
        host = f"mx{n}.example.test"
        out["peers"][f"mx{n}"] = {"names": [host], "cert": spec.get("cert", {"dns": [host]}),
                                  "behaviour": spec.get("behaviour", {})}
        out["dns"].append(("example.test", "MX", f"{n * 10} {host}."))
    return out


def said(n: int, reply: str, stage: str) -> str:
    return f"host mx{n}.example.test[{{mx{n}.addr}}] said: {reply} (in reply to {stage})"


def not_offered(n: int) -> tuple:
    return ("deferred", "4.7.4", f"TLS is required, but was not offered by host mx{n}.example.test[{{mx{n}.addr}}]")


class AtRunTime:
    """A row value that needs the generated PKI (made once per process, not at import):
    make_scenario deep-copies every row before it uses it, and the copy of an AtRunTime
    is fn()'s result."""

    def __init__(self, fn):
        self.fn = fn

    def __deepcopy__(self, memo):
        return self.fn()


def low_security_peer(**cert) -> dict:
    """cert= and behaviour= of a peer presenting pki.leaf(**cert) from a server context at
    OpenSSL security level 0: at Debian's default level (2) the peer could not even load a
    1024-bit RSA key or a chain with a SHA-1 signature."""
    def context() -> ssl.SSLContext:
        leaf = pki.get_pki().leaf(**cert)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.load_cert_chain(str(leaf.chain_path), str(leaf.key_path))
        return ctx
    return {"cert": cert, "behaviour": {"tls_context": AtRunTime(context)}}


def fp_policy(ca: str, kind: str = "cert", digest: str = "sha256") -> AtRunTime:
    """The policy line "example.test fingerprint match=<fingerprint of a CA of the test
    PKI>" (ca "root" or "intermediate", kind "cert" or "pkey"), as Postfix prints it."""
    def line() -> str:
        c = getattr(pki.get_pki(), ca)
        return f"example.test fingerprint match={(c.fp if kind == 'cert' else c.pkey_fp)[digest]}"
    return AtRunTime(line)


# Python's ssl module has no call for TLS 1.3 suites, groups beyond one curve or
# signature algorithms: the server's SSL_CTX (the pointer right after the object's
# header in CPython's PySSLContext) is set through the libssl that _ssl itself uses.
SSL_CTRL_SET_GROUPS_LIST, SSL_CTRL_SET_SIGALGS_LIST = 92, 98


def _ssl_ctx_set(ctx: ssl.SSLContext, what: str, value: str) -> None:
    """SSL_CTX_set_ciphersuites (what "suites"), SSL_CTX_set1_groups_list ("groups") or
    SSL_CTX_set1_sigalgs_list ("sigalgs") on ctx."""
    import _ssl
    lib = ctypes.CDLL(_ssl.__file__)
    native = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    if what == "suites":
        fn = lib.SSL_CTX_set_ciphersuites
        fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_char_p], ctypes.c_int
        ok = fn(native, value.encode())
    else:
        fn = lib.SSL_CTX_ctrl
        fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_char_p], ctypes.c_long
        ok = fn(native, SSL_CTRL_SET_GROUPS_LIST if what == "groups" else SSL_CTRL_SET_SIGALGS_LIST, 0,
                value.encode())
    if ok != 1:
        raise ValueError(f"the peer's OpenSSL refused {what} {value!r}")


def tls_peer(key: str = "ec", *, versions: tuple = (None, ssl.TLSVersion.TLSv1_2), ciphers: str = "DEFAULT",
             suites: str | None = None, groups: str | None = None, sigalgs: str | None = None,
             dh: str | None = None) -> dict:
    """cert= and behaviour= of a peer for mx1.example.test with a key= leaf whose server
    context (at OpenSSL security level 0) negotiates exactly one shape: versions (min,
    max) (default: TLS 1.2 at most), ciphers (TLS 1.2 and below), suites (TLS 1.3),
    groups (key exchange), sigalgs (its handshake signature) and dh (pki.dh_params
    group, for DHE and ADH suites)."""
    cert = {"dns": MX1, "key": key}

    def context() -> ssl.SSLContext:
        leaf = pki.get_pki().leaf(**cert)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.set_ciphers(f"{ciphers}:@SECLEVEL=0")
        low, high = versions
        with warnings.catch_warnings():  # TLSVersion.TLSv1 and TLSv1_1 are deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            if low is not None:
                ctx.minimum_version = low
            if high is not None:
                ctx.maximum_version = high
        ctx.load_cert_chain(str(leaf.chain_path), str(leaf.key_path))
        if dh:
            ctx.load_dh_params(str(pki.get_pki().dh_params(dh)))
        for what, value in (("suites", suites), ("groups", groups), ("sigalgs", sigalgs)):
            if value:
                _ssl_ctx_set(ctx, what, value)
        return ctx
    return {"cert": cert, "behaviour": {"tls_context": AtRunTime(context)}}


TLS_LINE_RX = re.compile(r"\b(\w+ TLS connection established to) \S+?:\d+: (.*)$", re.M)


class FullTlsLines(DifferentialCase):
    """run_row compares the adjective and the peer of each "... TLS connection established"
    line; a certificate shape changes what follows (server-signature, its bits, the
    digest), so these rows compare the rest of each line too."""

    line_rx = TLS_LINE_RX  # the lines compared, as the groups each match leaves

    def run_row(self, row: dict) -> None:
        seen = {}

        def recording(engine: str, run):
            def wrapper(sc, world):
                seen[engine] = run(sc, world)
                return seen[engine]
            return wrapper

        with mock.patch.object(test_differential, "run_postfix",
                               recording("postfix", test_differential.run_postfix)), \
             mock.patch.object(test_differential, "run_tlsrelay",
                               recording("tlsrelay", test_differential.run_tlsrelay)):
            super().run_row(row)
        lines = {e: [" ".join(g for g in m.groups() if g is not None) for m in self.line_rx.finditer(o.log)]
                 for e, o in seen.items()}
        self.assertEqual(lines["tlsrelay"], lines["postfix"], "TLS summary lines after the peer")


# A failed handshake's lines: "SSL_connect error to HOST[ADDR]:PORT: ..." and what Postfix
# logs of OpenSSL's error queue (tls_print_errors: "warning: TLS library problem: ...").
SESSION_LINE_RX = re.compile(r"\b(\w+ TLS connection established to|SSL_connect error to) \S+?:\d+: (.*)$"
                             r"|\b(warning: TLS library problem:) (.*)$", re.M)


class FullSessionLines(FullTlsLines):
    """FullTlsLines, and the lines of a handshake that failed (after the peer) too."""

    line_rx = SESSION_LINE_RX


MX1 = ["mx1.example.test"]
TLS10, TLS11 = ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1
TLS13_ONLY = (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3)
MX1_AT = "mx1.example.test[{mx1.addr}]:25"


# groups whose rows compare whole TLS lines: group -> the TestCase base that does it
FULL_LINE_GROUPS = {"CertificateShapes": FullTlsLines, "SessionLines": FullSessionLines,
                    "ChainShapes": FullTlsLines, "TrustAnchorChains": FullTlsLines}


def chain(**cert) -> dict:
    """pki.leaf arguments of a certificate for mx1.example.test with these chain options."""
    return {"dns": MX1, **cert}



def ta_policy(level: str, anchor: str, cert: dict) -> AtRunTime:
    """The policy line "example.test <level> tafile=<file>" whose file holds one
    certificate of the chain pki.leaf(**cert) makes: anchor "root" (the root above it:
    the unknown root for intermediate="untrusted"), "issuer" (the leaf's issuing CA; for
    by_root=True the usual intermediate, which is not on that chain), "top" (the CA right
    under the root), "leaf" or "test-root" (the test PKI's root, whatever the chain);
    "<anchor>-key": that certificate's public key alone (a PEM PUBLIC KEY block)."""
    def line() -> str:
        p = pki.get_pki()
        kind = cert.get("intermediate")
        cas = p.intermediate_chain(kind) if kind else [p.intermediate]
        which = anchor.removesuffix("-key")
        f = {"root": lambda: p.unknown_root if kind == "untrusted" else p.root, "test-root": lambda: p.root,
             "issuer": lambda: cas[0], "top": lambda: cas[-1],
             "leaf": lambda: p.leaf(**cert)}[which]()
        path = f.cert_path
        if anchor.endswith("-key"):
            path = f.cert_path.with_name(f.cert_path.stem + "-pubkey.pem")
            path.write_bytes(f.cert.public_key().public_bytes(serialization.Encoding.PEM,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo))
            path.chmod(0o644)
        return f"example.test {level} tafile={path}"
    return AtRunTime(line)


# TrustAnchorChains' chain shapes: name -> pki.leaf arguments
TA_SHAPES = {"expired-intermediate": chain(intermediate="expired"),
             "untrusted-root-in-chain": chain(intermediate="untrusted", with_root=True),
             "chain-of-11": chain(intermediate="chain:11"),
             "leaf-by-root": chain(by_root=True),
             "wrong-name": {"dns": ["mx1.other.test"]},
             "expired-leaf": chain(expired=True)}

# (anchor, shape) pairs of TA_SHAPES that Postfix delivers at verify and secure
TA_PASSES = {("root", "untrusted-root-in-chain"), ("root", "leaf-by-root"),
             ("issuer", "expired-intermediate"), ("issuer", "untrusted-root-in-chain"), ("issuer", "chain-of-11"),
             ("leaf", "expired-intermediate"), ("leaf", "untrusted-root-in-chain"), ("leaf", "chain-of-11"),
             ("leaf", "leaf-by-root"), ("leaf", "expired-leaf")}

RSA1024 = low_security_peer(dns=MX1, key="rsa1024")
SHA1_SIGNED = low_security_peer(dns=MX1, signature="sha1")

BUSY = {"behaviour": {"replies": {"RCPT": "450 4.2.0 Busy"}}}
LATER = {"behaviour": {"replies": {"MAIL": "451 4.3.0 Later"}}}
PLAIN = {"cert": None}
WRONG_NAME = {"cert": {"dns": ["wrong.other.test"]}}
# mx1 and mx2 without DNS names of their own: reached as [mx1.example.test] / [mx2.example.test]
BOTH = {"peers": {"mx1": {"names": ["mx1.example.test"], "cert": GOOD},
                  "mx2": {"names": ["mx2.example.test"], "cert": {"dns": ["mx2.example.test"]}}}}


SCENARIOS: dict[str, list[dict]] = {
    # §1.5, §6 Limits: sessions past EHLO and TLS count towards smtp_mx_session_limit
    # (2), failures inside EHLO/TLS do not; every address counts towards the address limit (5).
    "SessionLimits": [
        dict(name="session-limit-two-sessions-then-stop", **mx_list(BUSY, BUSY, {}),
             expect=("deferred", "4.2.0", said(2, "450 4.2.0 Busy", "RCPT TO command"))),
        dict(name="session-limit-mail-refusals-count", **mx_list(LATER, LATER, {}),
             expect=("deferred", "4.3.0", said(2, "451 4.3.0 Later", "MAIL FROM command"))),
        dict(name="session-limit-not-offered-not-counted", level="encrypt", **mx_list(PLAIN, BUSY, {}),
             expect=SENT),
        dict(name="session-limit-verify-failure-not-counted", level="verify", **mx_list(WRONG_NAME, BUSY, {}),
             expect=SENT),
        dict(name="session-limit-handshake-failure-not-counted", level="encrypt",
             **mx_list({"behaviour": {"tls_break": True}}, BUSY, {}), expect=SENT),
        dict(name="session-limit-454-not-counted", level="encrypt",
             **mx_list({"behaviour": {"starttls_reply": "454 4.7.0 Not now"}}, BUSY, {}), expect=SENT),
        dict(name="session-limit-greeting-421-not-counted", **mx_list({"behaviour": {"greeting": "421 4.3.2 No"}},
                                                                      BUSY, {}), expect=SENT),
        dict(name="session-limit-tls-then-two-sessions", level="verify", **mx_list(WRONG_NAME, BUSY, BUSY, {}),
             expect=("deferred", "4.2.0", said(3, "450 4.2.0 Busy", "RCPT TO command"))),
        dict(name="address-limit-not-offered-six", level="encrypt", **mx_list(*[PLAIN] * 6), expect=not_offered(5)),
        dict(name="address-limit-verify-failures-six", level="verify", **mx_list(*[WRONG_NAME] * 6),
             expect=NOT_VERIFIED),
        dict(name="address-limit-mixed-failures-sixth-good", level="encrypt",
             **mx_list(PLAIN, {"behaviour": {"tls_break": True}}, PLAIN, PLAIN, PLAIN, {}), expect=not_offered(5)),
        dict(name="policy-error-then-limits", policy=["example.test encrypt bogus=1"], **mx_list({}, {}),
             expect=CONFIG),
    ],

    # §6 Next-hop derivation: relayhost failures are deferred 4.3.5; transport_maps
    # lookups go from the full domain to ever shorter ".parent" entries.
    "RelayhostAndRoutes": [
        dict(name="relayhost-bracket-nxdomain-defers-435", main={"relayhost": "[gone.example.test]"}, peers={},
             dns=[], expect=("deferred", "4.3.5", NOT_FOUND + "gone.example.test type=")),
        dict(name="relayhost-domain-nxdomain-defers-435", main={"relayhost": "gone.test"}, peers={}, dns=[],
             expect=("deferred", "4.3.5", NOT_FOUND + "gone.test type=")),
        dict(name="relayhost-null-mx-defers-435", main={"relayhost": "relay.test"}, peers={},
             dns=[("relay.test", "MX", "0 .")],
             expect=("deferred", "4.3.5", "Domain relay.test does not accept mail (nullMX)")),
        dict(name="relayhost-servfail-stays-443", main={"relayhost": "relay.test"},
             dns_failures=[("relay.test", "MX", "SERVFAIL")],
             expect=("deferred", "4.4.3", NOT_FOUND + "relay.test type=MX")),
        dict(name="transport-nexthop-nxdomain-bounces", transport={"example.test": "smtp:[gone.example.test]"},
             peers={}, dns=[], expect=("bounced", "5.4.4", NOT_FOUND + "gone.example.test type=")),
        dict(name="relayhost-domain-mx-parent-policy", cert=None, main={"relayhost": "relay.example.test"},
             dns=[("relay.example.test", "MX", "10 mx1.example.test.")], policy=[".example.test encrypt"],
             expect=NOT_OFFERED),
        dict(name="relayhost-domain-port-mx-policy-key", cert=None, main={"relayhost": "relay.example.test:25"},
             dns=[("relay.example.test", "MX", "10 mx1.example.test.")],
             policy=["relay.example.test encrypt", ".example.test encrypt"], expect=SENT),
        dict(name="transport-most-specific-parent-wins", recipients=["user@sub.example.test"], dns=[],
             transport={".test": "smtp:[mx2.example.test]", ".example.test": "smtp:[mx1.example.test]"},
             **BOTH, expect=SENT),
        dict(name="transport-exact-before-parent", recipients=["user@sub.example.test"], dns=[],
             transport={".example.test": "smtp:[mx2.example.test]", "sub.example.test": "smtp:[mx1.example.test]"},
             **BOTH, expect=SENT),
        dict(name="transport-bare-domain-not-for-subdomain", recipients=["user@sub.example.test"],
             dns=[("sub.example.test", "MX", "10 mx1.example.test.")],
             transport={"example.test": "smtp:[mx2.example.test]"}, **BOTH, expect=SENT),
        dict(name="transport-empty-nexthop-is-domain", transport={"example.test": "smtp:"},
             policy=["example.test secure match=hostname"], expect=SENT),
        dict(name="three-domains-three-policies", recipients=["a@example.test", "b@other.test", "c@third.test"],
             peers={"mx1": {"names": ["mx1.example.test"], "cert": GOOD},
                    "mx2": {"names": ["mx2.other.test"], "cert": {"dns": ["mx2.other.test"]}},
                    "mx3": {"names": ["mx3.third.test"]}},
             dns=[("example.test", "MX", "10 mx1.example.test."), ("other.test", "MX", "10 mx2.other.test."),
                  ("third.test", "MX", "10 mx3.third.test.")],
             policy=["example.test secure match=hostname", f"other.test fingerprint match={NOMATCH}",
                     "third.test encrypt"], expect=SENT),
    ],

    # §3.1-§3.3: the table file itself (texthash, as Postfix reads it) and attributes.
    "TableSyntax": [
        # texthash refuses a file with a duplicate key: every lookup fails, for every next hop
        dict(name="duplicate-key-table-unusable", cert=None, policy=["example.test encrypt", "example.test may"],
             expect=CONFIG),
        dict(name="duplicate-key-case-differs", cert=None, policy=["Example.Test may", "example.test encrypt"],
             expect=CONFIG),
        dict(name="duplicate-other-key-fails-every-lookup", level="none",
             policy=["other.test may", "other.test encrypt"], expect=CONFIG),
        dict(name="indented-comment-inside-continuation", cert={"dns": ["example.test"]},
             policy=["example.test secure", "  # the next line continues the entry", "  match=nexthop"],
             expect=SENT),
        dict(name="key-alone-on-its-line", level="encrypt", cert=None, policy=["example.test"], expect=NOT_OFFERED),
        dict(name="key-then-value-on-continuation", cert=None, policy=["example.test", "  encrypt"],
             expect=NOT_OFFERED),
        dict(name="key-with-trailing-dot", cert=None, policy=["example.test. encrypt"], expect=SENT),
        dict(name="tabs-between-tokens", cert={"dns": ["example.test"]}, policy=["example.test\tsecure\tmatch=nexthop"],
             expect=SENT),
        dict(name="blank-line-does-not-end-entry", cert=None, policy=["example.test may", "", "  encrypt"],
             expect=CONFIG),
        dict(name="connection-reuse-bad-value", policy=["example.test encrypt connection_reuse=maybe"], expect=CONFIG),
        dict(name="connection-reuse-no", policy=["example.test encrypt connection_reuse=no"], expect=SENT),
        dict(name="enable-rpk-unknown-in-37", policy=["example.test encrypt enable_rpk=no"], expect=CONFIG),
        dict(name="match-at-dane", policy=["example.test dane match=hostname"], expect=CONFIG),
        dict(name="tafile-at-fingerprint", policy=["example.test fingerprint match=$FP(mx1 cert sha256) "
                                                   "tafile=$PATH(root)"], expect=CONFIG),
        dict(name="tafile-empty", policy=["example.test verify tafile="], expect=CONFIG),
        dict(name="exclude-repeated", policy=["example.test encrypt exclude=RC4 exclude=MD5"], expect=CONFIG),
        dict(name="servername-repeated", policy=["example.test encrypt servername=hostname servername=nexthop"],
             expect=CONFIG),
        dict(name="main-servername-invalid", level="encrypt", main={"smtp_tls_servername": "-bad-.test"},
             expect=CONFIG),
        dict(name="main-servername-invalid-policy-overrides", policy=["example.test encrypt servername=hostname"],
             main={"smtp_tls_servername": "-bad-.test"}, sni="mx1.example.test", expect=SENT),
        # valid_hostname() is ASCII only: a U-label servername is not converted but invalid
        dict(name="servername-u-label-invalid", policy=["example.test encrypt servername=b\u00fccher.example.test"],
             expect=CONFIG),
        dict(name="main-servername-u-label-invalid", level="encrypt",
             main={"smtp_tls_servername": "b\u00fccher.example.test"}, expect=CONFIG),
        dict(name="equals-sign-in-value", policy=["example.test encrypt ciphers=high=1"], expect=HANDSHAKE),
        dict(name="empty-exclude-allowed", behaviour=ANON, main={"smtp_tls_exclude_ciphers": "aNULL"},
             policy=["example.test encrypt exclude="], expect=SENT),
    ],

    # §4 and §5: match= forms at verify, secure and fingerprint.
    "MatchForms": [
        dict(name="secure-dot-literal-vs-partial-wildcard-san", cert={"dns": ["mx*.example.test"]},
             policy=["example.test secure match=.example.test"], expect=SENT),
        dict(name="secure-dot-literal-vs-deep-wildcard-san", cert={"dns": ["*.a.example.test"]},
             policy=["example.test secure match=.example.test"], expect=SENT),
        dict(name="verify-wildcard-at-second-level", level="verify",
             peers={"mx1": {"names": ["a.b.example.test"], "cert": {"dns": ["*.b.example.test"]}}},
             dns=[("example.test", "MX", "10 a.b.example.test.")], expect=SENT),
        dict(name="verify-double-wildcard-literal", level="verify",
             peers={"mx1": {"names": ["a.b.example.test"], "cert": {"dns": ["*.*.example.test"]}}},
             dns=[("example.test", "MX", "10 a.b.example.test.")], expect=NOT_VERIFIED),
        dict(name="secure-dot-nexthop-two-labels-down", level="secure",
             peers={"mx1": {"names": ["a.b.example.test"], "cert": {"dns": ["a.b.example.test"]}}},
             dns=[("example.test", "MX", "10 a.b.example.test.")], expect=SENT),
        dict(name="verify-match-lone-dot", policy=["example.test verify match=."], expect=NOT_VERIFIED),
        dict(name="verify-match-lone-dot-and-hostname", policy=["example.test verify match=.:hostname"], expect=SENT),
        dict(name="secure-match-uppercase-literal", policy=["example.test secure match=MX1.EXAMPLE.TEST"],
             expect=SENT),
        dict(name="secure-match-three-alternatives-last", policy=["example.test secure match=a.test:b.test:"
                                                                  "mx1.example.test"], expect=SENT),
        dict(name="secure-match-empty-alternative", policy=["example.test secure match=a.test::mx1.example.test"],
             expect=SENT),
        dict(name="secure-cn-matches-san-does-not", cert={"dns": ["other.example.net"], "cn": "mx1.example.test"},
             policy=["example.test secure match=hostname"], expect=NOT_VERIFIED),
        dict(name="secure-cn-only-nexthop", level="secure", cert={"cn": "example.test"}, expect=SENT),
        dict(name="verify-match-idn-u-label", cert={"dns": ["xn--bcher-kva.example.test"]},
             policy=["example.test verify match=b\u00fccher.example.test"], expect=SENT),
        dict(name="fp-all-malformed-falls-back-to-main", policy=["example.test fingerprint match=zz"],
             main={"smtp_tls_fingerprint_cert_match": "$FP(mx1 cert sha256)"}, expect=SENT),
        dict(name="fp-trailing-colon-malformed", policy=["example.test fingerprint match=$FP(mx1 cert sha256):"],
             expect=CONFIG),
        dict(name="fp-odd-digit-group-malformed", policy=["example.test fingerprint match=" + NOMATCH[1:]],
             expect=CONFIG),
        dict(name="fp-pkey-sha256-upper-nocolon", policy=["example.test fingerprint match=$FP(mx1 pkey sha256 "
                                                          "nocolon)"], expect=SENT),
        dict(name="fp-three-values-wrong-digest-and-good",
             policy=["example.test fingerprint match=$FP(mx1 cert sha1)|" + NOMATCH + " match=$FP(mx1 pkey sha256)"],
             expect=SENT),
        dict(name="fp-ignores-main-list-when-policy-matches", policy=[f"example.test fingerprint match={NOMATCH}"],
             main={"smtp_tls_fingerprint_cert_match": "$FP(mx1 cert sha256)"}, expect=NOT_VERIFIED),
    ],

    # §1.2, §8: grades, exclusions and protocol lists as 3.7 applies them.
    "GradesAndProtocols": [
        dict(name="encrypt-ciphers-export-is-a-grade", policy=["example.test encrypt ciphers=export"], expect=SENT),
        dict(name="encrypt-ciphers-low-is-a-grade", policy=["example.test encrypt ciphers=low"], expect=SENT),
        dict(name="encrypt-ciphers-upper-case", policy=["example.test encrypt ciphers=HIGH"], expect=SENT),
        dict(name="encrypt-ciphers-null-vs-tls13-peer", policy=["example.test encrypt ciphers=null"],
             expect=HANDSHAKE),
        dict(name="encrypt-ciphers-null-vs-tls12-peer", behaviour=TLS12, policy=["example.test encrypt ciphers=null"],
             expect=HANDSHAKE),
        dict(name="encrypt-exclude-bang-token", policy=["example.test encrypt exclude=!RC4"], expect=HANDSHAKE),
        dict(name="encrypt-exclude-replaces-main", behaviour=ANON, main={"smtp_tls_exclude_ciphers": "aNULL"},
             policy=["example.test encrypt exclude=RC4"], expect=SENT),
        dict(name="encrypt-main-mandatory-ciphers-high-anon", level="encrypt", behaviour=ANON,
             main={"smtp_tls_mandatory_ciphers": "high"}, expect=SENT),
        dict(name="encrypt-main-mandatory-ciphers-bogus", level="encrypt",
             main={"smtp_tls_mandatory_ciphers": "bogus"}, expect=HANDSHAKE),
        dict(name="encrypt-not-tls12-vs-tls12-only-peer", behaviour=TLS12,
             policy=["example.test encrypt protocols=!TLSv1.2"], expect=HANDSHAKE),
        dict(name="encrypt-not-tls13-vs-tls12-only-peer", behaviour=TLS12,
             policy=["example.test encrypt protocols=!TLSv1.3"], expect=SENT),
        dict(name="encrypt-protocols-lower-case", behaviour=TLS12, policy=["example.test encrypt protocols=>=tlsv1.3"],
             expect=HANDSHAKE),
        dict(name="encrypt-include-tls13-vs-tls12-peer", behaviour=TLS12,
             policy=["example.test encrypt protocols=TLSv1.3"], expect=HANDSHAKE),
        dict(name="encrypt-include-two-versions", behaviour=TLS12,
             policy=["example.test encrypt protocols=TLSv1.2:TLSv1.3"], expect=SENT),
        dict(name="encrypt-at-most-tls11", policy=["example.test encrypt protocols=<=TLSv1.1"], expect=HANDSHAKE),
        dict(name="main-mandatory-protocols-commas", level="encrypt", behaviour=TLS13,
             main={"smtp_tls_mandatory_protocols": "!SSLv2, !SSLv3, !TLSv1.3"}, expect=HANDSHAKE),
        dict(name="main-mandatory-protocols-hex-ceiling", level="encrypt",
             main={"smtp_tls_mandatory_protocols": "<=0303"}, behaviour=TLS12, expect=SENT),
        dict(name="fingerprint-exclude-replaces-main", behaviour=TLS12,
             main={"smtp_tls_exclude_ciphers": "ECDHE"},
             policy=["example.test fingerprint match=$FP(mx1 cert sha256) exclude=RC4"], expect=SENT),
        dict(name="verify-main-exclude-ecdhe-vs-tls12", level="verify", behaviour=TLS12,
             main={"smtp_tls_exclude_ciphers": "kECDHE"}, expect=HANDSHAKE),
    ],

    # Odd corners of next hops, anchors and STARTTLS at may (round two of the audit).
    "MoreCorners": [
        # Postfix 3.5+ next-hop lists: each destination in turn, each its own policy key
        dict(name="relayhost-list-first-unresolvable", main={"relayhost": "[gone.example.test], [mx1.example.test]"},
             dns=[], expect=SENT),
        dict(name="relayhost-list-policy-per-element", cert=None,
             main={"relayhost": "[mx2.example.test],[mx1.example.test]"}, dns=[],
             peers={"mx1": {"names": ["mx1.example.test"]}, "mx2": {"names": ["mx2.example.test"]}},
             policy=["[mx2.example.test] encrypt"], expect=SENT),
        dict(name="relayhost-list-whole-text-not-a-key", cert=None,
             main={"relayhost": "[mx2.example.test] [mx1.example.test]"}, dns=[],
             peers={"mx1": {"names": ["mx1.example.test"]}, "mx2": {"names": ["mx2.example.test"]}},
             policy=["[mx2.example.test] [mx1.example.test] encrypt"], expect=SENT),
        dict(name="relayhost-list-all-unresolvable", main={"relayhost": "[gone1.example.test],[gone2.example.test]"},
             dns=[], peers={}, expect=("bounced", "5.4.4", "Host or domain name not found. Name service error for "
                                                           "name=gone2.example.test")),
        dict(name="relayhost-list-both-fail-last-reason", level="encrypt", dns=[],
             main={"relayhost": "[mx1.example.test], [mx2.example.test]"},
             peers={"mx1": {"names": ["mx1.example.test"]}, "mx2": {"names": ["mx2.example.test"]}},
             expect=not_offered(2)),
        # sessions count per destination of a list, and the last MX of its first
        # destination is not the final server: 451 there goes on to the next destination
        dict(name="relayhost-list-backup-after-two-sessions", cert=None,
             main={"relayhost": "example.test, [mx3.example.test]"},
             peers={"mx1": {"names": ["mx1.example.test"], **LATER}, "mx2": {"names": ["mx2.example.test"], **LATER},
                    "mx3": {"names": ["mx3.example.test"]}},
             dns=[("example.test", "MX", "10 mx1.example.test."), ("example.test", "MX", "20 mx2.example.test.")],
             expect=SENT),
        dict(name="transport-list-verify-second", level="verify", dns=[],
             transport={"example.test": "smtp:[mx2.example.test],[mx1.example.test]"},
             peers={"mx1": {"names": ["mx1.example.test"], "cert": GOOD},
                    "mx2": {"names": ["mx2.example.test"], "cert": {"dns": ["wrong.other.test"]}}}, expect=SENT),
        # dns_get_rr(): any "." target makes the whole answer a null MX
        dict(name="null-mx-among-other-mx", dns=[("example.test", "MX", "0 ."), ("example.test", "MX", "10 mx1.example.test.")],
             expect=("bounced", "5.1.0", "Domain example.test does not accept mail (nullMX)")),
        dict(name="null-mx-after-real-mx", dns=[("example.test", "MX", "10 mx1.example.test."), ("example.test", "MX", "20 .")],
             expect=("bounced", "5.1.0", "Domain example.test does not accept mail (nullMX)")),
        dict(name="relayhost-upper-case-nxdomain", main={"relayhost": "[GONE.Example.TEST]"}, dns=[], peers={},
             expect=("deferred", "4.3.5", "Host or domain name not found. Name service error for name=GONE.Example.TEST")),
        dict(name="policy-key-upper-case-bracketed", cert=None, main={"relayhost": "[mx1.example.test]:25"}, dns=[],
             policy=["[MX1.Example.TEST]:25 encrypt"], expect=NOT_OFFERED),
        dict(name="relayhost-upper-case-bracketed", cert=None, main={"relayhost": "[MX1.EXAMPLE.TEST]"}, dns=[],
             policy=["[mx1.example.test] encrypt"],
             expect=("deferred", "4.7.4", "TLS is required, but was not offered by host MX1.EXAMPLE.TEST")),
        dict(name="relayhost-upper-case-secure-nexthop", main={"relayhost": "[MX1.EXAMPLE.TEST]"}, dns=[],
             policy=["[mx1.example.test] secure match=nexthop"], expect=SENT),
        dict(name="main-level-mixed-case", level="Encrypt", cert=None, expect=NOT_OFFERED),
        dict(name="may-starttls-502-plaintext", level="may",
             behaviour={"starttls_reply": "502 5.5.1 Not implemented"}, expect=SENT),
        dict(name="may-starttls-554-plaintext", level="may", behaviour={"starttls_reply": "554 5.7.0 No"},
             expect=SENT),
        dict(name="tafile-empty-file", policy=["example.test verify tafile=/dev/null"], expect=CONFIG),
        dict(name="tafile-twice-second-anchors", policy=["example.test verify tafile=$PATH(unknown-root) "
                                                          "tafile=$PATH(root)"], expect=SENT),
        dict(name="tafile-leaf-anchor-secure-wrong-nexthop", cert={"dns": ["mx1.example.test"], "self_signed": True},
             policy=["example.test secure tafile=$PATH(mx1)"], expect=SENT),
        dict(name="fp-wrong-length-only-main-not-used", policy=["example.test fingerprint match=$FP(mx1 cert md5)"],
             main={"smtp_tls_fingerprint_cert_match": "$FP(mx1 cert sha256)"}, expect=NOT_VERIFIED),
        dict(name="none-main-policy-may-uses-tls", level="none", policy=["example.test may"], expect=SENT),
        dict(name="verify-main-match-dot-literal", level="verify", cert={"dns": ["mx1.other.test"]},
             main={"smtp_tls_verify_cert_match": ".other.test"}, expect=SENT),
        dict(name="secure-main-match-hostname-only", level="secure", main={"smtp_tls_secure_cert_match": "hostname"},
             expect=SENT),
        dict(name="nextmx-policy-none-for-domain", cert=None, level="secure", policy=["example.test none"],
             **two_mx({}, {}), expect=SENT),
    ],

    # STARTTLS replies and connections that end around it.
    "StarttlsEdges": [
        dict(name="encrypt-starttls-dropped", level="encrypt", behaviour={"drop": ["STARTTLS"]},
             expect=("deferred", "4.4.2", "lost connection with mx1.example.test[{mx1.addr}] while receiving the "
                                          "STARTTLS response")),
        dict(name="may-starttls-dropped", level="may", behaviour={"drop": ["STARTTLS"]},
             expect=("deferred", "4.4.2", "lost connection with mx1.example.test[{mx1.addr}] while receiving the "
                                          "STARTTLS response")),
        dict(name="encrypt-starttls-dropped-then-next-mx", level="encrypt",
             **mx_list({"behaviour": {"drop": ["STARTTLS"]}}, {}), expect=SENT),
        dict(name="session-limit-starttls-dropped-not-counted", level="encrypt",
             **mx_list({"behaviour": {"drop": ["STARTTLS"]}}, BUSY, {}), expect=SENT),
        dict(name="encrypt-starttls-421", level="encrypt", behaviour={"starttls_reply": "421 4.3.2 Closing"},
             expect=("deferred", "4.3.2", "TLS is required, but host mx1.example.test[{mx1.addr}] refused to start "
                                          "TLS: 421 4.3.2 Closing")),
        dict(name="may-starttls-421", level="may", behaviour={"starttls_reply": "421 4.3.2 Closing"}, expect=SENT),
        dict(name="encrypt-starttls-220-multiline", level="encrypt",
             behaviour={"starttls_reply": "220-Ready\r\n220 go ahead"}, expect=SENT),
        # plaintext sent behind the 220 is discarded, not taken as a reply after the handshake
        dict(name="encrypt-plaintext-injected-after-220", level="encrypt",
             behaviour={"inject_after_starttls": "250 injected\r\n"}, expect=SENT),
        dict(name="may-plaintext-injected-after-220", level="may",
             behaviour={"inject_after_starttls": "250 injected\r\n"}, expect=SENT),
        dict(name="verify-mail-dropped-after-tls", level="verify", behaviour={"drop": ["MAIL"]},
             expect=("deferred", "4.4.2")),
    ],

    # Certificate shapes the rows above never presented (round three of the audit):
    # OpenSSL's security level (Postfix: 0 up to encrypt, 1 from fingerprint on), basic
    # constraints and key usage along the chain, purposes, critical extensions, key types.
    # FullTlsLines: the "... TLS connection established" lines are compared in full.
    "CertificateShapes": [
        dict(name="may-rsa1024-leaf", level="may", **RSA1024, expect=SENT),
        dict(name="encrypt-rsa1024-leaf", level="encrypt", **RSA1024, expect=SENT),
        dict(name="verify-rsa1024-leaf", level="verify", **RSA1024, expect=SENT),
        dict(name="fingerprint-rsa1024-leaf", **RSA1024,
             policy=["example.test fingerprint match=$FP(mx1 cert sha256)"], expect=SENT),
        dict(name="fingerprint-sha1-signed-leaf", **SHA1_SIGNED,
             policy=["example.test fingerprint match=$FP(mx1 cert sha256)"], expect=SENT),
        dict(name="verify-sha1-signed-leaf", level="verify", **SHA1_SIGNED, expect=NOT_VERIFIED),
        dict(name="secure-sha1-signed-leaf", level="secure", **SHA1_SIGNED, expect=NOT_VERIFIED),
        dict(name="encrypt-sha1-signed-leaf", level="encrypt", **SHA1_SIGNED, expect=SENT),
        dict(name="verify-leaf-ca-true", level="verify", cert={"dns": MX1, "ca": True}, expect=SENT),
        # tls_verify.c names the certificate at fault: "CA certificate" for an error at depth > 0
        dict(name="verify-intermediate-not-ca", level="verify", cert={"dns": MX1, "intermediate": "not-ca"},
             expect=NOT_VERIFIED),
        dict(name="verify-intermediate-no-keycertsign", level="verify",
             cert={"dns": MX1, "intermediate": "no-keycertsign"}, expect=NOT_VERIFIED),
        dict(name="encrypt-intermediate-not-ca", level="encrypt", cert={"dns": MX1, "intermediate": "not-ca"},
             expect=SENT),
        # and X509_V_ERR_INVALID_PURPOSE at depth 0 in words of its own
        dict(name="verify-eku-client-auth-only", level="verify",
             cert={"dns": MX1, "server_auth": False, "client_auth": True}, expect=NOT_VERIFIED),
        dict(name="fingerprint-eku-client-auth-only", cert={"dns": MX1, "server_auth": False, "client_auth": True},
             policy=["example.test fingerprint match=$FP(mx1 cert sha256)"], expect=SENT),
        dict(name="encrypt-eku-client-auth-only", level="encrypt",
             cert={"dns": MX1, "server_auth": False, "client_auth": True}, expect=SENT),
        dict(name="verify-no-eku", level="verify", cert={"dns": MX1, "server_auth": False}, expect=SENT),
        dict(name="verify-unknown-critical-extension", level="verify", cert={"dns": MX1, "unknown_critical": True},
             expect=NOT_VERIFIED),
        dict(name="encrypt-unknown-critical-extension", level="encrypt",
             cert={"dns": MX1, "unknown_critical": True}, expect=SENT),
        dict(name="fingerprint-unknown-critical-extension", cert={"dns": MX1, "unknown_critical": True},
             policy=["example.test fingerprint match=$FP(mx1 pkey sha256)"], expect=SENT),
        dict(name="verify-ed25519-leaf", level="verify", cert={"dns": MX1, "key": "ed25519"}, expect=SENT),
        # an id-RSASSA-PSS key is named by its OID's short name, without bits (RSA-PSS
        # (N bits) is an rsaEncryption key signing with PSS, as in the rsa1024 rows)
        dict(name="verify-rsa-pss-leaf", level="verify", cert={"dns": MX1, "key": "rsa-pss"}, expect=SENT),
        dict(name="verify-p384-leaf", level="verify", cert={"dns": MX1, "key": "p384"}, expect=SENT),
        dict(name="verify-san-trailing-dot", level="verify", cert={"dns": ["mx1.example.test."]},
             expect=NOT_VERIFIED),
        # not normalised means compared as written: a trailing dot on both sides matches
        dict(name="verify-san-trailing-dot-match-trailing-dot", level="verify", cert={"dns": ["mx1.example.test."]},
             policy=["example.test verify match=mx1.example.test."], expect=SENT),
        dict(name="secure-san-trailing-dot", level="secure", cert={"dns": ["mx1.example.test."]},
             expect=NOT_VERIFIED),
        # Postfix compares the leaf's fingerprints only, never a CA's of the chain
        dict(name="fp-intermediate-cert-fingerprint", policy=[fp_policy("intermediate")], expect=NOT_VERIFIED),
        dict(name="fp-intermediate-pkey-fingerprint", policy=[fp_policy("intermediate", "pkey")],
             expect=NOT_VERIFIED),
        dict(name="verify-name-constrained-intermediate", level="verify",
             cert={"dns": MX1, "intermediate": "constrained"}, expect=NOT_VERIFIED),
        dict(name="verify-name-constrained-intermediate-cn-only", level="verify",
             cert={"cn": "mx1.example.test", "intermediate": "constrained"}, expect=NOT_VERIFIED),
        dict(name="verify-name-constrained-intermediate-permitted", level="verify",
             cert={"dns": ["mx1.other.test"], "intermediate": "constrained"},
             main={"smtp_tls_verify_cert_match": "mx1.other.test"}, expect=SENT),
    ],
    # Negotiated sessions the rows above never produce (round four of the audit): TLS 1.2
    # suites per key exchange (ECDHE, DHE, plain RSA) and handshake signature, TLS 1.3
    # suites and groups, big leaves, anonymous suites, TLS 1.0/1.1 (Postfix's security
    # level 0 up to encrypt allows them, 1 at verify does not). FullSessionLines: the whole
    # "... TLS connection established" line, and a failed handshake's lines.
    # Postfix 3.7 (tls_get_signature_params) names key exchange, server signature and
    # digest for TLS 1.3 only: a TLS 1.2 suite's name already says them.
    "SessionLines": [
        # handshakes the peer ends by closing (it sends no alert): "lost connection"
        dict(name="encrypt-tls13-policy-vs-tls12-peer-closes", behaviour=TLS12,
             policy=["example.test encrypt protocols=>=TLSv1.3"], expect=HANDSHAKE),
        dict(name="encrypt-no-shared-cipher-peer-closes", **tls_peer("rsa", ciphers="AES128-SHA"),
             policy=["example.test encrypt exclude=AES128-SHA"], expect=HANDSHAKE),
        dict(name="may-tls12-ecdhe-ecdsa-aes128-gcm", level="may",
             **tls_peer(ciphers="ECDHE-ECDSA-AES128-GCM-SHA256"), expect=SENT),
        dict(name="encrypt-tls12-ecdhe-rsa-aes256-gcm", level="encrypt",
             **tls_peer("rsa", ciphers="ECDHE-RSA-AES256-GCM-SHA384"), expect=SENT),
        dict(name="verify-tls12-ecdhe-rsa-chacha20", level="verify",
             **tls_peer("rsa", ciphers="ECDHE-RSA-CHACHA20-POLY1305"), expect=SENT),
        dict(name="encrypt-tls12-ecdhe-p384-group", level="encrypt",
             **tls_peer(ciphers="ECDHE-ECDSA-AES256-GCM-SHA384", groups="P-384"), expect=SENT),
        dict(name="may-tls12-dhe-rsa-ffdhe2048", level="may",
             **tls_peer("rsa", ciphers="DHE-RSA-AES256-GCM-SHA384", dh="ffdhe2048"), expect=SENT),
        dict(name="encrypt-tls12-dhe-rsa-modp1536", level="encrypt",
             **tls_peer("rsa", ciphers="DHE-RSA-AES256-GCM-SHA384", dh="modp_1536"), expect=SENT),
        # 1024-bit DH is 80 bits of security: enough for level 1 at verify
        dict(name="verify-tls12-dhe-rsa-1024", level="verify",
             **tls_peer("rsa", ciphers="DHE-RSA-AES256-GCM-SHA384", dh="dh_1024_160"), expect=SENT),
        # RSA key exchange: no handshake signature at all
        dict(name="may-tls12-rsa-kex-aes256-gcm", level="may", **tls_peer("rsa", ciphers="AES256-GCM-SHA384"),
             expect=SENT),
        dict(name="verify-tls12-rsa-kex-aes256-gcm", level="verify", **tls_peer("rsa", ciphers="AES256-GCM-SHA384"),
             expect=SENT),
        # PKCS#1 v1.5 signatures instead of PSS; SHA-1 ones pass at level 0 only
        dict(name="verify-tls12-rsa-leaf-pkcs1-sha256", level="verify", **tls_peer("rsa", sigalgs="RSA+SHA256"),
             expect=SENT),
        dict(name="may-tls12-rsa-leaf-pkcs1-sha1", level="may", **tls_peer("rsa", sigalgs="RSA+SHA1"), expect=SENT),
        dict(name="verify-tls12-rsa-leaf-pkcs1-sha1", level="verify", **tls_peer("rsa", sigalgs="RSA+SHA1"),
             expect=HANDSHAKE),
        dict(name="encrypt-tls12-ecdsa-sha512", level="encrypt", **tls_peer(sigalgs="ECDSA+SHA512"), expect=SENT),
        dict(name="verify-tls12-p521-leaf", level="verify", **tls_peer("p521"), expect=SENT),
        # TLS 1.3: suites, groups (the server answers the X25519 share with a
        # HelloRetryRequest), leaves: identical lines
        dict(name="verify-tls13-chacha20", level="verify",
             **tls_peer(versions=TLS13_ONLY, suites="TLS_CHACHA20_POLY1305_SHA256"), expect=SENT),
        dict(name="may-tls13-aes128-gcm", level="may", **tls_peer(versions=TLS13_ONLY, suites="TLS_AES_128_GCM_SHA256"),
             expect=SENT),
        dict(name="encrypt-tls13-group-p256", level="encrypt", **tls_peer(versions=TLS13_ONLY, groups="P-256"),
             expect=SENT),
        dict(name="verify-tls13-group-p384", level="verify", **tls_peer(versions=TLS13_ONLY, groups="P-384"),
             expect=SENT),
        dict(name="may-tls13-group-p521", level="may", **tls_peer(versions=TLS13_ONLY, groups="P-521"), expect=SENT),
        dict(name="may-tls13-group-x448", level="may", **tls_peer(versions=TLS13_ONLY, groups="X448"), expect=SENT),
        # Postfix 3.7 offers tls_eecdh_auto_curves only (X25519 X448 prime256v1 secp521r1
        # secp384r1), no FFDHE group: the server sends a handshake_failure alert
        dict(name="may-tls13-group-ffdhe2048", level="may", **tls_peer(versions=TLS13_ONLY, groups="ffdhe2048"),
             expect=HANDSHAKE),
        dict(name="verify-tls13-rsa4096-leaf", level="verify", **tls_peer("rsa4096", versions=TLS13_ONLY),
             expect=SENT),
        dict(name="verify-tls13-p521-leaf", level="verify", **tls_peer("p521", versions=TLS13_ONLY), expect=SENT),
        # anonymous suites: no certificate, so no server-signature either
        dict(name="may-anon-aecdh-aes256", level="may", **tls_peer(ciphers="AECDH-AES256-SHA"), expect=SENT),
        dict(name="may-anon-adh-aes256-gcm", level="may", **tls_peer(ciphers="ADH-AES256-GCM-SHA384", dh="ffdhe2048"),
             expect=SENT),
        dict(name="encrypt-anon-adh-1024", level="encrypt",
             **tls_peer(ciphers="ADH-AES128-SHA", dh="dh_1024_160"), expect=SENT),
        # TLS 1.0 and 1.1: Postfix's protocols allow them, its level 0 lets OpenSSL do them
        dict(name="may-tls10-ecdsa", level="may", **tls_peer(versions=(TLS10, TLS10)), expect=SENT),
        dict(name="may-tls11-rsa", level="may", **tls_peer("rsa", versions=(TLS11, TLS11)), expect=SENT),
        dict(name="encrypt-tls11-ecdsa", level="encrypt", **tls_peer(versions=(TLS11, TLS11)), expect=SENT),
        # level 1 at verify: their MD5-SHA1 and SHA-1 signatures are refused
        dict(name="verify-tls11-rsa", level="verify", **tls_peer("rsa", versions=(TLS11, TLS11)), expect=HANDSHAKE),
        dict(name="verify-tls10-ecdsa", level="verify", **tls_peer(versions=(TLS10, TLS10)), expect=HANDSHAKE),
    ],
    # Certificate chains (round five of the audit): CAs out of their validity, untrusted
    # roots sent along, leaves straight under the root, chains out of order or padded,
    # chains around smtp_tls_scert_verifydepth (default 9), weak CA keys, path lengths,
    # a CA's purpose, and which of two faults is logged. FullTlsLines.
    "ChainShapes": [
        dict(name="verify-expired-intermediate", level="verify", cert=chain(intermediate="expired"),
             expect=NOT_VERIFIED),
        dict(name="secure-expired-intermediate", level="secure", cert=chain(intermediate="expired"),
             expect=NOT_VERIFIED),
        dict(name="encrypt-expired-intermediate", level="encrypt", cert=chain(intermediate="expired"),
             expect=SENT),
        dict(name="verify-not-yet-valid-intermediate", level="verify", cert=chain(intermediate="not-yet-valid"),
             expect=NOT_VERIFIED),
        dict(name="fingerprint-expired-intermediate", cert=chain(intermediate="expired"),
             policy=["example.test fingerprint match=$FP(mx1 cert sha256)"], expect=SENT),
        # leaf + intermediate + a self-signed root nobody trusts, against leaf + intermediate
        dict(name="verify-untrusted-root-in-chain", level="verify",
             cert=chain(intermediate="untrusted", with_root=True), expect=NOT_VERIFIED),
        # Postfix names the issuer of the certificate at fault (the intermediate's)
        dict(name="verify-untrusted-intermediate-without-root", level="verify", cert=chain(intermediate="untrusted"),
             expect=NOT_VERIFIED),
        dict(name="may-untrusted-root-in-chain", level="may", cert=chain(intermediate="untrusted", with_root=True),
             expect=SENT),
        dict(name="fingerprint-untrusted-root-in-chain", cert=chain(intermediate="untrusted", with_root=True),
             policy=["example.test fingerprint match=$FP(mx1 cert sha256)"], expect=SENT),
        dict(name="verify-leaf-by-root", level="verify", cert=chain(by_root=True), expect=SENT),
        dict(name="secure-leaf-by-root-with-root", level="secure", cert=chain(by_root=True, with_root=True),
             expect=SENT),
        dict(name="verify-two-intermediates-reversed", level="verify", cert=chain(intermediate="chain:2",
                                                                                 served="reversed"), expect=SENT),
        dict(name="verify-root-before-intermediate", level="verify", cert=chain(with_root=True, served="reversed"),
             expect=SENT),
        dict(name="verify-extra-unrelated-ca", level="verify", cert=chain(served="extra-unrelated"), expect=SENT),
        dict(name="verify-duplicate-leaf", level="verify", cert=chain(served="duplicate-leaf"), expect=SENT),
        # N intermediates under the root: Postfix sets OpenSSL's verify depth to
        # smtp_tls_scert_verifydepth + 1 (10), so 10 intermediates pass and 11 do not
        dict(name="verify-chain-of-9", level="verify", cert=chain(intermediate="chain:9"), expect=SENT),
        dict(name="verify-chain-of-10", level="verify", cert=chain(intermediate="chain:10"), expect=SENT),
        dict(name="verify-chain-of-11", level="verify", cert=chain(intermediate="chain:11"), expect=NOT_VERIFIED),
        dict(name="secure-chain-of-12", level="secure", cert=chain(intermediate="chain:12"), expect=NOT_VERIFIED),
        dict(name="encrypt-chain-of-12", level="encrypt", cert=chain(intermediate="chain:12"), expect=SENT),
        dict(name="fingerprint-chain-of-12", cert=chain(intermediate="chain:12"),
             policy=["example.test fingerprint match=$FP(mx1 cert sha256)"], expect=SENT),
        # a 1024-bit CA key is 80 bits of security: enough for Postfix's level 1 at verify
        dict(name="verify-rsa1024-intermediate", level="verify", **low_security_peer(dns=MX1, intermediate="rsa1024"),
             expect=SENT),
        dict(name="encrypt-rsa1024-intermediate", level="encrypt",
             **low_security_peer(dns=MX1, intermediate="rsa1024"), expect=SENT),
        dict(name="secure-rsa1024-leaf", level="secure", **RSA1024, expect=SENT),
        dict(name="verify-pathlen0-over-another", level="verify", cert=chain(intermediate="pathlen0-over-another"),
             expect=NOT_VERIFIED),
        dict(name="encrypt-pathlen0-over-another", level="encrypt",
             cert=chain(intermediate="pathlen0-over-another"), expect=SENT),
        dict(name="verify-intermediate-client-auth-only", level="verify",
             cert=chain(intermediate="client-auth-only"), expect=NOT_VERIFIED),
        dict(name="fingerprint-intermediate-client-auth-only", cert=chain(intermediate="client-auth-only"),
             policy=["example.test fingerprint match=$FP(mx1 cert sha256)"], expect=SENT),
        # two faults: Postfix logs the one nearest the leaf (tls_verify.c update_error_state)
        dict(name="verify-leaf-and-intermediate-expired", level="verify",
             cert=chain(intermediate="expired", expired=True), expect=NOT_VERIFIED),
        dict(name="verify-wrong-name-expired-intermediate", level="verify",
             cert={"dns": ["other.example.test"], "intermediate": "expired"}, expect=NOT_VERIFIED),
        dict(name="verify-wrong-name-untrusted-root-in-chain", level="verify",
             cert={"dns": ["other.example.test"], "intermediate": "untrusted", "with_root": True},
             expect=NOT_VERIFIED),
        dict(name="verify-wrong-name-untrusted-intermediate-without-root", level="verify",
             cert={"dns": ["other.example.test"], "intermediate": "untrusted"}, expect=NOT_VERIFIED),
        dict(name="verify-expired-leaf-untrusted-root-in-chain", level="verify",
             cert=chain(intermediate="untrusted", with_root=True, expired=True), expect=NOT_VERIFIED),
        dict(name="verify-expired-leaf-pathlen0-over-another", level="verify",
             cert=chain(intermediate="pathlen0-over-another", expired=True), expect=NOT_VERIFIED),
        dict(name="verify-wrong-name-chain-of-11", level="verify",
             cert={"dns": ["other.example.test"], "intermediate": "chain:11"}, expect=NOT_VERIFIED),
    ],
    # The chain shapes of ChainShapes against a trust-anchor file (tafile=, which replaces
    # smtp_tls_CAfile) holding the root above the chain, the leaf's issuer or the leaf
    # itself, at verify and secure (the same outcomes), and against the leaf's
    # fingerprints. An anchor ends the chain: the CAs above it, their expiry and the
    # depth limit no longer count, nor does the validity of an anchoring leaf; names do.
    # FullTlsLines.
    "TrustAnchorChains": [
        *[dict(name=f"tafile-{level}-{anchor}-{shape}", cert=TA_SHAPES[shape],
               policy=[ta_policy(level, anchor, TA_SHAPES[shape])],
               expect=SENT if (anchor, shape) in TA_PASSES else NOT_VERIFIED)
          for level in ("verify", "secure") for anchor in ("root", "issuer", "leaf") for shape in TA_SHAPES],
        *[dict(name=f"tafile-verify-{anchor}-{name}", cert=cert, policy=[ta_policy("verify", anchor, cert)],
               expect=expect)
          for anchor, name, cert, expect in (
              ("top", "chain-of-11", TA_SHAPES["chain-of-11"], SENT),
              ("root", "chain-of-10", chain(intermediate="chain:10"), SENT),
              ("top", "chain-of-12", chain(intermediate="chain:12"), NOT_VERIFIED),
              ("issuer", "chain-of-12-with-root", chain(intermediate="chain:12", with_root=True), SENT),
              # "CA certificate verification failed ...: num=65:no matching DANE TLSA records"
              ("test-root", "untrusted-root-in-chain", TA_SHAPES["untrusted-root-in-chain"], NOT_VERIFIED),
              ("root", "untrusted-intermediate-without-root", chain(intermediate="untrusted"), SENT),
              # "CA certificate verification failed ...: num=25:path length constraint exceeded"
              ("root", "pathlen0-over-another", chain(intermediate="pathlen0-over-another"), NOT_VERIFIED),
              ("top", "pathlen0-over-another", chain(intermediate="pathlen0-over-another"), NOT_VERIFIED),
              ("issuer", "pathlen0-over-another", chain(intermediate="pathlen0-over-another"), SENT),
              ("issuer", "expired-leaf-expired-intermediate", chain(intermediate="expired", expired=True),
               NOT_VERIFIED),
              ("leaf", "expired-leaf-expired-intermediate", chain(intermediate="expired", expired=True), SENT),
              ("leaf", "not-yet-valid-leaf", chain(not_yet_valid=True), SENT),
              ("issuer", "not-yet-valid-intermediate", chain(intermediate="not-yet-valid"), SENT),
              ("root", "leaf-by-root-with-root", chain(by_root=True, with_root=True), SENT),
              ("leaf", "wrong-name-untrusted-root-in-chain",
               {"dns": ["mx1.other.test"], "intermediate": "untrusted", "with_root": True}, NOT_VERIFIED))],
        # the anchor as a bare public key (PEM PUBLIC KEY): the same outcomes as its certificate
        *[dict(name=f"tafile-verify-{anchor}-{shape}", cert=TA_SHAPES[shape],
               policy=[ta_policy("verify", anchor, TA_SHAPES[shape])],
               expect=SENT if (anchor.removesuffix("-key"), shape) in TA_PASSES else NOT_VERIFIED)
          for anchor in ("root-key", "issuer-key", "leaf-key") for shape in TA_SHAPES],
        *[dict(name=f"fingerprint-{kind}-{shape}", cert=TA_SHAPES[shape],
               policy=[f"example.test fingerprint match=$FP(mx1 {kind} sha256)"], expect=SENT)
          for kind in ("cert", "pkey") for shape in TA_SHAPES],
    ],
}

define_groups(globals(), {k: v for k, v in SCENARIOS.items() if k not in FULL_LINE_GROUPS})
for _group, _base in FULL_LINE_GROUPS.items():
    _made: dict = {}
    define_groups(_made, {_group: SCENARIOS[_group]})
    globals()[_group] = type(_group, (_base,), {
        k: v for k, v in vars(_made[_group]).items() if k.startswith("test_") or k == "__doc__"})

if __name__ == "__main__":
    unittest.main()

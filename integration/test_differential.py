"""Differential tests: every scenario below is delivered by a real Postfix 3.7 (the
oracle) and by tlsrelay in the same test world, and tlsrelay must decide exactly as
Postfix did: the same status, DSN and relay=, a reason that starts with Postfix's
reason (tlsrelay may append ": detail"), the same "<Adjective> TLS connection
established to ..." lines, and the same thing seen by the peers (which peers got a
STARTTLS, a TLS session, which SNI, how many messages).

The scenarios are data: one dict per row in SCENARIOS, grouped into TestCase classes
(GROUPS) so that each ctest entry stays well under its timeout. A row holds the
scenario (scenario.py's keys: peers, dns, policy, main, transport, ...) and "expect",
Postfix's outcome as postfix-tls-semantics.md predicts it (status, dsn[, reason
prefix]); that guard catches a scenario that does not test what it says (for example
a peer that did not start), so that "both agree" never means "both did nothing".

Shorthands in a row: "cert" (the mx1 peer's pki.leaf arguments, default a good
certificate for mx1.example.test; None = no certificate, so no STARTTLS), "behaviour"
(mx1's SmtpPeer options), "level" (smtp_tls_security_level), "sni" (the SNI the
peers must have seen). Fingerprint tokens $FP(peer cert|pkey digest [lower] [nocolon])
are replaced by the fingerprint of that peer's certificate in that form.

A row with "xfail": "<the exact difference>" is a known tlsrelay bug: the test is an
expectedFailure and the text names Postfix's line against tlsrelay's.
"""

from __future__ import annotations

import copy
import re
import ssl
import unittest

import pki
from scenario import compare, run_postfix, run_tlsrelay
from world import WorldTestCase

GOOD = {"dns": ["mx1.example.test"]}
TLS12 = {"tls_max_version": ssl.TLSVersion.TLSv1_2}
TLS13 = {"tls_min_version": ssl.TLSVersion.TLSv1_3}
# A peer that negotiates only anonymous (aNULL) suites, so TLS 1.2 at most.
ANON = {"tls_max_version": ssl.TLSVersion.TLSv1_2, "tls_ciphers": "aNULL:@SECLEVEL=0"}
# IP SANs for every address a peer can get (world.py: 127.0.1.N), for IP-literal next hops.
LOOPBACK_PEERS = tuple(f"127.0.1.{n}" for n in range(1, 255))
# A well-formed sha256 value that matches nothing.
NOMATCH = ":".join(["5A"] * 32)

SENT = ("sent", "2.0.0")
NOT_OFFERED = ("deferred", "4.7.4", "TLS is required, but was not offered by host mx1.example.test[{mx1.addr}]")
NOT_VERIFIED = ("deferred", "4.7.5", "Server certificate not verified")
HANDSHAKE = ("deferred", "4.7.5", "Cannot start TLS: handshake failure")
CONFIG = ("deferred", "4.7.5", "client TLS configuration problem")


def two_mx(first: dict, second: dict) -> dict:
    """mx1 (preference 10) and mx2 (preference 20) for example.test."""
    return {"peers": {"mx1": dict(names=["mx1.example.test"], **first),
                      "mx2": dict(names=["mx2.example.test"], **second)},
            "dns": [("example.test", "MX", "10 mx1.example.test."),
                    ("example.test", "MX", "20 mx2.example.test.")]}


# ----------------------------------------------------------------------------------------
# The scenario table
# ----------------------------------------------------------------------------------------

SCENARIOS: dict[str, list[dict]] = {
    # postfix-tls-semantics §1.3 A-C: STARTTLS missing, refused, handshake failure.
    "StarttlsFlow": [
        dict(name="may-no-starttls", level="may", cert=None, expect=SENT),
        dict(name="none-with-starttls-offered", level="none", expect=SENT),
        dict(name="encrypt-no-starttls", level="encrypt", cert=None, expect=NOT_OFFERED),
        dict(name="verify-no-starttls", level="verify", cert=None, expect=NOT_OFFERED),
        dict(name="secure-no-starttls", level="secure", cert=None, expect=NOT_OFFERED),
        dict(name="fingerprint-no-starttls", cert=None,
             policy=[f"example.test fingerprint match={NOMATCH}"], expect=NOT_OFFERED),
        dict(name="encrypt-starttls-stripped", level="encrypt", behaviour={"strip_starttls": True},
             expect=NOT_OFFERED),
        dict(name="may-starttls-454-plaintext", level="may",
             behaviour={"starttls_reply": "454 4.7.0 TLS not available due to local problem"},
             expect=SENT),
        dict(name="encrypt-starttls-454", level="encrypt",
             behaviour={"starttls_reply": "454 4.7.0 TLS not available due to local problem"},
             expect=("deferred", "4.7.0", "TLS is required, but host mx1.example.test[{mx1.addr}] "
                                          "refused to start TLS: 454 4.7.0 TLS not available due to local problem")),
        dict(name="verify-starttls-454", level="verify",
             behaviour={"starttls_reply": "454 4.7.0 TLS not available due to local problem"},
             expect=("deferred", "4.7.0", "TLS is required, but host mx1.example.test[{mx1.addr}] "
                                          "refused to start TLS: 454 4.7.0")),
        dict(name="encrypt-starttls-502-bounces", level="encrypt",
             behaviour={"starttls_reply": "502 5.5.1 Command not implemented"},
             expect=("bounced", "5.5.1", "TLS is required, but host mx1.example.test[{mx1.addr}] "
                                         "refused to start TLS: 502 5.5.1 Command not implemented")),
        dict(name="encrypt-handshake-broken", level="encrypt", behaviour={"tls_break": True},
             expect=HANDSHAKE),
        dict(name="may-handshake-broken-first-attempt-defers", level="may", behaviour={"tls_break": True},
             expect=HANDSHAKE),
        dict(name="verify-handshake-broken", level="verify", behaviour={"tls_break": True},
             expect=HANDSHAKE),
        dict(name="encrypt-policy-tls13-vs-tls12-peer", behaviour=TLS12,
             policy=["example.test encrypt protocols=>=TLSv1.3"], expect=HANDSHAKE),
        dict(name="may-policy-tls13-vs-tls12-peer", behaviour=TLS12,
             policy=["example.test may protocols=>=TLSv1.3"], expect=HANDSHAKE),
        dict(name="encrypt-main-mandatory-tls13-vs-tls12-peer", level="encrypt", behaviour=TLS12,
             main={"smtp_tls_mandatory_protocols": ">=TLSv1.3"}, expect=HANDSHAKE),
        dict(name="may-ignores-mandatory-protocols", level="may", behaviour=TLS12,
             main={"smtp_tls_mandatory_protocols": ">=TLSv1.3", "smtp_tls_protocols": ">=TLSv1"},
             expect=SENT),
        dict(name="encrypt-policy-protocols-exclusion", behaviour=TLS12,
             policy=["example.test encrypt protocols=!TLSv1.2:!TLSv1.1:!TLSv1"], expect=HANDSHAKE),
        dict(name="encrypt-bad-cipher-grade", policy=["example.test encrypt ciphers=bogus"],
             expect=HANDSHAKE),
    ],

    # §1.3 D-F: untrusted chains, wrong names, fingerprint mismatch, per level.
    "TrustAndNames": [
        dict(name="encrypt-good-chain-trusted", level="encrypt", expect=SENT),
        dict(name="may-self-signed-untrusted", level="may",
             cert={"dns": ["mx1.example.test"], "self_signed": True}, expect=SENT),
        dict(name="encrypt-self-signed-untrusted", level="encrypt",
             cert={"dns": ["mx1.example.test"], "self_signed": True}, expect=SENT),
        dict(name="verify-self-signed", level="verify",
             cert={"dns": ["mx1.example.test"], "self_signed": True}, expect=NOT_VERIFIED),
        dict(name="secure-self-signed", level="secure",
             cert={"dns": ["mx1.example.test"], "self_signed": True}, expect=NOT_VERIFIED),
        dict(name="verify-unknown-ca", level="verify",
             cert={"dns": ["mx1.example.test"], "unknown_ca": True}, expect=NOT_VERIFIED),
        dict(name="secure-unknown-ca", level="secure",
             cert={"dns": ["mx1.example.test"], "unknown_ca": True}, expect=NOT_VERIFIED),
        dict(name="verify-expired", level="verify",
             cert={"dns": ["mx1.example.test"], "expired": True}, expect=NOT_VERIFIED),
        dict(name="secure-expired", level="secure",
             cert={"dns": ["mx1.example.test"], "expired": True}, expect=NOT_VERIFIED),
        dict(name="verify-not-yet-valid", level="verify",
             cert={"dns": ["mx1.example.test"], "not_yet_valid": True}, expect=NOT_VERIFIED),
        dict(name="secure-not-yet-valid", level="secure",
             cert={"dns": ["mx1.example.test"], "not_yet_valid": True}, expect=NOT_VERIFIED),
        dict(name="verify-missing-intermediate", level="verify",
             cert={"dns": ["mx1.example.test"], "without_intermediate": True}, expect=NOT_VERIFIED),
        dict(name="secure-missing-intermediate", level="secure",
             cert={"dns": ["mx1.example.test"], "without_intermediate": True}, expect=NOT_VERIFIED),
        dict(name="may-expired-passes", level="may",
             cert={"dns": ["mx1.example.test"], "expired": True}, expect=SENT),
        dict(name="encrypt-expired-passes", level="encrypt",
             cert={"dns": ["mx1.example.test"], "expired": True}, expect=SENT),
        dict(name="encrypt-not-yet-valid-passes", level="encrypt",
             cert={"dns": ["mx1.example.test"], "not_yet_valid": True}, expect=SENT),
        dict(name="may-unknown-ca-passes", level="may",
             cert={"dns": ["mx1.example.test"], "unknown_ca": True}, expect=SENT),
        dict(name="encrypt-missing-intermediate-passes", level="encrypt",
             cert={"dns": ["mx1.example.test"], "without_intermediate": True}, expect=SENT),
        dict(name="may-wrong-name-trusted", level="may", cert={"dns": ["mx1.other.test"]}, expect=SENT),
        dict(name="encrypt-wrong-name-trusted", level="encrypt", cert={"dns": ["mx1.other.test"]},
             expect=SENT),
        dict(name="verify-wrong-name", level="verify", cert={"dns": ["mx1.other.test"]},
             expect=NOT_VERIFIED),
        dict(name="secure-wrong-name", level="secure", cert={"dns": ["mx1.other.test"]},
             expect=NOT_VERIFIED),
        dict(name="verify-expired-and-wrong-name", level="verify", cert={"dns": ["x.other.test"], "expired": True},
             expect=NOT_VERIFIED),
        dict(name="verify-unknown-ca-and-wrong-name", level="verify",
             cert={"dns": ["x.other.test"], "unknown_ca": True}, expect=NOT_VERIFIED),
    ],

    # §5: fingerprint forms, digests, lists, malformed values; no chain checks.
    "Fingerprints": [
        dict(name="fp-cert-sha256-upper-colons", policy=["example.test fingerprint match=$FP(mx1 cert sha256)"],
             expect=SENT),
        dict(name="fp-pkey-sha256", policy=["example.test fingerprint match=$FP(mx1 pkey sha256)"],
             expect=SENT),
        dict(name="fp-cert-sha256-lower-nocolons",
             policy=["example.test fingerprint match=$FP(mx1 cert sha256 lower nocolon)"], expect=SENT),
        dict(name="fp-pkey-sha256-lower-colons",
             policy=["example.test fingerprint match=$FP(mx1 pkey sha256 lower)"], expect=SENT),
        dict(name="fp-cert-md5", main={"smtp_tls_fingerprint_digest": "md5"},
             policy=["example.test fingerprint match=$FP(mx1 cert md5)"], expect=SENT),
        dict(name="fp-pkey-sha1-lower-nocolons", main={"smtp_tls_fingerprint_digest": "sha1"},
             policy=["example.test fingerprint match=$FP(mx1 pkey sha1 lower nocolon)"], expect=SENT),
        dict(name="fp-cert-sha512", main={"smtp_tls_fingerprint_digest": "sha512"},
             policy=["example.test fingerprint match=$FP(mx1 cert sha512 nocolon)"], expect=SENT),
        dict(name="fp-md5-value-under-sha256-digest-unusable",
             policy=["example.test fingerprint match=$FP(mx1 cert md5)"], expect=NOT_VERIFIED),
        dict(name="fp-mismatch", policy=[f"example.test fingerprint match={NOMATCH}"], expect=NOT_VERIFIED),
        dict(name="fp-pipe-list-second-matches",
             policy=[f"example.test fingerprint match={NOMATCH}|$FP(mx1 pkey sha256)"], expect=SENT),
        dict(name="fp-repeated-match-attributes-append",
             policy=[f"example.test fingerprint match={NOMATCH} match=$FP(mx1 cert sha256)"], expect=SENT),
        dict(name="fp-malformed-alongside-good",
             policy=["example.test fingerprint match=zz|$FP(mx1 cert sha256)"], expect=SENT),
        dict(name="fp-only-malformed-config-problem",
             policy=["example.test fingerprint match=zz|AB::CD"], expect=CONFIG),
        dict(name="fp-leading-colon-malformed-config-problem",
             policy=["example.test fingerprint match=:AB:CD"], expect=CONFIG),
        dict(name="fp-from-main-fingerprint-cert-match", policy=["example.test fingerprint"],
             main={"smtp_tls_fingerprint_cert_match": "$FP(mx1 cert sha256)"}, expect=SENT),
        dict(name="fp-main-level-fingerprint", level="fingerprint",
             main={"smtp_tls_fingerprint_cert_match": f"{NOMATCH}, $FP(mx1 pkey sha256 lower)"}, expect=SENT),
        dict(name="fp-no-fingerprints-config-problem", policy=["example.test fingerprint"], expect=CONFIG),
        dict(name="fp-self-signed-expired-passes",
             cert={"dns": ["mx1.other.test"], "self_signed": True, "expired": True},
             policy=["example.test fingerprint match=$FP(mx1 cert sha256)"], expect=SENT),
        dict(name="fp-unknown-ca-wrong-name-passes", cert={"dns": ["other.test"], "unknown_ca": True},
             policy=["example.test fingerprint match=$FP(mx1 pkey sha256)"], expect=SENT),
        dict(name="fp-not-yet-valid-passes", cert={"dns": ["mx1.example.test"], "not_yet_valid": True},
             policy=["example.test fingerprint match=$FP(mx1 cert sha256)"], expect=SENT),
    ],

    # §4.1-§4.4: which names match at verify and secure.
    "NameMatching": [
        dict(name="verify-wildcard-one-label", level="verify", cert={"dns": ["*.example.test"]}, expect=SENT),
        dict(name="verify-wildcard-two-labels-no-match", level="verify", cert={"dns": ["*.example.test"]},
             peers={"mx1": {"names": ["a.b.example.test"], "cert": {"dns": ["*.example.test"]}}},
             dns=[("example.test", "MX", "10 a.b.example.test.")], expect=NOT_VERIFIED),
        dict(name="verify-wildcard-not-bare-domain", level="verify",
             peers={"mx1": {"names": ["example.test"], "cert": {"dns": ["*.example.test"]}}},
             dns=[], expect=NOT_VERIFIED),
        dict(name="secure-wildcard-matches-dot-nexthop", level="secure", cert={"dns": ["*.example.test"]},
             expect=SENT),
        dict(name="secure-nexthop-only-wildcard-no-match", cert={"dns": ["*.example.test"]},
             policy=["example.test secure match=nexthop"], expect=NOT_VERIFIED),
        dict(name="verify-cn-only", level="verify", cert={"cn": "mx1.example.test"}, expect=SENT),
        dict(name="verify-cn-only-wildcard", level="verify", cert={"cn": "*.example.test"}, expect=SENT),
        dict(name="verify-cn-only-wrong", level="verify", cert={"cn": "mx9.example.test"}, expect=NOT_VERIFIED),
        dict(name="verify-ip-san-only-plus-cn", level="verify",
             cert={"ips": ["192.0.2.1"], "cn": "mx1.example.test"}, expect=SENT),
        dict(name="verify-dns-san-hides-cn", level="verify",
             cert={"dns": ["other.example.net"], "cn": "mx1.example.test"}, expect=NOT_VERIFIED),
        dict(name="verify-san-case-insensitive", level="verify", cert={"dns": ["MX1.Example.TEST"]},
             expect=SENT),
        dict(name="verify-partial-wildcard-literal", level="verify", cert={"dns": ["mx*.example.test"]},
             expect=NOT_VERIFIED),
        dict(name="verify-single-label-wildcard-tld", level="verify",
             peers={"mx1": {"names": ["mx1.test"], "cert": {"dns": ["*.test"]}}},
             dns=[("example.test", "MX", "10 mx1.test.")], expect=NOT_VERIFIED),
        dict(name="secure-nexthop-match", cert={"dns": ["example.test"]},
             policy=["example.test secure match=nexthop"], expect=SENT),
        dict(name="secure-nexthop-vs-mx-name", cert={"dns": ["mx1.example.test"]},
             policy=["example.test secure match=nexthop"], expect=NOT_VERIFIED),
        dict(name="secure-dot-nexthop", cert={"dns": ["mx1.example.test"]},
             policy=["example.test secure match=dot-nexthop"], expect=SENT),
        dict(name="secure-dot-nexthop-not-bare", cert={"dns": ["example.test"]},
             policy=["example.test secure match=dot-nexthop"], expect=NOT_VERIFIED),
        dict(name="secure-hostname", peers={"mx1": {"names": ["mx.provider.test"],
                                                    "cert": {"dns": ["mx.provider.test"]}}},
             dns=[("example.test", "MX", "10 mx.provider.test.")],
             policy=["example.test secure match=hostname"], expect=SENT),
        dict(name="secure-default-other-provider-mx", level="secure",
             peers={"mx1": {"names": ["mx.provider.test"], "cert": {"dns": ["mx.provider.test"]}}},
             dns=[("example.test", "MX", "10 mx.provider.test.")], expect=NOT_VERIFIED),
        dict(name="verify-default-other-provider-mx", level="verify",
             peers={"mx1": {"names": ["mx.provider.test"], "cert": {"dns": ["mx.provider.test"]}}},
             dns=[("example.test", "MX", "10 mx.provider.test.")], expect=SENT),
        dict(name="verify-match-nexthop", cert={"dns": ["example.test"]},
             policy=["example.test verify match=nexthop"], expect=SENT),
        dict(name="verify-match-nexthop-vs-mx-cert", cert={"dns": ["mx1.example.test"]},
             policy=["example.test verify match=nexthop"], expect=NOT_VERIFIED),
        dict(name="verify-match-hostname", cert={"dns": ["mx1.example.test"]},
             policy=["example.test verify match=hostname"], expect=SENT),
        dict(name="secure-literal-dot-domain", cert={"dns": ["mx1.other.test"]},
             policy=["example.test secure match=.other.test"], expect=SENT),
        dict(name="secure-match-list-colons", cert={"dns": ["mx1.other.test"]},
             policy=["example.test secure match=nexthop:mx1.other.test"], expect=SENT),
        dict(name="verify-main-match-list", level="verify", cert={"dns": ["example.test"]},
             main={"smtp_tls_verify_cert_match": "hostname, nexthop"}, expect=SENT),
    ],

    # §1.5 next MX, relayhost and route keys, parent-domain entries, SNI.
    "RoutingAndKeys": [
        dict(name="nextmx-first-wrong-cert-second-ok", level="verify",
             **two_mx({"cert": {"dns": ["mx1.other.test"]}}, {"cert": {"dns": ["mx2.example.test"]}}),
             expect=SENT),
        dict(name="nextmx-first-no-starttls-second-ok", level="encrypt",
             **two_mx({}, {"cert": {"dns": ["mx2.example.test"]}}), expect=SENT),
        dict(name="nextmx-first-handshake-broken-second-ok", level="encrypt",
             **two_mx({"cert": GOOD, "behaviour": {"tls_break": True}}, {"cert": {"dns": ["mx2.example.test"]}}),
             expect=SENT),
        dict(name="nextmx-first-454-second-ok", level="encrypt",
             **two_mx({"cert": GOOD, "behaviour": {"starttls_reply": "454 4.7.0 TLS not available"}},
                      {"cert": {"dns": ["mx2.example.test"]}}), expect=SENT),
        dict(name="nextmx-first-502-bounces-no-next", level="encrypt",
             **two_mx({"cert": GOOD, "behaviour": {"starttls_reply": "502 5.5.1 Not implemented"}},
                      {"cert": {"dns": ["mx2.example.test"]}}),
             expect=("bounced", "5.5.1", "TLS is required, but host mx1.example.test[{mx1.addr}] refused")),
        dict(name="nextmx-both-fail-last-reason", level="secure",
             **two_mx({"cert": {"dns": ["mx1.other.test"]}}, {}),
             expect=("deferred", "4.7.4", "TLS is required, but was not offered by host "
                                          "mx2.example.test[{mx2.addr}]")),
        dict(name="relayhost-bracket-port-key", cert=None, main={"relayhost": "[mx1.example.test]:25"},
             dns=[], policy=["[mx1.example.test]:25 encrypt"], expect=NOT_OFFERED),
        dict(name="relayhost-bracket-port-vs-bracket-key", cert=None,
             main={"relayhost": "[mx1.example.test]:25"}, dns=[],
             policy=["[mx1.example.test] encrypt", "mx1.example.test encrypt"], expect=SENT),
        dict(name="relayhost-bracket-key-secure-nexthop", main={"relayhost": "[mx1.example.test]"}, dns=[],
             policy=["[mx1.example.test] secure"], expect=SENT),
        dict(name="relayhost-bracket-vs-host-key", cert=None, main={"relayhost": "[mx1.example.test]"},
             dns=[], policy=["mx1.example.test encrypt"], expect=SENT),
        dict(name="relayhost-host-key-mx-lookup", cert=None, main={"relayhost": "mx1.example.test"}, dns=[],
             policy=["mx1.example.test encrypt"], expect=NOT_OFFERED),
        dict(name="relayhost-bracket-secure-wrong-name", cert={"dns": ["relay.other.test"]},
             main={"relayhost": "[mx1.example.test]:25"}, dns=[],
             policy=["[mx1.example.test]:25 secure match=nexthop"], expect=NOT_VERIFIED),
        dict(name="transport-bracket-nexthop-verify", dns=[],
             transport={"example.test": "smtp:[mx1.example.test]:25"},
             policy=["[mx1.example.test]:25 verify"], expect=SENT),
        dict(name="parent-dot-entry-matches-subdomain", cert=None, recipients=["user@sub.example.test"],
             dns=[("sub.example.test", "MX", "10 mx1.example.test.")],
             policy=[".example.test encrypt"], expect=NOT_OFFERED),
        dict(name="parent-dot-entry-not-the-domain-itself", cert=None,
             policy=[".example.test encrypt"], expect=SENT),
        dict(name="parent-bare-domain-not-for-subdomain", cert=None, recipients=["user@sub.example.test"],
             dns=[("sub.example.test", "MX", "10 mx1.example.test.")],
             policy=["example.test encrypt"], expect=SENT),
        dict(name="parent-exact-entry-wins", cert=None, recipients=["user@sub.example.test"],
             dns=[("sub.example.test", "MX", "10 mx1.example.test.")],
             policy=[".example.test encrypt", "sub.example.test may"], expect=SENT),
        dict(name="parent-deeper-dot-entry", cert=None, recipients=["user@a.sub.example.test"],
             dns=[("a.sub.example.test", "MX", "10 mx1.example.test.")],
             policy=[".sub.example.test may", ".example.test encrypt"], expect=SENT),
        dict(name="policy-key-case-folded", cert=None, policy=["EXAMPLE.Test encrypt"], expect=NOT_OFFERED),
        dict(name="policy-none-overrides-main-secure", level="secure", cert={"dns": ["mx1.other.test"]},
             policy=["example.test none"], expect=SENT),
        dict(name="sni-servername-hostname", level="may", policy=["example.test may servername=hostname"],
             sni="mx1.example.test", expect=SENT),
        # as the MX record spells it (at dane, Postfix sends the TLSA base domain in lower case)
        dict(name="sni-servername-hostname-upper-case-mx", level="may", policy=["example.test may servername=hostname"],
             dns=[("example.test", "MX", "10 MX1.EXAMPLE.TEST.")], sni="MX1.EXAMPLE.TEST", expect=SENT),
        dict(name="sni-none-by-default", level="verify", sni=None, expect=SENT),
        dict(name="sni-servername-nexthop", policy=["example.test verify servername=nexthop"],
             sni="example.test", expect=SENT),
        dict(name="sni-main-literal", level="encrypt", main={"smtp_tls_servername": "sni.example.test"},
             sni="sni.example.test", expect=SENT),
    ],

    # §3.2-§3.3: malformed policy entries defer 4.7.5 relay=none; "none" ignores attributes.
    "PolicyTable": [
        dict(name="invalid-unknown-level", policy=["example.test bogus"], expect=CONFIG),
        dict(name="invalid-match-at-encrypt", policy=["example.test encrypt match=hostname"], expect=CONFIG),
        dict(name="invalid-match-at-may", policy=["example.test may match=hostname"], expect=CONFIG),
        dict(name="invalid-tafile-at-encrypt", policy=["example.test encrypt tafile={ca}"], expect=CONFIG),
        dict(name="invalid-unknown-attribute", policy=["example.test encrypt foo=bar"], expect=CONFIG),
        dict(name="invalid-repeated-ciphers", policy=["example.test encrypt ciphers=high ciphers=medium"],
             expect=CONFIG),
        dict(name="invalid-repeated-protocols", policy=["example.test may protocols=>=TLSv1 protocols=>=TLSv1.2"],
             expect=CONFIG),
        dict(name="invalid-empty-match", policy=["example.test verify match="], expect=CONFIG),
        dict(name="invalid-empty-ciphers", policy=["example.test encrypt ciphers="], expect=CONFIG),
        dict(name="invalid-token-without-equals", policy=["example.test encrypt high"], expect=CONFIG),
        dict(name="invalid-halfdane-level", policy=["example.test halfdane"], expect=CONFIG),
        dict(name="invalid-servername", policy=["example.test encrypt servername=-bad-.test"], expect=CONFIG),
        dict(name="invalid-missing-tafile", policy=["example.test verify tafile=/nonexistent/ta.pem"],
             expect=CONFIG),
        dict(name="invalid-entry-all-mx-skipped", policy=["example.test encrypt bogus=1"],
             **two_mx({"cert": GOOD}, {"cert": {"dns": ["mx2.example.test"]}}), expect=CONFIG),
        dict(name="none-ignores-attributes", cert=GOOD,
             policy=["example.test none ciphers=high match=hostname foo=bar x"], expect=SENT),
        dict(name="level-name-case-insensitive", cert=None, policy=["example.test ENCRYPT"], expect=NOT_OFFERED),
        dict(name="attribute-name-case-insensitive", cert={"dns": ["example.test"]},
             policy=["example.test secure MATCH=nexthop"], expect=SENT),
        dict(name="policy-comma-separated", cert={"dns": ["example.test"]},
             policy=["example.test secure, match=nexthop, servername=hostname"], sni="mx1.example.test",
             expect=SENT),
    ],
    # §1.2/§8: cipher grades, anonymous suites, protocol lists.
    "CiphersAndProtocols": [
        dict(name="may-anonymous-cipher", level="may", behaviour=ANON, expect=SENT),
        dict(name="encrypt-anonymous-cipher", level="encrypt", behaviour=ANON, expect=SENT),
        dict(name="encrypt-ciphers-high-anonymous", behaviour=ANON,
             policy=["example.test encrypt ciphers=high"], expect=SENT),
        dict(name="verify-anonymous-only-peer", level="verify", behaviour=ANON, expect=HANDSHAKE),
        dict(name="secure-anonymous-only-peer", level="secure", behaviour=ANON, expect=HANDSHAKE),
        dict(name="fingerprint-anonymous-only-peer", behaviour=ANON,
             policy=["example.test fingerprint match=$FP(mx1 cert sha256)"], expect=HANDSHAKE),
        dict(name="encrypt-exclude-anull-vs-anonymous-peer", behaviour=ANON,
             policy=["example.test encrypt exclude=aNULL"], expect=HANDSHAKE),
        dict(name="may-main-exclude-anull-vs-anonymous-peer", level="may", behaviour=ANON,
             main={"smtp_tls_exclude_ciphers": "aNULL"}, expect=HANDSHAKE),
        dict(name="encrypt-invalid-protocol-list", policy=["example.test encrypt protocols=TLSv9"],
             expect=HANDSHAKE),
        dict(name="may-invalid-protocol-list", policy=["example.test may protocols=TLSv9"], expect=HANDSHAKE),
        dict(name="encrypt-include-list-tls12-vs-tls13-peer", behaviour=TLS13,
             policy=["example.test encrypt protocols=TLSv1.2"], expect=HANDSHAKE),
        dict(name="encrypt-at-most-tls12", policy=["example.test encrypt protocols=<=TLSv1.2"], expect=SENT),
        dict(name="encrypt-empty-protocols-all", policy=["example.test encrypt protocols="], expect=SENT),
        dict(name="may-protocols-hex-floor", behaviour=TLS12,
             policy=["example.test may protocols=>=0x0304"], expect=HANDSHAKE),
        dict(name="encrypt-exclusion-gap-caps-range-below-tls13", behaviour=TLS13,
             policy=["example.test encrypt protocols=!TLSv1.2"], expect=HANDSHAKE),
        dict(name="nextmx-may-first-handshake-broken", level="may",
             **two_mx({"cert": GOOD, "behaviour": {"tls_break": True}}, {"cert": {"dns": ["mx2.example.test"]}}),
             expect=SENT),
    ],

    # §7 tafile and dane without DNSSEC, CNAME'd MX names, IP literals, mixed domains.
    "AnchorsAndRouting": [
        dict(name="tafile-root-verify", policy=["example.test verify tafile=$PATH(root)"], expect=SENT),
        dict(name="tafile-intermediate-secure", policy=["example.test secure tafile=$PATH(intermediate)"],
             expect=SENT),
        dict(name="tafile-other-root-ignores-cafile", policy=["example.test verify tafile=$PATH(unknown-root)"],
             expect=NOT_VERIFIED),
        dict(name="tafile-self-signed-leaf-anchor", cert={"dns": ["mx1.example.test"], "self_signed": True},
             policy=["example.test verify tafile=$PATH(mx1)"], expect=SENT),
        dict(name="tafile-self-signed-leaf-anchor-wrong-name",
             cert={"dns": ["mx1.other.test"], "self_signed": True},
             policy=["example.test secure tafile=$PATH(mx1)"], expect=NOT_VERIFIED),
        dict(name="tafile-expired-leaf-anchor", cert={"dns": ["mx1.example.test"], "self_signed": True,
                                                      "expired": True},
             policy=["example.test secure tafile=$PATH(mx1) match=hostname"], expect=SENT),
        dict(name="dane-without-dnssec-is-may", level="dane", cert=None, expect=SENT),
        dict(name="dane-policy-without-dnssec-is-may", policy=["example.test dane"],
             cert={"dns": ["mx1.other.test"]}, expect=SENT),
        dict(name="dane-only-without-dnssec-config-problem", policy=["example.test dane-only"], expect=CONFIG),
        dict(name="cname-mx-hostname-is-mx-name", level="verify",
             dns=[("example.test", "MX", "10 alias.example.test."),
                  ("alias.example.test", "CNAME", "mx1.example.test.")], expect=NOT_VERIFIED),
        dict(name="cname-mx-cert-for-mx-name", cert={"dns": ["alias.example.test"]},
             policy=["example.test verify servername=hostname"],
             dns=[("example.test", "MX", "10 alias.example.test."),
                  ("alias.example.test", "CNAME", "mx1.example.test.")], sni="alias.example.test", expect=SENT),
        dict(name="uppercase-recipient-domain-secure-nexthop", recipients=["user@Example.TEST"],
             cert={"dns": ["example.test"]}, policy=["example.test secure match=nexthop"], expect=SENT),
        dict(name="two-domains-one-message",
             recipients=["a@example.test", "b@other.test"],
             peers={"mx1": {"names": ["mx1.example.test"]},
                    "mx2": {"names": ["mx2.other.test"], "cert": {"dns": ["mx2.other.test"]}}},
             dns=[("example.test", "MX", "10 mx1.example.test."), ("other.test", "MX", "10 mx2.other.test.")],
             policy=["example.test encrypt", "other.test secure"], expect=NOT_OFFERED),
        dict(name="transport-domain-nexthop-secure", transport={"example.test": "smtp:provider.test"},
             peers={"mx1": {"names": ["mx1.provider.test"], "cert": {"dns": ["mx1.provider.test"]}}},
             dns=[("provider.test", "MX", "10 mx1.provider.test.")],
             policy=["provider.test secure", "example.test encrypt match=bogus"], expect=SENT),
        dict(name="ip-literal-encrypt", transport={"example.test": "smtp:[{mx1.addr}]"}, dns=[],
             level="encrypt", expect=SENT),
        dict(name="ip-literal-verify-dns-cert", transport={"example.test": "smtp:[{mx1.addr}]"}, dns=[],
             level="verify", expect=NOT_VERIFIED),
        dict(name="ip-literal-verify-ip-san", transport={"example.test": "smtp:[{mx1.addr}]"}, dns=[],
             level="verify", cert={"dns": ["mx1.example.test"], "ips": LOOPBACK_PEERS}, expect=SENT),
        dict(name="ip-literal-secure-ip-san-dot-nexthop", transport={"example.test": "smtp:[{mx1.addr}]"},
             dns=[], level="secure", cert={"dns": ["mx1.example.test"], "ips": LOOPBACK_PEERS},
             expect=NOT_VERIFIED),
        dict(name="ip-literal-policy-key", transport={"example.test": "smtp:[{mx1.addr}]"}, dns=[], cert=None,
             policy=["[{mx1.addr}] encrypt"],
             expect=("deferred", "4.7.4", "TLS is required, but was not offered by host {mx1.addr}[{mx1.addr}]")),
        dict(name="policy-comments-and-continuation", cert={"dns": ["example.test"]},
             policy=["# a comment", "example.test secure", "    match=nexthop", ""], expect=SENT),
        dict(name="main-fingerprint-list-pipe-not-separator", policy=["example.test fingerprint"],
             main={"smtp_tls_fingerprint_cert_match": f"{NOMATCH}|$FP(mx1 cert sha256)"}, expect=CONFIG),
        dict(name="fp-wrong-length-plus-good", policy=["example.test fingerprint match=$FP(mx1 cert md5)|"
                                                       "$FP(mx1 cert sha256)"], expect=SENT),
        dict(name="secure-main-cert-match-nexthop", level="secure", cert={"dns": ["mx1.example.test"]},
             main={"smtp_tls_secure_cert_match": "nexthop"}, expect=NOT_VERIFIED),
        dict(name="verify-trailing-dot-literal", cert={"dns": ["mx1.example.test"]},
             policy=["example.test verify match=mx1.example.test."], expect=NOT_VERIFIED),
        dict(name="secure-dot-literal-not-bare", cert={"dns": ["example.test"]},
             policy=["example.test secure match=.example.test"], expect=NOT_VERIFIED),
    ],
    # STARTTLS reply texts and DSNs, EHLO keyword case, next-hop keys with ports, names.
    "RepliesAndKeys": [
        dict(name="encrypt-starttls-454-no-enhanced-code", level="encrypt",
             behaviour={"starttls_reply": "454 TLS not available"},
             expect=("deferred", "4.0.0", "TLS is required, but host mx1.example.test[{mx1.addr}] "
                                          "refused to start TLS: 454 TLS not available")),
        dict(name="encrypt-starttls-554-no-enhanced-code", level="encrypt",
             behaviour={"starttls_reply": "554 Go away"}, expect=("bounced", "5.0.0")),
        dict(name="encrypt-starttls-454-class-mismatch", level="encrypt",
             behaviour={"starttls_reply": "454 5.7.0 odd code"}, expect=("deferred", "4.0.0")),
        dict(name="encrypt-starttls-multiline-454", level="encrypt",
             behaviour={"starttls_reply": "454-4.7.0 first line\r\n454 4.7.0 second line"},
             expect=("deferred", "4.7.0", "TLS is required, but host mx1.example.test[{mx1.addr}] "
                                          "refused to start TLS: 454")),
        dict(name="encrypt-lowercase-starttls-keyword", level="encrypt",
             behaviour={"replies": {"EHLO": "250-mx1.example.test\r\n250-starttls\r\n250 8BITMIME"}},
             expect=SENT),
        dict(name="relayhost-domain-port-key-not-domain", cert=None, main={"relayhost": "example.test:25"},
             policy=["example.test encrypt"], expect=SENT),
        dict(name="relayhost-domain-port-key", cert=None, main={"relayhost": "example.test:25"},
             policy=["example.test:25 encrypt"], expect=NOT_OFFERED),
        dict(name="relayhost-domain-port-secure-nexthop", main={"relayhost": "example.test:25"},
             cert={"dns": ["example.test"]}, policy=["example.test:25 secure match=nexthop"], expect=SENT),
        dict(name="relayhost-service-name-port-key", cert=None, main={"relayhost": "[mx1.example.test]:smtp"},
             dns=[], policy=["[mx1.example.test]:smtp encrypt"], expect=NOT_OFFERED),
        dict(name="mx-name-case-from-dns", level="verify",
             dns=[("example.test", "MX", "10 MX1.Example.TEST.")], expect=SENT),
        dict(name="match-keywords-case-insensitive", cert={"dns": ["mx1.example.test"]},
             policy=["example.test secure match=NEXTHOP:Dot-Nexthop"], expect=SENT),
        dict(name="policy-servername-literal", policy=["example.test encrypt servername=sni.other.test"],
             sni="sni.other.test", expect=SENT),
        dict(name="fp-sha256-value-under-sha1-digest", main={"smtp_tls_fingerprint_digest": "sha1"},
             policy=["example.test fingerprint match=$FP(mx1 cert sha256)"], expect=NOT_VERIFIED),
        dict(name="nextmx-three-hosts-last-reason",  level="verify",
             peers={"mx1": {"names": ["mx1.example.test"], "cert": {"dns": ["wrong.test"]}},
                    "mx2": {"names": ["mx2.example.test"], "cert": {"dns": ["mx2.example.test"]},
                            "behaviour": {"tls_break": True}},
                    "mx3": {"names": ["mx3.example.test"], "cert": {"dns": ["mx3.example.test"]},
                            "behaviour": {"starttls_reply": "454 4.7.0 later"}}},
             dns=[("example.test", "MX", "10 mx1.example.test."), ("example.test", "MX", "20 mx2.example.test."),
                  ("example.test", "MX", "30 mx3.example.test.")],
             expect=("deferred", "4.7.0", "TLS is required, but host mx3.example.test[{mx3.addr}] refused")),
        dict(name="nextmx-first-fingerprint-mismatch", policy=["example.test fingerprint match=$FP(mx2 pkey sha256)"],
             **two_mx({"cert": GOOD}, {"cert": {"dns": ["mx2.example.test"]}}), expect=SENT),
    ],
}


# ----------------------------------------------------------------------------------------
# Running a row
# ----------------------------------------------------------------------------------------

ROW_ONLY = ("expect", "cert", "behaviour", "level", "sni", "xfail", "own_size", "wire")
FP_RX = re.compile(r"\$FP\((\w+) (cert|pkey) (\w+)((?: \w+)*)\)")
PATH_RX = re.compile(r"\$PATH\(([\w-]+)\)")
ADJ_RX = re.compile(r"\b(Anonymous|Untrusted|Trusted|Verified) TLS connection established to (\S+?):(\d+):")


def make_scenario(row: dict) -> dict:
    """The scenario.py dict of a row: defaults filled in, shorthands applied."""
    row = copy.deepcopy(row)
    sc = {k: v for k, v in row.items() if k not in ROW_ONLY}
    sc.setdefault("recipients", ["user@example.test"])
    if "peers" not in sc:
        cert = row.get("cert", GOOD)
        sc["peers"] = {"mx1": {"names": ["mx1.example.test"], "cert": cert,
                               "behaviour": row.get("behaviour", {})}}
    sc.setdefault("dns", [("example.test", "MX", "10 mx1.example.test.")])
    main = dict(sc.get("main", {}))
    if "level" in row:
        main["smtp_tls_security_level"] = row["level"]
    sc["main"] = main

    def fp(m: re.Match) -> str:
        peer, kind, digest, flags = m.group(1), m.group(2), m.group(3), m.group(4).split()
        leaf = pki.get_pki().leaf(**sc["peers"][peer]["cert"])
        value = (leaf.fp if kind == "cert" else leaf.pkey_fp)[digest]
        if "lower" in flags:
            value = value.lower()
        if "nocolon" in flags:
            value = value.replace(":", "")
        return value

    def path(m: re.Match) -> str:
        what, p = m.group(1), pki.get_pki()
        if what in sc["peers"]:
            return str(p.leaf(**sc["peers"][what]["cert"]).cert_path)
        return str({"root": p.root, "intermediate": p.intermediate,
                    "unknown-root": p.unknown_root}[what].cert_path)

    def expand(text: str) -> str:
        return PATH_RX.sub(path, FP_RX.sub(fp, text))

    sc["policy"] = [expand(line) for line in sc.get("policy", [])]
    sc["main"] = {k: expand(str(v)) for k, v in main.items()}
    return sc


def tls_lines(outcome) -> list[tuple[str, str]]:
    """(adjective, host[{peer.addr}]:port) of every TLS summary line, in order."""
    out = []
    for m in ADJ_RX.finditer(outcome.log):
        where = f"{m.group(2)}:{m.group(3)}"
        for name, addr in outcome.addresses.items():
            where = re.sub(rf"(?<![\d.]){re.escape(addr)}(?![\d])", f"{{{name}.addr}}", where)
        out.append((m.group(1), where))
    return out


VERIFY_RX = re.compile(r"\b((?:server |CA )?certificate verification failed for \S+: .*)$", re.M)


def verify_lines(outcome) -> list[str]:
    """Postfix's certificate-trouble lines (tls_verify.c), addresses as {peer.addr}."""
    out = []
    for m in VERIFY_RX.finditer(outcome.log):
        line = m.group(1)
        for name, addr in outcome.addresses.items():
            line = re.sub(rf"(?<![\d.]){re.escape(addr)}(?![\d])", f"{{{name}.addr}}", line)
        out.append(line)
    return out


def peer_view(outcome) -> dict:
    """What each peer saw: per session (STARTTLS sent, TLS up, version, SNI), and messages."""
    view = {}
    for name, peer in outcome.peers.items():
        sessions = [("STARTTLS" in [c.upper() for c in s.commands], s.tls, s.tls_version, s.sni)
                    for s in peer.sessions]
        view[name] = {"sessions": sessions, "messages": len(peer.messages)}
    return view


def wire_view(outcome) -> dict:
    """What each peer received on the wire: the MAIL commands (the SIZE= value masked:
    each engine counts its own copy, see mask_own_size) and per message its Content-*
    header lines in order and its body. Other headers differ by engine (trace headers,
    Postfix's added Message-Id and Date)."""
    view = {}
    for name, peer in outcome.peers.items():
        mails = [re.sub(r"(?i)\bSIZE=\d+", "SIZE=N", c) for s in peer.sessions for c in s.commands
                 if c.upper().startswith("MAIL ")]
        messages = []
        for m in peer.messages:
            head, _, body = m.data.partition(b"\r\n\r\n")
            fields = re.split(rb"\r\n(?![ \t])", head)
            messages.append(([f for f in fields if f.lower().startswith(b"content-")], body))
        view[name] = {"MAIL": mails, "messages": messages}
    return view


SIZE_REASON_RX = re.compile(r"^message size (\d+) exceeds size limit (\d+) of server ")


def mask_own_size(outcome) -> list[str]:
    """Each engine names the size of its own copy of the message, and the copies differ
    by each one's trace headers (Postfix adds Received, Message-Id and Date, tlsrelay a
    Received of another length). So in a "message size N exceeds size limit L" reason,
    N is checked against L on each side and then masked; the rest is compared as usual.
    Returns the problems found."""
    problems = []
    for st in outcome.statuses:
        m = SIZE_REASON_RX.match(st["reason"])
        if not m:
            continue
        if int(m.group(1)) <= int(m.group(2)):
            problems.append(f"{outcome.engine}: {st['reason']!r}: the size is not above the limit")
        st["reason"] = st["reason"][:m.start(1)] + "N" + st["reason"][m.end(1):]
    return problems


class DifferentialCase(WorldTestCase):
    """Runs one row through Postfix and tlsrelay and compares."""

    def run_row(self, row: dict) -> None:
        sc = make_scenario(row)
        sc["name"] = row["name"]
        oracle = run_postfix(sc, self.world)
        # Postfix is done with its peers: they leave their addresses (::1 exists once)
        # before tlsrelay's peers take them. What they recorded stays.
        for peer in oracle.peers.values():
            peer.stop()
        ours = run_tlsrelay(sc, self.world)
        if row.get("own_size"):
            self.assertEqual(mask_own_size(oracle) + mask_own_size(ours), [], "message sizes")
        ctx = (f"\n--- postfix log ---\n{oracle.log}\n--- tlsrelay log ---\n{ours.log}\n"
               f"--- postfix statuses ---\n{oracle.normalised()}\n--- tlsrelay statuses ---\n{ours.normalised()}")
        # The guard: Postfix did what the spec says this scenario is about.
        self.assertEqual(len(oracle.statuses), len(sc["recipients"]), ctx)
        pf = oracle.normalised()[0]
        status, dsn, *reason = row["expect"]
        self.assertEqual((pf["status"], pf["dsn"]), (status, dsn), "oracle guard" + ctx)
        if reason:
            self.assertTrue(pf["reason"].startswith(reason[0]),
                            f"oracle guard: {pf['reason']!r} !^ {reason[0]!r}" + ctx)
        # The promise: the same decision.
        self.assertEqual(compare(oracle, ours), [], ctx)
        self.assertEqual(tls_lines(ours), tls_lines(oracle), "TLS summary lines" + ctx)
        self.assertEqual(peer_view(ours), peer_view(oracle), "what the peers saw" + ctx)
        self.assertEqual(verify_lines(ours), verify_lines(oracle), "certificate verification lines" + ctx)
        if row.get("wire"):
            self.assertEqual(wire_view(ours), wire_view(oracle), "what the peers received" + ctx)
        if "sni" in row:
            for s in oracle.peers["mx1"].sessions:
                if s.tls:
                    self.assertEqual(s.sni, row["sni"], "oracle guard: SNI" + ctx)


def _test(row: dict):
    def test(self):
        self.run_row(row)
    test.__doc__ = f"{row['name']}: Postfix and tlsrelay agree (expected {row['expect'][0]} {row['expect'][1]})."
    if row.get("xfail"):
        test = unittest.expectedFailure(test)
    return test


def define_groups(namespace: dict, scenarios: dict[str, list[dict]], kind: str = "Differential") -> None:
    """One TestCase class per group of rows, one test per row, put into namespace
    (a module's globals()) so that ctest can name each class."""
    for group, rows in scenarios.items():
        attrs = {"__doc__": f"{kind} scenarios: {group}."}
        for i, row in enumerate(rows):
            attrs[f"test_{i:02d}_{re.sub(r'[^0-9A-Za-z]+', '_', row['name'])}"] = _test(row)
        namespace[group] = type(group, (DifferentialCase,), attrs)


define_groups(globals(), SCENARIOS)

GROUPS = list(SCENARIOS)

if __name__ == "__main__":
    unittest.main()

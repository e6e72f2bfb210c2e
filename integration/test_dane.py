"""DANE (RFC 7672) differential tests: each row is delivered by Postfix 3.7 with
`smtp_dns_support_level = dnssec` and by tlsrelay with `[dns] dnssec = true`, both
trusting the AD bit of the world's DnsServer (`dns_ad`: it plays the validating
resolver; Postfix's resolv.conf has `options trust-ad`). Names in `dns_insecure` are
answered without AD, as a validating resolver answers an unsigned zone.

The rows and the comparison are test_differential.py's (make_scenario, DifferentialCase):
the same status, DSN, relay, reason prefix, TLS adjective lines, verification lines and
what the peers saw (STARTTLS, TLS, SNI). TLSA rdata comes from the test PKI
(pki.Cert.tlsa(usage, selector, mtype)). DaneMore's rows also compare each "... TLS
connection established" line in full (test_differential_audit.FullTlsLines).

postfix-tls-semantics.md §7; Debian's Postfix 3.7.11 has
smtp_tls_dane_insecure_mx_policy = ${{$smtp_tls_security_level} == {dane} ? {dane} : {may}}:
an insecure MX RRset gives "halfdane" (adjective Trusted) when the main level is dane,
and plain may when dane comes from the policy table.
"""

from __future__ import annotations

import re
import ssl
import unittest

import pki
import test_differential_audit
from test_differential import CONFIG, HANDSHAKE, NOT_OFFERED, NOT_VERIFIED, SENT, TLS12, define_groups
from world import SmtpPeer, WorldTestCase

P = pki.get_pki()
MX1 = {"dns": ["mx1.example.test"]}
LEAF = P.leaf(**MX1)
OTHER = P.leaf(dns=["other.test"])             # a certificate the TLSA records do not name
EXPIRED = {"dns": ["mx1.example.test"], "expired": True}
TLSA_NAME = "_25._tcp.mx1.example.test"
DNSSEC = {"smtp_dns_support_level": "dnssec"}


def tlsa(cert: pki.Cert, usage: int, selector: int, mtype: int, name: str = TLSA_NAME):
    return (name, "TLSA", cert.tlsa(usage, selector, mtype))


MX = ("example.test", "MX", "10 mx1.example.test.")


def dane(name: str, expect, *, level: str | None = "dane", records=(), **row) -> dict:
    """A row with DNSSEC on, the AD bit set, example.test MX mx1 and the TLSA records."""
    r = {"name": name, "expect": expect, "dns_ad": True, "dns": [MX, *records]}
    r.update(row)
    r["main"] = {**DNSSEC, **row.get("main", {})}
    if level:
        r["level"] = level
    return r


def lookup_fail(reason: str):
    return ("deferred", "4.7.5", reason)


# DaneMore's shapes
WITH_ROOT = {"dns": ["mx1.example.test"], "with_root": True}           # leaf + intermediate + root
LEAF_ONLY = {"dns": ["mx1.example.test"], "without_intermediate": True}
SELF_SIGNED = {"dns": ["mx1.example.test"], "self_signed": True}
RSA = {"dns": ["mx1.example.test"], "key": "rsa"}
MX2_LEAF = P.leaf(dns=["mx2.example.test"])
TLSA_MX2 = "_25._tcp.mx2.example.test"
TLSA_587 = "_587._tcp.mx1.example.test"
RSA_PSS = {"dns": ["mx1.example.test"], "key": "rsa-pss"}
ED25519 = {"dns": ["mx1.example.test"], "key": "ed25519"}
CRITICAL = {"dns": ["mx1.example.test"], "unknown_critical": True}
CLIENT_AUTH = {"dns": ["mx1.example.test"], "server_auth": False, "client_auth": True}

# the MX record names MX1.EXAMPLE.TEST: both log relay=MX1.EXAMPLE.TEST[..], and a TLS line
# and an SNI for mx1.example.test


def odd_ta(kind: str):
    """A DANE-TA(2) cert sha256 record for one of pki.INTERMEDIATES."""
    return tlsa(P.odd_intermediate(kind), 2, 0, 1)


def shape(dns: str = "mx1.example.test", **cert) -> dict:
    """pki.leaf arguments of a DaneChains chain shape, for the name dns."""
    return {"dns": [dns], **cert}


def issuer(kind: str) -> pki.Cert:
    """The leaf's issuing CA of pki.leaf(intermediate=kind)."""
    return P.intermediate_chain(kind)[0]


def top(kind: str) -> pki.Cert:
    """The CA right under the root of pki.leaf(intermediate=kind)."""
    return P.intermediate_chain(kind)[-1]


def ee(cert: dict):
    """A DANE-EE(3) SPKI sha256 record for pki.leaf(**cert)."""
    return tlsa(P.leaf(**cert), 3, 1, 1)


WRONG = "mx1.other.test"   # a name neither the MX host nor the next hop matches


# a TLS 1.2 peer with AES128 suites only
AES128_ONLY = {"tls_max_version": ssl.TLSVersion.TLSv1_2, "tls_ciphers": "AES128"}


def port_587(*records, how: str = "relayhost") -> dict:
    """mx1 listening on port 587 only, reached as relayhost (or transport) [mx1.example.test]:587."""
    out = {"peers": {"mx1": {"names": ["mx1.example.test"], "cert": MX1, "behaviour": {"port": 587}}},
           "dns": list(records)}
    if how == "relayhost":
        out["main"] = {"relayhost": "[mx1.example.test]:587"}
    else:
        out["transport"] = {"example.test": "smtp:[mx1.example.test]:587"}
    return out


def two_mx_dane(*records) -> dict:
    """example.test MX 10 mx1, MX 20 mx2 (good certificates for their names) and records."""
    return {"peers": {"mx1": {"names": ["mx1.example.test"], "cert": MX1},
                      "mx2": {"names": ["mx2.example.test"], "cert": {"dns": ["mx2.example.test"]}}},
            "dns": [MX, ("example.test", "MX", "20 mx2.example.test."), *records]}


TLSA_ERROR = lookup_fail("TLSA lookup error for mx1.example.test:25")
NO_TLSA = lookup_fail("no TLSA records found")
UNUSABLE = lookup_fail("TLSA records unusable")
NON_DNSSEC = lookup_fail("non DNSSEC destination")

SCENARIOS: dict[str, list[dict]] = {
    # §7 Verification: DANE-EE(3) matches the leaf or its key, ignoring names and expiry;
    # DANE-TA(2) needs the chain to reach the anchor and a name match.
    "DaneVerification": [
        dane("dane-ee-spki-sha256", SENT, records=[tlsa(LEAF, 3, 1, 1)], sni="mx1.example.test"),
        dane("dane-ee-cert-sha512", SENT, records=[tlsa(LEAF, 3, 0, 2)]),
        dane("dane-ee-spki-full", SENT, records=[tlsa(LEAF, 3, 1, 0)]),
        dane("dane-ee-ignores-names", SENT, cert={"dns": ["other.test"]}, records=[tlsa(OTHER, 3, 1, 1)]),
        dane("dane-ee-ignores-expiry", SENT, cert=EXPIRED, records=[tlsa(P.leaf(**EXPIRED), 3, 1, 1)]),
        dane("dane-ta-intermediate-cert", SENT, records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("dane-ta-intermediate-spki", SENT, records=[tlsa(P.intermediate, 2, 1, 1)]),
        dane("dane-ta-wrong-name", NOT_VERIFIED, cert={"dns": ["other.test"]},
             records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("dane-ta-nexthop-name", SENT, cert={"dns": ["example.test"]},
             records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("dane-ta-root-not-sent", NOT_VERIFIED, records=[tlsa(P.root, 2, 0, 1)]),
        dane("dane-ta-unknown-root", NOT_VERIFIED, records=[tlsa(P.unknown_root, 2, 0, 1)]),
        dane("dane-tlsa-mismatch", NOT_VERIFIED, records=[tlsa(OTHER, 3, 1, 1)]),
        dane("dane-one-of-several-matches", SENT,
             records=[tlsa(OTHER, 3, 1, 1), tlsa(LEAF, 3, 1, 1), tlsa(LEAF, 1, 1, 1)]),
        dane("dane-only-ee-match", SENT, level="dane-only", records=[tlsa(LEAF, 3, 1, 1)]),
        dane("dane-only-mismatch", NOT_VERIFIED, level="dane-only", records=[tlsa(OTHER, 3, 1, 1)]),
        dane("dane-policy-entry-ee-match", SENT, level=None, policy=["example.test dane"],
             records=[tlsa(LEAF, 3, 1, 1)]),
    ],
    # §7 TLSA lookup and Outcomes: not found, unusable, errors, insecure answers.
    "DaneLookup": [
        dane("dane-no-tlsa-is-may", SENT),
        dane("dane-only-no-tlsa", NO_TLSA, level="dane-only"),
        dane("dane-unusable-usage-1-is-encrypt", SENT, records=[tlsa(LEAF, 1, 1, 1)]),
        dane("dane-unusable-mtype-255-is-encrypt", SENT, records=[(TLSA_NAME, "TLSA", "3 1 255 00")]),
        dane("dane-only-unusable", UNUSABLE, level="dane-only", records=[tlsa(LEAF, 0, 0, 1)]),
        # Records that pass the DNS-level checks but OpenSSL refuses at connect time.
        dane("dane-openssl-rejects-digest-length", SENT, records=[(TLSA_NAME, "TLSA", "3 1 1 0011")]),
        dane("dane-only-openssl-rejects-digest-length", NOT_VERIFIED, level="dane-only",
             records=[(TLSA_NAME, "TLSA", "3 1 1 0011")]),
        dane("dane-openssl-rejects-full-key", SENT, records=[(TLSA_NAME, "TLSA", "3 1 0 00112233")]),
        dane("dane-only-openssl-rejects-full-key", NOT_VERIFIED, level="dane-only",
             records=[(TLSA_NAME, "TLSA", "3 1 0 00112233")]),
        dane("dane-tlsa-servfail", TLSA_ERROR, dns_failures=[(TLSA_NAME, "TLSA", "SERVFAIL")]),
        dane("dane-only-tlsa-servfail", TLSA_ERROR, level="dane-only",
             dns_failures=[(TLSA_NAME, "TLSA", "SERVFAIL")]),
        dane("dane-only-tlsa-nxdomain", NO_TLSA, level="dane-only",
             dns_failures=[(TLSA_NAME, "TLSA", "NXDOMAIN")]),
        dane("dane-only-tlsa-answer-insecure", NO_TLSA, level="dane-only", records=[tlsa(LEAF, 3, 1, 1)],
             dns_insecure=[TLSA_NAME]),
        dane("dane-only-host-address-insecure", NO_TLSA, level="dane-only", records=[tlsa(LEAF, 3, 1, 1)],
             dns_insecure=["mx1.example.test"]),
        # Found with the real resolver below: A SERVFAIL (bogus), AAAA NODATA: Postfix names type=A.
        dane("dane-host-a-servfail-aaaa-nodata", ("deferred", "4.4.3", "Host or domain name not found. Name "
                                                  "service error for name=mx1.example.test type=A: Host not "
                                                  "found, try again"),
             dns_failures=[("mx1.example.test", "A", "SERVFAIL")]),
        dane("dane-no-starttls-with-tlsa", NOT_OFFERED, cert=None, records=[tlsa(LEAF, 3, 1, 1)]),
        dane("dane-no-starttls-without-tlsa", SENT, cert=None),
        dane("dane-only-next-mx-has-tlsa", SENT, level="dane-only",
             peers={"mx1": {"names": ["mx1.example.test"], "cert": MX1},
                    "mx2": {"names": ["mx2.example.test"], "cert": {"dns": ["mx2.example.test"]}}},
             dns=[MX, ("example.test", "MX", "20 mx2.example.test."),
                  tlsa(P.leaf(dns=["mx2.example.test"]), 3, 1, 1, "_25._tcp.mx2.example.test")]),
    ],
    # §7 Insecure MX RRset, bracketed and implicit-MX next hops, DNSSEC off.
    "DaneInsecureMx": [
        dane("dane-insecure-mx-halfdane-match", SENT, records=[tlsa(LEAF, 3, 1, 1)],
             dns_insecure=["example.test"]),
        dane("dane-insecure-mx-halfdane-mismatch", NOT_VERIFIED, records=[tlsa(OTHER, 3, 1, 1)],
             dns_insecure=["example.test"]),
        dane("dane-insecure-mx-no-tlsa-is-may", SENT, dns_insecure=["example.test"]),
        dane("dane-only-insecure-mx", NON_DNSSEC, level="dane-only", records=[tlsa(LEAF, 3, 1, 1)],
             dns_insecure=["example.test"]),
        dane("dane-policy-insecure-mx-is-may", SENT, level=None, policy=["example.test dane"],
             records=[tlsa(OTHER, 3, 1, 1)], dns_insecure=["example.test"]),
        dane("dane-only-policy-insecure-mx", NON_DNSSEC, level=None, policy=["example.test dane-only"],
             records=[tlsa(LEAF, 3, 1, 1)], dns_insecure=["example.test"]),
        dane("dane-no-ad-at-all-is-may", SENT, records=[tlsa(OTHER, 3, 1, 1)], dns_ad=False),
        dane("dane-only-no-ad-at-all", NON_DNSSEC, level="dane-only", records=[tlsa(LEAF, 3, 1, 1)],
             dns_ad=False),
        dane("dane-only-bracketed-nexthop", SENT, level="dane-only", dns=[tlsa(LEAF, 3, 1, 1)],
             transport={"example.test": "smtp:[mx1.example.test]"}, sni="mx1.example.test"),
        dane("dane-only-bracketed-nexthop-no-ad", NO_TLSA, level="dane-only", dns=[tlsa(LEAF, 3, 1, 1)],
             transport={"example.test": "smtp:[mx1.example.test]"}, dns_ad=False),
        dane("dane-only-implicit-mx", SENT, level="dane-only",
             peers={"mx1": {"names": ["example.test"], "cert": {"dns": ["example.test"]}}},
             dns=[tlsa(P.leaf(dns=["example.test"]), 3, 1, 1, "_25._tcp.example.test")],
             sni="example.test"),
        # The MX host is a CNAME: TLSA records at the target (tried first) or at the MX name.
        dane("dane-only-cname-mx-tlsa-at-mx-name", SENT, level="dane-only",
             peers={"mx1": {"names": ["mx-real.example.test"], "hostname": "mx1.example.test", "cert": MX1}},
             dns=[MX, ("mx1.example.test", "CNAME", "mx-real.example.test."), tlsa(LEAF, 3, 1, 1)]),
        dane("dane-only-cname-mx-tlsa-at-target", SENT, level="dane-only",
             peers={"mx1": {"names": ["mx-real.example.test"], "hostname": "mx1.example.test", "cert": MX1}},
             dns=[MX, ("mx1.example.test", "CNAME", "mx-real.example.test."),
                  tlsa(LEAF, 3, 1, 1, "_25._tcp.mx-real.example.test")],
             sni="mx-real.example.test"),
        # The target's address is insecure: no TLSA lookup at the target; Postfix checks
        # the CNAME record itself and, when that is secure, looks up TLSA at the MX name.
        dane("dane-only-secure-cname-insecure-target", SENT, level="dane-only",
             peers={"mx1": {"names": ["mx-real.example.test"], "hostname": "mx1.example.test", "cert": MX1}},
             dns=[MX, ("mx1.example.test", "CNAME", "mx-real.example.test."), tlsa(LEAF, 3, 1, 1)],
             dns_insecure=["mx-real.example.test"]),
        dane("dane-only-insecure-cname-insecure-target", NO_TLSA, level="dane-only",
             peers={"mx1": {"names": ["mx-real.example.test"], "hostname": "mx1.example.test", "cert": MX1}},
             dns=[MX, ("mx1.example.test", "CNAME", "mx-real.example.test."), tlsa(LEAF, 3, 1, 1)],
             dns_insecure=["mx-real.example.test", "mx1.example.test"]),
        dane("dane-only-without-dnssec-config-problem", CONFIG, level="dane-only",
             records=[tlsa(LEAF, 3, 1, 1)], main={"smtp_dns_support_level": "enabled"}),
    ],
    # FullTlsLines (test_differential_audit.py): the "... TLS connection established" lines
    # are compared in full. Record forms, anchors and names DaneVerification leaves out,
    # several records, other ports, policy attributes and protocol limits at dane, two MX
    # hosts, an RSA leaf.
    "DaneMore": [
        dane("dane-ee-cert-full", SENT, records=[tlsa(LEAF, 3, 0, 0)]),
        dane("dane-ee-cert-sha256", SENT, records=[tlsa(LEAF, 3, 0, 1)]),
        dane("dane-ee-spki-sha512", SENT, records=[tlsa(LEAF, 3, 1, 2)]),
        dane("dane-ee-names-intermediate", NOT_VERIFIED, records=[tlsa(P.intermediate, 3, 1, 1)]),
        dane("dane-ta-intermediate-cert-full", SENT, records=[tlsa(P.intermediate, 2, 0, 0)]),
        dane("dane-ta-intermediate-spki-full", SENT, records=[tlsa(P.intermediate, 2, 1, 0)]),
        dane("dane-ta-intermediate-spki-sha512", SENT, records=[tlsa(P.intermediate, 2, 1, 2)]),
        # the root as anchor: sent in the chain (leaf + intermediate + root) or only in the record
        dane("dane-ta-root-sent", SENT, cert=WITH_ROOT, records=[tlsa(P.root, 2, 0, 1)]),
        dane("dane-ta-root-spki-sent", SENT, cert=WITH_ROOT, records=[tlsa(P.root, 2, 1, 1)]),
        dane("dane-ta-root-cert-full-not-sent", SENT, records=[tlsa(P.root, 2, 0, 0)]),
        dane("dane-ta-root-spki-full-not-sent", SENT, records=[tlsa(P.root, 2, 1, 0)]),
        dane("dane-ta-intermediate-full-not-sent", SENT, cert=LEAF_ONLY, records=[tlsa(P.intermediate, 2, 0, 0)]),
        dane("dane-ta-intermediate-digest-not-sent", NOT_VERIFIED, cert=LEAF_ONLY,
             records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("dane-ta-names-leaf", NOT_VERIFIED, records=[tlsa(LEAF, 2, 0, 1)]),
        dane("dane-ta-self-signed-leaf", NOT_VERIFIED, cert=SELF_SIGNED, records=[tlsa(P.leaf(**SELF_SIGNED), 2, 0, 1)]),
        # DANE-TA checks expiry and names (SAN, wildcard, CN, MX vs next-hop name)
        dane("dane-ta-expired-leaf", NOT_VERIFIED, cert=EXPIRED, records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("dane-ta-not-yet-valid-leaf", NOT_VERIFIED, cert={"dns": ["mx1.example.test"], "not_yet_valid": True},
             records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("dane-ta-wildcard-san", SENT, cert={"dns": ["*.example.test"]}, records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("dane-ta-cn-only", SENT, cert={"cn": "mx1.example.test"}, records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("dane-ta-cn-matches-san-does-not", NOT_VERIFIED, cert={"dns": ["other.test"], "cn": "mx1.example.test"},
             records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("dane-only-ta-bracketed-nexthop-cert-for-domain", NOT_VERIFIED, level="dane-only",
             cert={"dns": ["example.test"]}, dns=[tlsa(P.intermediate, 2, 0, 1)],
             transport={"example.test": "smtp:[mx1.example.test]"}),
        dane("dane-only-ta-relayhost-domain-name", SENT, level="dane-only", cert={"dns": ["relay.test"]},
             dns=[("relay.test", "MX", "10 mx1.example.test."), tlsa(P.intermediate, 2, 0, 1)],
             main={"relayhost": "relay.test"}),
        dane("dane-only-ta-relayhost-recipient-domain-name", NOT_VERIFIED, level="dane-only",
             cert={"dns": ["example.test"]},
             dns=[("relay.test", "MX", "10 mx1.example.test."), tlsa(P.intermediate, 2, 0, 1)],
             main={"relayhost": "relay.test"}),
        dane("dane-ta-insecure-mx-halfdane", SENT, records=[tlsa(P.intermediate, 2, 0, 1)],
             dns_insecure=["example.test"]),
        # several records
        dane("dane-duplicate-records", SENT, records=[tlsa(LEAF, 3, 1, 1), tlsa(LEAF, 3, 1, 1)]),
        dane("dane-usage-1-match-usable-mismatch", NOT_VERIFIED, records=[tlsa(LEAF, 1, 1, 1), tlsa(OTHER, 3, 1, 1)]),
        dane("dane-only-selector-2-plus-usable", SENT, level="dane-only",
             records=[(TLSA_NAME, "TLSA", "3 2 1 " + "AB" * 32), tlsa(LEAF, 3, 1, 1)]),
        # Postfix passes selector 2 on; OpenSSL refuses it at connect time
        dane("dane-only-selector-2-alone", NOT_VERIFIED, level="dane-only",
             records=[(TLSA_NAME, "TLSA", "3 2 1 " + "AB" * 32)]),
        dane("dane-only-mtype-3-plus-usable", SENT, level="dane-only",
             records=[(TLSA_NAME, "TLSA", "3 1 3 " + "AB" * 32), tlsa(LEAF, 3, 1, 1)]),
        dane("dane-mtype-3-alone-is-encrypt", SENT, records=[(TLSA_NAME, "TLSA", "3 1 3 " + "AB" * 32)]),
        dane("dane-only-usage-4-alone", UNUSABLE, level="dane-only", records=[(TLSA_NAME, "TLSA", "4 1 1 " + "AB" * 32)]),
        dane("dane-only-usages-0-and-1", UNUSABLE, level="dane-only",
             records=[tlsa(LEAF, 0, 0, 1), tlsa(LEAF, 1, 1, 1)]),
        # No row for a record with an empty payload ("3 1 1" and nothing): Postfix 3.7.11's
        # smtp(8) dies of "panic: mymalloc: requested length 0", so there is no status to
        # compare. An odd-length payload cannot be sent at all: the wire holds whole bytes.
        # another port: TLSA records at _587._tcp
        dane("dane-only-relayhost-587-tlsa-587", SENT, level="dane-only", **port_587(tlsa(LEAF, 3, 1, 1, TLSA_587)),
             sni="mx1.example.test"),
        dane("dane-only-relayhost-587-tlsa-at-25", lookup_fail("no TLSA records found"), level="dane-only",
             **port_587(tlsa(LEAF, 3, 1, 1))),
        dane("dane-relayhost-587-mismatch-at-25-ignored", SENT, **port_587(tlsa(OTHER, 3, 1, 1))),
        dane("dane-relayhost-587-mismatch-at-587", NOT_VERIFIED, **port_587(tlsa(OTHER, 3, 1, 1, TLSA_587))),
        dane("dane-only-transport-587", SENT, level="dane-only", **port_587(tlsa(LEAF, 3, 1, 1, TLSA_587), how="transport")),
        # policy attributes and protocol/cipher limits
        dane("dane-policy-tafile", CONFIG, level=None, policy=["example.test dane tafile=$PATH(unknown-root)"],
             records=[tlsa(LEAF, 3, 1, 1)]),
        dane("dane-policy-match", CONFIG, level=None, policy=["example.test dane match=nexthop"],
             records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("dane-only-policy-match", CONFIG, level=None, policy=["example.test dane-only match=other.test"],
             records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("dane-policy-protocols-tls13-vs-tls12", HANDSHAKE, level=None, behaviour=TLS12,
             policy=["example.test dane protocols=>=TLSv1.3"], records=[tlsa(LEAF, 3, 1, 1)]),
        dane("dane-mandatory-protocols-tls13-vs-tls12", HANDSHAKE, behaviour=TLS12,
             main={"smtp_tls_mandatory_protocols": ">=TLSv1.3"}, records=[tlsa(LEAF, 3, 1, 1)]),
        dane("dane-mandatory-protocols-no-tlsa-is-may", SENT, behaviour=TLS12,
             main={"smtp_tls_mandatory_protocols": ">=TLSv1.3"}),
        dane("dane-mandatory-protocols-unusable-is-encrypt", HANDSHAKE, behaviour=TLS12,
             main={"smtp_tls_mandatory_protocols": ">=TLSv1.3"}, records=[tlsa(LEAF, 1, 1, 1)]),
        dane("dane-exclude-ciphers", HANDSHAKE, behaviour=AES128_ONLY,
             main={"smtp_tls_exclude_ciphers": "AES128"}, records=[tlsa(LEAF, 3, 1, 1)]),
        dane("dane-mandatory-ciphers-high", SENT, behaviour=TLS12,
             main={"smtp_tls_mandatory_ciphers": "high"}, records=[tlsa(LEAF, 3, 1, 1)]),
        # two MX hosts
        dane("dane-first-mx-mismatch-second-matches", SENT,
             **two_mx_dane(tlsa(OTHER, 3, 1, 1), tlsa(MX2_LEAF, 3, 1, 1, TLSA_MX2))),
        dane("dane-both-mx-mismatch", NOT_VERIFIED, **two_mx_dane(tlsa(OTHER, 3, 1, 1), tlsa(OTHER, 3, 1, 1, TLSA_MX2))),
        dane("dane-first-mx-tlsa-servfail-second-matches", SENT, **two_mx_dane(tlsa(MX2_LEAF, 3, 1, 1, TLSA_MX2)),
             dns_failures=[(TLSA_NAME, "TLSA", "SERVFAIL")]),
        dane("dane-only-first-mx-no-tlsa-second-mismatch", NOT_VERIFIED, level="dane-only",
             **two_mx_dane(tlsa(OTHER, 3, 1, 1, TLSA_MX2))),
        dane("dane-only-first-mx-mismatch-second-no-tlsa", NO_TLSA, level="dane-only",
             **two_mx_dane(tlsa(OTHER, 3, 1, 1))),
        dane("dane-first-mx-servfail-second-servfail", lookup_fail("TLSA lookup error for mx2.example.test:25"),
             **two_mx_dane(), dns_failures=[(TLSA_NAME, "TLSA", "SERVFAIL"), (TLSA_MX2, "TLSA", "SERVFAIL")]),
        # an RSA leaf (server-signature in the TLS line), TLS 1.3 and 1.2
        dane("dane-ee-rsa-leaf", SENT, cert=RSA, records=[tlsa(P.leaf(**RSA), 3, 1, 1)]),
        dane("dane-ee-rsa-leaf-tls12", SENT, cert=RSA, behaviour=TLS12, records=[tlsa(P.leaf(**RSA), 3, 1, 1)]),
        dane("dane-ta-tls12", SENT, behaviour=TLS12, records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("dane-ee-rsa-pss-leaf", SENT, cert=RSA_PSS, records=[tlsa(P.leaf(**RSA_PSS), 3, 1, 1)]),
        dane("dane-ee-ed25519-leaf", SENT, cert=ED25519, records=[tlsa(P.leaf(**ED25519), 3, 1, 1)]),
        # more TLSA lookup shapes
        dane("dane-only-tlsa-nodata", NO_TLSA, level="dane-only", dns_failures=[(TLSA_NAME, "TLSA", "NODATA")]),
        dane("dane-tlsa-refused", TLSA_ERROR, dns_failures=[(TLSA_NAME, "TLSA", "REFUSED")]),
        dane("dane-tlsa-malformed", TLSA_ERROR, dns_failures=[(TLSA_NAME, "TLSA", "MALFORMED")]),
        dane("dane-only-tlsa-via-cname", SENT, level="dane-only",
             records=[(TLSA_NAME, "CNAME", "tlsa.example.test."), tlsa(LEAF, 3, 1, 1, "tlsa.example.test")]),
        dane("dane-only-tlsa-via-insecure-cname", NO_TLSA, level="dane-only",
             records=[(TLSA_NAME, "CNAME", "tlsa.example.test."), tlsa(LEAF, 3, 1, 1, "tlsa.example.test")],
             dns_insecure=["tlsa.example.test"]),
        dane("dane-only-ip-literal-nexthop", NO_TLSA, level="dane-only", dns=[],
             transport={"example.test": "smtp:[{mx1.addr}]"}),
        # more DANE-TA names and chains
        dane("dane-ta-uppercase-san", SENT, cert={"dns": ["MX1.EXAMPLE.TEST"]}, records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("dane-ta-trailing-dot-san", NOT_VERIFIED, cert={"dns": ["mx1.example.test."]},
             records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("dane-ta-wildcard-two-labels-deep", NOT_VERIFIED, cert={"dns": ["*.example.test"]},
             peers={"mx1": {"names": ["mx.sub.example.test"], "cert": {"dns": ["*.example.test"]}}},
             dns=[("example.test", "MX", "10 mx.sub.example.test."),
                  tlsa(P.intermediate, 2, 0, 1, "_25._tcp.mx.sub.example.test")]),
        # [alias] CNAME mx1, TLSA records at the target: the certificate names only the alias
        dane("dane-only-ta-bracketed-cname-alias-name-not-used", NOT_VERIFIED, level="dane-only", cert={"dns": ["alias.example.test"]},
             dns=[("alias.example.test", "CNAME", "mx1.example.test."), tlsa(P.intermediate, 2, 0, 1)],
             transport={"example.test": "smtp:[alias.example.test]"}),
        dane("dane-ta-constrained-intermediate-anchor", NOT_VERIFIED, cert={"dns": MX1["dns"], "intermediate": "constrained"},
             records=[odd_ta("constrained")]),
        dane("dane-ta-not-ca-intermediate-anchor", NOT_VERIFIED, cert={"dns": MX1["dns"], "intermediate": "not-ca"},
             records=[odd_ta("not-ca")]),
        dane("dane-ee-not-ca-intermediate", SENT, cert={"dns": MX1["dns"], "intermediate": "not-ca"},
             records=[tlsa(P.leaf(dns=MX1["dns"], intermediate="not-ca"), 3, 1, 1)]),
        dane("dane-ta-client-auth-only-leaf", NOT_VERIFIED, cert=CLIENT_AUTH, records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("dane-ee-client-auth-only-leaf", SENT, cert=CLIENT_AUTH, records=[tlsa(P.leaf(**CLIENT_AUTH), 3, 1, 1)]),
        dane("dane-ta-no-keycertsign-intermediate-anchor", NOT_VERIFIED,
             cert={"dns": MX1["dns"], "intermediate": "no-keycertsign"}, records=[odd_ta("no-keycertsign")]),
        dane("dane-ta-root-anchor-name-constraints-violated", NOT_VERIFIED,
             cert={"dns": MX1["dns"], "intermediate": "constrained"}, records=[tlsa(P.root, 2, 0, 1)]),
        dane("dane-ee-unknown-critical-extension", SENT, cert=CRITICAL, records=[tlsa(P.leaf(**CRITICAL), 3, 1, 1)]),
        dane("dane-ta-unknown-critical-extension", NOT_VERIFIED, cert=CRITICAL, records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("dane-ta-leaf-is-ca", SENT, cert={"dns": MX1["dns"], "ca": True}, records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("dane-ta-cn-wildcard-no-san", SENT, cert={"cn": "*.example.test"}, records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("dane-ta-expired-and-wrong-name", NOT_VERIFIED, cert={"dns": ["other.test"], "expired": True},
             records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("dane-ee-match-rescues-expired-ta", SENT, cert=EXPIRED,
             records=[tlsa(P.intermediate, 2, 0, 1), tlsa(P.leaf(**EXPIRED), 3, 1, 1)]),
        dane("dane-ta-wrong-name-and-ee-mismatch", NOT_VERIFIED, cert={"dns": ["wrong.other.test"]},
             records=[tlsa(OTHER, 3, 0, 1), tlsa(P.intermediate, 2, 0, 1)]),
        # the MX target in upper case: TLSA name, SNI, TLS line and relay= spelling
        dane("dane-ee-uppercase-mx-name", SENT, dns=[("example.test", "MX", "10 MX1.EXAMPLE.TEST."), tlsa(LEAF, 3, 1, 1)],
             sni="mx1.example.test"),
        dane("dane-ta-uppercase-mx-name", SENT, dns=[("example.test", "MX", "10 MX1.EXAMPLE.TEST."),
                                                  tlsa(P.intermediate, 2, 0, 1)],
             sni="mx1.example.test"),
        # 30 records that match nothing and one that does: the answer needs TCP
        dane("dane-only-many-records-over-tcp", SENT, level="dane-only",
             records=[*((TLSA_NAME, "TLSA", f"3 1 1 {n:064X}") for n in range(30)), tlsa(LEAF, 3, 1, 1)]),
        # SNI at dane: the TLSA base domain, whatever smtp_tls_servername says; without TLSA (may) it counts
        dane("dane-sni-ignores-servername", SENT, main={"smtp_tls_servername": "sni.example.test"},
             records=[tlsa(LEAF, 3, 1, 1)], sni="mx1.example.test"),
        dane("dane-no-tlsa-sni-servername", SENT, main={"smtp_tls_servername": "sni.example.test"},
             sni="sni.example.test"),
        dane("dane-policy-servername", SENT, level=None, policy=["example.test dane servername=nexthop"],
             records=[tlsa(LEAF, 3, 1, 1)]),
        dane("dane-policy-bad-ciphers", HANDSHAKE, level=None, policy=["example.test dane ciphers=bogus"],
             records=[tlsa(LEAF, 3, 1, 1)]),
        dane("dane-policy-exclude", HANDSHAKE, level=None, behaviour=AES128_ONLY,
             policy=["example.test dane exclude=AES128"], records=[tlsa(LEAF, 3, 1, 1)]),
    ],
    # The chain shapes of test_differential_audit's ChainShapes against DANE: DANE-TA(2)
    # records for the leaf's issuer, the CA under the root or the root (sent with the
    # chain or not), DANE-EE(3) for the leaf; expired and untrusted CAs, long chains, a
    # path length violated, names that do not match, a leaf the root signed. FullTlsLines.
    # An anchor ends the chain: the validity of CAs above it and the depth limit (10 below
    # the anchor) stop counting; a digest (2 x 1) anchor must be sent, a full one (2 x 0)
    # need not; names and the leaf's validity count under DANE-TA, never under DANE-EE.
    "DaneChains": [
        # an expired intermediate
        dane("chain-ta-expired-intermediate-cert", SENT, cert=shape(intermediate="expired"),
             records=[tlsa(issuer("expired"), 2, 0, 1)]),
        dane("chain-ta-expired-intermediate-spki", SENT, cert=shape(intermediate="expired"),
             records=[tlsa(issuer("expired"), 2, 1, 1)]),
        dane("chain-ta-root-over-expired-intermediate", NOT_VERIFIED,
             cert=shape(intermediate="expired", with_root=True),
             records=[tlsa(P.root, 2, 0, 1)]),
        dane("chain-ta-root-full-over-expired-intermediate", NOT_VERIFIED, cert=shape(intermediate="expired"),
             records=[tlsa(P.root, 2, 0, 0)]),
        dane("chain-ee-expired-intermediate", SENT, cert=shape(intermediate="expired"),
             records=[ee(shape(intermediate="expired"))]),
        dane("chain-ta-expired-intermediate-wrong-name", NOT_VERIFIED, cert=shape(WRONG, intermediate="expired"),
             records=[tlsa(issuer("expired"), 2, 0, 1)]),
        dane("chain-ee-expired-intermediate-wrong-name", SENT, cert=shape(WRONG, intermediate="expired"),
             records=[ee(shape(WRONG, intermediate="expired"))]),
        dane("chain-ta-not-yet-valid-intermediate", SENT, cert=shape(intermediate="not-yet-valid"),
             records=[tlsa(issuer("not-yet-valid"), 2, 0, 1)]),
        # leaf + intermediate + a root the test PKI does not trust
        dane("chain-ta-untrusted-root-sent", SENT, cert=shape(intermediate="untrusted", with_root=True),
             records=[tlsa(P.unknown_root, 2, 0, 1)]),
        dane("chain-ta-untrusted-root-spki-sent", SENT, cert=shape(intermediate="untrusted", with_root=True),
             records=[tlsa(P.unknown_root, 2, 1, 1)]),
        dane("chain-ta-untrusted-intermediate", SENT, cert=shape(intermediate="untrusted", with_root=True),
             records=[tlsa(issuer("untrusted"), 2, 0, 1)]),
        dane("chain-ta-test-root-vs-untrusted-root", NOT_VERIFIED, cert=shape(intermediate="untrusted", with_root=True),
             records=[tlsa(P.root, 2, 0, 1)]),
        dane("chain-ta-untrusted-root-full-not-sent", SENT, cert=shape(intermediate="untrusted"),
             records=[tlsa(P.unknown_root, 2, 0, 0)]),
        dane("chain-ee-untrusted-root-in-chain", SENT, cert=shape(intermediate="untrusted", with_root=True),
             records=[ee(shape(intermediate="untrusted", with_root=True))]),
        dane("chain-ta-untrusted-intermediate-wrong-name", NOT_VERIFIED,
             cert=shape(WRONG, intermediate="untrusted", with_root=True), records=[tlsa(issuer("untrusted"), 2, 1, 1)]),
        # long chains (smtp_tls_scert_verifydepth 9: OpenSSL's depth 10)
        dane("chain-ta-issuer-chain-of-11", SENT, cert=shape(intermediate="chain:11"),
             records=[tlsa(issuer("chain:11"), 2, 0, 1)]),
        dane("chain-ta-top-chain-of-11", SENT, cert=shape(intermediate="chain:11"),
             records=[tlsa(top("chain:11"), 2, 0, 1)]),
        dane("chain-ta-root-chain-of-10-sent", SENT, cert=shape(intermediate="chain:10", with_root=True),
             records=[tlsa(P.root, 2, 0, 1)]),
        dane("chain-ta-root-chain-of-11-sent", NOT_VERIFIED, cert=shape(intermediate="chain:11", with_root=True),
             records=[tlsa(P.root, 2, 0, 1)]),
        dane("chain-ta-root-full-chain-of-11", NOT_VERIFIED, cert=shape(intermediate="chain:11"),
             records=[tlsa(P.root, 2, 1, 0)]),
        dane("chain-ta-top-spki-chain-of-12", NOT_VERIFIED, cert=shape(intermediate="chain:12"),
             records=[tlsa(top("chain:12"), 2, 1, 1)]),
        dane("chain-ee-chain-of-12", SENT, cert=shape(intermediate="chain:12"),
             records=[ee(shape(intermediate="chain:12"))]),
        dane("chain-ta-issuer-chain-of-11-wrong-name", NOT_VERIFIED, cert=shape(WRONG, intermediate="chain:11"),
             records=[tlsa(issuer("chain:11"), 2, 0, 1)]),
        # root -> CA (pathLenConstraint 0) -> another CA -> leaf
        dane("chain-ta-pathlen0-ca", NOT_VERIFIED, cert=shape(intermediate="pathlen0-over-another"),
             records=[tlsa(top("pathlen0-over-another"), 2, 0, 1)]),
        dane("chain-ta-below-pathlen0-ca", SENT, cert=shape(intermediate="pathlen0-over-another"),
             records=[tlsa(issuer("pathlen0-over-another"), 2, 0, 1)]),
        dane("chain-ta-root-over-pathlen0-sent", NOT_VERIFIED,
             cert=shape(intermediate="pathlen0-over-another", with_root=True),
             records=[tlsa(P.root, 2, 0, 1)]),
        dane("chain-ta-root-full-over-pathlen0", NOT_VERIFIED, cert=shape(intermediate="pathlen0-over-another"),
             records=[tlsa(P.root, 2, 1, 0)]),
        dane("chain-ee-pathlen0-over-another", SENT, cert=shape(intermediate="pathlen0-over-another"),
             records=[ee(shape(intermediate="pathlen0-over-another"))]),
        dane("chain-ta-below-pathlen0-wrong-name", NOT_VERIFIED,
             cert=shape(WRONG, intermediate="pathlen0-over-another"),
             records=[tlsa(issuer("pathlen0-over-another"), 2, 0, 1)]),
        # wrong names on the usual chain
        dane("chain-ta-intermediate-spki-wrong-name", NOT_VERIFIED,
             cert=shape(WRONG), records=[tlsa(P.intermediate, 2, 1, 1)]),
        dane("chain-ta-root-sent-wrong-name", NOT_VERIFIED,
             cert=shape(WRONG, with_root=True), records=[tlsa(P.root, 2, 0, 1)]),
        dane("chain-ee-wrong-name-expired", SENT, cert=shape(WRONG, expired=True),
             records=[ee(shape(WRONG, expired=True))]),
        # a leaf the root signed itself
        dane("chain-ta-root-by-root-not-sent", NOT_VERIFIED, cert=shape(by_root=True), records=[tlsa(P.root, 2, 0, 1)]),
        dane("chain-ta-root-by-root-sent", SENT, cert=shape(by_root=True, with_root=True),
             records=[tlsa(P.root, 2, 0, 1)]),
        dane("chain-ta-root-spki-by-root-not-sent", NOT_VERIFIED,
             cert=shape(by_root=True), records=[tlsa(P.root, 2, 1, 1)]),
        dane("chain-ta-root-full-by-root", SENT, cert=shape(by_root=True), records=[tlsa(P.root, 2, 0, 0)]),
        dane("chain-ta-intermediate-vs-by-root", NOT_VERIFIED,
             cert=shape(by_root=True), records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("chain-ee-by-root", SENT, cert=shape(by_root=True), records=[ee(shape(by_root=True))]),
        dane("chain-ta-root-by-root-sent-wrong-name", NOT_VERIFIED, cert=shape(WRONG, by_root=True, with_root=True),
             records=[tlsa(P.root, 2, 0, 1)]),
        dane("chain-ta-root-by-root-expired", NOT_VERIFIED, cert=shape(by_root=True, with_root=True, expired=True),
             records=[tlsa(P.root, 2, 0, 1)]),
        dane("chain-ta-root-spki-full-by-root", SENT, cert=shape(by_root=True), records=[tlsa(P.root, 2, 1, 0)]),
        # chains out of order or padded, under a DANE-TA anchor
        dane("chain-ta-issuer-two-reversed", SENT, cert=shape(intermediate="chain:2", served="reversed"),
             records=[tlsa(issuer("chain:2"), 2, 0, 1)]),
        dane("chain-ta-top-two-reversed", SENT, cert=shape(intermediate="chain:2", served="reversed"),
             records=[tlsa(top("chain:2"), 2, 0, 1)]),
        dane("chain-ta-root-sent-first", SENT, cert=shape(with_root=True, served="reversed"),
             records=[tlsa(P.root, 2, 0, 1)]),
        dane("chain-ta-duplicate-leaf", SENT, cert=shape(served="duplicate-leaf"),
             records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("chain-ta-extra-unrelated-ca", SENT, cert=shape(served="extra-unrelated"),
             records=[tlsa(P.intermediate, 2, 0, 1)]),
        dane("chain-ta-the-extra-unrelated-ca", NOT_VERIFIED, cert=shape(served="extra-unrelated"),
             records=[odd_ta("constrained")]),
        # a DANE-TA record that fails next to a DANE-EE record that matches, and the reverse
        dane("chain-ta-expired-root-path-ee-match", SENT, cert=shape(intermediate="expired", with_root=True),
             records=[tlsa(P.root, 2, 0, 1), ee(shape(intermediate="expired", with_root=True))]),
        dane("chain-ta-match-ee-mismatch-chain-of-11", SENT, cert=shape(intermediate="chain:11"),
             records=[tlsa(OTHER, 3, 1, 1), tlsa(issuer("chain:11"), 2, 1, 1)]),
        dane("chain-ta-wrong-name-ee-mismatch", NOT_VERIFIED, cert=shape(WRONG, intermediate="expired"),
             records=[tlsa(OTHER, 3, 1, 1), tlsa(issuer("expired"), 2, 0, 1)]),
        # dane-only
        dane("chain-only-ta-expired-intermediate", SENT, level="dane-only", cert=shape(intermediate="expired"),
             records=[tlsa(issuer("expired"), 2, 0, 1)]),
        dane("chain-only-ta-root-chain-of-11-sent", NOT_VERIFIED, level="dane-only",
             cert=shape(intermediate="chain:11", with_root=True), records=[tlsa(P.root, 2, 0, 1)]),
    ],
}


# ----------------------------------------------------------------------------------------
# A real validating resolver: nsd serves a zone signed at test time (ldns-signzone),
# unbound validates it with the key as trust anchor. Everything stays on loopback:
# unbound only knows the zone's stub (nsd), refuses every other name and has nsd as
# its only root hint, so it never sends a query off the machine.
# ----------------------------------------------------------------------------------------

class ValidatingResolver:
    """nsd (authoritative, signed zone) + unbound (validating) on two 127.0.2.N:53."""

    def __init__(self, world, zone: str, records: list[str], tamper: bool = False, signed: bool = True):
        import shutil
        import subprocess
        for tool in ("nsd", "unbound", "ldns-keygen", "ldns-signzone"):
            if not shutil.which(tool):
                raise unittest.SkipTest(f"{tool} not installed")
        self.world, self.zone = world, zone
        self.dir = world.root / f"dnssec-{zone}"
        self.dir.mkdir()
        self.nsd_ip = world.ports.address("127.0.2")
        self.ip = world.ports.address("127.0.2")
        d = self.dir
        (d / "zone").write_text(
            f"$ORIGIN {zone}.\n$TTL 60\n@ IN SOA ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 60\n"
            f"@ IN NS ns.{zone}.\nns IN A {self.nsd_ip}\n" + "".join(r + "\n" for r in records))

        def run(*cmd):
            return subprocess.run(cmd, cwd=d, check=True, capture_output=True, text=True).stdout.strip()
        anchor = ""
        if signed:
            ksk = run("ldns-keygen", "-a", "ECDSAP256SHA256", "-k", zone)
            zsk = run("ldns-keygen", "-a", "ECDSAP256SHA256", zone)
            run("ldns-signzone", "-n", "zone", ksk, zsk)
            anchor = f"  trust-anchor-file: \"{d}/{ksk}.ds\"\n"
        else:  # no signatures and no trust anchor: unbound answers insecure, without AD
            (d / "zone.signed").write_text((d / "zone").read_text())
        if tamper:  # a signed A record whose data no longer matches its RRSIG: bogus
            signed = (d / "zone.signed").read_text()
            signed = re.sub(r"(\tIN\tA\t)127\.0\.1\.(\d+)", lambda m: m.group(1) + "127.0.1." +
                            str(int(m.group(2)) % 250 + 1), signed)
            (d / "zone.signed").write_text(signed)
        (d / "nsd.conf").write_text(
            f"server:\n  ip-address: {self.nsd_ip}\n  port: 53\n  username: \"\"\n  chroot: \"\"\n"
            f"  zonesdir: \"{d}\"\n  database: \"\"\n  zonelistfile: \"{d}/zone.list\"\n"
            f"  xfrdfile: \"{d}/xfrd.state\"\n  pidfile: \"{d}/nsd.pid\"\n"
            f"remote-control:\n  control-enable: no\nzone:\n  name: {zone}\n  zonefile: zone.signed\n")
        (d / "root.hints").write_text(f".\t3600\tIN\tNS\tlocalroot.\nlocalroot.\t3600\tIN\tA\t{self.nsd_ip}\n")
        (d / "unbound.conf").write_text(
            f"server:\n  interface: {self.ip}\n  port: 53\n  username: \"\"\n  chroot: \"\"\n"
            f"  directory: \"{d}\"\n  pidfile: \"{d}/unbound.pid\"\n  use-syslog: no\n  logfile: \"\"\n"
            f"  do-not-query-localhost: no\n  access-control: 127.0.0.0/8 allow\n  do-ip6: no\n"
            f"  module-config: \"validator iterator\"\n{anchor}"
            f"  local-zone: \"test.\" nodefault\n  local-zone: \".\" refuse\n"
            f"  local-zone: \"{zone}.\" transparent\n  root-hints: \"root.hints\"\n"
            f"stub-zone:\n  name: \"{zone}.\"\n  stub-addr: {self.nsd_ip}@53\n"
            f"remote-control:\n  control-enable: no\n")
        self.procs = []
        for cmd in (["nsd", "-d", "-c", str(d / "nsd.conf")], ["unbound", "-d", "-c", str(d / "unbound.conf")]):
            log = open(d / (cmd[0] + ".log"), "w")
            self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
            world.on_cleanup(log.close)
        world.on_cleanup(self.stop)
        self.wait_ready()

    def query(self, name: str, rtype: str, timeout: float = 3.0):
        """(rcode, AD bit, rdata strings) of unbound's answer to a DO query."""
        import socket
        from dnslib import EDNS0, QTYPE, DNSRecord
        q = DNSRecord.question(name, rtype)
        q.add_ar(EDNS0(flags="do", udp_len=1232))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.sendto(q.pack(), (self.ip, 53))
            r = DNSRecord.parse(sock.recv(65535))
        return r.header.rcode, bool(r.header.ad), [str(x.rdata) for x in r.rr if x.rtype != QTYPE.RRSIG]

    def wait_ready(self, timeout: float = 10.0) -> None:
        import time
        deadline = time.monotonic() + timeout
        while True:
            try:
                rcode, _, _ = self.query(f"ns.{self.zone}", "A", timeout=0.5)
                if rcode in (0, 2):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("nsd/unbound did not start: " + "".join(
                    (self.dir / f).read_text() for f in ("nsd.log", "unbound.log")))
            time.sleep(0.1)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except Exception:
                    p.kill()
                    p.wait(5)

    def resolv_conf(self) -> str:  # what PostfixOracle needs of a DNS server
        return f"nameserver {self.ip}\noptions timeout:2 attempts:1 trust-ad\n"

    @property
    def server_spec(self) -> str:
        return f"{self.ip}:53"


class RealValidatingResolver(WorldTestCase):
    """DANE through unbound validating a zone signed at test time, Postfix and tlsrelay alike."""

    def deliver_both(self, resolver, level: str = "dane-only"):
        import smtplib
        from postfix_oracle import PostfixOracle
        if getattr(self, "oracle", None) is None:  # one Postfix instance per world
            self.oracle = PostfixOracle(self.world, resolver)
        oracle = self.oracle
        pf = oracle.deliver({"recipients": ["user@example.test"],
                             "main": {"smtp_tls_security_level": level, "smtp_dns_support_level": "dnssec"}})[0]
        pf_log = oracle.log_since_injection()
        relay = self.world.relay(f"tlsrelay-{level}", delivery={"relayhost": ""},
                                 dns={"servers": [resolver.server_spec], "dnssec": True},
                                 tls={"security_level": level, "ca_file": str(P.ca_file),
                                      "mandatory_protocols": ">=TLSv1"})
        relay.start()
        mark = relay.log_mark()
        with smtplib.SMTP(*relay.address, timeout=10) as s:
            s.sendmail("a@sender.test", ["user@example.test"], b"Subject: t\r\n\r\nhello\r\n")
        relay.wait_for_log(r"to=<user@example\.test>, .*status=", timeout=30, since=mark)
        ours = relay.log_text(mark)
        relay.stop()
        return pf, pf_log, ours

    def peer(self):
        peer = SmtpPeer(self.world, cert=LEAF, hostname="mx1.example.test").start()
        self.world.on_cleanup(peer.stop)
        return peer

    def test_signed_zone_dane_ee_verified_by_both(self):
        """unbound gives AD for the signed zone; Postfix and tlsrelay both deliver with a Verified DANE-EE session."""
        r = self.signed(self.peer(), LEAF.tlsa(3, 1, 1))
        self.assertEqual(r.query("example.test", "MX")[:2], (0, True))
        self.assertEqual(r.query("_25._tcp.mx1.example.test", "TLSA"), (0, True, [LEAF.tlsa(3, 1, 1)]))
        pf, pf_log, ours = self.deliver_both(r)
        self.assertEqual((pf["status"], pf["dsn"]), ("sent", "2.0.0"), pf_log)
        self.assertIn("Verified TLS connection established to mx1.example.test", pf_log)
        self.assertRegex(ours, r"Verified TLS connection established to mx1\.example\.test\[")
        self.assertRegex(ours, r"to=<user@example\.test>, relay=mx1\.example\.test\[[\d.]+\]:25, .*"
                               r"dsn=2\.0\.0, status=sent", ours)

    def test_tlsa_mismatch_defers_in_both(self):
        """A validated TLSA record that does not match: 4.7.5 Server certificate not verified from both."""
        self.both_agree(self.signed(self.peer(), OTHER.tlsa(3, 1, 1)), NOT_VERIFIED)

    def test_bogus_signature_is_a_lookup_failure_in_both(self):
        """A record whose signature does not verify: unbound answers SERVFAIL, both defer with the same DSN and text."""
        peer = self.peer()
        r = ValidatingResolver(self.world, "example.test", [
            "@ IN MX 10 mx1.example.test.", f"mx1 IN A {peer.host}",
            f"_25._tcp.mx1 IN TLSA {LEAF.tlsa(3, 1, 1)}"], tamper=True)
        self.assertEqual(r.query("mx1.example.test", "A")[0], 2)  # SERVFAIL
        pf, pf_log, ours = self.deliver_both(r)
        self.assertEqual(pf["status"], "deferred", pf_log)
        line = f"relay=none, .*dsn={re.escape(pf['dsn'])}, status=deferred \\({re.escape(pf['reason'])}"
        self.assertRegex(ours, line, f"postfix: {pf['line']}")

    def both_agree(self, resolver, expect, level: str = "dane-only"):
        """Postfix's outcome is expect (status, DSN, reason prefix) and tlsrelay logs the same."""
        status, dsn, reason = expect
        pf, pf_log, ours = self.deliver_both(resolver, level)
        self.assertEqual((pf["status"], pf["dsn"]), (status, dsn), pf_log)
        self.assertTrue(pf["reason"].startswith(reason), pf["line"])
        self.assertRegex(ours, rf"dsn={re.escape(dsn)}, status={status} \({re.escape(reason)}", ours)
        return pf_log, ours

    def signed(self, peer, *tlsa_rdata: str, signed: bool = True):
        return ValidatingResolver(self.world, "example.test", [
            "@ IN MX 10 mx1.example.test.", f"mx1 IN A {peer.host}",
            *(f"_25._tcp.mx1 IN TLSA {t}" for t in tlsa_rdata)], signed=signed)

    def test_dane_ta_intermediate_verified_by_both(self):
        """A validated DANE-TA(2) record for the intermediate CA the server sends: Verified in both."""
        r = self.signed(self.peer(), P.intermediate.tlsa(2, 0, 1))
        pf_log, ours = self.both_agree(r, ("sent", "2.0.0", "250"))
        self.assertIn("Verified TLS connection established to mx1.example.test", pf_log)
        self.assertRegex(ours, r"Verified TLS connection established to mx1\.example\.test\[")

    def test_signed_zone_without_tlsa_in_both(self):
        """A secure MX without TLSA records: dane-only defers "no TLSA records found", dane sends."""
        r = self.signed(self.peer())
        self.assertTrue(r.query("_25._tcp.mx1.example.test", "TLSA")[1])  # validated NXDOMAIN
        self.both_agree(r, NO_TLSA)
        self.both_agree(r, ("sent", "2.0.0", "250"), level="dane")

    def test_unusable_tlsa_in_both(self):
        """Only a PKIX-TA(0) record, which Postfix does not use: "TLSA records unusable" from both."""
        self.both_agree(self.signed(self.peer(), LEAF.tlsa(0, 0, 1)), UNUSABLE)

    def test_insecure_zone_in_both(self):
        """An unsigned zone without trust anchor (no AD): dane-only defers as non DNSSEC, dane sends."""
        r = self.signed(self.peer(), LEAF.tlsa(3, 1, 1), signed=False)
        self.assertEqual(r.query("example.test", "MX")[:2], (0, False))
        self.both_agree(r, NON_DNSSEC)
        self.both_agree(r, ("sent", "2.0.0", "250"), level="dane")


# groups whose rows compare whole TLS lines: group -> the TestCase base that does it
FULL_LINE_GROUPS = {"DaneMore": test_differential_audit.FullTlsLines,
                    "DaneChains": test_differential_audit.FullTlsLines}
define_groups(globals(), {k: v for k, v in SCENARIOS.items() if k not in FULL_LINE_GROUPS}, "DANE differential")
for _group, _base in FULL_LINE_GROUPS.items():
    _made: dict = {}
    define_groups(_made, {_group: SCENARIOS[_group]}, "DANE differential")
    globals()[_group] = type(_group, (_base,), {
        k: v for k, v in vars(_made[_group]).items() if k.startswith("test_") or k == "__doc__"})

GROUPS = list(SCENARIOS)

if __name__ == "__main__":
    unittest.main()

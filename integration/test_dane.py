"""DANE (RFC 7672) differential tests: each row is delivered by Postfix 3.7 with
`smtp_dns_support_level = dnssec` and by tlsrelay with `[dns] dnssec = true`, both
trusting the AD bit of the world's DnsServer (`dns_ad`: it plays the validating
resolver; Postfix's resolv.conf has `options trust-ad`). Names in `dns_insecure` are
answered without AD, as a validating resolver answers an unsigned zone.

The rows and the comparison are test_differential.py's (make_scenario, DifferentialCase):
the same status, DSN, relay, reason prefix, TLS adjective lines, verification lines and
what the peers saw (STARTTLS, TLS, SNI). TLSA rdata comes from the test PKI
(pki.Cert.tlsa(usage, selector, mtype)).

postfix-tls-semantics.md §7; Debian's Postfix 3.7.11 has
smtp_tls_dane_insecure_mx_policy = ${{$smtp_tls_security_level} == {dane} ? {dane} : {may}}:
an insecure MX RRset gives "halfdane" (adjective Trusted) when the main level is dane,
and plain may when dane comes from the policy table.
"""

from __future__ import annotations

import re
import unittest

import pki
from test_differential import CONFIG, NOT_OFFERED, NOT_VERIFIED, SENT, DifferentialCase, _test

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
        dane("dane-tlsa-servfail", TLSA_ERROR, dns_failures=[(TLSA_NAME, "TLSA", "SERVFAIL")]),
        dane("dane-only-tlsa-servfail", TLSA_ERROR, level="dane-only",
             dns_failures=[(TLSA_NAME, "TLSA", "SERVFAIL")]),
        dane("dane-only-tlsa-nxdomain", NO_TLSA, level="dane-only",
             dns_failures=[(TLSA_NAME, "TLSA", "NXDOMAIN")]),
        dane("dane-only-tlsa-answer-insecure", NO_TLSA, level="dane-only", records=[tlsa(LEAF, 3, 1, 1)],
             dns_insecure=[TLSA_NAME]),
        dane("dane-only-host-address-insecure", NO_TLSA, level="dane-only", records=[tlsa(LEAF, 3, 1, 1)],
             dns_insecure=["mx1.example.test"]),
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
        dane("dane-only-without-dnssec-config-problem", CONFIG, level="dane-only",
             records=[tlsa(LEAF, 3, 1, 1)], main={"smtp_dns_support_level": "enabled"}),
    ],
}


def _make_group(group: str, rows: list[dict]):
    attrs = {"__doc__": f"DANE differential scenarios: {group}."}
    for i, row in enumerate(rows):
        attrs[f"test_{i:02d}_{re.sub(r'[^0-9A-Za-z]+', '_', row['name'])}"] = _test(row)
    return type(group, (DifferentialCase,), attrs)


for _group, _rows in SCENARIOS.items():
    globals()[_group] = _make_group(_group, _rows)

GROUPS = list(SCENARIOS)

if __name__ == "__main__":
    unittest.main()

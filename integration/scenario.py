"""Differential scenarios: one description, run through Postfix (the oracle) and tlsrelay.

A scenario is a dict (or a Scenario) such as

    {
      "name": "verify-good-chain",
      "recipients": ["user@example.test"],
      "peers": {                                    # SMTP peers, each on its own 127.0.1.N:25
        "mx1": {"names": ["mx1.example.test"],     # A records added for these names
                "cert": {"dns": ["mx1.example.test"]},       # pki.leaf(**cert)
                "behaviour": {"replies": {"RCPT": "450 4.2.0 busy"}}},  # SmtpPeer options
      },
      "dns": [("example.test", "MX", "10 mx1.example.test.")],
      "dns_failures": [("broken.test", "MX", "SERVFAIL")],
      "dns_ad": False,                              # AD bit on answers (DANE)
      "dns_insecure": ["example.test"],             # names answered without AD even then
      "policy": ["example.test verify"],            # smtp_tls_policy_maps lines
      "main": {"smtp_tls_security_level": "may"},   # Postfix main.cf settings
      "transport": {"partner.test": "smtp:[mx1.example.test]:25"},
    }

Strings in dns, policy, main and transport may refer to what exists only at run time:
`{mx1.addr}` (the peer's address), `{mx1.fp[sha256]}` / `{mx1.pkey_fp[sha256]}`
(fingerprints of its certificate), `{ca}` (the test CA file).

run_postfix(scenario) and run_tlsrelay(scenario) build the same world (DNS server, peers,
certificates) and return an Outcome: one status dict per recipient (to, relay, dsn,
status, reason, queue_id, ...), the log, and the peers with what they recorded.
Outcome.normalised() replaces run-time addresses with `{peer.addr}`, so the two engines'
results can be compared with compare(oracle, candidate).

main.cf settings are translated to tlsrelay's config by MAIN_TO_RELAY; a setting with no
tlsrelay equivalent is an error unless the scenario lists it in "postfix_only" (e.g.
smtp_helo_timeout). "relay" holds extra tlsrelay config sections.
"""

from __future__ import annotations

import re
import smtplib
from dataclasses import dataclass, field

import pki
from postfix_oracle import PostfixOracle
from world import DnsServer, SmtpPeer, World

# A delivery status line, from Postfix's maillog or tlsrelay's stderr.
STATUS_RX = re.compile(
    r"(?:^|\s)(?P<queue_id>[0-9A-Za-z]+): to=<(?P<to>[^>]*)>,(?: orig_to=<(?P<orig_to>[^>]*)>,)?"
    r" relay=(?P<relay>[^,]+),(?: conn_use=\d+,)? delay=(?P<delay>[\d.]+),"
    r" delays=(?P<delays>[\d./]+), dsn=(?P<dsn>\d\.\d{1,3}\.\d{1,3}),"
    r" status=(?P<status>\w+) \((?P<reason>.*)\)$")

DEFAULT_SENDER = "sender@client.tlsrelay.invalid"


@dataclass
class Scenario:
    name: str
    recipients: list[str]
    peers: dict[str, dict] = field(default_factory=dict)
    dns: list[tuple[str, str, str]] = field(default_factory=list)
    dns_failures: list[tuple[str, str, str]] = field(default_factory=list)
    dns_ad: bool = False
    dns_insecure: list[str] = field(default_factory=list)
    policy: list[str] = field(default_factory=list)
    main: dict[str, str] = field(default_factory=dict)
    transport: dict[str, str] = field(default_factory=dict)
    sender: str = DEFAULT_SENDER
    body: bytes | None = None
    mail_options: list[str] = field(default_factory=list)   # e.g. ["SMTPUTF8"]
    postfix_only: list[str] = field(default_factory=list)
    relay: dict = field(default_factory=dict)
    timeout: float = 60.0

    @classmethod
    def of(cls, s: "Scenario | dict") -> "Scenario":
        return s if isinstance(s, Scenario) else cls(**s)


class _PeerInfo:
    """What a placeholder `{name.…}` can refer to."""

    def __init__(self, peer: SmtpPeer, cert: pki.Cert | None):
        self.addr = peer.host
        self.hostname = peer.hostname
        self.cert = cert
        self.fp = cert.fp if cert else {}
        self.pkey_fp = cert.pkey_fp if cert else {}


@dataclass
class Built:
    """The running world of one scenario."""
    scenario: Scenario
    world: World
    dns: DnsServer
    peers: dict[str, SmtpPeer]
    values: dict

    def fill(self, text: str) -> str:
        return text.format_map(self.values)


@dataclass
class Outcome:
    engine: str
    statuses: list[dict]
    log: str
    peers: dict[str, SmtpPeer]
    addresses: dict[str, str]

    def normalised(self) -> list[dict]:
        """to, relay, dsn, status, reason per recipient, addresses as {peer.addr}."""
        out = []
        for st in self.statuses:
            d = {k: st[k] for k in ("to", "relay", "dsn", "status", "reason")}
            for name, addr in self.addresses.items():
                for k in ("relay", "reason"):
                    d[k] = re.sub(rf"(?<![\d.]){re.escape(addr)}(?![\d])", f"{{{name}.addr}}", d[k])
            out.append(d)
        return out


def compare(oracle: Outcome, candidate: Outcome) -> list[str]:
    """Differences that matter: status, dsn and relay must be equal; the candidate's
    reason must start with the oracle's (interface.md lets detail follow it)."""
    problems = []
    a, b = oracle.normalised(), candidate.normalised()
    for x, y in zip(a, b):
        for k in ("to", "relay", "dsn", "status"):
            if x[k] != y[k]:
                problems.append(f"{x['to']}: {k} {y[k]!r} != postfix {x[k]!r}")
        if not y["reason"].startswith(x["reason"]):
            problems.append(f"{x['to']}: reason {y['reason']!r} does not start with postfix {x['reason']!r}")
    if len(a) != len(b):
        problems.append(f"{len(b)} status lines != postfix {len(a)}")
    return problems


def build(scenario: Scenario | dict, world: World) -> Built:
    """Starts the DNS server and the peers of a scenario in world."""
    sc = Scenario.of(scenario)
    dns = DnsServer(world)
    peers: dict[str, SmtpPeer] = {}
    values: dict = {"ca": str(pki.get_pki().ca_file)}
    for name, spec in sc.peers.items():
        names = list(spec.get("names", []))
        cert = pki.get_pki().leaf(**spec["cert"]) if spec.get("cert") else None
        peer = SmtpPeer(world, hostname=spec.get("hostname") or (names[0] if names else None),
                        cert=cert, **spec.get("behaviour", {}))
        peers[name] = peer
        values[name] = _PeerInfo(peer, cert)
        for n in names:
            dns.add(n, "AAAA" if ":" in peer.host else "A", peer.host)
    built = Built(sc, world, dns, peers, values)
    for name, rtype, rdata in sc.dns:
        dns.add(built.fill(name), rtype, built.fill(rdata))
    for name, rtype, kind in sc.dns_failures:
        dns.fail(built.fill(name), rtype, kind)
    dns.ad = sc.dns_ad
    dns.insecure = {DnsServer._fqdn(built.fill(n)) for n in sc.dns_insecure}
    dns.start()
    for peer in peers.values():
        peer.start()
    return built


def _run(fn, scenario, world):
    own = world is None
    world = world or World(Scenario.of(scenario).name)
    try:
        return fn(build(scenario, world))
    finally:
        if own:
            world.cleanup()


# ----------------------------------------------------------------------------------------
# Postfix
# ----------------------------------------------------------------------------------------

def run_postfix(scenario: Scenario | dict, world: World | None = None) -> Outcome:
    """Delivers the scenario's message through a private Postfix 3.7 (postfix_oracle)."""
    def go(b: Built) -> Outcome:
        sc = b.scenario
        oracle = PostfixOracle(b.world, b.dns, name=f"postfix-{len(list(b.world.root.iterdir()))}")
        case = {"recipients": sc.recipients, "sender": sc.sender, "body": sc.body,
                "mail_options": sc.mail_options,
                "main": {k: b.fill(str(v)) for k, v in sc.main.items()},
                "policy": [b.fill(l) for l in sc.policy],
                "transport": {b.fill(k): b.fill(v) for k, v in sc.transport.items()}}
        statuses = oracle.deliver(case, timeout=sc.timeout)
        return Outcome("postfix", statuses, oracle.log_since_injection(), b.peers,
                       {n: p.host for n, p in b.peers.items()})
    return _run(go, scenario, world)


# ----------------------------------------------------------------------------------------
# tlsrelay
# ----------------------------------------------------------------------------------------

def _split(rx: str):
    return lambda v: [x for x in re.split(rx, v.strip()) if x]


def _duration(v: str) -> str:
    return f"{v}s" if re.fullmatch(r"\d+", v.strip()) else v.strip()


# Postfix main.cf parameter -> (tlsrelay section, key, converter), per interface.md.
MAIN_TO_RELAY = {
    "smtp_tls_security_level": ("tls", "security_level", str),
    "smtp_tls_CAfile": ("tls", "ca_file", str),
    "smtp_tls_CApath": ("tls", "ca_path", str),
    "smtp_tls_verify_cert_match": ("tls", "verify_cert_match", _split(r"[\s,:]+")),
    "smtp_tls_secure_cert_match": ("tls", "secure_cert_match", _split(r"[\s,:]+")),
    "smtp_tls_fingerprint_digest": ("tls", "fingerprint_digest", str),
    "smtp_tls_fingerprint_cert_match": ("tls", "fingerprint_cert_match", _split(r"[\s,]+")),
    "smtp_tls_protocols": ("tls", "protocols", str),
    "smtp_tls_mandatory_protocols": ("tls", "mandatory_protocols", str),
    "smtp_tls_mandatory_ciphers": ("tls", "mandatory_ciphers", str),
    "smtp_tls_exclude_ciphers": ("tls", "exclude_ciphers", _split(r"[\s,:]+")),
    "smtp_tls_servername": ("tls", "servername", str),
    "smtp_tcp_port": ("delivery", "port", int),
    "relayhost": ("delivery", "relayhost", str),
    "smtp_helo_name": ("delivery", "helo_name", str),
    "smtp_connect_timeout": ("delivery", "connect_timeout", _duration),
    "smtp_dns_support_level": ("dns", "dnssec", lambda v: v.strip() == "dnssec"),
}
# Already what the oracle does, or logging only: nothing to translate.
POSTFIX_ONLY_ALWAYS = {"smtp_tls_loglevel", "smtp_tls_session_cache_database",
                       "smtp_connection_cache_on_demand"}


def relay_config(b: Built, policy_path) -> dict:
    """tlsrelay config sections for a built scenario (server/queue come from Relay)."""
    sc = b.scenario
    cfg: dict = {
        "delivery": {"relayhost": ""},
        "dns": {"servers": [b.dns.server_spec]},
        # Postfix's own defaults where tlsrelay's differ (interface.md), so that both
        # engines decide under the same settings.
        "tls": {"security_level": "may", "ca_file": str(pki.get_pki().ca_file),
                "mandatory_protocols": ">=TLSv1", "policy_file": str(policy_path)},
    }
    unknown = []
    for k, v in sc.main.items():
        if k in MAIN_TO_RELAY:
            section, key, conv = MAIN_TO_RELAY[k]
            cfg.setdefault(section, {})[key] = conv(b.fill(str(v)))
        elif k not in POSTFIX_ONLY_ALWAYS and k not in sc.postfix_only:
            unknown.append(k)
    if unknown:
        raise ValueError(f"scenario {sc.name}: main.cf settings without a tlsrelay equivalent: "
                         f"{unknown} (list them in postfix_only if they do not matter)")
    if sc.transport:
        routes = []
        for dest, value in sc.transport.items():
            value = b.fill(value)
            nexthop = value.split(":", 1)[1] if re.match(r"^(smtp|relay)?:", value) else value
            routes.append({"destination": b.fill(dest), "nexthop": nexthop})
        cfg["delivery.route"] = routes
    for section, values in sc.relay.items():
        if isinstance(values, list):
            cfg[section] = values
        else:
            cfg.setdefault(section, {}).update(values)
    return cfg


def run_tlsrelay(scenario: Scenario | dict, world: World | None = None) -> Outcome:
    """Delivers the scenario's message through tlsrelay: a relay configured from the
    scenario (dns.servers = the scenario's DNS server, the policy lines as policy_file,
    ca_file = the test CA), mail injected with smtplib, and the outcome read from the
    relay's `QUEUEID: to=<...>, relay=..., status=...` stderr lines (interface.md)."""
    def go(b: Built) -> Outcome:
        sc = b.scenario
        name = f"tlsrelay-{len(list(b.world.root.iterdir()))}"
        policy_path = b.world.root / f"{name}-tls_policy"
        policy_path.write_text("".join(b.fill(l) + "\n" for l in sc.policy))
        relay = b.world.relay(name, **relay_config(b, policy_path))
        relay.start()
        mark = relay.log_mark()
        body = sc.body or (b"From: <%s>\r\nTo: <%s>\r\nSubject: differential test\r\n\r\nhello\r\n"
                           % (sc.sender.encode(), sc.recipients[0].encode()))
        with smtplib.SMTP(relay.host, relay.port, local_hostname="client.tlsrelay.invalid",
                          timeout=30) as s:
            s.ehlo()
            code, msg = s.mail(sc.sender, list(sc.mail_options))
            assert code == 250, f"MAIL: {code} {msg!r}"
            for r in sc.recipients:
                code, msg = s.rcpt(r)
                assert code == 250, f"RCPT {r}: {code} {msg!r}"
            code, msg = s.data(body)
            m = re.search(rb"queued as ([0-9A-Za-z]+)", msg)
            assert code == 250 and m, f"DATA: {code} {msg!r}"
            qid = m.group(1).decode()
        statuses = []
        for r in sc.recipients:
            relay.wait_for_log(rf"{re.escape(qid)}: to=<{re.escape(r)}>, .*status=",
                               timeout=sc.timeout, since=mark)
            for line in relay.log_lines(mark):
                st = STATUS_RX.search(line)
                if st and st.group("queue_id") == qid and st.group("to").lower() == r.lower():
                    statuses.append(dict(st.groupdict(), line=line))
                    break
        log = relay.log_text(mark)
        relay.stop()
        # The relay is gone, so every connection is closed; let each peer finish
        # recording its sessions (a TLS handshake completes on the client's side first,
        # and the peer's thread may not have noted it yet).
        for peer in b.peers.values():
            peer.wait_for_sessions(len(peer.sessions), timeout=10)
        return Outcome("tlsrelay", statuses, log, b.peers, {n: p.host for n, p in b.peers.items()})
    return _run(go, scenario, world)

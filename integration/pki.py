"""A test PKI, generated at test time (python3-cryptography) and cached per process.

    pki = get_pki()                     # root CA -> intermediate CA, in a temp folder
    leaf = pki.leaf(dns=["mx1.example.test"])
    leaf.chain_path, leaf.key_path, leaf.ca_file      # PEM files a server/client loads
    leaf.fp["sha256"], leaf.pkey_fp["sha256"]         # as Postfix prints them

Leaves are signed by the intermediate and served with it (chain_path = leaf + intermediate)
unless asked otherwise:

    pki.leaf(dns=[...], ips=["127.0.1.5"])     SAN DNS names / IP addresses
    pki.leaf(cn="mx.example.test")              CN only, no SAN at all
    pki.leaf(dns=["*.example.test"])            wildcard
    pki.leaf(..., expired=True)                 notAfter in the past
    pki.leaf(..., not_yet_valid=True)           notBefore in the future
    pki.leaf(..., valid_days=5)                 notAfter that many days from now (default 365)
    pki.leaf(..., self_signed=True)             its own issuer, no chain
    pki.leaf(..., unknown_ca=True)              signed by a CA nobody trusts
    pki.leaf(..., without_intermediate=True)    chain_path holds the leaf only
    pki.leaf(dns=["mx.example.test\\0.evil.test"])  an embedded NUL (cryptography allows it)

Every file is world-readable (0644, folders 0755): Postfix's smtp(8) reads the CA file
as the postfix user. Everything is EC P-256 unless key="rsa" (fast to generate).
Fingerprints are upper-case hex with colons, over the DER certificate (`fp`) and the DER
SubjectPublicKeyInfo (`pkey_fp`), for md5, sha1, sha256 and sha512.
"""

from __future__ import annotations

import atexit
import datetime
import hashlib
import ipaddress
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DIGESTS = ("md5", "sha1", "sha256", "sha512")


def fingerprint(der: bytes, digest: str = "sha256") -> str:
    """AA:BB:... upper-case hex with colons, as Postfix logs and posttls-finger print."""
    h = hashlib.new(digest, der).hexdigest().upper()
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _new_key(kind: str):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


@dataclass
class Cert:
    """One generated certificate and its files."""
    name: str
    cert: x509.Certificate
    key: object
    cert_path: Path            # this certificate alone (PEM)
    chain_path: Path           # what a server presents: leaf [+ intermediate] (PEM)
    key_path: Path             # private key (PKCS#8 PEM)
    ca_file: Path              # the trust anchor of the test PKI (root CA PEM)
    fp: dict[str, str] = field(default_factory=dict)       # digest -> fingerprint of DER cert
    pkey_fp: dict[str, str] = field(default_factory=dict)  # digest -> fingerprint of DER SPKI

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def spki_der(self) -> bytes:
        return self.cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    def tlsa(self, usage: int = 3, selector: int = 1, mtype: int = 1) -> str:
        """TLSA rdata ("3 1 1 HEX") for this certificate, for DnsServer records."""
        data = self.spki_der if selector == 1 else self.der
        if mtype == 0:
            hexval = data.hex().upper()
        else:
            hexval = hashlib.new({1: "sha256", 2: "sha512"}[mtype], data).hexdigest().upper()
        return f"{usage} {selector} {mtype} {hexval}"


class Pki:
    """Root CA -> intermediate CA -> leaves, in folder. Use get_pki() for the cached one."""

    def __init__(self, folder: Path):
        self.dir = Path(folder)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self._lock = threading.Lock()
        self._cache: dict[tuple, Cert] = {}
        self._n = 0
        now = datetime.datetime.now(datetime.timezone.utc)
        self.root = self._ca("Tlsrelay Test Root CA", None, now)
        self.intermediate = self._ca("Tlsrelay Test Intermediate CA", self.root, now)
        self.unknown_root = self._ca("Tlsrelay Unknown Root CA", None, now, stem="unknown-root")
        self.ca_file = self.root.cert_path
        # The root and the intermediate together, for clients that want a bundle.
        self.bundle_file = self._write("ca-bundle.pem", _pem(self.root.cert) + _pem(self.intermediate.cert))

    # -- helpers -----------------------------------------------------------------------
    def _write(self, name: str, data: bytes) -> Path:
        p = self.dir / name
        p.write_bytes(data)
        os.chmod(p, 0o644)
        return p

    def _finish(self, name: str, cert, key, chain: list, stem: str) -> Cert:
        cert_path = self._write(f"{stem}.pem", _pem(cert))
        chain_path = self._write(f"{stem}-chain.pem", b"".join(_pem(c) for c in [cert, *chain]))
        key_path = self._write(f"{stem}.key", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        c = Cert(name, cert, key, cert_path, chain_path, key_path,
                 getattr(self, "ca_file", cert_path))
        c.fp = {d: fingerprint(c.der, d) for d in DIGESTS}
        c.pkey_fp = {d: fingerprint(c.spki_der, d) for d in DIGESTS}
        return c

    def _ca(self, cn: str, issuer: Cert | None, now, stem: str | None = None) -> Cert:
        key = _new_key("ec")
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tlsrelay tests"),
                             x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        signer_key = issuer.key if issuer else key
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        b = (x509.CertificateBuilder()
             .subject_name(subject)
             .issuer_name(issuer.cert.subject if issuer else subject)
             .public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=2))
             .not_valid_after(now + datetime.timedelta(days=3650))
             .add_extension(x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0),
                            critical=True)
             .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                          key_encipherment=False, data_encipherment=False,
                                          key_agreement=False, key_cert_sign=True, crl_sign=True,
                                          encipher_only=False, decipher_only=False), critical=True)
             .add_extension(ski, critical=False))
        if issuer is not None:
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer.key.public_key()), critical=False)
        cert = b.sign(signer_key, hashes.SHA256())
        stem = stem or ("root-ca" if issuer is None else "intermediate-ca")
        return self._finish(cn, cert, key, [], stem)

    # -- leaves ------------------------------------------------------------------------
    def leaf(self, dns: list[str] | tuple = (), ips: list[str] | tuple = (), cn: str | None = None,
             expired: bool = False, not_yet_valid: bool = False, self_signed: bool = False,
             unknown_ca: bool = False, without_intermediate: bool = False,
             key: str = "ec", server_auth: bool = True, valid_days: float = 365) -> Cert:
        """A server certificate. cn defaults to the first DNS name (or "mail server" when
        there is none); with dns=() and ips=() the certificate has no SAN at all.
        Cached: the same arguments return the same certificate within a process."""
        params = (tuple(dns), tuple(ips), cn, expired, not_yet_valid, self_signed, unknown_ca,
                  without_intermediate, key, server_auth, valid_days)
        with self._lock:
            if params in self._cache:
                return self._cache[params]
            self._n += 1
            stem = f"leaf{self._n}"
        now = datetime.datetime.now(datetime.timezone.utc)
        k = _new_key(key)
        common = cn if cn is not None else (dns[0] if dns else "mail server")
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)]) if common else x509.Name([])
        if self_signed:
            issuer_name, signer_key, chain = subject, k, []
        elif unknown_ca:
            issuer_name, signer_key, chain = self.unknown_root.cert.subject, self.unknown_root.key, []
        else:
            issuer_name, signer_key = self.intermediate.cert.subject, self.intermediate.key
            chain = [] if without_intermediate else [self.intermediate.cert]
        if expired:
            nb, na = now - datetime.timedelta(days=60), now - datetime.timedelta(days=1)
        elif not_yet_valid:
            nb, na = now + datetime.timedelta(days=1), now + datetime.timedelta(days=60)
        else:
            nb, na = now - datetime.timedelta(days=1), now + datetime.timedelta(days=valid_days)
        b = (x509.CertificateBuilder()
             .subject_name(subject)
             .issuer_name(issuer_name)
             .public_key(k.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(nb)
             .not_valid_after(na)
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
        names = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
        if names:
            b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
        if server_auth:
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        if not self_signed:
            issuer_key = self.unknown_root.key if unknown_ca else self.intermediate.key
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer_key.public_key()), critical=False)
        cert = b.sign(signer_key, hashes.SHA256())
        c = self._finish(common or stem, cert, k, chain, stem)
        with self._lock:
            return self._cache.setdefault(params, c)


_PKI: Pki | None = None
_PKI_LOCK = threading.Lock()


def get_pki() -> Pki:
    """The process-wide test PKI (generated on first use, removed at exit unless
    TLSRELAY_KEEP_WORLD=1)."""
    global _PKI
    with _PKI_LOCK:
        if _PKI is None:
            folder = Path(tempfile.mkdtemp(prefix="tlsrelay-pki-"))
            if os.environ.get("TLSRELAY_KEEP_WORLD") != "1":
                atexit.register(shutil.rmtree, folder, True)
            _PKI = Pki(folder)
        return _PKI

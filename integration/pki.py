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
    pki.leaf(..., with_root=True)               chain_path holds leaf + intermediate + root CA
    pki.leaf(dns=["mx.example.test\\0.evil.test"])  an embedded NUL (cryptography allows it)
    pki.leaf(..., key="rsa1024")                a 1024-bit RSA key (also "rsa", "rsa4096", "p384", "p521",
                                                "ed25519", "rsa-pss": an id-RSASSA-PSS key, made with
                                                openssl(1))
    pki.leaf(..., signature="sha1")             the issuer's signature over the leaf with that hash
    pki.leaf(..., ca=True)                      basicConstraints CA:TRUE on the leaf
    pki.leaf(..., server_auth=False, client_auth=True)   extendedKeyUsage clientAuth only
    pki.leaf(..., unknown_critical=True)        a critical extension of a private OID
    pki.leaf(..., intermediate="not-ca")        issued by another intermediate, one of INTERMEDIATES
                                                (served with it): "not-ca" (basicConstraints
                                                CA:FALSE), "no-keycertsign" (keyUsage without
                                                keyCertSign), "constrained" (nameConstraints:
                                                permitted DNS other.test), "expired",
                                                "not-yet-valid", "rsa1024" (a 1024-bit RSA key),
                                                "client-auth-only" (extendedKeyUsage clientAuth),
                                                "untrusted" (signed by the unknown root: with_root
                                                serves that root)
    pki.leaf(..., intermediate="chain:12")      issued by the last of 12 intermediates without a
                                                path length (root -> CA 1 -> ... -> CA 12), all served
    pki.leaf(..., intermediate="pathlen0-over-another")  root -> CA (pathLenConstraint 0) -> another
                                                CA -> leaf, both served
    pki.leaf(..., by_root=True)                 signed by the root CA itself (served alone)
    pki.leaf(..., served="reversed")            the CAs of chain_path in reverse order (the leaf
                                                stays first); "duplicate-leaf" (leaf, leaf, CAs),
                                                "extra-unrelated" (an unrelated CA certificate last)

    pki.dh_params("ffdhe2048")                  a PEM file of DH parameters (a group openssl genpkey
                                                knows: "ffdhe2048", "modp_1536", "dh_1024_160", ...) for
                                                a server's DHE and ADH suites (SSLContext.load_dh_params)

Every file is world-readable (0644, folders 0755): Postfix's smtp(8) reads the CA file
as the postfix user. Everything is EC P-256 unless key= says otherwise (fast to generate).
A 1024-bit RSA key or a SHA-1 signature is below Debian's default OpenSSL security level
(2): a server must lower its level before it can even load such a certificate.
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
import subprocess
import tempfile
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

DIGESTS = ("md5", "sha1", "sha256", "sha512")
# pki.leaf(intermediate=...): the odd intermediate CAs (all signed by the root)
INTERMEDIATES = ("not-ca", "no-keycertsign", "constrained", "expired", "not-yet-valid", "rsa1024",
                 "client-auth-only", "untrusted")
# pki.leaf(intermediate=...): chains of more than one intermediate ("chain:N" as well)
CHAINS = ("pathlen0-over-another",)
SERVED = ("reversed", "duplicate-leaf", "extra-unrelated")
# an OID under the documentation arc no implementation knows (RFC 7229's 1.3.6.1.5.5.7.13)
UNKNOWN_OID = ObjectIdentifier("1.3.6.1.5.5.7.13.42")
HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


def fingerprint(der: bytes, digest: str = "sha256") -> str:
    """AA:BB:... upper-case hex with colons, as Postfix logs and posttls-finger print."""
    h = hashlib.new(digest, der).hexdigest().upper()
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _new_key(kind: str):
    if kind in ("rsa", "rsa1024", "rsa4096"):
        return rsa.generate_private_key(public_exponent=65537,
                                        key_size={"rsa": 2048, "rsa1024": 1024, "rsa4096": 4096}[kind])
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "p521":
        return ec.generate_private_key(ec.SECP521R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind != "ec":
        raise ValueError(f"unknown key kind {kind!r}")
    return ec.generate_private_key(ec.SECP256R1())


def _sign(builder, key, digest: str) -> x509.Certificate:
    """builder signed by key; Ed25519 takes no hash, SHA-1 without cryptography's warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return builder.sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else HASHES[digest]())


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
    spki: bytes | None = None  # the DER SPKI when cryptography cannot read the key (RSA-PSS)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def spki_der(self) -> bytes:
        if self.spki is not None:
            return self.spki
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

    def _finish(self, name: str, cert, key, chain: list, stem: str, key_pem: bytes | None = None,
                spki: bytes | None = None) -> Cert:
        cert_path = self._write(f"{stem}.pem", _pem(cert))
        chain_path = self._write(f"{stem}-chain.pem", b"".join(_pem(c) for c in [cert, *chain]))
        key_path = self._write(f"{stem}.key", key_pem or key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        c = Cert(name, cert, key, cert_path, chain_path, key_path,
                 getattr(self, "ca_file", cert_path), spki=spki)
        c.fp = {d: fingerprint(c.der, d) for d in DIGESTS}
        c.pkey_fp = {d: fingerprint(c.spki_der, d) for d in DIGESTS}
        return c

    def _ca(self, cn: str, issuer: Cert | None, now, stem: str | None = None, ca: bool = True,
            key_cert_sign: bool = True, permitted: list[str] | None = None, key: str = "ec",
            validity: tuple | None = None, eku: list | None = None, path_length: int | None | str = "auto") -> Cert:
        """A CA certificate; ca=False, key_cert_sign=False, permitted (DNS subtrees of
        nameConstraints), key, validity (notBefore, notAfter), eku (extendedKeyUsage OIDs)
        and path_length (None: no constraint; default 0 below a root) make the odd
        intermediates of INTERMEDIATES and CHAINS."""
        kind = key
        key = _new_key(kind)
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tlsrelay tests"),
                             x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        signer_key = issuer.key if issuer else key
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        b = (x509.CertificateBuilder()
             .subject_name(subject)
             .issuer_name(issuer.cert.subject if issuer else subject)
             .public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(validity[0] if validity else now - datetime.timedelta(days=2))
             .not_valid_after(validity[1] if validity else now + datetime.timedelta(days=3650))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=(
                 None if issuer is None or not ca else 0) if path_length == "auto" else path_length),
                            critical=True)
             .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                          key_encipherment=False, data_encipherment=False,
                                          key_agreement=False, key_cert_sign=key_cert_sign, crl_sign=True,
                                          encipher_only=False, decipher_only=False), critical=True)
             .add_extension(ski, critical=False))
        if issuer is not None:
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer.key.public_key()), critical=False)
        if permitted:
            b = b.add_extension(x509.NameConstraints([x509.DNSName(n) for n in permitted], None), critical=True)
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        cert = b.sign(signer_key, hashes.SHA256())
        stem = stem or ("root-ca" if issuer is None else "intermediate-ca")
        return self._finish(cn, cert, key, [], stem)

    def odd_intermediate(self, kind: str) -> Cert:
        """One of INTERMEDIATES, signed by the root; made on first use, then cached."""
        if kind not in INTERMEDIATES:
            raise ValueError(f"unknown intermediate {kind!r}")
        with self._lock:
            if ("intermediate", kind) not in self._cache:
                now = datetime.datetime.now(datetime.timezone.utc)
                day = datetime.timedelta(days=1)
                validity = {"expired": (now - 60 * day, now - day),
                            "not-yet-valid": (now + day, now + 60 * day)}.get(kind)
                self._cache[("intermediate", kind)] = self._ca(
                    f"Tlsrelay Test Intermediate CA ({kind})", self.unknown_root if kind == "untrusted" else self.root,
                    now, stem=f"intermediate-{kind}",
                    ca=kind != "not-ca", key_cert_sign=kind != "no-keycertsign",
                    permitted=["other.test"] if kind == "constrained" else None,
                    key="rsa1024" if kind == "rsa1024" else "ec", validity=validity,
                    eku=[ExtendedKeyUsageOID.CLIENT_AUTH] if kind == "client-auth-only" else None)
            return self._cache[("intermediate", kind)]

    def intermediate_chain(self, kind: str) -> list[Cert]:
        """The CAs between the leaf and the root for pki.leaf(intermediate=kind), the leaf's
        issuer first: one of INTERMEDIATES, CHAINS or "chain:N"; made on first use, then cached."""
        if kind in INTERMEDIATES:
            return [self.odd_intermediate(kind)]
        if kind not in CHAINS and not (kind.startswith("chain:") and kind[6:].isdigit() and int(kind[6:]) > 0):
            raise ValueError(f"unknown intermediate {kind!r}")
        with self._lock:
            if ("chain", kind) not in self._cache:
                now = datetime.datetime.now(datetime.timezone.utc)
                name = kind.replace(":", "-")
                if kind == "pathlen0-over-another":
                    top = self._ca("Tlsrelay Test Intermediate CA (pathlen 0)", self.root, now,
                                   stem=f"intermediate-{name}-1", path_length=0)
                    cas = [top, self._ca("Tlsrelay Test Intermediate CA (below pathlen 0)", top, now,
                                         stem=f"intermediate-{name}-2", path_length=None)]
                else:
                    cas, issuer = [], self.root
                    for n in range(1, int(kind[6:]) + 1):
                        issuer = self._ca(f"Tlsrelay Test Intermediate CA {n} of {kind[6:]}", issuer, now,
                                          stem=f"intermediate-{name}-{n}", path_length=None)
                        cas.append(issuer)
                self._cache[("chain", kind)] = cas[::-1]
            return self._cache[("chain", kind)]

    def dh_params(self, group: str = "ffdhe2048") -> Path:
        """A PEM file of the named DH group's parameters (openssl genpkey -genparam); cached."""
        with self._lock:
            if ("dh", group) not in self._cache:
                pem = subprocess.run(["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt",
                                      f"group:{group}"], capture_output=True, check=True).stdout
                self._cache[("dh", group)] = self._write(f"dh-{group}.pem", pem)
            return self._cache[("dh", group)]

    # -- leaves ------------------------------------------------------------------------
    def leaf(self, dns: list[str] | tuple = (), ips: list[str] | tuple = (), cn: str | None = None,
             expired: bool = False, not_yet_valid: bool = False, self_signed: bool = False,
             unknown_ca: bool = False, without_intermediate: bool = False,
             key: str = "ec", server_auth: bool = True, valid_days: float = 365,
             signature: str = "sha256", ca: bool = False, client_auth: bool = False,
             unknown_critical: bool = False, intermediate: str | None = None, with_root: bool = False,
             by_root: bool = False, served: str | None = None) -> Cert:
        """A server certificate. cn defaults to the first DNS name (or "mail server" when
        there is none); with dns=() and ips=() the certificate has no SAN at all.
        Cached: the same arguments return the same certificate within a process."""
        params = (tuple(dns), tuple(ips), cn, expired, not_yet_valid, self_signed, unknown_ca,
                  without_intermediate, key, server_auth, valid_days, signature, ca, client_auth,
                  unknown_critical, intermediate, with_root, by_root, served)
        with self._lock:
            if params in self._cache:
                return self._cache[params]
            self._n += 1
            stem = f"leaf{self._n}"
        if served is not None and served not in SERVED:
            raise ValueError(f"unknown served {served!r}")
        cas = self.intermediate_chain(intermediate) if intermediate else [self.intermediate]
        if by_root:
            cas = []
        issuing = cas[0] if cas else self.root
        common = cn if cn is not None else (dns[0] if dns else "mail server")
        if key == "rsa-pss":
            if expired or not_yet_valid or self_signed or unknown_ca or ca or unknown_critical or client_auth:
                raise ValueError("key='rsa-pss' takes dns, ips, cn, without_intermediate, server_auth, "
                                 "valid_days, signature and intermediate only")
            c = self._openssl_pss_leaf(stem, common, dns, ips, issuing, without_intermediate, server_auth,
                                       valid_days, signature)
            with self._lock:
                return self._cache.setdefault(params, c)
        now = datetime.datetime.now(datetime.timezone.utc)
        k = _new_key(key)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)]) if common else x509.Name([])
        if self_signed:
            issuer_name, signer_key, chain = subject, k, []
        elif unknown_ca:
            issuer_name, signer_key, chain = self.unknown_root.cert.subject, self.unknown_root.key, []
        else:
            issuer_name, signer_key = issuing.cert.subject, issuing.key
            chain = [] if without_intermediate else [c.cert for c in cas]
            if with_root:
                chain.append(self.unknown_root.cert if intermediate == "untrusted" else self.root.cert)
            if served == "reversed":
                chain.reverse()
            elif served == "extra-unrelated":
                chain.append(self.odd_intermediate("constrained").cert)
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
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        names = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
        if names:
            b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server_auth else []) + \
                 ([ExtendedKeyUsageOID.CLIENT_AUTH] if client_auth else [])
        if usages:
            b = b.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        if unknown_critical:
            b = b.add_extension(x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00"), critical=True)
        if not self_signed:
            issuer_key = self.unknown_root.key if unknown_ca else issuing.key
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer_key.public_key()), critical=False)
        cert = _sign(b, signer_key, signature)
        if served == "duplicate-leaf":
            chain.insert(0, cert)
        c = self._finish(common or stem, cert, k, chain, stem)
        with self._lock:
            return self._cache.setdefault(params, c)


    def _openssl_pss_leaf(self, stem: str, common: str, dns, ips, issuing: Cert, without_intermediate: bool,
                          server_auth: bool, valid_days: float, signature: str) -> Cert:
        """An id-RSASSA-PSS leaf: cryptography (38) can neither make nor read such a key,
        so openssl(1) makes key and certificate (notBefore now, signed by issuing)."""
        work = self.dir / f"{stem}-openssl"
        work.mkdir()

        def run(*args: str, stdin: bytes | None = None) -> bytes:
            return subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=True).stdout

        key_file, csr = work / "key.pem", work / "req.pem"
        run("genpkey", "-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key_file))
        subj = "/CN=" + common.replace("/", "\\/") if common else "/"
        run("req", "-new", "-key", str(key_file), "-subj", subj, "-out", str(csr))
        san = [f"DNS:{n}" for n in dns] + [f"IP:{a}" for a in ips]
        ext = work / "ext.cnf"
        ext.write_text("basicConstraints = critical,CA:FALSE\n"
                       + (f"subjectAltName = {','.join(san)}\n" if san else "")
                       + ("extendedKeyUsage = serverAuth\n" if server_auth else "")
                       + "authorityKeyIdentifier = keyid\n")
        ca_key = work / "issuer.key"
        ca_key.write_bytes(issuing.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
        pem = run("x509", "-req", "-in", str(csr), "-CA", str(issuing.cert_path), "-CAkey", str(ca_key),
                  "-set_serial", str(x509.random_serial_number()), "-days", str(max(1, int(valid_days))),
                  f"-{signature}", "-extfile", str(ext))
        spki = run("pkey", "-in", str(key_file), "-pubout", "-outform", "DER")
        cert = x509.load_pem_x509_certificate(pem)
        c = self._finish(common or stem, cert, None, [] if without_intermediate else [issuing.cert], stem,
                         key_pem=key_file.read_bytes(), spki=spki)
        shutil.rmtree(work)
        return c


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

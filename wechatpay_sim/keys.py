"""Throwaway key material for the local WeChat Pay simulator.

``generate_keyset(directory)`` creates (once) and loads everything a merchant
and "WeChat" need to talk API v3 to each other: the merchant's API key pair and
certificate serial, the platform key pair (with its public key id and a
self-signed platform certificate for certificate mode), the APIv3 key, mchid
and appid. Files are plain PEM / text so the local stack can point the
service's ``*_FILE`` settings at them. Nothing here is a real credential.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
import string
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

META_FILE = "meta.json"
APIV3_KEY_FILE = "apiv3_key"
MERCHANT_PRIVATE_KEY_FILE = "merchant_private_key.pem"
MERCHANT_PUBLIC_KEY_FILE = "merchant_public_key.pem"
PLATFORM_PRIVATE_KEY_FILE = "platform_private_key.pem"
PLATFORM_PUBLIC_KEY_FILE = "platform_public_key.pem"
PLATFORM_CERT_FILE = "platform_cert.pem"
# Certificate mode signs with its own key: WeChat's platform certificate key and the
# WeChat Pay public key (public-key mode) are different key pairs.
PLATFORM_CERT_KEY_FILE = "platform_cert_private_key.pem"

DEFAULT_MCHID = "1900000109"


@dataclass(frozen=True)
class KeySet:
    directory: str
    mchid: str
    appid: str
    merchant_serial: str  # the merchant API certificate serial (40 hex)
    merchant_private_key_pem: str  # PKCS#8
    merchant_public_key_pem: str
    platform_private_key_pem: str  # "WeChat"'s signing key
    platform_public_key_pem: str  # what the merchant configures as the WeChat public key
    public_key_id: str  # PUB_KEY_ID_...
    platform_cert_pem: str  # self-signed certificate over the certificate key
    platform_cert_serial: str  # as OpenSSL writes it: whole bytes, upper-case hex
    apiv3_key: str  # 32 ASCII characters
    platform_cert_private_key_pem: str = ""  # the key behind platform_cert_pem

    @cached_property
    def merchant_public_key(self):
        return serialization.load_pem_public_key(self.merchant_public_key_pem.encode())

    @cached_property
    def platform_private_key(self):
        return serialization.load_pem_private_key(self.platform_private_key_pem.encode(), None)

    @cached_property
    def platform_cert_private_key(self):
        return serialization.load_pem_private_key(self.platform_cert_private_key_pem.encode(), None)

    def is_cert_serial(self, serial: str | None) -> bool:
        """Whether ``serial`` names the platform certificate. Compared as a number, as the
        SDKs do (``hex(n)`` drops a leading zero that OpenSSL keeps)."""
        try:
            return int(str(serial), 16) == int(self.platform_cert_serial, 16)
        except ValueError:
            return False

    def path(self, name: str) -> str:
        return str(Path(self.directory) / name)

    def env(self) -> dict[str, str]:
        """Environment for ``chalicelib.config.wechat_settings()`` (public-key mode).

        Secrets are passed as ``*_FILE`` paths; URLs and timeouts are the
        caller's business.
        """
        return {
            "WECHAT_MCHID": self.mchid,
            "WECHAT_APPID": self.appid,
            "WECHAT_CERT_SERIAL_NO": self.merchant_serial,
            "WECHAT_PRIVATE_KEY_FILE": self.path(MERCHANT_PRIVATE_KEY_FILE),
            "WECHAT_APIV3_KEY_FILE": self.path(APIV3_KEY_FILE),
            "WECHAT_PUBLIC_KEY_ID": self.public_key_id,
            "WECHAT_PUBLIC_KEY_FILE": self.path(PLATFORM_PUBLIC_KEY_FILE),
        }


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def openssl_serial(number: int) -> str:
    """A certificate serial as OpenSSL prints it: upper-case hex of whole bytes, so a
    leading zero nibble is kept (``0A1B...``, never ``A1B...``)."""
    text = format(number, "X")
    return "0" + text if len(text) % 2 else text


def _self_signed_cert(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tenpay.com (local simulator)"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com sign"),
        ]
    )
    now = _dt.datetime.now(_dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(days=1))
        .not_valid_after(now + _dt.timedelta(days=5 * 365))
        .sign(key, hashes.SHA256())
    )


def _write(path: Path, text: str, private: bool = False) -> None:
    """Write atomically; private files are created 0600."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o600 if private else 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_certificate(directory: Path) -> x509.Certificate:
    key = new_rsa_key()
    cert = _self_signed_cert(key)
    _write(directory / PLATFORM_CERT_KEY_FILE, private_pem(key), private=True)
    _write(directory / PLATFORM_CERT_FILE, cert.public_bytes(serialization.Encoding.PEM).decode())
    return cert


def _generate(directory: Path, mchid: str) -> None:
    merchant = new_rsa_key()
    platform = new_rsa_key()
    cert = _write_certificate(directory)
    alphabet = string.ascii_letters + string.digits
    meta = {
        "mchid": mchid,
        "appid": "wx" + secrets.token_hex(8),
        "merchant_serial": secrets.token_hex(20).upper(),
        "public_key_id": "PUB_KEY_ID_" + "".join(secrets.choice(string.digits) for _ in range(30)),
        "platform_cert_serial": openssl_serial(cert.serial_number),
    }
    _write(directory / MERCHANT_PRIVATE_KEY_FILE, private_pem(merchant), private=True)
    _write(directory / MERCHANT_PUBLIC_KEY_FILE, public_pem(merchant))
    _write(directory / PLATFORM_PRIVATE_KEY_FILE, private_pem(platform), private=True)
    _write(directory / PLATFORM_PUBLIC_KEY_FILE, public_pem(platform))
    # No trailing newline: the service reads *_FILE secrets verbatim.
    _write(directory / APIV3_KEY_FILE, "".join(secrets.choice(alphabet) for _ in range(32)), private=True)
    # meta.json last: its presence marks a complete key set.
    _write(directory / META_FILE, json.dumps(meta, indent=2) + "\n")


def load_keyset(directory: str | os.PathLike) -> KeySet:
    d = Path(directory)
    meta = json.loads((d / META_FILE).read_text(encoding="utf-8"))
    if not (d / PLATFORM_CERT_KEY_FILE).exists():
        # A key set from before certificate mode had its own key: give it one.
        _write_certificate(d)

    def read(name: str) -> str:
        return (d / name).read_text(encoding="utf-8")

    cert = x509.load_pem_x509_certificate(read(PLATFORM_CERT_FILE).encode())

    return KeySet(
        directory=str(d.resolve()),
        mchid=meta["mchid"],
        appid=meta["appid"],
        merchant_serial=meta["merchant_serial"],
        merchant_private_key_pem=read(MERCHANT_PRIVATE_KEY_FILE),
        merchant_public_key_pem=read(MERCHANT_PUBLIC_KEY_FILE),
        platform_private_key_pem=read(PLATFORM_PRIVATE_KEY_FILE),
        platform_public_key_pem=read(PLATFORM_PUBLIC_KEY_FILE),
        public_key_id=meta["public_key_id"],
        platform_cert_pem=read(PLATFORM_CERT_FILE),
        platform_cert_serial=openssl_serial(cert.serial_number),
        apiv3_key=read(APIV3_KEY_FILE).strip(),
        platform_cert_private_key_pem=read(PLATFORM_CERT_KEY_FILE),
    )


def generate_keyset(directory: str | os.PathLike, *, mchid: str = DEFAULT_MCHID) -> KeySet:
    """Create the key set in ``directory`` unless it is already there, then load it."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    if not (d / META_FILE).exists():
        _generate(d, mchid)
    return load_keyset(d)

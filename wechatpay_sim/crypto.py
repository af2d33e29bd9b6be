"""Signing, verification and encryption as WeChat Pay API v3 does them."""
from __future__ import annotations

import base64
import datetime as _dt
import re
import secrets
import string
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
SIGNTEST_PREFIX = "WECHATPAY/SIGNTEST/"
_ALNUM = string.ascii_letters + string.digits
_CST = _dt.timezone(_dt.timedelta(hours=8))
_AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')


def random_string(length: int = 32) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def rfc3339(epoch: float | None = None) -> str:
    """Beijing time with offset, as WeChat formats it: 2018-06-08T10:34:56+08:00."""
    moment = _dt.datetime.fromtimestamp(time.time() if epoch is None else epoch, _CST)
    return moment.isoformat(timespec="seconds")


def rsa_sign(private_key, message: bytes) -> str:
    return base64.b64encode(private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(public_key, message: bytes, signature_b64: str) -> bool:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


def rsa_oaep_decrypt(private_key, ciphertext_b64: str) -> str:
    """Decrypt a sensitive field the SDK encrypted with the platform public key."""
    return private_key.decrypt(base64.b64decode(ciphertext_b64), _OAEP).decode("utf-8")


def rsa_oaep_encrypt(public_key, text: str) -> str:
    """Encrypt a sensitive field for the holder of ``public_key`` (RSA-OAEP with SHA-1, as the
    SDK's ``rsa_decrypt`` expects), base64."""
    return base64.b64encode(public_key.encrypt(text.encode("utf-8"), _OAEP)).decode()


def aes_gcm_encrypt(apiv3_key: str, plaintext: bytes, associated_data: str) -> tuple[str, str]:
    """Return (nonce, base64(ciphertext || tag)) as used in notifications and certificates."""
    nonce = random_string(12)
    sealed = AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), plaintext, associated_data.encode())
    return nonce, base64.b64encode(sealed).decode()


def parse_authorization(header: str | None) -> dict[str, str] | None:
    """Split ``WECHATPAY2-SHA256-RSA2048 mchid="..",nonce_str="..",...`` into a dict."""
    if not header:
        return None
    scheme, _, params = header.partition(" ")
    if scheme != SIGNATURE_TYPE:
        return None
    return dict(_AUTH_PARAM.findall(params))


def request_message(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{method}\n{path}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"


def response_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def signed_headers(
    private_key,
    serial: str,
    body: bytes,
    *,
    timestamp: int | None = None,
    signature: str | None = None,
    include_signature_type: bool = True,
) -> dict[str, str]:
    """The Wechatpay-* headers for a response or notification body.

    ``signature`` overrides the computed one (SIGNTEST probes); sign with a
    different ``private_key`` to produce a forged message.
    """
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = random_string(32)
    headers = {
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": signature or rsa_sign(private_key, response_message(ts, nonce, body)),
        "Wechatpay-Serial": serial,
    }
    if include_signature_type:
        headers["Wechatpay-Signature-Type"] = SIGNATURE_TYPE
    return headers


def signtest_signature() -> str:
    return SIGNTEST_PREFIX + base64.b64encode(secrets.token_bytes(64)).decode()

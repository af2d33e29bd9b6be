"""Keys and certificates: the merchant key that signs our requests, WeChat Pay's platform
certificates or public key that verify its answers, and the SDK client built from them.

The one module that imports the ``wechatpayv3`` SDK, and always inside a function: the SDK
pulls in ``cryptography`` and ``requests`` (~100+ ms), which a Lambda cold start must not pay
for. Secrets are never logged, and the SDK's debug logger is never enabled.
"""
from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from .errors import GatewayMisconfigured, error_from_response

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.config import WechatSettings

# A platform certificate's serial number (hex); the public key's id is PUB_KEY_ID_...
CERT_SERIAL = re.compile(r"^[0-9A-Fa-f]{1,64}$")


def signed_get_headers(s: "WechatSettings", path: str, private_key: Any = None) -> dict[str, str]:
    """Headers of a GET of ``path`` signed with the merchant key (``private_key`` when already
    loaded, e.g. the client's; read from the settings otherwise)."""
    from wechatpayv3.utils import build_authorization, load_private_key

    key = private_key if private_key is not None else load_private_key(s.private_key)
    authorization = build_authorization(path, "GET", s.mchid, s.cert_serial_no, key)
    return {"Authorization": authorization, "Accept": "application/json"}


def merchant_private_key(client: Any) -> Any:
    """The merchant key the SDK client loaded (to sign what the SDK has no method for)."""
    return client._core._private_key


def _point_at(client: Any, base_url: str) -> None:
    """Aim the SDK at ``base_url``. The SDK hard-codes api.mch.weixin.qq.com; this is
    the one place that overrides it (the local simulator, tests)."""
    client._core._gate_way = base_url.rstrip("/")


def _default_cert_dir(mchid: str) -> str:
    import tempfile

    return os.path.join(tempfile.gettempdir(), "wechatpay-platform-certs", mchid)


def _has_valid_certificate(cert_dir: str) -> bool:
    from wechatpayv3.utils import load_certificate
    from datetime import datetime, timezone

    if not os.path.isdir(cert_dir):
        return False
    now = datetime.now(timezone.utc)
    for name in os.listdir(cert_dir):
        if not name.lower().endswith(".pem"):
            continue
        with open(os.path.join(cert_dir, name), encoding="utf-8") as fh:
            cert = load_certificate(fh.read())
        if cert is not None and cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            return True
    return False


def _download_platform_certificates(s: "WechatSettings", cert_dir: str) -> None:
    """Fetch GET /v3/certificates from ``s.base_url`` into ``cert_dir``.

    The SDK would do this itself inside its constructor, but against its
    hard-coded host, before ``_point_at`` can run. The certificates are
    AES-GCM sealed with the APIv3 key, which authenticates them.
    """
    import requests
    from wechatpayv3.utils import aes_decrypt, load_certificate

    path = "/v3/certificates"
    response = requests.get(s.base_url.rstrip("/") + path, headers=signed_get_headers(s, path),
                            timeout=s.timeout_seconds)
    if response.status_code != 200:
        raise error_from_response("certificates", response.status_code, response.text)
    os.makedirs(cert_dir, exist_ok=True)
    written = 0
    for item in response.json().get("data") or []:
        sealed = item.get("encrypt_certificate") or {}
        serial = str(item.get("serial_no") or "")
        if not CERT_SERIAL.match(serial):
            continue
        pem = aes_decrypt(
            nonce=sealed.get("nonce", ""),
            ciphertext=sealed.get("ciphertext", ""),
            associated_data=sealed.get("associated_data", ""),
            apiv3_key=s.apiv3_key,
        )
        if not pem or load_certificate(pem) is None:
            continue
        tmp = os.path.join(cert_dir, f".{serial}.pem.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(pem)
        os.replace(tmp, os.path.join(cert_dir, f"{serial}.pem"))
        written += 1
    if not written:
        raise GatewayMisconfigured("CONFIG_ERROR", "no usable platform certificate (check the APIv3 key)")


def build_client(s: "WechatSettings") -> Any:
    """The SDK client for ``s``, aimed at ``s.base_url``: public-key mode, platform-certificate
    mode (certificates fetched when none on disk is valid), or both during a key-mode switch."""
    from wechatpayv3 import WeChatPay, WeChatPayType

    if not s.timeout_seconds or s.timeout_seconds <= 0:
        raise GatewayMisconfigured("CONFIG_ERROR", "timeout_seconds must be positive")
    if len(s.apiv3_key.encode()) != 32:
        raise GatewayMisconfigured("CONFIG_ERROR", "the APIv3 key must be 32 bytes")
    common = dict(
        wechatpay_type=WeChatPayType.JSAPI,
        mchid=s.mchid,
        private_key=s.private_key,
        cert_serial_no=s.cert_serial_no,
        appid=s.appid,
        apiv3_key=s.apiv3_key,
        notify_url=s.payment_notify_url,  # refunds always pass their own notify_url
        logger=None,  # the SDK's debug log prints headers, bodies and decrypted callbacks
        timeout=s.timeout_seconds,  # None would mean "wait forever"
    )
    if s.public_key_id:
        if not s.public_key:
            raise GatewayMisconfigured("CONFIG_ERROR", "public_key_id is set but public_key is not")
        client = WeChatPay(**common, public_key=s.public_key, public_key_id=s.public_key_id)
        if s.cert_dir:
            # Both key modes (a switch period): the SDK picks the public key when the serial is
            # the public key id and a platform certificate otherwise.
            if not _has_valid_certificate(s.cert_dir):
                _download_platform_certificates(s, s.cert_dir)
            client._core._cert_dir = s.cert_dir.rstrip("/") + "/"
            client._core._init_certificates()
    else:
        cert_dir = s.cert_dir or _default_cert_dir(s.mchid)
        if not _has_valid_certificate(cert_dir):
            _download_platform_certificates(s, cert_dir)
        client = WeChatPay(**common, cert_dir=cert_dir)
    _point_at(client, s.base_url)
    return client

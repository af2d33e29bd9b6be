"""Keys and certificates: the merchant key that signs our requests, WeChat Pay's platform
certificates or public key that verify its answers, and the SDK client built from them.

The one module that imports the ``wechatpayv3`` SDK, and always inside a function: the SDK
pulls in ``cryptography`` and ``requests`` (~100+ ms), which a Lambda cold start must not pay
for. Secrets are never logged, and the SDK's debug logger is never enabled.
"""
from __future__ import annotations

import os
import re
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from chalicelib.log import get_logger

from .errors import GatewayMisconfigured, error_from_response

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.config import WechatSettings

log = get_logger(__package__)

# A platform certificate's serial number (hex); the public key's id is PUB_KEY_ID_...
CERT_SERIAL = re.compile(r"^[0-9A-Fa-f]{1,64}$")
# A serial no known certificate has asks WeChat's certificate list again at most this often
CERT_REFRESH_SECONDS = 60.0


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


def cert_cache_dir(s: "WechatSettings") -> str:
    """Where platform certificates are kept once fetched: ``s.cert_dir``, else a folder per merchant
    in the temp dir (on Lambda /tmp, the one writable place, kept while the container lives)."""
    import tempfile

    return s.cert_dir or os.path.join(tempfile.gettempdir(), "wechatpay-platform-certs", s.mchid)


def _valid_now(cert: Any) -> bool:
    from datetime import datetime, timezone

    return cert.not_valid_before_utc <= datetime.now(timezone.utc) <= cert.not_valid_after_utc


def _serial_number(serial: str) -> int | None:
    """A Wechatpay-Serial as the certificate's number (WeChat writes it in hex, with or without a
    leading zero: the SDK compares numbers too)."""
    return int(serial, 16) if CERT_SERIAL.match(serial or "") else None


class PlatformCertificates:
    """WeChat Pay's platform certificates for one configuration, wherever they come from: the
    configured PEM (``WECHAT_PLATFORM_CERTS``: env, file or SSM parameter), those kept in
    ``cert_cache_dir`` by an earlier download (this container, or a gateway built before), or
    WeChat's certificate download (``GET /v3/certificates``, each sealed with the APIv3 key, which
    authenticates it), written to that folder. A serial none of them knows asks WeChat again at most
    once every ``refresh_seconds``: notifications naming made-up serials cannot make this service
    call WeChat once each. Thread-safe."""

    def __init__(self, s: "WechatSettings", *, refresh_seconds: float = CERT_REFRESH_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.settings = s
        self.directory = cert_cache_dir(s)
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._certs: dict[int, Any] | None = None  # serial number -> certificate, valid when loaded
        self._asked_at: float | None = None  # when WeChat was last asked (monotonic)

    def find(self, serial: str) -> Any | None:
        """The valid certificate ``serial`` names, or None when neither the configuration, the
        folder nor (at most once a refresh interval) WeChat knows one."""
        number = _serial_number(serial)
        if number is None:
            return None
        with self._lock:
            certs = self._known()
            if number not in certs and self._may_ask():
                certs.update(self._download())
            cert = certs.get(number)
            return cert if cert is not None and _valid_now(cert) else None

    def ensure_any(self) -> list[Any]:
        """Every valid certificate known, asking WeChat when none is (certificate mode needs one
        before its first call). Raises GatewayMisconfigured when WeChat has none either."""
        with self._lock:
            certs = self._known()
            if not any(_valid_now(c) for c in certs.values()):
                certs.update(self._download())
            valid = [c for c in certs.values() if _valid_now(c)]
        if not valid:
            raise GatewayMisconfigured("CONFIG_ERROR", "no usable platform certificate (check the APIv3 key)")
        return valid

    # ---- sources ---------------------------------------------------------
    def _known(self) -> dict[int, Any]:
        if self._certs is None:
            self._certs = {}
            for pem in [self.settings.platform_certificates or "", *self._cached_pems()]:
                for cert in _certificates_in(pem):
                    self._certs[cert.serial_number] = cert
            if self.settings.platform_certificates:
                self._keep(self.settings.platform_certificates)  # certificate mode loads the folder
        return self._certs

    def _cached_pems(self) -> list[str]:
        if not os.path.isdir(self.directory):
            return []
        out = []
        for name in sorted(os.listdir(self.directory)):
            if name.lower().endswith(".pem"):
                with open(os.path.join(self.directory, name), encoding="utf-8") as fh:
                    out.append(fh.read())
        return out

    def _may_ask(self) -> bool:
        now = self._clock()
        return self._asked_at is None or now - self._asked_at >= self.refresh_seconds

    def _download(self) -> dict[int, Any]:
        """``GET /v3/certificates`` from the configured base URL, each certificate opened with the
        APIv3 key and kept in the folder. The SDK would do this itself, but against its hard-coded
        host and inside its constructor, before ``_point_at`` can aim it."""
        import requests
        from wechatpayv3.utils import aes_decrypt

        self._asked_at = self._clock()
        s, path = self.settings, "/v3/certificates"
        response = requests.get(s.base_url.rstrip("/") + path, headers=signed_get_headers(s, path),
                                timeout=s.timeout_seconds)
        if response.status_code != 200:
            raise error_from_response("certificates", response.status_code, response.text)
        found: dict[int, Any] = {}
        for item in response.json().get("data") or []:
            sealed = item.get("encrypt_certificate") or {}
            pem = aes_decrypt(nonce=sealed.get("nonce", ""), ciphertext=sealed.get("ciphertext", ""),
                              associated_data=sealed.get("associated_data", ""), apiv3_key=s.apiv3_key)
            for cert in _certificates_in(pem or ""):
                if _serial_number(str(item.get("serial_no") or "")) == cert.serial_number:
                    found[cert.serial_number] = cert
                    self._keep(pem)
        log.info("wechat platform certificates downloaded", extra={"count": len(found)})
        return found

    def _keep(self, pem: str) -> None:
        """Write each certificate of ``pem`` to the folder as ``<SERIAL>.pem`` (atomically)."""
        from cryptography.hazmat.primitives.serialization import Encoding

        os.makedirs(self.directory, exist_ok=True)
        for cert in _certificates_in(pem):
            serial = format(cert.serial_number, "X")
            serial = serial.zfill(len(serial) + len(serial) % 2)  # whole bytes, as WeChat and OpenSSL write it
            target = os.path.join(self.directory, f"{serial}.pem")
            if os.path.exists(target):
                continue
            tmp = os.path.join(self.directory, f".{serial}.{os.getpid()}.{threading.get_ident()}.tmp")
            with open(tmp, "wb") as fh:
                fh.write(cert.public_bytes(Encoding.PEM))
            os.replace(tmp, target)


def _certificates_in(pem: str) -> list[Any]:
    """The certificates of a PEM text (one or more); nothing for anything else."""
    if "-----BEGIN CERTIFICATE-----" not in pem:
        return []
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificates(pem.encode("utf-8"))
    except ValueError:
        return []


def trust(client: Any, cert: Any) -> None:
    """Let the SDK client verify with ``cert`` (it looks certificates up by serial number and,
    for one it lacks, would download them itself from inside a notification)."""
    known = client._core._certificates
    if all(c.serial_number != cert.serial_number for c in known):
        known.append(cert)


def build_client(s: "WechatSettings") -> Any:
    """The SDK client for ``s``, aimed at ``s.base_url``. Public-key mode (a public key is
    configured): no certificate is needed to build it; a notification signed with a platform
    certificate (a key-mode switch) is verified with ``PlatformCertificates``. Certificate mode:
    the certificates come first (configured, kept, or downloaded)."""
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
    else:
        PlatformCertificates(s).ensure_any()  # kept in the folder the SDK reads at construction
        client = WeChatPay(**common, cert_dir=cert_cache_dir(s))
    _point_at(client, s.base_url)
    return client

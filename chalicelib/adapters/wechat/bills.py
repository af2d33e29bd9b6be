"""A day's trade bill: the answer to ``GET /v3/bill/tradebill`` followed to its download, the
gzip file checked against WeChat's SHA1, and the verified file read one line at a time.

wechatpay-v3.md, trade bill: "the download is a signed GET, the response is not signed (check
the hash)"; "The hash is over the decompressed file"."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Iterator

from chalicelib import config
from chalicelib.log import get_logger

from .errors import (BillHashMismatch, GatewayMisconfigured, OutcomeUnknown, WechatError, error_from_response,
                     translate_exception)
from .keys import merchant_private_key, signed_get_headers

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.config import WechatSettings
    from chalicelib.domain.tradebill import BillLine, BillSummary

log = get_logger(__package__)

BILL_TYPES = ("ALL", "SUCCESS", "REFUND")
_BILL_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def check_request(bill_date: str, bill_type: str) -> None:
    """Raises ValueError for a bill WeChat would refuse to look for."""
    if not isinstance(bill_date, str) or not _BILL_DATE.match(bill_date):
        raise ValueError("bill_date must be YYYY-MM-DD")
    if bill_type not in BILL_TYPES:
        raise ValueError(f"bill_type must be one of {BILL_TYPES}")


def fetch_verified(settings: "WechatSettings", client: Any, answer: dict, *, bill_date: str,
                   bill_type: str) -> "TradeBill":
    """Download the bill ``answer`` (``{download_url, hash_type, hash_value}``) points at and
    check its SHA1 before anything is returned: ``BillHashMismatch`` otherwise."""
    url, hash_type, hash_value = answer.get("download_url"), answer.get("hash_type"), answer.get("hash_value")
    if not (isinstance(url, str) and isinstance(hash_value, str) and hash_type == "SHA1"):
        raise OutcomeUnknown("MALFORMED_RESPONSE", "trade_bill: download_url/hash_value/hash_type", 200)
    fh = _download(settings, client, url)
    try:
        digest, size = _gunzip_sha1(fh)
    except (OSError, EOFError) as exc:  # not gzip, or cut short
        fh.close()
        raise BillHashMismatch("MALFORMED_BILL", f"the download is not a complete gzip file: {exc}") from None
    if digest.lower() != hash_value.lower():
        fh.close()
        log.error("trade bill hash mismatch: refused", extra={"bytes": size})
        raise BillHashMismatch("HASH_MISMATCH", "the bill's SHA1 does not match hash_value")
    log.info("trade bill downloaded and verified", extra={"bytes": size})
    return TradeBill(bill_date=bill_date, bill_type=bill_type, hash_value=hash_value, size=size, file=fh)


def _read_timeout() -> float:
    try:
        return config.wechat_bill_timeout_seconds()
    except config.ConfigError as exc:
        raise GatewayMisconfigured("CONFIG_ERROR", str(exc)) from None


def _download(settings: "WechatSettings", client: Any, url: str):
    """Signed GET of a bill download URL, streamed into a temporary file (rewound)."""
    import tempfile
    from urllib.parse import urlsplit

    import requests

    base, target = urlsplit(settings.base_url), urlsplit(url)
    if (target.scheme, target.netloc) != (base.scheme, base.netloc):
        # never send our Authorization to a host that is not WeChat's
        raise OutcomeUnknown("MALFORMED_RESPONSE", "download_url is not on the WeChat Pay host", 200)
    path = target.path + (f"?{target.query}" if target.query else "")
    headers = signed_get_headers(settings, path, merchant_private_key(client))
    fh = tempfile.TemporaryFile()
    try:
        with requests.get(url, headers=headers, stream=True,
                          timeout=(settings.timeout_seconds, _read_timeout())) as resp:
            if resp.status_code != 200:
                raise error_from_response("download_bill", resp.status_code, resp.text)
            for chunk in resp.iter_content(chunk_size=64 * 1024):
                fh.write(chunk)
    except WechatError:
        fh.close()
        raise
    except Exception as exc:
        fh.close()
        err = translate_exception(exc, "download_bill")
        log.warning("wechat download_bill failed: %s", err.code)
        raise err from exc
    fh.seek(0)
    return fh


def _gunzip_sha1(fh) -> tuple[str, int]:
    """SHA1 (hex) and size of the decompressed content of a gzip file object; rewinds it."""
    import gzip
    import hashlib

    digest, size = hashlib.sha1(), 0
    fh.seek(0)
    with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
        while chunk := gz.read(64 * 1024):
            digest.update(chunk)
            size += len(chunk)
    fh.seek(0)
    return digest.hexdigest(), size


class TradeBill:
    """A verified trade bill on disk. Iterating yields ``BillLine`` objects, then the
    ``BillSummary`` (``chalicelib.domain.tradebill``), decompressing as it goes."""

    def __init__(self, *, bill_date: str, bill_type: str, hash_value: str, size: int, file) -> None:
        self.bill_date = bill_date
        self.bill_type = bill_type
        self.hash_value = hash_value
        self.size = size  # bytes, decompressed
        self._file = file

    def __iter__(self) -> "Iterator[BillLine | BillSummary]":
        import gzip
        import io

        from chalicelib.domain.tradebill import iter_bill

        if self._file is None:
            raise ValueError("the bill is closed")
        self._file.seek(0)
        gz = gzip.GzipFile(fileobj=self._file, mode="rb")
        with io.TextIOWrapper(gz, encoding="utf-8", newline="") as text:
            yield from iter_bill(text)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "TradeBill":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""The mini-program server API (api.weixin.qq.com, not WeChat Pay): the access token and
subscribeMessage.send. Answers are ``{errcode, errmsg}`` JSON.

The token comes from ``cgi-bin/stable_token`` (getStableAccessToken): "普通模式，access_token 有效期内
重复调用该接口不会更新 access_token" and it is "与 getAccessToken 获取的调用凭证完全隔离，互不影响"
(developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-access-token/getStableAccessToken.html), so
several Lambda containers asking for it do not invalidate each other's token, as ``cgi-bin/token``
would ("重复获取将导致上次获取的 access_token 失效"). It is cached until five minutes before its
``expires_in`` ("有效期最长为7200s") and asked again when WeChat says it is invalid (40001) or
expired (42001).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from .. import config

TOKEN_ERRORS = (40001, 42001)  # invalid credential / access_token expired: ask for a new token
EARLY_SECONDS = 300
TIMEOUT_SECONDS = 5
_lock = threading.Lock()
_token: dict = {}


@dataclass(frozen=True)
class SendResult:
    errcode: int
    errmsg: str
    msgid: str | None = None


class MiniProgramUnavailable(Exception):
    """The API could not be reached or answered no JSON."""


def _post(path: str, body: dict, params: dict | None = None) -> dict:
    import requests

    s = config.subscribe_settings()
    try:
        r = requests.post(s.base_url + path, json=body, params=params, timeout=TIMEOUT_SECONDS)
        return r.json()
    except (requests.RequestException, ValueError) as exc:
        raise MiniProgramUnavailable(f"{path}: {type(exc).__name__}") from None


def access_token(*, renew: bool = False) -> str:
    s = config.subscribe_settings()
    with _lock:
        key = (s.base_url, s.appid)
        if not renew and _token.get("key") == key and _token.get("until", 0) > time.time():
            return _token["token"]
        answer = _post("/cgi-bin/stable_token", {"grant_type": "client_credential", "appid": s.appid,
                                                 "secret": config.secret("MINIAPP_SECRET")})
        token = answer.get("access_token")
        if not token:
            raise MiniProgramUnavailable(f"stable_token: {answer.get('errcode')} {answer.get('errmsg')}")
        expires = int(answer.get("expires_in") or 0)
        _token.update(key=key, token=token, until=time.time() + max(0, expires - EARLY_SECONDS))
        return token


def send(*, openid: str, template_id: str, data: dict, page: str | None) -> SendResult:
    """subscribeMessage.send, with one new token when the cached one is refused."""
    body = {"touser": openid, "template_id": template_id, "data": data, "lang": "zh_CN"}
    if page:
        body["page"] = page
    for renew in (False, True):
        answer = _post("/cgi-bin/message/subscribe/send", body, {"access_token": access_token(renew=renew)})
        code = int(answer.get("errcode") or 0)
        if code not in TOKEN_ERRORS:
            break
    msgid = answer.get("msgid")
    return SendResult(code, str(answer.get("errmsg") or ""), str(msgid) if msgid is not None else None)

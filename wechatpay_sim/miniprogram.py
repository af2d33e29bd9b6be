"""The mini-program server API the refund service uses to tell players what happened: the
access token and one-time subscription messages (订阅消息). Not WeChat Pay: these live on
api.weixin.qq.com, answer ``{errcode, errmsg}`` JSON and are authenticated by an access token in
the query string, not by signatures.

Consents: ``wx.requestSubscribeMessage`` happens between the player and WeChat, so the test (as
the mini-app would) tells the simulator with ``POST /sim/subscriptions`` ``{openid, template_id}``;
each such call is one consent, and each consent allows one message.
"""
from __future__ import annotations

import json
import secrets
import threading
import time
from urllib.parse import parse_qs, urlsplit

# getStableAccessToken: "获取小程序全局后台接口调用凭据，有效期最长为7200s" and "普通模式，access_token 有效期内
# 重复调用该接口不会更新 access_token" (developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-access-token/
# getStableAccessToken.html): within its lifetime the same token is answered again.
TOKEN_SECONDS = 7200
# getAccessToken (GET cgi-bin/token): "access_token 的有效期目前为 2 个小时，需定时刷新，重复获取将导致上次获取的
# access_token 失效" (the same documentation family, quoted on developers.weixin.qq.com/community/develop/doc/
# 00048660420710a24d395a60051000): each call replaces the previous token. The easy assumption
# ("a token is good for 2 h") is wrong for this endpoint; stable_token is the one to share.
INVALID_TOKEN = 40001  # "invalid credential, access_token is invalid or not latest"
EXPIRED_TOKEN = 42001  # "access_token expired"
# subscribeMessage.send: a one-time consent allows one message; without one WeChat answers
# 43101 "user refuse to accept the msg" (developers.weixin.qq.com community answers on 43101:
# "一次性订阅消息，订阅一次只能发一条。次数不够也会报错用户拒收").
NO_CONSENT = 43101
INVALID_ARGUMENT = 47003  # "argument invalid! data.<key>.value invalid"


class MiniProgram:
    def __init__(self, appid: str, secret: str = "sim-app-secret"):
        self.appid, self.secret = appid, secret
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.tokens: dict[str, float] = {}  # token -> expires at (epoch seconds)
            self.stable: str | None = None
            self.consents: dict[tuple[str, str], int] = {}  # (openid, template_id) -> messages allowed
            self.messages: list[dict] = []
            self.failures: list[int] = []  # errcodes to answer the next sends with, in turn
            self.token_calls = 0

    # ------------------------------------------------------------ control
    def grant(self, openid: str, template_id: str) -> dict:
        with self._lock:
            key = (openid, template_id)
            self.consents[key] = self.consents.get(key, 0) + 1
            return {"openid": openid, "template_id": template_id, "remaining": self.consents[key]}

    def fail_next(self, errcodes: list[int]) -> dict:
        with self._lock:
            self.failures.extend(int(c) for c in errcodes)
            return {"pending_failures": list(self.failures)}

    def expire_tokens(self) -> dict:
        with self._lock:
            self.tokens = {t: 0.0 for t in self.tokens}
            return {"expired": len(self.tokens)}

    def sent(self) -> list[dict]:
        with self._lock:
            return [dict(m) for m in self.messages]

    # ------------------------------------------------------------ the API
    def _issue(self) -> str:
        token = "SIMTOKEN_" + secrets.token_urlsafe(24)
        self.tokens[token] = time.time() + TOKEN_SECONDS
        return token

    def _credentials(self, appid, secret, grant_type) -> dict | None:
        if grant_type != "client_credential":
            return {"errcode": 40002, "errmsg": "invalid grant_type"}
        if appid != self.appid:
            return {"errcode": 40013, "errmsg": "invalid appid"}
        if secret != self.secret:
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        return None

    def token(self, query: dict) -> dict:
        """GET /cgi-bin/token: a new token, and the previous one of this endpoint stops working."""
        with self._lock:
            self.token_calls += 1
            refused = self._credentials(query.get("appid"), query.get("secret"), query.get("grant_type"))
            if refused:
                return refused
            for old in [t for t in self.tokens if t != self.stable]:
                del self.tokens[old]
            return {"access_token": self._issue(), "expires_in": TOKEN_SECONDS}

    def stable_token(self, body: dict) -> dict:
        """POST /cgi-bin/stable_token: the same token while it is valid (force_refresh renews it)."""
        with self._lock:
            self.token_calls += 1
            refused = self._credentials(body.get("appid"), body.get("secret"), body.get("grant_type"))
            if refused:
                return refused
            now = time.time()
            if self.stable and self.tokens.get(self.stable, 0) > now and not body.get("force_refresh"):
                return {"access_token": self.stable, "expires_in": int(self.tokens[self.stable] - now)}
            if self.stable:
                self.tokens.pop(self.stable, None)
            self.stable = self._issue()
            return {"access_token": self.stable, "expires_in": TOKEN_SECONDS}

    def send(self, access_token: str | None, body: dict) -> dict:
        """POST /cgi-bin/message/subscribe/send?access_token=...: one message, using one consent."""
        with self._lock:
            expires = self.tokens.get(access_token or "")
            if expires is None:
                return {"errcode": INVALID_TOKEN, "errmsg": "invalid credential, access_token is invalid or not latest"}
            if expires <= time.time():
                return {"errcode": EXPIRED_TOKEN, "errmsg": "access_token expired"}
            if self.failures:
                code = self.failures.pop(0)
                return {"errcode": code, "errmsg": "simulated failure"}
            openid, template_id, data = body.get("touser"), body.get("template_id"), body.get("data")
            if not isinstance(data, dict) or not all(isinstance(v, dict) and isinstance(v.get("value"), str)
                                                     for v in data.values()):
                return {"errcode": INVALID_ARGUMENT, "errmsg": "argument invalid! data"}
            key = (openid, template_id)
            if self.consents.get(key, 0) <= 0:
                return {"errcode": NO_CONSENT, "errmsg": "user refuse to accept the msg"}
            self.consents[key] -= 1
            msgid = len(self.messages) + 1
            self.messages.append({"msgid": msgid, "touser": openid, "template_id": template_id,
                                  "page": body.get("page"), "data": data, "sent_at": time.time()})
            return {"errcode": 0, "errmsg": "ok", "msgid": msgid}


def answer(mp: MiniProgram, method: str, raw_path: str, body: bytes) -> tuple[int, dict]:
    """One /cgi-bin/ call. WeChat answers 200 with an errcode, whatever went wrong."""
    parts = urlsplit(raw_path)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return 200, {"errcode": 47001, "errmsg": "data format error"}
    if method == "GET" and parts.path == "/cgi-bin/token":
        return 200, mp.token(query)
    if method == "POST" and parts.path == "/cgi-bin/stable_token":
        return 200, mp.stable_token(payload if isinstance(payload, dict) else {})
    if method == "POST" and parts.path == "/cgi-bin/message/subscribe/send":
        return 200, mp.send(query.get("access_token"), payload if isinstance(payload, dict) else {})
    return 404, {"errcode": 404, "errmsg": "no such endpoint"}

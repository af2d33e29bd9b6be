"""A small JSON client for the local API, shared by the tests and the benchmarks."""
from __future__ import annotations

import json

import requests


class Api:
    def __init__(self, base_url: str, timeout: float = 30):
        self.base_url = base_url
        self.timeout = timeout
        self.session = requests.Session()

    def call(self, method: str, path: str, token: str | None = None, body=None, headers=None,
             raw: bytes | None = None):
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        return self.session.request(method, self.base_url + path, data=data, headers=h, timeout=self.timeout)

    def get(self, path, token=None, **kw):
        return self.call("GET", path, token, **kw)

    def post(self, path, token=None, body=None, **kw):
        return self.call("POST", path, token, body=body if body is not None else {}, **kw)

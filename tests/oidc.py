"""A tiny identity provider on 127.0.0.1 for the tests of staff sign-in: OIDC discovery and a JWKS
whose keys a test makes, rotates or breaks (``discovery_body`` / ``jwks_body`` replace what is
served), and the ``idp`` fixture that points the service's OIDC settings at it."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUDIENCE = "refund-console"
ROLE_MAP = "shop-refund-support=support,shop-refund-finance=finance,shop-ops=admin"


class Provider:
    """A tiny identity provider: discovery and a JWKS whose keys the test can rotate."""

    def __init__(self):
        self.keys: dict[str, tuple[str, object]] = {}  # kid -> (alg, private key)
        self.published: list[str] = []
        self.jwks_fetches = 0
        self.discovery_body: bytes | None = None  # served instead of the discovery document
        self.jwks_body: bytes | None = None  # served instead of the key set
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                if self.path == "/.well-known/openid-configuration":
                    body, override = {"issuer": provider.issuer, "jwks_uri": provider.issuer + "/keys"}, \
                        provider.discovery_body
                elif self.path == "/keys":
                    provider.jwks_fetches += 1
                    body, override = {"keys": [provider.jwk(kid) for kid in provider.published]}, provider.jwks_body
                else:
                    self.send_error(404)
                    return
                data = override if override is not None else json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def add_key(self, kid: str, alg: str = "RS256", publish: bool = True):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if alg == "RS256" \
            else ec.generate_private_key(ec.SECP256R1())
        self.keys[kid] = (alg, key)
        if publish:
            self.published.append(kid)
        return key

    def jwk(self, kid: str) -> dict:
        alg, key = self.keys[kid]
        algorithm = RSAAlgorithm if alg == "RS256" else ECAlgorithm
        return {**algorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "alg": alg, "use": "sig"}

    def token(self, kid: str, *, sub="alice@shop", roles=("shop-refund-finance",), aud=AUDIENCE, iss=None,
              exp_in=3600, **extra) -> str:
        alg, key = self.keys[kid]
        now = int(time.time())
        claims = {"iss": iss or self.issuer, "aud": aud, "sub": sub, "iat": now, "exp": now + exp_in,
                  "realm_access": {"roles": list(roles)}, **extra}
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


@pytest.fixture
def idp(monkeypatch):
    provider = Provider()
    provider.add_key("k1")
    monkeypatch.setenv("OIDC_ISSUER", provider.issuer)
    monkeypatch.setenv("OIDC_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("OIDC_ROLE_CLAIM", "realm_access.roles")
    monkeypatch.setenv("OIDC_ROLE_MAP", ROLE_MAP)
    monkeypatch.setenv("OIDC_TIMEOUT_SECONDS", "2")
    monkeypatch.setenv("OIDC_JWKS_REFRESH_COOLDOWN_SECONDS", "0")
    yield provider
    provider.stop()

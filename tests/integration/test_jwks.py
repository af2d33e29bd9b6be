"""Staff tokens from the shop's identity provider: RS256/ES256 verified through a JWKS served
here on 127.0.0.1 with keys made in the test (discovery, rotation, unknown kid, audience, issuer,
expiry, alg=none, and an HS256 token keyed with the provider's public key)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from chalicelib.adapters import auth
from chalicelib.domain.errors import ErrorCode, Forbidden, Unauthenticated, UpstreamUnavailable

AUDIENCE = "refund-console"
ROLE_MAP = "shop-refund-support=support,shop-refund-finance=finance,shop-ops=admin"


class Provider:
    """A tiny identity provider: discovery and a JWKS whose keys the test can rotate."""

    def __init__(self):
        self.keys: dict[str, tuple[str, object]] = {}  # kid -> (alg, private key)
        self.published: list[str] = []
        self.jwks_fetches = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": provider.issuer, "jwks_uri": provider.issuer + "/keys"}
                elif self.path == "/keys":
                    provider.jwks_fetches += 1
                    body = {"keys": [provider.jwk(kid) for kid in provider.published]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
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


def _verify(token: str, kind: str = "staff"):
    return auth.verify(f"Bearer {token}", kind)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_rs256_and_es256_tokens_map_to_our_roles(idp):
    p = _verify(idp.token("k1"))
    assert (p.role, p.subject, p.issuer, p.actor) == ("finance", "alice@shop", idp.issuer, "finance:alice@shop")
    idp.add_key("e1", alg="ES256")
    p = _verify(idp.token("e1", sub="bob", roles=("shop-refund-support", "other-app")))
    assert (p.role, p.subject) == ("support", "bob")
    with pytest.raises(Forbidden):
        _verify(idp.token("k1"), "user")  # a staff token on a player route


def test_keys_are_cached_and_rotation_refreshes_once(idp):
    for _ in range(3):
        _verify(idp.token("k1"))
    assert idp.jwks_fetches == 1  # one fetch, then the cached set
    idp.add_key("k2")
    idp.published = ["k2"]  # the provider rotated: k1 is gone
    assert _verify(idp.token("k2")).role == "finance"
    assert idp.jwks_fetches == 2  # the unknown kid refreshed the set once
    with pytest.raises(Unauthenticated):
        _verify(idp.token("k1"))  # the retired key: one more refresh, still unknown
    assert idp.jwks_fetches == 3
    _verify(idp.token("k2"))
    assert idp.jwks_fetches == 3


def test_an_unknown_kid_refreshes_once_and_fails(idp):
    _verify(idp.token("k1"))
    idp.add_key("never-published", publish=False)
    before = idp.jwks_fetches
    with pytest.raises(Unauthenticated):
        _verify(idp.token("never-published"))
    assert idp.jwks_fetches == before + 1


def test_unknown_kids_do_not_hammer_the_provider(idp, monkeypatch):
    monkeypatch.setenv("OIDC_JWKS_REFRESH_COOLDOWN_SECONDS", "600")
    _verify(idp.token("k1"))
    idp.add_key("forged", publish=False)
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            _verify(idp.token("forged"))
    assert idp.jwks_fetches == 1  # the first fetch started the cooldown: no refresh within it


@pytest.mark.parametrize("case", ["wrong audience", "wrong issuer", "expired", "no role", "blank subject",
                                  "lifetime too long", "no kid"])
def test_bad_identity_provider_tokens_are_refused(idp, case):
    tokens = {
        "wrong audience": lambda: idp.token("k1", aud="another-app"),
        "wrong issuer": lambda: idp.token("k1", iss="https://evil.example.com"),
        "expired": lambda: idp.token("k1", exp_in=-120),
        "no role": lambda: idp.token("k1", roles=("shop-marketing",)),
        "blank subject": lambda: idp.token("k1", sub=" "),
        "lifetime too long": lambda: idp.token("k1", exp_in=30 * 86400),
        "no kid": lambda: jwt.encode({"iss": idp.issuer, "aud": AUDIENCE, "sub": "x", "iat": int(time.time()),
                                      "exp": int(time.time()) + 60}, idp.keys["k1"][1], algorithm="RS256"),
    }
    with pytest.raises(Forbidden if case == "no role" else Unauthenticated):
        _verify(tokens[case]())


def test_alg_none_is_refused(idp):
    claims = {"iss": idp.issuer, "aud": AUDIENCE, "sub": "mallory", "iat": int(time.time()),
              "exp": int(time.time()) + 60, "realm_access": {"roles": ["shop-ops"]}, "role": "admin"}
    token = f"{_b64(json.dumps({'alg': 'none', 'kid': 'k1'}).encode())}.{_b64(json.dumps(claims).encode())}."
    with pytest.raises(Unauthenticated):
        _verify(token)


def test_hs256_signed_with_the_providers_public_key_is_refused(idp):
    """The classic confusion: the attacker knows the public key and uses it as an HMAC secret."""
    public_pem = idp.keys["k1"][1].public_key().public_bytes(serialization.Encoding.PEM,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    for role_claims in ({"role": "admin"}, {"realm_access": {"roles": ["shop-ops"]}}):
        claims = {"iss": idp.issuer, "aud": AUDIENCE, "sub": "mallory", "iat": int(time.time()),
                  "exp": int(time.time()) + 60, **role_claims}
        signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': 'k1'}).encode())}." \
                        f"{_b64(json.dumps(claims).encode())}"
        sig = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
        with pytest.raises(Unauthenticated):
            _verify(f"{signing_input}.{_b64(sig)}")
    # and an RS256 header on a token whose kid names an ES256 key
    idp.add_key("e1", alg="ES256")
    alg, rsa_key = idp.keys["k1"]
    mixed = jwt.encode({"iss": idp.issuer, "aud": AUDIENCE, "sub": "m", "iat": int(time.time()),
                        "exp": int(time.time()) + 60, "realm_access": {"roles": ["shop-ops"]}},
                       rsa_key, algorithm="RS256", headers={"kid": "e1"})
    with pytest.raises(Unauthenticated):
        _verify(mixed)


def test_without_an_issuer_configured_provider_tokens_are_refused(idp, monkeypatch):
    monkeypatch.delenv("OIDC_ISSUER")
    with pytest.raises(Unauthenticated):
        _verify(idp.token("k1"))


def test_an_unreachable_provider_is_a_503_not_a_401(idp):
    token = idp.token("k1")
    idp.stop()
    with pytest.raises(UpstreamUnavailable) as err:
        _verify(token)
    assert err.value.code == ErrorCode.UPSTREAM_UNAVAILABLE


def test_a_provider_token_works_over_http(env, idp):
    finance = idp.token("k1", sub="carol@shop")
    me = env.api.get("/api/admin/me", finance)
    assert me.status_code == 200, me.text
    assert me.json()["role"] == "finance" and me.json()["issuer"] == idp.issuer
    support = idp.token("k1", sub="dave@shop", roles=("shop-refund-support",))
    r = env.api.get("/api/admin/activity?operator=carol@shop", support)
    assert r.status_code == 403 and r.json()["code"] == "PERMISSION_DENIED"
    bad = idp.token("k1", aud="another-app")
    r = env.api.get("/api/admin/me", bad)
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHENTICATED"
    # the shared-secret tokens keep working beside it
    assert env.api.get("/api/admin/me", env.admin).json()["role"] == "admin"

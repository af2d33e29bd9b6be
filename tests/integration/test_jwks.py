"""Staff tokens from the shop's identity provider: RS256/ES256 verified through a JWKS served
here on 127.0.0.1 with keys made in the test (discovery, rotation, unknown kid, audience, issuer,
expiry, alg=none, and an HS256 token keyed with the provider's public key)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from chalicelib.adapters import auth
from chalicelib.domain.errors import ErrorCode, Forbidden, Unauthenticated, UpstreamUnavailable
from tests.oidc import AUDIENCE, idp  # noqa: F401 - the fixture


@pytest.fixture(autouse=True)
def _directory(stack):
    """A staff token's person is looked up in the staff directory (the local DynamoDB endpoint)."""


def _verify(token: str, kind: str = "staff"):
    return auth.verify(f"Bearer {token}", kind)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_rs256_and_es256_tokens_map_to_our_roles(idp):
    p = _verify(idp.token("k1"))
    # a provider identity nobody mapped is its own person, apart from the shared-secret "alice@shop"
    assert (p.role, p.subject, p.issuer, p.person, p.actor) == ("finance", "alice@shop", idp.issuer, "sso:alice@shop",
                                                                 "finance:sso:alice@shop")
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


DISCOVERY_CASES = ("not json", "not utf-8", "a list", "a string", "no jwks_uri", "jwks_uri not a string",
                   "another issuer")


@pytest.mark.parametrize("case", DISCOVERY_CASES)
def test_a_malformed_discovery_document_is_a_503_not_a_500(idp, case):
    idp.discovery_body = {
        "not json": b"<html>maintenance</html>", "not utf-8": b"\xff\xfe{", "a list": b"[]", "a string": b'"ok"',
        "no jwks_uri": json.dumps({"issuer": idp.issuer}).encode(),
        "jwks_uri not a string": json.dumps({"issuer": idp.issuer, "jwks_uri": 5}).encode(),
        "another issuer": json.dumps({"issuer": "https://else.example", "jwks_uri": idp.issuer + "/keys"}).encode(),
    }[case]
    with pytest.raises(UpstreamUnavailable) as err:
        _verify(idp.token("k1"))
    assert err.value.code == ErrorCode.UPSTREAM_UNAVAILABLE


MALFORMED_JWKS = {"not json": b"<html>maintenance</html>", "not utf-8": b"\xff\xfe{", "a list": b"[]",
                  "keys not a list": b'{"keys": "x"}', "no keys": b'{"keys": []}', "an object without keys": b"{}",
                  "a key that is no key": b'{"keys": [{"kty": "RSA", "kid": "k1"}]}'}


@pytest.mark.parametrize("case", list(MALFORMED_JWKS))
def test_a_malformed_key_set_is_a_503_not_a_401_or_500(idp, case):
    """The key set is the provider's: when it cannot be used, no token can be judged (try again),
    and the console must not sign the person out."""
    idp.jwks_body = MALFORMED_JWKS[case]
    with pytest.raises(UpstreamUnavailable):
        _verify(idp.token("k1"))
    idp.jwks_body = None  # mended: the same token is accepted
    assert _verify(idp.token("k1")).role == "finance"


def test_a_person_claim_names_the_person(idp, monkeypatch):
    monkeypatch.setenv("OIDC_PERSON_CLAIM", "employee_id")
    p = _verify(idp.token("k1", sub="0b7e-4c1a", employee_id="Ｅ1001"))
    assert (p.subject, p.person, p.actor) == ("0b7e-4c1a", "e1001", "finance:e1001")  # compared as local subjects
    with pytest.raises(Forbidden):
        _verify(idp.token("k1", sub="0b7e-4c1a"))  # configured, but the provider did not say who it is


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

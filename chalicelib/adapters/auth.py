"""Bearer JWT verification.

Two kinds of principal: staff (roles ``support``, ``finance``, ``admin``: domain/staff.py says
what each may do) and players (role ``user``). Tokens come two ways:

- HS256 with a shared secret: staff tokens with ``ADMIN_JWT_SECRET``, player tokens with
  ``USER_JWT_SECRET`` (the local stage, and shops whose own backend issues tokens);
- RS256/ES256 staff tokens from the shop's identity provider (OIDC), verified through its JWKS
  when ``OIDC_ISSUER`` is configured (docs/sign-in.md). The algorithm is bound to the key the
  JWKS names, so an HS256 token "signed" with the provider's public key is refused.

A staff token names an identity (issuer, subject); the person behind it comes from the
provider's person claim (``OIDC_PERSON_CLAIM``), else the staff directory, else the identity
itself (``domain/staff.person_of_identity``). The principal's actor names the person.
"""
from __future__ import annotations

import json
import math
import threading
import time
import urllib.request
from dataclasses import dataclass

from .. import config
from ..domain import staff as staff_rules
from ..domain.enums import StaffRole
from ..domain.errors import Forbidden, Unauthenticated, UpstreamUnavailable
from . import directory

STAFF_ROLES = tuple(StaffRole.labels())  # support, finance, admin
ROLES = STAFF_ROLES + ("user",)
_STAFF_SECRET = "ADMIN_JWT_SECRET"
_USER_SECRET = "USER_JWT_SECRET"
OIDC_ALGORITHMS = ("RS256", "ES256")
# when an identity-provider token maps to several of our roles, the one with most authority wins
_ROLE_RANK = {"support": 1, "finance": 2, "admin": 3}


def _secret_name(role: str) -> str:
    return _USER_SECRET if role == "user" else _STAFF_SECRET


@dataclass(frozen=True)
class Principal:
    role: str  # a StaffRole code, or "user" for a player
    subject: str  # the identity's subject (as its issuer compares it), or the player's user_id
    issuer: str = staff_rules.LOCAL_ISSUER  # "local" (shared secret) or the identity provider's issuer URL
    person: str | None = None  # the staff person behind the identity (None for a player)

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.person or self.subject}"

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def staff_role(self) -> StaffRole | None:
        return StaffRole(self.role) if self.is_staff else None


LEEWAY_SECONDS = 30  # clock skew allowed on exp, iat and nbf
MAX_TOKEN_CHARS = 4096
MAX_SUBJECT_CHARS = 128


def max_lifetime_seconds() -> int:
    return config.settings().max_token_lifetime_seconds


def issue(role: str, subject: str, ttl_seconds: int = 12 * 3600, now: float | None = None) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    if not 0 < ttl_seconds <= max_lifetime_seconds():
        raise ValueError(f"ttl_seconds must be between 1 and {max_lifetime_seconds()} (MAX_TOKEN_LIFETIME_SECONDS)")
    _check_subject(subject, ValueError)
    import jwt  # lazily: PyJWT loads cryptography, which only token routes need

    now = time.time() if now is None else now
    claims = {"sub": subject, "role": role, "iat": int(now), "exp": int(now + ttl_seconds)}
    return jwt.encode(claims, config.secret(_secret_name(role)), algorithm="HS256")


def _check_subject(subject, error=Unauthenticated) -> str:
    """A subject is an admin id or a user_id: printable, no surrounding whitespace, not blank."""
    if not (isinstance(subject, str) and subject.strip() and subject == subject.strip()
            and len(subject) <= MAX_SUBJECT_CHARS and subject.isprintable()):
        raise error("令牌没有有效的 sub（操作员或用户编号）")
    return subject


def _number(claims: dict, name: str) -> float | None:
    """A NumericDate claim: an int or float (a string or boolean is refused), or None if absent."""
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Unauthenticated(f"令牌的 {name} 必须是数字")
    return value


def _check_times(claims: dict, now: float) -> None:
    exp, iat, nbf = _number(claims, "exp"), _number(claims, "iat"), _number(claims, "nbf")
    if exp is None or iat is None:
        raise Unauthenticated("令牌缺少 exp 或 iat")
    if exp <= now - LEEWAY_SECONDS:
        raise Unauthenticated("登录已过期，请重新登录")
    if iat > now + LEEWAY_SECONDS:
        raise Unauthenticated("令牌的签发时间晚于当前时间，请重新登录")
    if nbf is not None and nbf > now + LEEWAY_SECONDS:
        raise Unauthenticated("令牌尚未生效")
    longest = max_lifetime_seconds()
    if exp <= iat or exp - iat > longest or exp - now > longest + LEEWAY_SECONDS:
        raise Unauthenticated(f"令牌有效期超过 {longest} 秒，请重新登录")


def verify(authorization: str | None, kind: str) -> Principal:
    """Return the principal of a ``Bearer`` token valid for ``kind``: ``"staff"`` (any staff role),
    ``"user"`` (a player) or ``"admin"`` (the admin staff role only).

    401 when there is no valid token at all; 403 when a valid token is of another kind. Valid:
    HS256 with the role's shared secret, or RS256/ES256 from the configured identity provider
    (issuer, audience, a key of its JWKS); numeric ``exp`` and ``iat`` (a string is refused), not
    expired, not issued in the future, ``nbf`` (when present) reached, a lifetime of at most
    MAX_TOKEN_LIFETIME_SECONDS (default 24 h) counted both as exp - iat and exp - now, each
    with LEEWAY_SECONDS of clock skew; a printable, non-blank subject.
    """
    if not isinstance(authorization, str) or not authorization.startswith("Bearer "):
        raise Unauthenticated("未登录：缺少令牌（Authorization: Bearer …）")
    import jwt

    token = authorization[len("Bearer "):].strip()
    if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise Unauthenticated("令牌格式不正确，请重新登录")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthenticated("令牌格式不正确，请重新登录") from None
    alg = header.get("alg")
    if alg == "HS256":
        principal = _verify_shared_secret(token)
    elif alg in OIDC_ALGORITHMS:
        principal = _verify_identity_provider(token)
    else:
        raise Unauthenticated("不支持的令牌签名算法")
    if kind == "user" and principal.role != "user":
        raise Forbidden("该接口只接受用户（玩家）令牌")
    if kind == "staff" and not principal.is_staff:
        raise Forbidden("该令牌不是后台人员令牌，不能使用管理后台")
    if kind == "admin" and principal.role != StaffRole.ADMIN.value:
        raise Forbidden("该接口只接受管理员令牌")
    return principal


def _verify_shared_secret(token: str) -> Principal:
    import jwt

    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise Unauthenticated("令牌格式不正确，请重新登录") from None
    token_role = unverified.get("role")
    if not isinstance(token_role, str) or token_role not in ROLES:
        raise Unauthenticated("令牌没有有效的角色")
    try:
        claims = jwt.decode(token, config.secret(_secret_name(token_role)), algorithms=["HS256"],
                            options={"require": ["exp", "iat", "sub", "role"], "verify_exp": False,
                                     "verify_iat": False, "verify_nbf": False})
    except jwt.PyJWTError:
        raise Unauthenticated("令牌无效，请重新登录") from None
    _check_times(claims, time.time())
    return _identified(claims["role"], staff_rules.LOCAL_ISSUER, _check_subject(claims.get("sub")))


def _identified(role: str, issuer: str, subject: str, claimed_person=None) -> Principal:
    """The principal of a verified token: a player as the token names them; a staff identity
    with its subject as its issuer compares it, and the person behind it."""
    if role == "user":
        return Principal(role=role, subject=subject, issuer=issuer)
    folded = config.identity_settings().case_insensitive_issuers
    subject = _check_subject(staff_rules.normalise_subject(subject, issuer in folded))
    if claimed_person is not None:  # a person is compared as the shared-secret subjects are (they are persons)
        person = _check_subject(staff_rules.normalise_subject(claimed_person, staff_rules.LOCAL_ISSUER in folded))
    else:
        person = directory.person_of(issuer, subject) or staff_rules.person_of_identity(issuer, subject)
    return Principal(role=role, subject=subject, issuer=issuer, person=person)


# ---------------------------------------------------------------- the shop's identity provider


_clients_lock = threading.Lock()
_clients: dict[tuple, object] = {}  # (jwks_url, settings) -> PyJWKClient: keys cached per container
_discovered: dict[str, tuple[float, str]] = {}  # issuer -> (fetched at, jwks_uri)


def _discover_jwks_url(oidc) -> str:
    """The provider's ``jwks_uri`` from ``<issuer>/.well-known/openid-configuration`` (cached for
    the JWKS cache time). The document must name the configured issuer exactly."""
    now = time.monotonic()
    with _clients_lock:
        known = _discovered.get(oidc.issuer)
        if known is not None and now - known[0] < oidc.jwks_cache_seconds:
            return known[1]
    url = oidc.issuer.rstrip("/") + "/.well-known/openid-configuration"
    if not url.startswith(("https://", "http://")):
        raise UpstreamUnavailable("身份提供方地址（OIDC_ISSUER）不是 http(s) 地址")
    try:
        with urllib.request.urlopen(url, timeout=oidc.timeout_seconds) as resp:  # noqa: S310 - http(s) checked
            document = json.load(resp)
    except (OSError, ValueError):  # unreachable, or not JSON (ValueError covers bad UTF-8 too)
        raise UpstreamUnavailable("暂时无法访问身份提供方，请稍后重试") from None
    # any shape but an object naming our issuer and an http(s) key set is the provider's fault, not the token's
    if not isinstance(document, dict) or document.get("issuer") != oidc.issuer \
            or not isinstance(document.get("jwks_uri"), str) \
            or not document["jwks_uri"].startswith(("https://", "http://")):
        raise UpstreamUnavailable("身份提供方的配置文档格式不正确或与 OIDC_ISSUER 不符")
    jwks_uri = document["jwks_uri"]
    with _clients_lock:
        _discovered[oidc.issuer] = (now, jwks_uri)
    return jwks_uri


def _jwks_client(oidc):
    from jwt import PyJWKClient

    url = oidc.jwks_url or _discover_jwks_url(oidc)
    key = (url, oidc.timeout_seconds, oidc.jwks_cache_seconds, oidc.refresh_cooldown_seconds)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            # the key set is cached for jwks_cache_seconds; an unknown kid refreshes it once (at most
            # once per cooldown, so a flood of made-up kids cannot hammer the provider)
            client = PyJWKClient(url, cache_keys=False, cache_jwk_set=True, lifespan=max(1, oidc.jwks_cache_seconds),
                                 timeout=oidc.timeout_seconds, cooldown_duration=oidc.refresh_cooldown_seconds)
            _clients[key] = client
        return client


def _claim(claims: dict, path: str):
    value = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def staff_role_from_claim(value, role_map: dict) -> str | None:
    """Our staff role for the provider's role or group claim (a string or a list of them),
    mapped through ``role_map``; the one with most authority when several map."""
    names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    ours = {role_map[n] for n in names if isinstance(n, str) and n in role_map}
    return max(ours, key=_ROLE_RANK.__getitem__) if ours else None


def _verify_identity_provider(token: str) -> Principal:
    import jwt

    oidc = config.oidc_settings()
    if oidc is None:
        raise Unauthenticated("本系统不接受身份提供方签发的令牌")
    client = _jwks_client(oidc)
    unusable = UpstreamUnavailable("身份提供方的密钥集格式不正确，请稍后重试")
    try:  # the key set (fetched, or cached) must be usable before a token can be judged by it
        client.get_signing_keys()
    except jwt.PyJWKClientConnectionError:
        raise UpstreamUnavailable("暂时无法获取身份提供方的密钥，请稍后重试") from None
    except (jwt.PyJWKClientError, jwt.PyJWKSetError, ValueError):  # not JSON, not an object, no usable key
        raise unusable from None
    try:
        signing_key = client.get_signing_key_from_jwt(token)
    except jwt.PyJWKClientConnectionError:
        raise UpstreamUnavailable("暂时无法获取身份提供方的密钥，请稍后重试") from None
    except (jwt.PyJWKSetError, ValueError):  # the refresh an unknown kid asked for brought a broken set
        raise unusable from None
    except jwt.PyJWTError:  # unknown kid (after one refresh), no kid
        raise Unauthenticated("令牌无效，请重新登录") from None
    try:
        # the PyJWK binds the algorithm to the key: the header's alg must be that algorithm
        claims = jwt.decode(token, signing_key, algorithms=list(OIDC_ALGORITHMS), audience=oidc.audience,
                            issuer=oidc.issuer,
                            options={"require": ["exp", "iat", "iss", "aud"], "verify_exp": False,
                                     "verify_iat": False, "verify_nbf": False})
    except jwt.PyJWTError:
        raise Unauthenticated("令牌无效，请重新登录") from None
    _check_times(claims, time.time())
    subject = _check_subject(_claim(claims, oidc.subject_claim))
    role = staff_role_from_claim(_claim(claims, oidc.role_claim), oidc.role_map)
    if role is None:
        raise Forbidden("身份提供方没有给该账号分配退款后台的角色")
    person = None
    if oidc.person_claim is not None:
        person = _claim(claims, oidc.person_claim)
        if not isinstance(person, str) or not person.strip():
            raise Forbidden("身份提供方没有给出该账号的人员编号")
    return _identified(role, oidc.issuer, subject, person)
